"""The meter's HTTP face (Starlette, run by uvicorn from ``truecount meter serve``).

Writes: ``POST /hooks/zendesk``, ``POST /hooks/intercom`` (the vendors' signed webhooks) and
``POST /events`` (canonical events or a batch, signed by a named sender). Each request is
checked in this order, and refused with a JSON ``{"error": code, "reason": ...}`` at the
first failure: the body's size (413), the signature (401), the time window (401
``stale``), the verified sender's rate (429), a replay (409), the payload (400). The rate is
counted per verified sender, so nobody can use up another sender's allowance by naming it;
a request refused for its rate was not yet recorded as seen, so it can be sent again as is.
Refusals are counted per code and never stored. An accepted request is answered once its
events are fsync'd in the journal (:mod:`truecount.live.meter`), with the log index of each
new event; the store and the log follow, and every read waits for them to catch up.

Reads: ``GET /log/head``, ``/log/proof?event_id=`` (or ``?index=``),
``/log/consistency?first=&second=``, ``/log/journal`` (the events in leaf order) and
``/stats`` need a reader's bearer token (one per party); ``/healthz`` does not. Secrets
and tokens are never logged: the log names the party or the sender, the code and the reason.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import gc
import hmac
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

import numpy as np
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import ASGIApp

from truecount.web.security import Guard

from . import signatures as sig
from . import vendors
from .config import Secrets
from .events import Event, EventError, canonical_events
from .meter import Meter

LOG: Final = logging.getLogger("truecount.meter")
DEFAULT_MAX_BODY: Final[int] = 4 << 20
DEFAULT_RATE: Final[float] = 200.0  # requests per second per sender, sustained
DEFAULT_BURST: Final[float] = 400.0
#: Bodies up to this size are parsed on the event loop; a thread hand-off costs more than
#: parsing them, on a busy machine much more. Larger ones are parsed in a worker thread.
INLINE_PARSE: Final[int] = 64 << 10
#: Write requests whose time to answer ``/stats`` summarises.
LATENCY_WINDOW: Final[int] = 20_000


class RateLimiter:
    """A token bucket per sender: ``rate`` requests a second, up to ``burst`` at once."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, sender: str, now: float) -> bool:
        with self._lock:
            tokens, last = self._buckets.get(sender, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            if tokens < 1.0:
                self._buckets[sender] = (tokens, now)
                return False
            self._buckets[sender] = (tokens - 1.0, now)
            return True


@dataclass
class Intake:
    """Everything the routes share: the meter, who may write and read, and the limits."""

    meter: Meter
    secrets: Secrets
    window: float = sig.DEFAULT_WINDOW
    max_body: int = DEFAULT_MAX_BODY
    limiter: RateLimiter = field(default_factory=lambda: RateLimiter(DEFAULT_RATE, DEFAULT_BURST))
    head_every: float = 60.0
    clock: Callable[[], float] = time.time
    refusals: Counter[str] = field(default_factory=Counter)
    accepted: int = 0
    duplicates: int = 0
    #: Stale or replayed requests answered as duplicates (every event already held).
    known_retries: int = 0
    #: Seconds from a write request's arrival to its answer, for the last requests answered.
    latencies: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))

    def __post_init__(self) -> None:
        self.replays = sig.ReplayGuard(self.window)
        self._count_lock = threading.Lock()

    def refuse(self, refusal: sig.Refusal, who: str) -> JSONResponse:
        with self._count_lock:
            self.refusals[refusal.code] += 1
        LOG.warning("refused %s from %s: %s", refusal.code, who, refusal.reason)
        return JSONResponse(
            {"error": refusal.code, "reason": refusal.reason}, status_code=refusal.status
        )


async def _body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise sig.Refusal(413, "too_large", f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise sig.Refusal(413, "too_large", f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _headers(request: Request) -> dict[str, str]:
    return {k.lower(): v for k, v in request.headers.items()}


async def _accept(intake: Intake, events: list[Event]) -> JSONResponse:
    try:
        receipt = await asyncio.wrap_future(intake.meter.submit_future(events))
    except (RuntimeError, OSError) as exc:  # nothing was acknowledged: the sender retries
        LOG.error("cannot accept events: %s", exc)
        return intake.refuse(sig.Refusal(503, "unavailable", "the meter cannot write now"), "")
    with intake._count_lock:
        intake.accepted += len(receipt.accepted)
        intake.duplicates += len(receipt.duplicates)
    return JSONResponse(
        {
            "accepted": [{"event_id": e, "index": i} for e, i in receipt.accepted],
            "duplicates": receipt.duplicates,
            "tree_size": receipt.tree_size,
        }
    )


def _writer(intake: Intake, route: str) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        began = time.perf_counter()
        headers = _headers(request)
        who = route if route != "events" else f"events:{headers.get(sig.SENDER, '?')[:64]}"
        try:
            body = await _body(request, intake.max_body)
            now = intake.clock()
            if route == "zendesk":
                if intake.secrets.zendesk is None:
                    raise sig.Refusal(404, "not_configured", "no Zendesk secret is configured")
                signature = sig.verify_zendesk(
                    intake.secrets.zendesk, headers, body, now, intake.window
                )
            elif route == "intercom":
                if intake.secrets.intercom is None:
                    raise sig.Refusal(404, "not_configured", "no Intercom secret is configured")
                signature = sig.verify_intercom(
                    intake.secrets.intercom, headers, body, now, intake.window
                )
            else:
                name, signature = sig.verify_generic(
                    intake.secrets.senders, headers, body, now, intake.window
                )
                who = f"events:{name}"
            if not intake.limiter.allow(who, intake.clock()):
                raise sig.Refusal(429, "rate_limited", "too many requests from this sender")
            intake.replays.admit(route.encode() + b"\x00" + signature, now)
            events = await _events(intake, route, body, who)
        except sig.Refusal as refusal:
            if refusal.code in ("stale", "replay"):  # raised only once the signature held
                known = await _known_retry(intake, route, body, who)
                if known is not None:
                    return known
            return intake.refuse(refusal, who)
        answer = await _accept(intake, events)
        intake.latencies.append(time.perf_counter() - began)
        return answer

    return handle


async def _known_retry(intake: Intake, route: str, body: bytes, who: str) -> Response | None:
    """A vendor's retry of a request the meter already holds, answered as duplicates.

    Intercom retries a notification with the same body, hence the same signature, and its
    signature carries no time of its own: a retry that comes back later than the window, or
    within it (a replay of the signature), would otherwise be refused for ever, and the
    vendor's queue would keep it. Such a request was authentic (both refusals come after the
    signature check), so when *every* event it carries is already in the log it is answered
    ``200`` with all of them as duplicates: nothing is stored, and nothing new can enter the
    log this way, since an event the meter does not hold still needs a fresh signature.
    """
    try:
        events = await _events(intake, route, body, who)
    except sig.Refusal:
        return None
    if not events or any(intake.meter.index_of(e["event_id"]) is None for e in events):
        return None
    ids = [str(e["event_id"]) for e in events]
    with intake._count_lock:
        intake.duplicates += len(ids)
        intake.known_retries += 1
    return JSONResponse(
        {"accepted": [], "duplicates": ids, "tree_size": intake.meter.acked, "retry": True}
    )


async def _events(intake: Intake, route: str, body: bytes, source: str) -> list[Event]:
    try:
        if route == "events":
            if len(body) <= INLINE_PARSE:  # a typical batch: under a millisecond
                return canonical_events(body, source)
            return await run_in_threadpool(canonical_events, body, source)
        found = vendors.zendesk_file(body) if route == "zendesk" else vendors.intercom_file(body)
        if found is None:
            return []
        name, data = found
        tickets = vendors.zendesk_ticket_ids(data) if route == "zendesk" else []
        try:
            known = (
                await run_in_threadpool(intake.meter.stored_events, tickets) if tickets else None
            )
        except (RuntimeError, TimeoutError) as exc:
            raise sig.Refusal(503, "unavailable", str(exc)) from None
        return await run_in_threadpool(vendors.adapter_events, route, name, data, source, known)
    except (EventError, vendors.PayloadError) as exc:
        raise sig.Refusal(400, "bad_payload", str(exc)) from None


# ---------------------------------------------------------------------------------- reads
def _reader(intake: Intake, request: Request) -> str | None:
    auth = request.headers.get("authorization", "")
    if not auth.lower().startswith("bearer "):
        return None
    given = auth[7:].strip().encode("utf-8")
    party = None
    for name, token in intake.secrets.readers.items():
        if hmac.compare_digest(given, token.encode("utf-8")):
            party = name
    return party


def _quantiles(seconds: list[float]) -> dict[str, float | int]:
    """p50 / p99 / max in milliseconds of recent write requests, as the meter measured them."""
    if not seconds:
        return {"requests": 0}
    ms = np.asarray(seconds) * 1000.0
    p50, p99 = np.percentile(ms, [50, 99])
    return {
        "requests": len(seconds),
        "p50": round(float(p50), 2),
        "p99": round(float(p99), 2),
        "max": round(float(ms.max()), 2),
    }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _int(request: Request, name: str, default: int | None = None) -> int:
    text = request.query_params.get(name)
    if text is None:
        if default is None:
            raise sig.Refusal(400, "bad_query", f"'{name}' is required")
        return default
    if not text.isdigit():
        raise sig.Refusal(400, "bad_query", f"'{name}' must be a non-negative integer")
    return int(text)


def _read(intake: Intake, answer: Callable[[Request], dict[str, Any]]) -> Callable[[Request], Any]:
    async def handle(request: Request) -> Response:
        party = _reader(intake, request)
        if party is None:
            return intake.refuse(
                sig.Refusal(401, "no_token", "a reader's token is required (Bearer)"),
                "reader",
            )
        try:
            return JSONResponse(await run_in_threadpool(answer, request))
        except sig.Refusal as refusal:
            return intake.refuse(refusal, party)
        except (RuntimeError, TimeoutError) as exc:
            return intake.refuse(sig.Refusal(503, "unavailable", str(exc)), party)

    return handle


def create_app(intake: Intake) -> ASGIApp:
    """The ASGI application; the lifespan starts the meter and signs heads on a schedule."""
    meter = intake.meter

    def head(_request: Request) -> dict[str, Any]:
        return meter.sign_head().to_json()

    def proof(request: Request) -> dict[str, Any]:
        event_id = request.query_params.get("event_id")
        meter.settle()
        if event_id:
            index = meter.index_of(event_id)
            if index is None:
                raise sig.Refusal(404, "unknown_event", "no event with this id is in the log")
        elif "index" in request.query_params:
            index = _int(request, "index")
            if index >= meter.log.size:
                raise sig.Refusal(404, "unknown_event", f"the log has {meter.log.size} leaves")
        else:
            raise sig.Refusal(400, "bad_query", "give 'event_id' or 'index'")
        signed = meter.sign_head()
        size = _int(request, "size", signed.size)
        if not index < size <= meter.log.size:
            raise sig.Refusal(
                400, "bad_query", f"'size' must be above {index} and at most {meter.log.size}"
            )
        return {
            "event_id": event_id,
            "index": index,
            "tree_size": size,
            "leaf_hash": _b64(meter.log.leaf(index)),
            "proof": [_b64(p) for p in meter.log.inclusion_proof(index, size)],
            "head": signed.to_json() if size == signed.size else None,
        }

    def consistency(request: Request) -> dict[str, Any]:
        meter.settle()
        first = _int(request, "first")
        second = _int(request, "second", meter.log.size)
        if not first <= second <= meter.log.size:
            raise sig.Refusal(
                400, "bad_query", f"need first <= second <= {meter.log.size} (the log's size)"
            )
        return {
            "first": first,
            "second": second,
            "proof": [_b64(p) for p in meter.log.consistency_proof(first, second)],
        }

    def stats(_request: Request) -> dict[str, Any]:
        meter.settle()
        return {
            "tree_size": meter.log.size,
            "accepted": intake.accepted,
            "duplicates": intake.duplicates,
            "known_retries": intake.known_retries,
            "refused": dict(intake.refusals),
            "latency_ms": _quantiles(list(intake.latencies)),
        }

    async def journal(request: Request) -> Response:
        """The journal as written (JSON lines, leaf order) up to the answered events: what
        ``log compare`` reads, and checks against a signed head."""
        party = _reader(intake, request)
        if party is None:
            return intake.refuse(
                sig.Refusal(401, "no_token", "a reader's token is required (Bearer)"), "reader"
            )
        path, events, size = meter.journal_prefix()

        def chunks() -> Iterator[bytes]:
            with path.open("rb") as fh:
                left = size
                while left > 0:
                    block = fh.read(min(left, 1 << 20))
                    if not block:
                        return
                    left -= len(block)
                    yield block

        return StreamingResponse(
            chunks(),
            media_type="application/x-ndjson",
            headers={"content-length": str(size), "x-truecount-tree-size": str(events)},
        )

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"ok": True, "tree_size": meter.log.size})

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await run_in_threadpool(meter.start)
        # Everything alive now (modules, the web stack, DuckDB's and Arrow's bindings) lives
        # as long as the server: set it aside from the garbage collector, whose full passes
        # otherwise walk all of it with the GIL held, stalling every request for 100 ms and
        # more (the largest tail latency measured). Objects made while serving are still
        # collected as usual.
        gc.collect()
        gc.freeze()

        async def schedule() -> None:
            while True:
                await asyncio.sleep(intake.head_every)
                await run_in_threadpool(meter.sign_head)

        task = asyncio.create_task(schedule())
        try:
            yield
        finally:
            task.cancel()
            await run_in_threadpool(meter.stop)
            gc.unfreeze()

    routes = [
        Route("/hooks/zendesk", _writer(intake, "zendesk"), methods=["POST"]),
        Route("/hooks/intercom", _writer(intake, "intercom"), methods=["POST"]),
        Route("/events", _writer(intake, "events"), methods=["POST"]),
        Route("/log/head", _read(intake, head), methods=["GET"]),
        Route("/log/proof", _read(intake, proof), methods=["GET"]),
        Route("/log/consistency", _read(intake, consistency), methods=["GET"]),
        Route("/log/journal", journal, methods=["GET"]),
        Route("/stats", _read(intake, stats), methods=["GET"]),
        Route("/healthz", healthz, methods=["GET"]),
    ]
    return Guard(Starlette(routes=routes, lifespan=lifespan), None)
