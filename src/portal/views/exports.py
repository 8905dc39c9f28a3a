"""Exports: a stated purpose, leader approval above a size, one download, and the auditor's leak trace."""
from __future__ import annotations

from typing import Annotated

from litestar import Request, Response, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.params import Body
from litestar.response import Redirect

from .. import i18n
from ..exports import service as exports
from ..policy import Action
from .rendering import render
from .security import current_actor

Form = Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]


def _csv(out, name: str = "customers.csv", left_out: int = 0) -> Response:
    return Response(content=out.content, media_type="text/csv; charset=utf-8", status_code=200, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "X-Export-SHA256": out.sha256,
        "X-Export-Left-Out": str(left_out)})


def _page(request: Request, *, status: int = 200, errors: dict | None = None, notice: str = "") -> Response:
    actor = current_actor(request)
    with request.app.state.db.read() as s:
        mine = exports.my_exports(s, actor)
        to_decide = exports.exports_to_decide(s, actor)
        available = exports.still_exportable(s, actor, mine)
    return render(request, "exports/list.html", fragment="exports/_decide.html", mine=mine,
                  to_decide=to_decide, available=available, errors=errors or {}, notice=notice,
                  status=status, threshold=request.app.state.settings.export_approval_threshold)


def _errors(exc: exports.InvalidExport) -> dict[str, str]:
    return {k: i18n.gettext(v) for k, v in exc.errors.items()}


@post("/customers/export.csv", opt={"action": Action.CUSTOMER_EXPORT}, sync_to_thread=True)
def export_customers(request: Request, data: Form) -> Response:
    """Start an export (a POST with the CSRF token: a link from elsewhere cannot start one).
    Small exports download at once; above the threshold the export waits for a leader."""
    actor = current_actor(request)
    st = request.app.state
    try:
        with st.db.write() as s:
            outcome = exports.start_export(s, st.vault, actor, data.get("purpose", ""),
                                           threshold=st.settings.export_approval_threshold)
    except exports.InvalidExport as exc:
        return _page(request, status=400, errors=_errors(exc))
    if outcome.export is None:
        return Redirect(path=f"/exports?requested={outcome.record.id}", status_code=303)
    return _csv(outcome.export)


@get("/exports", opt={"action": Action.CUSTOMER_EXPORT}, sync_to_thread=True)
def list_exports(request: Request, requested: int | None = None) -> Response:
    notice = ""
    if requested is not None:
        actor = current_actor(request)
        with request.app.state.db.read() as s:
            rec = next((r for r in exports.my_exports(s, actor) if r.id == requested), None)
        if rec is not None and rec.status == "pending":
            notice = i18n.gettext(
                "This export has %(rows)s files, more than %(limit)s: a leader must approve it first.",
                rows=rec.rows, limit=request.app.state.settings.export_approval_threshold)
    return _page(request, notice=notice)


@post("/exports/{export_id:int}/download", opt={"action": Action.CUSTOMER_EXPORT}, sync_to_thread=True)
def download_export(request: Request, export_id: int) -> Response:
    """The one download of an approved export: a POST with the CSRF token, answered with the file."""
    actor = current_actor(request)
    st = request.app.state
    try:
        with st.db.write() as s:
            outcome = exports.download(s, st.vault, actor, export_id)
    except exports.InvalidExport as exc:
        with st.db.write() as s:
            exports.record_refused_download(s, actor, export_id, "; ".join(exc.errors.values()))
        return _page(request, status=410, errors=_errors(exc))
    out = outcome.export
    return _csv(out, f"customers-export-{export_id}.csv", left_out=outcome.record.rows - out.rows)


@post("/exports/{export_id:int}/{verdict:str}", opt={"action": Action.EXPORT_DECIDE}, sync_to_thread=True)
def decide_export(request: Request, export_id: int, verdict: str, data: Form) -> Response:
    actor = current_actor(request)
    if verdict not in ("approve", "deny"):
        return _page(request, status=400, errors={"export": i18n.gettext("Unknown action.")})
    try:
        with request.app.state.db.write() as s:
            exports.decide(s, actor, export_id, verdict == "approve", data.get("note", ""))
    except exports.InvalidExport as exc:
        return _page(request, status=400, errors=_errors(exc))
    except LookupError:
        return _page(request, status=404, errors={"export": i18n.gettext("No such export.")})
    if request.headers.get("hx-request") == "true":
        return _page(request)
    return Redirect(path="/exports", status_code=303)


@get("/audit/trace", opt={"action": Action.AUDIT_VIEW})
async def trace_form(request: Request) -> Response:
    return render(request, "audit/trace.html", matches=None, error="")


@post("/audit/trace", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def trace_leak(request: Request,
               data: Annotated[dict, Body(media_type=RequestEncodingType.MULTI_PART)]) -> Response:
    """Upload a leaked CSV: which export produced it (exact hash, or the best match by rows)."""
    actor = current_actor(request)
    upload = data.get("file")
    if not isinstance(upload, UploadFile):
        return render(request, "audit/trace.html", status=400, matches=None,
                      error=i18n.gettext("Choose a CSV file to trace."))
    content = upload.file.read(50 * 1024 * 1024 + 1)
    if not content or len(content) > 50 * 1024 * 1024:
        return render(request, "audit/trace.html", status=400, matches=None,
                      error=i18n.gettext("The file is empty or larger than 50 MB."))
    with request.app.state.db.write() as s:
        matches = exports.trace(s, actor, content, upload.filename or "")
    return render(request, "audit/trace.html", matches=matches, error="")


ROUTES = [export_customers, list_exports, download_export, decide_export, trace_form, trace_leak]
