"""What an ingest did, per file and in total: the counts that must add up.

Every record read from a file is exactly one of *loaded* (at least one new event stored),
*duplicate* (all its events were already in the store or earlier in the same file) or
*quarantined* (a check failed; the quarantine table says which and why), so
``rows_read == loaded + duplicate + quarantined`` always holds. ``events_loaded`` can exceed
``loaded`` when a mapping derives several events from one record (a status history).
``unknown_actor`` counts the events stored with no actor (the export did not say who acted, or
the reader could not tell): filters on actor cannot decide them, so they are said, not hidden.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class FileReport:
    file: str
    ingest_id: int
    sha256: str
    rows_read: int
    loaded: int
    duplicate: int
    quarantined: int
    events_loaded: int
    seconds: float
    unknown_actor: int = 0
    #: The file this one was skipped as: same bytes already loaded under that name.
    same_as: str | None = None
    #: Events stored from a file without ids that equal an event stored from another file
    #: in every field but the id: an overlapping export, stored twice (said, not hidden).
    overlap: int = 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_read / self.seconds if self.seconds > 0 else 0.0


@dataclass(frozen=True)
class IngestReport:
    table: str
    files: tuple[FileReport, ...]
    mapping: str | None = None

    @property
    def rows_read(self) -> int:
        return sum(f.rows_read for f in self.files)

    @property
    def loaded(self) -> int:
        return sum(f.loaded for f in self.files)

    @property
    def duplicate(self) -> int:
        return sum(f.duplicate for f in self.files)

    @property
    def quarantined(self) -> int:
        return sum(f.quarantined for f in self.files)

    @property
    def events_loaded(self) -> int:
        return sum(f.events_loaded for f in self.files)

    @property
    def unknown_actor(self) -> int:
        return sum(f.unknown_actor for f in self.files)

    @property
    def overlap(self) -> int:
        return sum(f.overlap for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        """The stable JSON shape of ``truecount ingest --format json``."""
        return {
            "table": self.table,
            "mapping": self.mapping,
            "files": [asdict(f) for f in self.files],
            "totals": {
                "rows_read": self.rows_read,
                "loaded": self.loaded,
                "duplicate": self.duplicate,
                "quarantined": self.quarantined,
                "events_loaded": self.events_loaded,
                "unknown_actor": self.unknown_actor,
                "overlap": self.overlap,
            },
        }
