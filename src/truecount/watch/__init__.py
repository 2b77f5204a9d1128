"""The definition watch: the vendor's own documentation of an outcome, kept under watch.

A vendor can change what it bills for without changing a line of the contract, by rewording
the help article that says how an outcome is counted ("resolved when the customer does not
reply within 24 hours" becomes "... 72 hours"). The buyer saves that page each quarter; the
watch stores each copy with its hash and date, shows what changed in words a reader can check,
flags the sentences that carry numbers or window words, and says in one exit code whether
anything needs reading. See docs/watch.md.
"""

from truecount.watch.diff import SentenceChange, TextDiff, diff_texts, flags, sentences
from truecount.watch.extract import Extracted, WatchError, detect_kind, extract, html_to_text
from truecount.watch.store import (
    CHECK_TABLE,
    DEFAULT_STALE_DAYS,
    SNAPSHOT_TABLE,
    AddResult,
    Check,
    Snapshot,
    StatusReport,
    WatchStatus,
    acknowledge,
    add_file,
    add_snapshot,
    checks,
    ensure_watch_schema,
    names,
    pair,
    select,
    snapshot_bytes,
    snapshots,
    status,
    validate_name,
)

__all__ = [
    "CHECK_TABLE",
    "DEFAULT_STALE_DAYS",
    "SNAPSHOT_TABLE",
    "AddResult",
    "Check",
    "Extracted",
    "SentenceChange",
    "Snapshot",
    "StatusReport",
    "TextDiff",
    "WatchError",
    "WatchStatus",
    "acknowledge",
    "add_file",
    "add_snapshot",
    "checks",
    "detect_kind",
    "diff_texts",
    "ensure_watch_schema",
    "extract",
    "flags",
    "html_to_text",
    "names",
    "pair",
    "select",
    "sentences",
    "snapshot_bytes",
    "snapshots",
    "status",
    "validate_name",
]
