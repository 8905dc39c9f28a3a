"""Alerts worth an auditor's look, computed from the log (thresholds are settings)."""
from __future__ import annotations

from collections import defaultdict
from urllib.parse import quote
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..access.models import AccessRequest
from ..access.reasons import is_full_reason
from ..accounts.models import User
from ..exports.models import ExportRecord
from .models import AuditEvent
from .wording import _

VIEW_ACTIONS = ("customer.view", "customer.edit")
# Reach over customer files asked for, granted by a second approver, or given by the operator
# (names as accounts/approvals.py records them).
PRIVILEGE_ACTIONS = ("user.reach_request", "user.reach_approve", "user.reach_direct")


@dataclass
class Thresholds:
    views_per_hour: int = 50
    export_rows: int = 100
    denied_burst: int = 5
    work_start_hour: int = 8
    work_end_hour: int = 20
    grant_reason_min: int = 20
    timezone: str = "Asia/Shanghai"

    @classmethod
    def from_settings(cls, st, timezone: str | None = None) -> "Thresholds":
        """From the portal's Settings (PORTAL_ALERT_*, PORTAL_GRANT_REASON_MIN)."""
        return cls(views_per_hour=st.alert_views_per_hour, export_rows=st.alert_export_rows,
                   denied_burst=st.alert_denied_burst, work_start_hour=st.alert_work_start_hour,
                   work_end_hour=st.alert_work_end_hour, grant_reason_min=st.grant_reason_min,
                   timezone=timezone or st.timezone)


@dataclass
class Alert:
    kind: str          # views_per_hour | large_export | denied_burst | off_hours | short_grant_reason
    #                    | privileged_account
    actor: str
    at: datetime
    count: int
    detail: str = ""
    link: str = ""
    grant: AccessRequest | None = None
    export_id: int | None = None
    status: str = ""                   # an export's status (a code, translated when shown)


def compute(s: Session, t: Thresholds, *, days: int = 7) -> list[Alert]:
    since = clock.now() - timedelta(days=days)
    tz = ZoneInfo(t.timezone)
    alerts: list[Alert] = []
    views = s.execute(select(AuditEvent.actor_username, AuditEvent.at, AuditEvent.object_id, AuditEvent.grant_id)
                      .where(AuditEvent.at >= since, AuditEvent.action.in_(VIEW_ACTIONS),
                             AuditEvent.outcome == "allowed")).all()
    # Many distinct files in one clock hour.
    per_hour: dict[tuple[str, datetime], set[str]] = defaultdict(set)
    for actor, at, obj, _g in views:
        per_hour[(actor, at.replace(minute=0, second=0, microsecond=0))].add(obj)
    for (actor, hour), files in per_hour.items():
        if len(files) > t.views_per_hour:
            alerts.append(Alert("views_per_hour", actor, hour, len(files),
                                link=f"/audit?actor={actor}&action=customer.view"))
    # Views outside working hours (local time), one alert per user and day.
    off: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for actor, at, _obj, _g in views:
        local = at.astimezone(tz)
        if not (t.work_start_hour <= local.hour < t.work_end_hour) or local.weekday() >= 5:
            off[(actor, local.date().isoformat())].append(at)
    for (actor, day), ats in off.items():
        alerts.append(Alert("off_hours", actor, min(ats), len(ats), detail=day,
                            link=f"/audit?actor={actor}&since={day}&until={day}"))
    # Large exports.
    for rec in s.scalars(select(ExportRecord).where(ExportRecord.created_at >= since,
                                                    ExportRecord.rows > t.export_rows)):
        alerts.append(Alert("large_export", rec.actor_username, rec.created_at, rec.rows,
                            detail=f"#{rec.id} {rec.status}", link=f"/audit?actor={rec.actor_username}&action=customer.export",
                            export_id=rec.id, status=rec.status))
    # Bursts of refusals: K denied attempts within 10 minutes.
    denied = s.execute(select(AuditEvent.actor_username, AuditEvent.at)
                       .where(AuditEvent.at >= since, AuditEvent.outcome == "denied")
                       .order_by(AuditEvent.actor_username, AuditEvent.at)).all()
    by_actor: dict[str, list[datetime]] = defaultdict(list)
    for actor, at in denied:
        by_actor[actor].append(at)
    for actor, ats in by_actor.items():
        start = 0
        for end in range(len(ats)):
            while ats[end] - ats[start] > timedelta(minutes=10):
                start += 1
            if end - start + 1 >= t.denied_burst:
                alerts.append(Alert("denied_burst", actor, ats[start], end - start + 1,
                                    link=f"/audit?actor={actor}&outcome=denied"))
                break
    # Views under grants whose reason is thinner than the rule.
    granted = {g for _a, _at, _o, g in views if g}
    if granted:
        for r, who in s.execute(select(AccessRequest, User.username)
                                .join(User, User.id == AccessRequest.requester_id)
                                .where(AccessRequest.id.in_(granted))):
            if not is_full_reason(r.reason, t.grant_reason_min):
                n = sum(1 for _a, _at, _o, g in views if g == r.id)
                alerts.append(Alert("short_grant_reason", who, r.decided_at or r.created_at, n,
                                    detail=f"grant #{r.id} {r.file_no}: {r.reason}",
                                    link=f"/audit/history?file={quote(r.file_no)}", grant=r))
    # Every privileged creation and elevation, one alert each.
    for e in s.scalars(select(AuditEvent).where(AuditEvent.at >= since, AuditEvent.outcome == "allowed",
                                                AuditEvent.action.in_(PRIVILEGE_ACTIONS))):
        alerts.append(Alert("privileged_account", e.actor_username, e.at, 1,
                            detail=f"{e.action} {e.object_id} {e.detail}",
                            link=f"/audit?action={e.action}"))
    alerts.sort(key=lambda a: a.at, reverse=True)
    return alerts


# ---------------------------------------------------------------- to the auditors' inbox

ALERT_WORDS = {
    "views_per_hour": _("%(user)s viewed %(count)s files within one hour."),
    "large_export": _("%(user)s exported %(count)s files at once (export #%(export)s, %(status)s)."),
    "denied_burst": _("%(user)s was refused %(count)s times within 10 minutes."),
    "off_hours": _("%(user)s viewed files %(count)s times outside working hours (%(day)s)."),
    "short_grant_reason": _("%(user)s viewed file %(file)s %(count)s times under grant #%(grant)s, "
                            "given for a thin reason: %(reason)s"),
    "privileged_account": _("%(user)s gave or asked for reach over customer files: %(detail)s"),
}


def alert_params(a: Alert) -> dict:
    """The values ALERT_WORDS[a.kind] names."""
    params = {"user": a.actor or "?", "count": a.count, "day": a.detail, "file": "", "grant": "", "reason": "",
              "export": a.export_id or "", "status": a.status, "detail": a.detail}
    if a.grant is not None:
        params.update(file=a.grant.file_no, grant=a.grant.id, reason=a.grant.reason)
    return params


def _key(a: Alert) -> str:
    """What makes an alert the same alert on a later run (its count may have grown since)."""
    return f"{a.kind}|{a.actor}|{a.at.isoformat(timespec='seconds') if a.kind != 'short_grant_reason' else ''}|{a.detail.split(':')[0]}"


def post_to_auditors(s: Session, found: list[Alert]) -> int:
    """Put each alert not yet posted into every active auditor's inbox, in words, with its
    evidence linked; returns how many new alerts were posted. Safe to run again and again (a
    cron job): an alert already posted is recognised by its key."""
    import json

    from ..inbox.models import Notice
    from ..inbox.service import notify

    auditors = list(s.scalars(select(User.id).where(User.role == "auditor", User.is_active)))
    if not found or not auditors:
        return 0
    posted = {json.loads(p).get("key") for p in s.scalars(
        select(Notice.params).where(Notice.kind == "audit.alert", Notice.user_id == auditors[0]))}
    new = 0
    for a in found:
        if a.kind == "privileged_account":  # accounts.approvals tells the auditors at once
            continue
        key = _key(a)
        if key in posted:
            continue
        posted.add(key)
        new += 1
        params = {**alert_params(a), "key": key}
        for uid in auditors:
            notify(s, uid, "audit.alert", ALERT_WORDS[a.kind], link=a.link, **params)
    return new
