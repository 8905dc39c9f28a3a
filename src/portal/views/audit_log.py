"""The auditor's workspace: the filtered log, its CSV export, and the chain's integrity."""
from __future__ import annotations

from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.response import Redirect

from .. import i18n
from ..audit import alerts
from ..audit import service as audit
from ..audit.checkpoints import all_checkpoints, public_keys_of, verify_checkpoints, write_checkpoint
from ..policy import Action
from .rendering import render
from .security import current_actor, visitor

FILTER_KEYS = ("actor", "file", "action", "outcome", "since", "until")


def _params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTER_KEYS}


@get("/audit", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def list_audit(request: Request, before: int | None = None) -> Response:
    actor = current_actor(request)
    params = _params(request)
    f, errors = audit.parse_filter(params, visitor(request).timezone)
    st = request.app.state
    with st.db.write() as s:
        events = audit.list_events(s, f, before_seq=before, limit=st.settings.page_size)
        actions = audit.known_actions(s)
        audit.record(s, actor, "audit.view", object_type="audit",
                     detail=urlencode({k: v for k, v in params.items() if v})[:900])
    query = urlencode({k: v for k, v in params.items() if v})
    next_before = events[-1].seq if len(events) == st.settings.page_size else None
    return render(request, "audit/list.html", fragment="audit/_rows.html", events=events,
                  params=params, errors={k: i18n.gettext(v) for k, v in errors.items()},
                  actions=actions, query=query, next_before=next_before, status=400 if errors else 200)


@get("/audit/export.csv", opt={"action": Action.AUDIT_EXPORT}, sync_to_thread=True)
def export_audit(request: Request) -> Response:
    actor = current_actor(request)
    f, _errors = audit.parse_filter(_params(request), visitor(request).timezone)
    with request.app.state.db.write() as s:
        content, _n = audit.export_events(s, actor, f)
    return Response(content=content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


@get("/audit/integrity", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def audit_integrity(request: Request) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with st.db.read() as s:
        report = audit.verify_chain(s)
        cps = verify_checkpoints(s, public_keys_of(st.vault.ring), report.count)
        latest = all_checkpoints(s)[-5:]
    with st.db.write() as s:
        audit.record(s, actor, "audit.verify", object_type="audit", outcome=audit.ALLOWED,
                     detail=f"ok={report.ok and cps.ok} count={report.count} checkpoints={cps.checked}")
    return render(request, "audit/integrity.html", report=report, cps=cps, latest=reversed(latest))


@post("/audit/checkpoint", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def sign_checkpoint(request: Request) -> Response:
    """Sign the head on demand (also done every N entries)."""
    actor = current_actor(request)
    db = request.app.state.db
    with db.write() as s:
        cp = write_checkpoint(s, db.audit_signer)
        audit.record(s, actor, "audit.checkpoint", object_type="audit", detail=f"seq={cp.seq}")
    return Redirect(path="/audit/integrity", status_code=303)


@get("/audit/alerts", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def audit_alerts(request: Request, days: int = 7) -> Response:
    actor = current_actor(request)
    st = request.app.state
    cfg = st.settings
    t = alerts.Thresholds(views_per_hour=cfg.alert_views_per_hour, export_rows=cfg.alert_export_rows,
                          denied_burst=cfg.alert_denied_burst, work_start_hour=cfg.alert_work_start_hour,
                          work_end_hour=cfg.alert_work_end_hour, grant_reason_min=cfg.alert_grant_reason_min,
                          timezone=visitor(request).timezone)
    days = max(1, min(days, 90))
    with st.db.write() as s:
        found = alerts.compute(s, t, days=days)
        audit.record(s, actor, "audit.alerts", object_type="audit", detail=f"days={days} alerts={len(found)}")
    return render(request, "audit/alerts.html", alerts=found, t=t, days=days)


ROUTES = [list_audit, export_audit, audit_integrity, sign_checkpoint, audit_alerts]
