"""Vendor webhook payloads read by the same adapters as exported files.

A webhook body is written to a scratch folder as the file the vendor's export would hold,
and :func:`truecount.adapters.ingest_source` reads it into an in-memory DuckDB store: the
same recognition, SQL and quarantine as ``truecount ingest --source``. What comes out is the
canonical events in journal form (:mod:`truecount.live.events`), or the reason the adapter
refused the records.

* Zendesk: the body a webhook sends is written by its trigger, so the meter takes the API's
  own shapes: a ticket (``{"ticket": {...}}``), an audit (``{"audit": {...}}``), or any page
  the adapter reads (``{"tickets": [...]}``, ``{"audits": [...]}``, ratings...).
* Intercom: the notification envelope (``type: notification_event``, ``topic``,
  ``data.item``); a conversation item is read as one line of a conversations export. Other
  topics (``ping``, contacts...) carry no metered events and are answered without any.

The Zendesk audit reader needs facts about the ticket (its requester and channel, from its
creating audit or the ticket itself), which a later audit's webhook does not carry. A file
ingest finds them in the workspace store; so does the meter: the events the store already
holds for the payload's tickets (:func:`zendesk_ticket_ids`) are put in the scratch store
first, under ids of their own (:data:`KNOWN_PREFIX`) so the payload's events are never taken
for duplicates of them, and only the payload's events come out.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any, Final

import duckdb
import pyarrow as pa

from truecount.errors import TruecountError
from truecount.ingest.canonical import EVENTS_TABLE, QUARANTINE_TABLE
from truecount.workspace import configure, ensure_schema

from .events import Event

#: Zendesk single-object bodies and the page key the adapter reads them under.
_ZENDESK_SINGLE: Final[dict[str, str]] = {"ticket": "tickets", "audit": "audits"}

#: The scratch store's events in journal form (``ts`` formatted as events.TS_TEXT), without
#: the workspace's events put there as context.
_SELECT: Final[str] = (
    "SELECT event_id, entity_id, strftime(ts, '%Y-%m-%dT%H:%M:%S.%f') AS ts, type, actor, value, "
    "CAST(attrs AS VARCHAR) AS attrs, seq FROM events WHERE NOT starts_with(event_id, ?) "
    "ORDER BY ts, entity_id, seq NULLS FIRST, event_id"
)
#: How the workspace's events given as context are renamed in the scratch store.
KNOWN_PREFIX: Final[str] = "\x00known:"


class PayloadError(ValueError):
    """The payload is not something the vendor's adapter reads, or its records were refused."""


def zendesk_file(body: bytes) -> tuple[str, bytes] | None:
    """The export file a Zendesk webhook body stands for (name, bytes); None: no events."""
    doc = _json(body)
    if not isinstance(doc, dict):
        raise PayloadError(
            "a Zendesk webhook body must be a JSON object (a ticket, an audit or a page of them)"
        )
    for single, page in _ZENDESK_SINGLE.items():
        if single in doc and isinstance(doc[single], dict):
            return "payload.json", json.dumps({page: [doc[single]]}).encode("utf-8")
    return "payload.json", body


def intercom_file(body: bytes) -> tuple[str, bytes] | None:
    """The export file an Intercom notification stands for; None for topics without events."""
    doc = _json(body)
    if not isinstance(doc, dict) or doc.get("type") != "notification_event":
        raise PayloadError("an Intercom webhook body is a notification_event object")
    data = doc.get("data")
    item = data.get("item") if isinstance(data, dict) else None
    if not isinstance(item, dict) or item.get("type") != "conversation":
        return None
    return "conversations.jsonl", json.dumps(item).encode("utf-8") + b"\n"


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PayloadError(f"the body is not JSON ({exc})") from None


def zendesk_ticket_ids(data: bytes) -> list[str]:
    """The tickets a Zendesk payload file has audits of (their entity ids), if any."""
    doc = _json(data)
    audits = doc.get("audits") if isinstance(doc, dict) else None
    if not isinstance(audits, list):
        return []
    ids = {str(a["ticket_id"]) for a in audits if isinstance(a, dict) and "ticket_id" in a}
    return sorted(ids)


def adapter_events(
    vendor: str, name: str, data: bytes, source: str, known: pa.Table | None = None
) -> list[Event]:
    """Read one payload file with the vendor's adapter; its events in journal form.

    ``known`` are stored events (canonical columns) the adapter may read as context, as an
    ingest into the workspace would; none of them is returned."""
    from truecount.adapters import ingest_source  # the adapters import a lot: only when used

    with tempfile.TemporaryDirectory(prefix="truecount-hook-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        con = duckdb.connect(":memory:")
        try:
            configure(con, "256MB")
            if known is not None and known.num_rows:
                ensure_schema(con)
                con.register("__tc_known", known)
                cols = ", ".join(c for c in known.column_names if c != "event_id")
                con.execute(
                    f"INSERT INTO {EVENTS_TABLE} (event_id, {cols}) "  # noqa: S608
                    f"SELECT ? || event_id, {cols} FROM __tc_known",
                    [KNOWN_PREFIX],
                )
                con.unregister("__tc_known")
            try:
                ingest_source(con, vendor, [path], partial=True)
            except TruecountError as exc:
                raise PayloadError(exc.first_line.replace(str(path), "the payload")) from None
            refused = con.execute(
                f"SELECT column_name, reason FROM {QUARANTINE_TABLE} LIMIT 1"  # noqa: S608
            ).fetchone()
            rows = con.execute(_SELECT, [KNOWN_PREFIX]).fetchall()
        finally:
            con.close()
    if refused is not None and not rows:
        column, reason = refused
        raise PayloadError(f"the {vendor} adapter refused the payload: {reason} ({column})")
    return [
        {
            "event_id": r[0],
            "entity_id": r[1],
            "ts": r[2],
            "type": r[3],
            "actor": r[4],
            "value": r[5],
            "attrs": r[6],
            "seq": r[7],
            "source": source,
        }
        for r in rows
    ]
