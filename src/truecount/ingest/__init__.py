"""Raw exports in, canonical events out (DESIGN §5).

Public API:

- :func:`ingest_files` loads files into a workspace store;
- :func:`load_events_into` does the same into any DuckDB connection (e.g. in memory, for
  ``--events FILE...``);
- :func:`load_mapping` reads and validates a mapping file (docs/mapping.md).

Both loaders return an :class:`IngestReport` whose per-file counts always add up:
``rows_read == loaded + duplicate + quarantined``.
"""

from truecount.ingest.load import (
    ProgressCallback,
    ProgressUpdate,
    ingest_files,
    load_events_into,
)
from truecount.ingest.mapping import ExportMapping, MappingFile, load_mapping
from truecount.ingest.report import FileReport, IngestReport

__all__ = [
    "ExportMapping",
    "FileReport",
    "IngestReport",
    "MappingFile",
    "ProgressCallback",
    "ProgressUpdate",
    "ingest_files",
    "load_events_into",
    "load_mapping",
]
