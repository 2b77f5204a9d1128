"""Canonical events as the generic endpoint receives them, checked and put in journal form.

A request carries one event (a JSON object), a list of them, or ``{"events": [...]}``. Each
event has the canonical fields of docs/events.md: ``event_id``, ``entity_id``, ``ts`` and
``type`` are required; ``actor``, ``value``, ``attrs`` and ``seq`` may be left out. The live
intake needs ``event_id`` (files may derive it; a live event must name itself, because the
id is what makes a sender's retry harmless).

The journal form is a flat JSON object whose text fields are exactly what the store will
hold: ``ts`` as ``YYYY-MM-DDTHH:MM:SS.ffffff`` in UTC, ``attrs`` as JSON text. Every event,
from whatever endpoint, is written in that form, so the journal, the store and the log's
leaves agree byte for byte.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Mapping
from typing import Any, Final

from truecount.ingest.canonical import SAFE_INTEGER
from truecount.ingest.load import TS_RANGE

#: The fields an event may carry, and the longest text accepted for the identifiers.
FIELDS: Final[frozenset[str]] = frozenset(
    {"event_id", "entity_id", "ts", "type", "actor", "value", "attrs", "seq"}
)
REQUIRED: Final[tuple[str, ...]] = ("event_id", "entity_id", "ts", "type")
MAX_ID: Final[int] = 512
TS_TEXT: Final[str] = "%Y-%m-%dT%H:%M:%S.%f"

Event = dict[str, Any]


class EventError(ValueError):
    """One event is malformed: which one, which field, and what is valid."""


def events_from_body(body: bytes) -> list[Any]:
    """The list of raw events in a request body (not yet checked one by one)."""
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise EventError(f"the body is not JSON ({exc})") from None
    if isinstance(doc, dict) and "events" in doc:
        doc = doc["events"]
        if not isinstance(doc, list):
            raise EventError("'events' must be a list of events")
    elif isinstance(doc, dict):
        doc = [doc]
    if not isinstance(doc, list):
        raise EventError('send an event object, a list of events, or {"events": [...]}')
    return doc


def utc_text(value: dt.datetime) -> str:
    """A time as the naive-UTC text the store holds (an aware time is converted first)."""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    if value.year >= 1000:  # the same text, several times faster (strftime pads no year)
        return value.isoformat(timespec="microseconds")
    return value.strftime(TS_TEXT)


def canonical_event(raw: Any, number: int, source: str) -> Event:
    """One checked event in journal form (``source`` says which endpoint and sender)."""
    where = f"event {number}"
    if not isinstance(raw, Mapping):
        raise EventError(f"{where}: an event is a JSON object")
    unknown = sorted(set(raw) - FIELDS)
    if unknown:
        raise EventError(
            f"{where}: unknown field '{unknown[0]}'; fields are {', '.join(sorted(FIELDS))}"
        )
    for name in REQUIRED:
        if name not in raw or raw[name] is None:
            raise EventError(f"{where}: '{name}' is required")
    out: Event = {}
    for name in ("event_id", "entity_id", "type"):
        out[name] = _text(raw[name], where, name)
    out["actor"] = None if raw.get("actor") is None else _text(raw["actor"], where, "actor")
    ts = raw["ts"]
    if not isinstance(ts, str):
        raise EventError(f"{where}: 'ts' must be an ISO 8601 time such as 2026-01-31T12:00:00Z")
    try:
        parsed = dt.datetime.fromisoformat(ts)
    except ValueError:
        raise EventError(
            f"{where}: 'ts' {ts[:40]!r} is not an ISO 8601 time such as 2026-01-31T12:00:00Z"
        ) from None
    out["ts"] = _in_range(parsed, ts, where)
    value = raw.get("value")
    if value is not None and (
        isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    ):
        raise EventError(f"{where}: 'value' must be a finite number or null")
    if value is not None and abs(value) > SAFE_INTEGER:
        raise EventError(
            f"{where}: 'value' {value!r} is beyond ±{SAFE_INTEGER} (2^53 - 1), where a double "
            "no longer holds every whole number, so sums of it would be rounded or overflow"
        )
    out["value"] = None if value is None else float(value)
    attrs = raw.get("attrs")
    if attrs is not None and not isinstance(attrs, dict):
        raise EventError(f"{where}: 'attrs' must be a JSON object or null")
    out["attrs"] = None if attrs is None else json.dumps(attrs, sort_keys=True, ensure_ascii=False)
    seq = raw.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
        raise EventError(f"{where}: 'seq' must be an integer or null")
    if seq is not None and not -(2**63) <= seq < 2**63:
        raise EventError(f"{where}: 'seq' is outside a 64-bit integer")
    out["seq"] = seq
    out["source"] = source
    return out


def _in_range(parsed: dt.datetime, ts: str, where: str) -> str:
    """The event time as journal text, refused outside :data:`TS_RANGE` as ingest does.

    One event in year 9999 would move the default as-of time there and decide windows that
    are still open; a file ingest quarantines it (docs/events.md), so the meter refuses it."""
    low, high = TS_RANGE
    try:
        utc = parsed.astimezone(dt.UTC).replace(tzinfo=None) if parsed.tzinfo else parsed
    except OverflowError:  # an offset that moves year 1 or 9999 off the calendar
        utc = None
    if utc is None or not low <= utc < high:
        raise EventError(
            f"{where}: 'ts' {ts[:40]!r} is outside {low:%Y-%m-%d} .. {high:%Y-%m-%d} (UTC): "
            "a placeholder date, a mistyped year, or an epoch in the wrong unit?"
        )
    return utc_text(utc)


def _text(value: Any, where: str, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise EventError(f"{where}: '{name}' must be a non-empty string")
    if len(value) > MAX_ID:
        raise EventError(f"{where}: '{name}' is longer than {MAX_ID} characters")
    return value


def canonical_events(body: bytes, source: str) -> list[Event]:
    """Every event of a generic request, checked; the first problem is raised."""
    return [canonical_event(raw, i, source) for i, raw in enumerate(events_from_body(body), 1)]
