"""The dashboard's web application: Starlette routes over :class:`~truecount.web.meters.Dashboard`.

Views only look results up and hand them to Jinja2 templates (autoescaped: every id, name and
vendor string is data); none computes a figure. Figures carry ``data-figure`` attributes naming
the JSON field they show (``totals.vendor_billed``, ``periods.2026-01.agreed``) and
``data-value`` with the value as the JSON has it, so tests and scripts can check a page
against ``reconcile --format json`` without scraping formatted text.

Unknown definitions, invoices, periods, cells and entities answer 404; a problem in the inputs
(a terms file that does not parse, say) answers a page with the one-line cause, never a
traceback.
"""

from __future__ import annotations

import datetime as dt
import math
from decimal import Decimal
from importlib import resources
from typing import Any, Final
from urllib.parse import quote

import pyarrow as pa
import pyarrow.compute as pc
from jinja2 import Environment, PackageLoader, select_autoescape
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from truecount.billing.reconcile import CELLS
from truecount.errors import InputError, TruecountError
from truecount.report import words
from truecount.web.meters import Dashboard, MeterKey, MeterResult
from truecount.web.security import Guard
from truecount.web.sources import NAME_RE

#: Entities listed on a cell page at most; search narrows the rest down.
MAX_ROWS: Final[int] = 500
#: What a missing figure shows (an en dash).
NONE: Final[str] = "\u2013"
DOWNLOADS: Final[dict[str, str]] = {
    "verdicts.csv": "text/csv; charset=utf-8",
    "verdicts.parquet": "application/vnd.apache.parquet",
    "dispute.zip": "application/zip",
    "report.html": "text/html; charset=utf-8",
}


# ------------------------------------------------------------------------------ formatting
def fmt_int(value: Any) -> str:
    return NONE if value is None else f"{int(value):,}"


def fmt_money(value: Decimal | None, currency: str | None = None) -> str:
    if value is None:
        return NONE
    text = f"{value:,}"
    return f"{text} {currency}" if currency else text


def fmt_amount(value: Decimal | None, result: MeterResult) -> str:
    """An invoice line's amount as every other page shows money: the currency's minor units
    (more only when the line has more digits: 0.995 stays 0.995) and its code when the terms
    give one (0.990000 -> 0.99 USD; 150.000000 -> 150 JPY)."""
    if value is None:
        return NONE
    digits = result.terms.digits if result.terms is not None else 2
    exponent = value.normalize().as_tuple().exponent
    places = max(digits, -exponent) if isinstance(exponent, int) else digits
    currency = result.recon.currency if result.recon is not None else None
    return fmt_money(value.quantize(Decimal(1).scaleb(-places)), currency)


def fmt_pct(value: float | None, places: int = 1) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return NONE
    return f"{value:.{places}f}%"


def fmt_rate(value: float | None, places: int = 2) -> str:
    if value is None or (isinstance(value, float) and (math.isnan(value) or math.isinf(value))):
        return NONE
    return f"{100 * value:.{places}f}%"


def fmt_time(value: dt.datetime | None) -> str:
    return NONE if value is None else value.replace(microsecond=0).isoformat(sep=" ")


def url_part(value: Any) -> str:
    """One path segment: every character but letters, digits and ``-._~`` percent-encoded,
    so an id with ``/``, ``..``, ``?`` or ``#`` stays one segment of the link."""
    return quote(str(value), safe="")


def raw(value: Any) -> str:
    """The value as ``--format json`` writes it (``data-value``)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _environment() -> Environment:
    env = Environment(
        loader=PackageLoader("truecount.web", "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(
        n=fmt_int,
        money=fmt_money,
        amount=fmt_amount,
        pct=fmt_pct,
        rate=fmt_rate,
        time=fmt_time,
        raw=raw,
        urlpart=url_part,
    )
    env.globals.update(
        cell_label=words.cell_label,
        cell_sentence=words.cell_sentence,
        reason_words=words.reason_words,
        billing_source_words=words.billing_source_words,
        credit_words=words.credit_words,
        applied_source=lambda s: words.APPLIED_SOURCES.get(s or "", s or NONE),
        CELLS=CELLS,
    )
    return env


# ------------------------------------------------------------------------------ lookups
def _key(request: Request) -> MeterKey:
    p = request.path_params
    name, invoice = str(p["name"]), str(p["invoice"])
    if not NAME_RE.match(name) or not NAME_RE.match(invoice):
        raise HTTPException(404)
    return MeterKey(name, int(p["version"]), None if invoice == "-" else invoice)


def _meter(request: Request) -> MeterResult:
    board: Dashboard = request.app.state.board
    result = board.meter(_key(request))
    if result is None:
        raise HTTPException(404)
    return result


def _descriptions(result: MeterResult) -> dict[str, str]:
    return {
        name: str(getattr(cond, "description", "") or "")
        for name, cond in result.definition.conditions.items()
    }


def _filter(table: pa.Table, column: str, value: str) -> pa.Table:
    return table.filter(pc.equal(table[column], pa.scalar(value, pa.string())))


# ------------------------------------------------------------------------------ views
class Views:
    """The route handlers; one instance per application."""

    def __init__(self, templates: Jinja2Templates) -> None:
        self.templates = templates

    def page(self, request: Request, name: str, status: int = 200, **context: Any) -> Response:
        board: Dashboard = request.app.state.board
        context.setdefault("workspace", str(board.workspace.root))
        context.setdefault("workspace_name", "/".join(board.workspace.root.resolve().parts[-2:]))
        return self.templates.TemplateResponse(request, name, context, status_code=status)

    async def index(self, request: Request) -> Response:
        board: Dashboard = request.app.state.board
        meters = [(k, board.meter(k)) for k in board.meters()]
        return self.page(
            request,
            "index.html",
            meters=meters,
            invoices=board.invoices(),
            versions=board.versions(),
            watch=board.watch(),
        )

    async def meter(self, request: Request) -> Response:
        result = _meter(request)
        board: Dashboard = request.app.state.board
        return self.page(
            request,
            "meter.html",
            m=result,
            desc=_descriptions(result),
            report_available=board.report_available(),
        )

    async def period(self, request: Request) -> Response:
        result = _meter(request)
        period = str(request.path_params["period"])
        count_row = next((p for p in result.periods if p.period == period), None)
        recon_row = None
        if result.recon is not None:
            recon_row = next((p for p in result.recon.periods if p.period == period), None)
        if count_row is None and recon_row is None:
            raise HTTPException(404)
        drift_row = None
        if result.drift is not None:
            rows = result.drift.periods.rows("period")
            drift_row = next((r for r in rows if r["period"] == period), None)
        return self.page(
            request,
            "period.html",
            m=result,
            period=period,
            count_row=count_row,
            row=recon_row,
            drift_row=drift_row,
        )

    async def cell(self, request: Request) -> Response:
        result = _meter(request)
        cell = str(request.path_params["cell"])
        if cell not in CELLS or result.entities is None:
            raise HTTPException(404)
        rows = result.cells.get(cell, result.entities.slice(0, 0))
        # the search first, on the cell's ids kept in lower case (row for row with the cell),
        # then the period and the reason on what is left
        query = (request.query_params.get("q") or "").strip()
        if query:
            lowered = result.cell_search.get(cell)
            if lowered is None:
                lowered = pc.utf8_lower(rows["entity_id"])
            hit = pc.match_substring(lowered, query.lower())
            rows = rows.filter(pc.fill_null(hit, False))
        period = request.query_params.get("period") or ""
        if period:
            in_period = pc.or_kleene(
                pc.equal(rows["billed_period"], pa.scalar(period, pa.string())),
                pc.equal(rows["buyer_period"], pa.scalar(period, pa.string())),
            )
            rows = rows.filter(pc.fill_null(in_period, False))
        reason = request.query_params.get("reason") or ""
        if reason:
            rows = _filter(rows, "reason", reason)
        total = rows.num_rows
        reasons = list(result.cell_reasons.get(cell, ())) if cell == "vendor_only" else []
        return self.page(
            request,
            "cell.html",
            m=result,
            cell=cell,
            rows=rows.slice(0, MAX_ROWS).to_pylist(),
            total=total,
            shown=min(total, MAX_ROWS),
            period=period,
            reason=reason,
            reasons=reasons,
            q=query,
            desc=_descriptions(result),
        )

    async def entity(self, request: Request) -> Response:
        result = _meter(request)
        entity_id = str(request.path_params["entity_id"])
        board: Dashboard = request.app.state.board
        cell_row = None
        if result.entities is not None:
            found = _filter(result.entities, "entity_id", entity_id).slice(0, 1).to_pylist()
            cell_row = found[0] if found else None
        try:
            explanation = board.explain(result, entity_id)
        except InputError:
            if cell_row is None:
                raise HTTPException(404) from None
            # billed, but the export has no event of it (the "not in the export" cell): the
            # page says what the invoice bills and that nothing in the export explains it
            return self.page(
                request,
                "entity.html",
                m=result,
                entity_id=entity_id,
                x=None,
                cell_row=cell_row,
                desc=_descriptions(result),
            )
        events = explanation.events
        index = {str(e["event_id"]): i for i, e in enumerate(events)}
        times = [e["ts"] for e in events]
        first, last = min(times), max(times)
        span = (last - first).total_seconds() or 1.0
        marks = [round(100 * (e["ts"] - first).total_seconds() / span, 2) for e in events]
        return self.page(
            request,
            "entity.html",
            m=result,
            entity_id=entity_id,
            x=explanation,
            cell_row=cell_row,
            index=index,
            marks=marks,
            desc=_descriptions(result),
        )

    async def drift(self, request: Request) -> Response:
        result = _meter(request)
        if result.invoice is None:
            raise HTTPException(404)
        rows = result.drift.periods.rows("period") if result.drift is not None else []
        return self.page(request, "drift.html", m=result, rows=rows)

    async def download(self, request: Request) -> Response:
        result = _meter(request)
        board: Dashboard = request.app.state.board
        name = str(request.path_params["file"])
        if name not in DOWNLOADS:
            raise HTTPException(404)
        stem = f"{result.key.name}-v{result.key.version}"
        if name.startswith("verdicts."):
            body = board.verdicts_file(result, "." + name.split(".", 1)[1])
        elif result.invoice is None or result.recon is None:
            raise HTTPException(404)
        elif name == "dispute.zip":
            body = board.dispute_zip(result)
            stem += f"-{result.invoice.name}"
        else:
            report = board.report_html(result)
            if report is None:
                raise HTTPException(404)
            body = report.encode("utf-8")
            stem += f"-{result.invoice.name}"
        filename = f"{stem}-{name}"
        return Response(
            body,
            media_type=DOWNLOADS[name],
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    async def versions(self, request: Request) -> Response:
        board: Dashboard = request.app.state.board
        return self.page(
            request,
            "versions.html",
            versions=board.versions(),
            rp=board.replay(),
            priced=board.replay_terms(),
        )

    async def watch(self, request: Request) -> Response:
        board: Dashboard = request.app.state.board
        return self.page(request, "watch.html", report=board.watch())


def create_app(board: Dashboard, token: str | None = None) -> Guard:
    """The ASGI application for one workspace; ``token`` set means every request needs it."""
    templates = Jinja2Templates(env=_environment())
    views = Views(templates)
    meter = "/d/{name}/{version:int}/{invoice}"
    static = resources.files("truecount.web").joinpath("static")
    routes = [
        Route("/", views.index),
        Route(meter, views.meter),
        Route(meter + "/period/{period}", views.period),
        Route(meter + "/cell/{cell}", views.cell),
        Route(meter + "/entity/{entity_id:path}", views.entity),
        Route(meter + "/drift", views.drift),
        Route(meter + "/download/{file}", views.download),
        Route("/versions", views.versions),
        Route("/watch", views.watch),
        Mount("/static", app=StaticFiles(directory=str(static)), name="static"),
    ]

    async def not_found(request: Request, exc: Exception) -> Response:
        status = exc.status_code if isinstance(exc, HTTPException) else 404
        if status != 404:
            return HTMLResponse(f"{status}", status_code=status)
        return views.page(request, "error.html", status=404, title="Not found", message=None)

    async def bad_input(request: Request, exc: Exception) -> Response:
        message = exc.first_line if isinstance(exc, TruecountError) else "bad input"
        return views.page(
            request, "error.html", status=422, title="Cannot read the inputs", message=message
        )

    async def server_error(request: Request, exc: Exception) -> Response:
        return HTMLResponse("<h1>Internal error</h1><p>See the server's log.</p>", status_code=500)

    app = Starlette(
        routes=routes,
        exception_handlers={
            HTTPException: not_found,
            TruecountError: bad_input,
            500: server_error,
        },
    )
    app.state.board = board
    return Guard(app, token)
