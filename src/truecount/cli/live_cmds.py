"""The live meter's verbs: ``meter serve`` (the intake) and ``log verify`` (its client)
(docs/meter.md).

``log verify`` exits 0 when every check passed and 1 when any failed, like ``verify``; bad
input or usage is 2.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Annotated, Any, Final

import typer

from truecount.cli.app import (
    EXIT_FINDING,
    EXIT_OK,
    PANEL_AUDIT,
    OutputFormat,
    app,
    fail,
    stderr_console,
    stdout_console,
)
from truecount.cli.meter_cmds import EventsOpt, WorkspaceOpt, events_input

meter_app = typer.Typer(
    help="The live meter: signed webhook intake and its log.", no_args_is_help=True
)
log_app = typer.Typer(help="Check the live meter's transparency log.", no_args_is_help=True)
app.add_typer(meter_app, name="meter", rich_help_panel=PANEL_AUDIT)
app.add_typer(log_app, name="log", rich_help_panel=PANEL_AUDIT)

KEY_NAME: Final[str] = "meter.key"
#: Seconds a ``log verify`` waits for the meter.
HTTP_TIMEOUT: Final[float] = 30.0
#: The longest pause between two loads into the store ``meter serve`` accepts.
MAX_LOAD_EVERY: Final[float] = 3600.0


@meter_app.command("serve")
def meter_serve_cmd(
    workspace: WorkspaceOpt = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on.", metavar="HOST")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", "-p", help="Port.", metavar="PORT")] = 8780,
    secrets: Annotated[
        Path | None,
        typer.Option(
            "--secrets",
            envvar="TRUECOUNT_METER_SECRETS",
            help="Secrets file (YAML, mode 600) with the keys zendesk, intercom, senders and "
            "readers. Or set TRUECOUNT_ZENDESK_SECRET, TRUECOUNT_INTERCOM_SECRET, "
            "TRUECOUNT_METER_SENDERS (name=hmac-sha256:SECRET or name=ed25519:BASE64, "
            "comma-separated) and TRUECOUNT_METER_READERS (party=TOKEN, comma-separated).",
            metavar="FILE",
        ),
    ] = None,
    key: Annotated[
        Path | None,
        typer.Option(
            "--key",
            help="The meter's Ed25519 private key (default: WS/live/meter.key, made on first "
            "start).",
            metavar="KEY",
        ),
    ] = None,
    window: Annotated[
        int,
        typer.Option(
            "--window",
            help="Seconds a signature's time may differ from the clock.",
            metavar="SECONDS",
        ),
    ] = 300,
    max_body: Annotated[
        int, typer.Option("--max-body", help="Largest request body, in bytes.", metavar="BYTES")
    ] = 4 << 20,
    rate: Annotated[
        int,
        typer.Option("--rate", help="Requests a second per sender, sustained.", metavar="N"),
    ] = 200,
    head_every: Annotated[
        int,
        typer.Option("--head-every", help="Seconds between signed tree heads.", metavar="SECONDS"),
    ] = 60,
    load_every: Annotated[
        float,
        typer.Option(
            "--load-every",
            help="Seconds between loads of journaled events into the store, unless a read "
            "needs them sooner. Answers never wait for a load.",
            metavar="SECONDS",
        ),
    ] = 0.2,
) -> None:
    """Run the live intake: vendor webhooks and signed events in, a verifiable log out."""
    import uvicorn

    from truecount.evidence.sign import generate_key, key_id, load_private_key, public_key_path
    from truecount.live.app import Intake, RateLimiter, create_app
    from truecount.live.config import load_secrets
    from truecount.live.meter import LIVE_DIR, Meter
    from truecount.workspace import Workspace

    if not 0 < port < 65536:
        fail(f"--port {port} is not a port number")
    for name, value in (
        ("--window", window),
        ("--max-body", max_body),
        ("--rate", rate),
        ("--head-every", head_every),
    ):
        if value <= 0:
            fail(f"{name} must be a positive number, not {value}")
    if not 0 < load_every <= MAX_LOAD_EVERY:
        fail(
            f"--load-every must be above 0 and at most {MAX_LOAD_EVERY:g} seconds, not {load_every}"
        )
    ws = Workspace.open(workspace)
    loaded = load_secrets(secrets)
    if not (loaded.zendesk or loaded.intercom or loaded.senders):
        fail(
            "no sender is configured: give --secrets FILE (or TRUECOUNT_ZENDESK_SECRET, "
            "TRUECOUNT_INTERCOM_SECRET, TRUECOUNT_METER_SENDERS); 'truecount meter serve "
            "--help' shows their forms"
        )
    err = stderr_console()
    key_path = key if key is not None else ws.root / LIVE_DIR / KEY_NAME
    if key is None and not key_path.exists():
        key_path.parent.mkdir(parents=True, exist_ok=True)
        made = generate_key(key_path)
        err.print(
            f"made the meter's key {key_path} (public: {public_key_path(key_path)})", markup=False
        )
        del made
    private = load_private_key(key_path)
    intake = Intake(
        Meter(ws, private, load_every=load_every),
        loaded,
        window=float(window),
        max_body=max_body,
        limiter=RateLimiter(float(rate), float(2 * rate)),
        head_every=float(head_every),
    )
    public = base64.b64encode(private.public_key().public_bytes_raw()).decode("ascii")
    err.print(f"meter key {key_id(private.public_key())[:16]}… public key {public}", markup=False)
    err.print(loaded.describe(), markup=False)
    shown = f"[{host}]" if ":" in host else host
    stdout_console().print(
        f"truecount meter on http://{shown}:{port} (POST /hooks/zendesk, /hooks/intercom, "
        "/events; Ctrl+C stops it)",
        markup=False,
    )
    uvicorn.run(create_app(intake), host=host, port=port, log_level="warning", access_log=False)
    raise typer.Exit(EXIT_OK)


# ------------------------------------------------------------------------------ log verify
def _head(path: Path) -> Any:
    from truecount.live.log import TreeHead

    try:
        return TreeHead.from_json(json.loads(path.read_text(encoding="utf-8")))
    except OSError as exc:
        fail(f"{path}: cannot read the tree head ({exc.strerror})")
    except (ValueError, UnicodeDecodeError) as exc:
        fail(f"{path}: not a tree head of the live meter ({exc})")


class _RefusedError(Exception):
    """The meter refused a read with one of the codes the caller takes as a failed check."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status, self.reason = status, reason


def _get(
    base: str,
    route: str,
    params: dict[str, Any],
    token: str | None,
    failing: frozenset[str] = frozenset(),
) -> Any:
    """The meter's JSON answer; a refusal whose code is in ``failing`` raises
    :class:`_RefusedError` (a check that failed), any other ends the command with exit 2."""
    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        fail(f"--meter {base}: give an http:// or https:// URL")
    url = base.rstrip("/") + route + "?" + urllib.parse.urlencode(params)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:  # noqa: S310
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        try:
            answer = json.loads(exc.read())
            reason, code = answer.get("reason", exc.reason), answer.get("error")
        except (ValueError, AttributeError):
            reason, code = exc.reason, None
        if code in failing:
            raise _RefusedError(exc.code, str(reason)) from None
        fail(f"--meter {base}: {route} answered {exc.code}: {reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        fail(f"--meter {base}: cannot reach the meter ({exc})")


def _hashes(values: Any, what: str) -> list[bytes]:
    try:
        return [base64.b64decode(v, validate=True) for v in values]
    except (TypeError, binascii.Error, ValueError):
        fail(f"the meter's {what} is not a list of base64 hashes")


#: The meter's refusals of an inclusion proof that mean the event is not in the newer head:
#: no such event in the log (404), or one appended after the head (400, its index is not
#: below the head's size). Both are a failed check (exit 1), not bad input.
_NOT_IN_HEAD: Final[frozenset[str]] = frozenset({"unknown_event", "bad_query"})

#: A party's reader token for the meter's read endpoints (docs/meter.md).
ReaderTokenOpt = Annotated[
    str | None,
    typer.Option(
        "--token", envvar="TRUECOUNT_METER_TOKEN", help="Your reader token.", metavar="TOKEN"
    ),
]


@log_app.command("verify")
def log_verify_cmd(
    old: Annotated[
        Path, typer.Argument(help="A tree head saved earlier (JSON).", metavar="OLD_HEAD")
    ],
    new: Annotated[Path, typer.Argument(help="A newer tree head (JSON).", metavar="NEW_HEAD")],
    event_id: Annotated[
        list[str] | None,
        typer.Option(
            "--event-id", "-e", help="Check this event is in NEW_HEAD; repeat.", metavar="ID"
        ),
    ] = None,
    meter: Annotated[
        str | None,
        typer.Option("--meter", help="The meter's base URL, for the proofs.", metavar="URL"),
    ] = None,
    token: ReaderTokenOpt = None,
    pubkey: Annotated[
        str | None,
        typer.Option(
            "--pubkey",
            "-k",
            help="The meter's public key (base64 or .pub file); checks both heads' signatures.",
            metavar="KEY",
        ),
    ] = None,
) -> None:
    """Check that NEW_HEAD extends OLD_HEAD (nothing dropped or rewritten) and holds events."""
    from truecount.evidence import merkle
    from truecount.evidence.sign import load_public_key
    from truecount.live.log import verify_consistency, verify_tree_head

    first, second = _head(old), _head(new)
    out = stdout_console()
    failed = False

    def report(ok: bool, text: str) -> None:
        nonlocal failed
        failed = failed or not ok
        out.print(("ok      " if ok else "FAILED  ") + text, markup=False)

    if pubkey is not None:
        public = load_public_key(pubkey)
        for path, head in ((old, first), (new, second)):
            report(verify_tree_head(head, public), f"{path.name}: signed by the meter's key")
    else:
        stderr_console().print(
            "note: no --pubkey, so the heads' signatures are not checked", markup=False
        )
    if first.size > second.size:
        report(False, f"{old.name} has {first.size} leaves, more than {new.name}'s {second.size}")
    elif first.size == second.size or first.size == 0:
        same = first.size == 0 or first.root == second.root
        report(same, f"{old.name} ({first.size}) is a prefix of {new.name} ({second.size})")
    else:
        if meter is None:
            fail("the heads differ in size: give --meter URL to fetch the consistency proof")
        got = _get(meter, "/log/consistency", {"first": first.size, "second": second.size}, token)
        proof = _hashes(got.get("proof"), "consistency proof")
        ok = verify_consistency(first.size, second.size, first.root, second.root, proof)
        report(ok, f"{old.name} ({first.size}) is a prefix of {new.name} ({second.size})")
    for eid in event_id or []:
        if meter is None:
            fail("--event-id needs --meter URL to fetch the inclusion proof")
        if not eid:
            fail("--event-id is empty: give the id of an event the log should hold")
        try:
            got = _get(
                meter, "/log/proof", {"event_id": eid, "size": second.size}, token, _NOT_IN_HEAD
            )
        except _RefusedError as exc:  # the event is missing: the finding this check looks for
            answer = f"the meter answered {exc.status}, {exc.reason}"
            report(False, f"event {eid} is not in {new.name}: {answer}")
            continue
        leaf = _hashes([got.get("leaf_hash")], "leaf hash")[0]
        audit = _hashes(got.get("proof"), "inclusion proof")
        index = got.get("index")
        ok = isinstance(index, int) and merkle.verify_inclusion(
            leaf, index, second.size, audit, second.root
        )
        report(ok, f"event {eid} is leaf {index} of {new.name}")
    raise typer.Exit(EXIT_FINDING if failed else EXIT_OK)


# ----------------------------------------------------------------------------- log compare
def _download_journal(base: str, token: str | None, dest: Path) -> int:
    """Copy the meter's journal (``GET /log/journal``) to ``dest``; its number of events."""
    import shutil

    if urllib.parse.urlsplit(base).scheme not in ("http", "https"):
        fail(f"--log {base}: give a journal file or an http:// or https:// URL")
    request = urllib.request.Request(base.rstrip("/") + "/log/journal")  # noqa: S310
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with (
            urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response,  # noqa: S310
            dest.open("wb") as fh,
        ):
            shutil.copyfileobj(response, fh, 1 << 20)
            return int(response.headers.get("x-truecount-tree-size") or 0)
    except urllib.error.HTTPError as exc:
        fail(f"--log {base}: /log/journal answered {exc.code}: {exc.reason}")
    except (urllib.error.URLError, OSError, ValueError) as exc:
        fail(f"--log {base}: cannot reach the meter ({exc})")


@log_app.command("compare")
def log_compare_cmd(
    log: Annotated[
        str,
        typer.Option(
            "--log",
            help="The meter's journal (WS/live/journal.jsonl) or the meter's URL.",
            metavar="JOURNAL_OR_URL",
        ),
    ],
    workspace: WorkspaceOpt = None,
    events: EventsOpt = None,
    token: ReaderTokenOpt = None,
    pubkey: Annotated[
        str | None,
        typer.Option(
            "--pubkey",
            "-k",
            help="The meter's public key: with a URL, check the journal against a signed head.",
            metavar="KEY",
        ),
    ] = None,
    limit: Annotated[
        int,
        typer.Option("--limit", help="Events listed per class (0: all).", metavar="N"),
    ] = 50,
    fmt: Annotated[OutputFormat, typer.Option("--format", "-f", help="Output format.")] = (
        OutputFormat.table
    ),
) -> None:
    """List, by event id, where the vendor's export (-w WS or --events) and the live log differ.

    Exits 0 when they hold the same events, 1 when any differ."""
    import tempfile

    from rich.table import Table
    from rich.text import Text

    from truecount import jsonout
    from truecount.evidence.livelog import verify_tree_head
    from truecount.evidence.sign import load_public_key
    from truecount.live.compare import compare, journal_root

    if limit < 0:
        fail(f"--limit must be 0 (all) or more, not {limit}")
    export = events_input(events, workspace)
    err = stderr_console()
    with tempfile.TemporaryDirectory(prefix="truecount-compare-") as tmp:
        if "://" in log:
            head = None
            if pubkey is not None:
                head = _head_from(_get(log, "/log/head", {}, token), log)
                if not verify_tree_head(head, load_public_key(pubkey)):
                    fail(f"--log {log}: the meter's tree head is not signed by --pubkey")
            journal = Path(tmp) / "journal.jsonl"
            _download_journal(log, token, journal)
            if head is not None:
                n, root = journal_root(journal, head.size)
                if root != head.root:
                    fail(
                        f"--log {log}: the journal's first {head.size:,} events do not give "
                        f"the signed head's root (it sent {n:,} events)"
                    )
                err.print(
                    f"the meter's journal matches its signed head of {head.size:,} leaves",
                    markup=False,
                )
            elif pubkey is None:
                err.print(
                    "note: no --pubkey, so the journal is not checked against a signed head",
                    markup=False,
                )
        else:
            journal = Path(log)
            if not journal.is_file():
                fail(f"--log {log}: no such journal file")
        result = compare(journal, export, None if limit == 0 else limit)
    if fmt == OutputFormat.json:
        sys.stdout.write(jsonout.dumps(result.to_json(), indent=2, ensure_ascii=False) + "\n")
    else:
        out = stdout_console()
        counts = Table(title="live log against the export", show_header=True)
        counts.add_column("events")
        counts.add_column("count", justify="right")
        for name, value in (
            ("in the export only (the meter never received them)", result.export_only),
            ("in the log only (the export lacks them)", result.log_only),
            ("in both, changed", result.changed),
            ("in both, the same", result.same),
            ("the log", result.log_events),
            ("the export (distinct ids)", result.export_distinct),
        ):
            counts.add_row(name, f"{value:,}")
        out.print(counts)
        for kind, title in (
            ("export_only", "in the export only"),
            ("log_only", "in the log only"),
            ("changed", "changed"),
        ):
            rows = result.listed.get(kind) or []
            if not rows:
                continue
            table = Table(title=f"{title} (first {len(rows):,} by event id)")
            columns = list(rows[0])
            for c in columns:
                table.add_column(c)
            for row in rows:
                table.add_row(
                    *[Text(", ".join(v) if isinstance(v, list) else str(v)) for v in row.values()]
                )
            out.print(table)
    raise typer.Exit(EXIT_FINDING if result.differs else EXIT_OK)


def _head_from(data: Any, base: str) -> Any:
    from truecount.evidence.livelog import TreeHead

    try:
        return TreeHead.from_json(data)
    except ValueError as exc:
        fail(f"--log {base}: /log/head is not a tree head ({exc})")
