"""The ingest mapping: how one foreign export becomes canonical events (see docs/mapping.md).

A mapping is a small YAML file. It is validated here into frozen pydantic models, at the YAML
boundary, so every later step can trust it; each problem names the file, line and key and,
for a misspelt key, the nearest valid one. Checks that need the export itself (does the
column exist?) happen when the file is opened, in :mod:`truecount.ingest.plan`.
"""

from __future__ import annotations

import hashlib
import types
import typing
import zoneinfo
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Literal, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from truecount.errors import Location, MappingError, Problem, suggest
from truecount.yamlsource import KeyPath, line_of, load_with_lines

#: The mapping format version this code reads.
MAPPING_FORMAT: Final[int] = 1

#: Timestamp formats that are not strptime patterns: seconds or milliseconds since 1970 UTC.
EPOCH_FORMATS: Final[tuple[str, ...]] = ("epoch", "epoch_ms")

Scalar = str | int | float | bool


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FieldSpec(_Model):
    """Where one value comes from, and how to read it.

    Exactly one of ``column`` (a column, or a top-level key in JSON Lines), ``path`` (a JSON
    path into a nested record, JSON Lines only) or ``const`` (the same value on every row).
    Written as a plain string it is a column name, or a JSON path when it starts with ``$``.
    """

    column: str | None = None
    path: str | None = None
    const: Scalar | None = None
    map: dict[str, Scalar | None] | None = None
    strict: bool = False
    format: str | list[str] | None = None
    timezone: str | None = None
    min: float | None = None
    max: float | None = None

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"path": data} if data.startswith("$") else {"column": data}
        if isinstance(data, dict) and isinstance(data.get("map"), dict):
            # YAML reads keys such as 1 or yes as numbers/booleans; the data is text.
            data = {**data, "map": {_text(k): v for k, v in data["map"].items()}}
        return data

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str | None) -> str | None:
        if value is not None:
            _check_timezone(value)
        return value

    @model_validator(mode="after")
    def _check(self) -> FieldSpec:
        given = [k for k in ("column", "path", "const") if k in self.model_fields_set]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of 'column', 'path' or 'const'"
                + (f" (got {', '.join(given)})" if given else "")
            )
        if self.path is not None and not self.path.startswith("$"):
            raise ValueError(f"a JSON path starts with '$', e.g. '$.{self.path}'")
        if self.strict and self.map is None:
            raise ValueError("'strict' needs a 'map' listing the allowed values")
        formats = self.formats
        if formats:
            aware = {("%z" in f or "%Z" in f) for f in formats}
            if len(aware) > 1:
                raise ValueError("either every format has an offset (%z) or none does")
            if any(f in EPOCH_FORMATS for f in formats) and len(formats) > 1:
                raise ValueError("'epoch' and 'epoch_ms' cannot be combined with other formats")
            if any(f not in EPOCH_FORMATS and "%" not in f for f in formats):
                raise ValueError(
                    "a timestamp format is a strptime pattern such as '%Y-%m-%d %H:%M', "
                    "or 'epoch' / 'epoch_ms'"
                )
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min:g}) is greater than max ({self.max:g})")
        return self

    @property
    def formats(self) -> list[str]:
        if self.format is None:
            return []
        return [self.format] if isinstance(self.format, str) else list(self.format)

    @property
    def label(self) -> str:
        """How problems refer to this value's origin: the column, the path, or 'constant'."""
        if self.column is not None:
            return self.column
        if self.path is not None:
            return self.path
        return "constant"


class Columns(_Model):
    """Canonical column -> where its value comes from (DESIGN §5)."""

    event_id: FieldSpec | None = None
    entity_id: FieldSpec | None = None
    ts: FieldSpec | None = None
    type: FieldSpec | None = None
    actor: FieldSpec | None = None
    value: FieldSpec | None = None
    attrs: dict[str, FieldSpec] | None = None
    source: FieldSpec | None = None
    recorded_at: FieldSpec | None = None
    seq: FieldSpec | None = None

    @model_validator(mode="after")
    def _check(self) -> Columns:
        for name in ("event_id", "entity_id", "type", "actor", "source", "value", "seq"):
            spec: FieldSpec | None = getattr(self, name)
            if spec is not None and (spec.format is not None or spec.timezone is not None):
                raise ValueError(
                    f"'{name}' is not a timestamp: 'format' and 'timezone' do not apply"
                )
        for name in ("event_id", "entity_id", "type", "actor", "source", "ts", "recorded_at"):
            spec = getattr(self, name)
            if spec is not None and (spec.min is not None or spec.max is not None):
                raise ValueError(f"'{name}' is not a number: 'min' and 'max' do not apply")
        for name in ("ts", "recorded_at"):
            spec = getattr(self, name)
            if spec is not None and spec.map is not None:
                raise ValueError(f"'{name}' is a timestamp: 'map' does not apply")
        return self


class StatusHistory(_Model):
    """Derive ``status_changed`` (and optionally ``closed`` / ``reopened``) events.

    The export has one row per update with the status after the update. Rows of one entity
    are ordered by ``ts`` and then by ``columns.seq`` (the export's update number), never by
    file order; each row becomes a ``status_changed`` event with ``attrs.from`` (the status
    before, null for the first row) and ``attrs.to``.
    """

    status: FieldSpec
    closed_statuses: list[str] | None = None

    @model_validator(mode="before")
    @classmethod
    def _texts(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("closed_statuses"), list):
            data = {**data, "closed_statuses": [_text(s) for s in data["closed_statuses"]]}
        return data

    @model_validator(mode="after")
    def _check(self) -> StatusHistory:
        if self.status.format is not None or self.status.min is not None:
            raise ValueError("'status' is text: only column/path/const, map and strict apply")
        if self.closed_statuses is not None and not self.closed_statuses:
            raise ValueError("'closed_statuses' is empty; list at least one status or remove it")
        return self


class ExportMapping(_Model):
    """A whole mapping file (format ``truecount_mapping: 1``)."""

    truecount_mapping: Literal[1]
    description: str | None = None
    timezone: str = "UTC"
    # Declared before ``columns`` so that the columns check can see it.
    status_history: StatusHistory | None = None
    columns: Columns

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        _check_timezone(value)
        return value

    @field_validator("columns")
    @classmethod
    def _columns(cls, c: Columns, info: ValidationInfo) -> Columns:
        history = info.data.get("status_history")
        missing = [n for n in ("entity_id", "ts") if getattr(c, n) is None]
        if history is None and c.type is None:
            missing.append("type")
        if missing:
            raise ValueError(
                "columns must say where " + ", ".join(missing) + " come from "
                "(entity_id, ts and type are required; type may be a 'const')"
            )
        if history is not None:
            if c.type is not None:
                raise ValueError(
                    "with status_history the event type is derived (status_changed, "
                    "closed, reopened); remove columns.type"
                )
            if c.seq is None:
                raise ValueError(
                    "status_history needs columns.seq: the update number that orders "
                    "updates of one entity made at the same instant"
                )
        return c


@dataclass(frozen=True)
class MappingFile:
    """A validated mapping plus where it came from, so later errors can point into it."""

    path: Path
    spec: ExportMapping
    sha256: str
    lines: dict[KeyPath, int] = field(default_factory=dict, compare=False)

    def line(self, *at: str | int) -> int | None:
        return line_of(self.lines, at)

    def where(self, *at: str | int) -> Location:
        """The location of the deepest key on the path ``at`` that the file actually has."""
        while len(at) > 1 and at not in self.lines:
            at = at[:-1]
        return Location(file=str(self.path), line=self.line(*at), key=".".join(map(str, at)))


def load_mapping(path: Path | str) -> MappingFile:
    """Read and validate a mapping file; raise :class:`MappingError` listing every problem."""
    path = Path(path)
    data, lines = load_with_lines(path)
    if not isinstance(data, dict):
        raise MappingError(
            Problem(
                "a mapping is a YAML mapping with 'truecount_mapping: 1' and 'columns'",
                Location(file=str(path), line=1),
            )
        )
    try:
        spec = ExportMapping.model_validate(data)
    except ValidationError as exc:
        raise MappingError([_problem(err, path, lines) for err in exc.errors()]) from None
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    return MappingFile(path=path, spec=spec, sha256=digest, lines=lines)


def _problem(err: Any, path: Path, lines: dict[KeyPath, int]) -> Problem:
    at: KeyPath = tuple(err["loc"])
    where = Location(file=str(path), line=line_of(lines, at), key=".".join(map(str, at)) or None)
    kind = err["type"]
    if kind == "extra_forbidden":
        valid = _valid_keys(at[:-1])
        hint = suggest(str(at[-1]), valid) if valid else None
        listing = f"valid keys here: {', '.join(valid)}" if valid else None
        return Problem(
            f"unknown key '{at[-1]}'",
            where,
            hint="; ".join(h for h in (hint, listing) if h) or None,
        )
    if kind == "missing":
        return Problem(f"required key '{at[-1]}' is missing", where)
    if kind == "literal_error" and at == ("truecount_mapping",):
        return Problem("unsupported mapping format", where, hint="write 'truecount_mapping: 1'")
    message = str(err["msg"]).removeprefix("Value error, ")
    return Problem(message, where)


def _valid_keys(at: KeyPath) -> list[str]:
    """The keys allowed at a location, found by walking the models along the key path."""
    model: Any = ExportMapping
    skip_key = False
    for part in at:
        if skip_key:  # a key of a free-form dict (an attrs name): the value type follows
            skip_key = False
            continue
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            return []
        info = model.model_fields.get(str(part))
        if info is None:
            return []
        model, skip_key = _unwrap(info.annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return list(model.model_fields)
    return []


def _unwrap(annotation: Any) -> tuple[Any, bool]:
    """Strip ``X | None``; for ``dict[str, X]`` return X and say the next key is free-form."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(inner) == 1:
            return _unwrap(inner[0])
    if origin is dict:
        return typing.get_args(annotation)[1], True
    return annotation, False


def _check_timezone(name: str) -> None:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a name such as 'America' is a folder of the zone database, not a zone
        hint = suggest(name, zoneinfo.available_timezones())
        raise ValueError(
            f"unknown time zone '{name}': use an IANA name such as 'Europe/Berlin' or 'UTC'"
            + (f" ({hint})" if hint else "")
        ) from None


def _text(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value
