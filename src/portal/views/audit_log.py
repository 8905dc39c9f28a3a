"""The auditor's workspace: the filtered log, its CSV export, and the chain's integrity."""
from __future__ import annotations

from urllib.parse import urlencode

from litestar import Request, Response, get, post
from litestar.response import Redirect

from .. import i18n
from ..access.reasons import shortest_full
from ..audit import alerts, browse, incremental, wording
from ..audit import service as audit
from ..audit.checkpoints import public_keys_of, recent_checkpoints, verify_checkpoints
from ..audit.deferred import read_then_audit
from ..policy import Action
from .rendering import render
from .security import current_actor, visitor

FILTER_KEYS = ("actor", "file", "action", "outcome", "since", "until")


def _params(request: Request) -> dict[str, str]:
    return {k: request.query_params.get(k, "") for k in FILTER_KEYS}


def _said(events) -> dict[int, dict[str, str]]:
    """Each entry in the reader's language: sentence, reason, fields (labels built once per page)."""
    sep = "、" if i18n.current_locale.get() == "zh_CN" else ", "
    out = {}
    for e in events:
        words = wording.describe(e)
        reason = words.reason.render(i18n.gettext) if words.reason else e.reason
        out[e.seq] = {
            "what": words.what.render(i18n.gettext),
            "reason": reason,
            "detail": "" if words.detail_said else e.detail,
            "fields": sep.join(p.render(i18n.gettext) for p in wording.fields_words(e.fields)),
            "file": e.object_id if wording.names_a_file(e) else "",
        }
    return out


@get("/audit", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def list_audit(request: Request, before: int | None = None, after: int | None = None) -> Response:
    actor = current_actor(request)
    params = _params(request)
    f, errors = audit.parse_filter(params, visitor(request).timezone)
    st = request.app.state
    with read_then_audit(st.db) as s:
        f = browse.with_seq_window(s, f)
        page = browse.page_of(s, f, before=before, after=after, limit=st.settings.page_size)
        total, more = browse.count_events(s, f)
        actions = browse.known_actions(s)
        audit.record(s, actor, "audit.view", object_type="audit",
                     detail=urlencode({k: v for k, v in params.items() if v})[:900])
    query = urlencode({k: v for k, v in params.items() if v})
    lines = browse.fold(page.events)
    action_words = {a: wording.describe(_Code(a)).what.render(i18n.gettext) for a in actions}
    return render(request, "audit/list.html", fragment="audit/_rows.html", lines=lines,
                  said=_said(page.events), total=total, more=more, page=page, action_words=action_words,
                  params=params, errors={k: i18n.gettext(v) for k, v in errors.items()},
                  actions=actions, query=query, status=400 if errors else 200)


class _Code:
    """An action code alone, to name it in the filter's menu."""

    def __init__(self, action: str):
        self.action, self.object_type, self.object_id, self.fields = action, "", "…", ""
        self.outcome, self.reason, self.detail, self.grant_id = "allowed", "", "", None


@get("/audit/history", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def file_history(request: Request, file: str = "") -> Response:
    """Who reached one file, when, in which role or under which grant, and which fields they saw."""
    actor = current_actor(request)
    f, _errors = audit.parse_filter({"file": file})
    if not f.object_id:
        return Redirect(path="/audit", status_code=303)
    with read_then_audit(request.app.state.db) as s:
        events, total = browse.file_history(s, f.object_id)
        audit.record(s, actor, "audit.history", object_type="audit", object_id=f.object_id)
    return render(request, "audit/history.html", file_no=f.object_id, events=events, total=total,
                  said=_said(events), limit=browse.HISTORY_LIMIT)


@get("/audit/export.csv", opt={"action": Action.AUDIT_EXPORT}, sync_to_thread=True)
def export_audit(request: Request) -> Response:
    actor = current_actor(request)
    f, _errors = audit.parse_filter(_params(request), visitor(request).timezone)
    with request.app.state.db.write() as s:
        content, _n = audit.export_events(s, actor, f)
    return Response(content=content, media_type="text/csv; charset=utf-8",
                    headers={"Content-Disposition": 'attachment; filename="audit-log.csv"'})


@get("/audit/integrity", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def audit_integrity(request: Request, full: bool = False) -> Response:
    """The chain's integrity: every entry recomputed on a log of up to FULL_CHECK_ON_PAGE entries
    (or with ?full=1); on a longer log, the newest checkpoint and the entries after it, with the
    full check one click away."""
    actor = current_actor(request)
    st = request.app.state
    keys = public_keys_of(st.vault.ring)
    report = cps = quick = None
    with st.db.read() as s:
        head_seq = incremental.head_seq(s)
        if full or head_seq <= incremental.FULL_CHECK_ON_PAGE:
            report = audit.verify_chain(s)
            cps = verify_checkpoints(s, keys, report.count)
        else:
            quick = incremental.verify_since_checkpoint(s, keys)
        latest = recent_checkpoints(s, 5)
    if quick is None:
        detail = f"ok={report.ok and cps.ok} count={report.count} checkpoints={cps.checked}"
    else:
        detail = f"ok={quick.ok} count={quick.checked} since={quick.since} head={quick.head} full=no"
    with read_then_audit(st.db) as s:
        audit.record(s, actor, "audit.verify", object_type="audit", outcome=audit.ALLOWED, detail=detail)
    return render(request, "audit/integrity.html", report=report, cps=cps, quick=quick,
                  head_seq=head_seq, latest=latest)


@post("/audit/checkpoint", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def sign_checkpoint(request: Request) -> Response:
    """Sign the head on demand (also done every N entries), once the entries since the newest
    checkpoint check; a broken stretch is not signed (the refusal is audited and the integrity
    page shows where it breaks)."""
    actor = current_actor(request)
    db = request.app.state.db
    try:
        trusted = incremental.precheck(db, db.audit_signer)  # the long part without the head's lock
        with db.write() as s:
            cp = incremental.sign_checked(s, db.audit_signer, trusted=trusted)
            audit.record(s, actor, "audit.checkpoint", object_type="audit", detail=f"seq={cp.seq}")
    except incremental.ChainBroken as exc:
        with db.write() as s:
            audit.record(s, actor, "audit.checkpoint", audit.DENIED, object_type="audit",
                         detail=f"seq={exc.check.head} {exc}"[:1000])
    return Redirect(path="/audit/integrity", status_code=303)


@get("/audit/alerts", opt={"action": Action.AUDIT_VIEW}, sync_to_thread=True)
def audit_alerts(request: Request, days: int = 7) -> Response:
    actor = current_actor(request)
    st = request.app.state
    t = alerts.Thresholds.from_settings(st.settings, visitor(request).timezone)
    days = max(1, min(days, 90))
    with read_then_audit(st.db) as s:
        found = alerts.compute(s, t, days=days)
        audit.record(s, actor, "audit.alerts", object_type="audit", detail=f"days={days} alerts={len(found)}")
    words = [i18n.gettext(alerts.ALERT_WORDS[a.kind], **{**alerts.alert_params(a), "status": i18n.gettext(a.status)})
             for a in found]
    return render(request, "audit/alerts.html", alerts=list(zip(found, words)), t=t, days=days,
                  reason_hint=shortest_full(t.grant_reason_min))


ROUTES = [list_audit, file_history, export_audit, audit_integrity, sign_checkpoint, audit_alerts]
