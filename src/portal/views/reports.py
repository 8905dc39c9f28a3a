"""The reports area: programme overview, classes and RFM, monthly unit report, card tracking,
sales and credit, service;
each with filters, charts (JSON for static/reports.js), the same numbers as tables, CSV/XLSX export."""
from __future__ import annotations

from typing import Annotated, Callable
from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.exceptions import HTTPException
from litestar.params import Body

from .. import i18n
from ..audit import service as audit
from ..customers.rules import CATEGORY_LABELS
from ..membership.rules import programme_today
from ..membership.settings import Tier
from ..policy import Action
from ..reports import cards, classes, monthly, overview, sales, service
from ..reports.exporting import FORMATS, export_report
from ..reports.filters import ReportFilter, parse_filter, units_in_scope
from ..reports.model import Report
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
BUILDERS: dict[str, Callable] = {"overview": overview.overview, "classes": classes.classes,
                                 "monthly": monthly.monthly, "cards": cards.cards,
                                 "sales": sales.sales, "service": service.service}
TEMPLATES = {"classes": "reports/classes.html", "monthly": "reports/monthly.html"}


def chart_data(rep: Report) -> list[dict]:
    """The charts as plain JSON for static/reports.js, labels in the reader's language."""
    tr = i18n.gettext
    return [{"id": f"chart-{c.key}", "title": tr(c.title), "kind": c.kind, "money": c.money,
             "categories": [tr(x) for x in c.categories],
             "series": [{"name": tr(name), "data": [None if v is None else (v / 100 if c.money else v) for v in data]}
                        for name, data in c.series]} for c in rep.charts]


def scope_words(f: ReportFilter) -> str:
    """The filter as the audit entry and the export record it (codes, no personal data)."""
    return urlencode({"period": f.period.label, "unit": f.unit.code if f.unit else "", "tier": f.tier,
                      "category": f.category})


def build(request: Request, key: str, params) -> tuple[Report, ReportFilter, dict, list]:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        units = units_in_scope(s, actor)
        f, errors = parse_filter(params, programme_today(), units)
        rep = BUILDERS[key](s, actor, f)
    return rep, f, errors, units


def filter_context(f: ReportFilter, errors: dict, units: list) -> dict:
    return {"f": f, "params": f.params, "errors": {k: i18n.gettext(v) for k, v in errors.items()},
            "units": units, "tiers": [t.value for t in Tier], "categories": [(c.value, labels[1] if i18n.current_locale.get() == "zh_CN" else labels[0])
                                                               for c, labels in CATEGORY_LABELS.items()],
            "query": urlencode(f.params)}


def show(request: Request, key: str, *, defaults: dict | None = None, **extra) -> Response:
    actor = current_actor(request)
    params = dict(request.query_params)
    if defaults and "period" not in params:
        params.update(defaults)
    rep, f, errors, units = build(request, key, params)
    audit.append_committed(request.app.state.db, actor, "report.view", object_type="report", object_id=key,
                           detail=scope_words(f))
    return render(request, TEMPLATES.get(key, "reports/report.html"), rep=rep, charts=chart_data(rep),
                  export_path=f"/reports/export/{key}", status=400 if errors else 200,
                  **filter_context(f, errors, units), **extra)


@get("/reports", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def reports_index(request: Request) -> Response:
    return render(request, "reports/index.html")


@get("/reports/overview", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_overview(request: Request) -> Response:
    return show(request, "overview")


@get("/reports/classes", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_classes(request: Request) -> Response:
    return show(request, "classes")


@get("/reports/cards", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_cards(request: Request) -> Response:
    return show(request, "cards")


@get("/reports/sales", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_sales(request: Request) -> Response:
    return show(request, "sales")


@get("/reports/service", opt={"action": Action.REPORT_VIEW}, sync_to_thread=True)
def report_service(request: Request) -> Response:
    return show(request, "service")


@post("/reports/export/{key:str}", opt={"action": Action.REPORT_EXPORT}, sync_to_thread=True)
def export(request: Request, key: str, data: Form) -> Response:
    """A report as CSV or XLSX: a POST (the export is recorded), audited with the bytes' SHA-256."""
    actor = current_actor(request)
    fmt = data.get("format", "csv")
    if key not in BUILDERS or fmt not in FORMATS:
        raise HTTPException(status_code=400 if key in BUILDERS else 404)
    rep, f, _errors, _units = build(request, key, data)
    with request.app.state.db.write() as s:
        out = export_report(s, actor, rep, fmt, scope=scope_words(f), tr=i18n.gettext)
    return Response(content=out.content, media_type=out.media_type, status_code=200,
                    headers={"Content-Disposition": f'attachment; filename="{out.filename}"'})


ROUTES = [reports_index, report_overview, report_classes, report_cards, report_sales, report_service, export]
