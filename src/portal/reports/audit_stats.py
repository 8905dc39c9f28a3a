"""Audit analytics for the auditor: views, exports, refusals and grants per day, per user and per
unit, and unusual activity with links into the log. Staff activity only: no customer figures and
no personal data (file numbers appear only behind the links into the log)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from urllib.parse import urlencode

from sqlalchemy import and_, case, distinct, func, literal_column, or_, select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..audit.models import AuditEvent
from ..org.models import OrgUnit
from .filters import ReportFilter
from .model import _, Chart, Col, Report, Table
from .sqlfn import SHANGHAI_HOURS, day_of, hour_of, weekday_of

VIEW = AuditEvent.action == "customer.view"
EXPORT = AuditEvent.action.in_(("customer.export", "audit.export", "report.export"))
DENIED = AuditEvent.outcome == "denied"
GRANT = and_(AuditEvent.action == "access.approve", AuditEvent.outcome == "allowed")
MEASURES = (("views", VIEW), ("exports", EXPORT), ("denials", DENIED), ("grants", GRANT))
TOP_USERS = 50


@dataclass(frozen=True)
class Unusual:
    work_start_hour: int = 8
    work_end_hour: int = 20
    denials: int = 5           # refusals in the period that make a user worth a look
    files_min: int = 10        # distinct files in the last 7 days ...
    files_factor: int = 3      # ... and more than this many times the user's weekly usual (8 weeks before)


def _sums():
    return [func.count().label("entries"), *_measures()]


def _measures():
    return [func.coalesce(func.sum(case((cond & (AuditEvent.outcome == "allowed") if name != "denials" else cond, 1),
                                        else_=0)), 0).label(name)
            for name, cond in MEASURES]


def audit_stats(s: Session, f: ReportFilter, u: Unusual = Unusual()) -> Report:
    lo, hi = f.period.utc_bounds()
    span = and_(AuditEvent.at >= lo, AuditEvent.at < hi)
    rep = Report("audit", _("Audit analytics"))
    cols = [Col("entries", _("Entries"), "int"), Col("views", _("Views"), "int"), Col("exports", _("Exports"), "int"), Col("denials", _("Refusals"), "int"),
            Col("grants", _("Grants"), "int")]

    day = day_of(AuditEvent.at, SHANGHAI_HOURS).label("day")
    rows = s.execute(select(day, *_sums()).where(span).group_by(day).order_by(day)).all()
    per_day = [{"day": d, "entries": a, "views": v, "exports": e, "denials": n, "grants": g} for d, a, v, e, n, g in rows]
    rep.tables.append(Table("days", _("Per day"), [Col("day", _("Day"), "text"), *cols], per_day))
    rep.charts.append(Chart("days", _("Views, exports, refusals and grants per day"), "line",
                            [r["day"] for r in per_day],
                            [(c.label, [r[c.key] for r in per_day]) for c in cols[1:]]))

    rows = s.execute(select(AuditEvent.actor_username, AuditEvent.actor_role, *_sums()).where(span)
                     .group_by(AuditEvent.actor_username, AuditEvent.actor_role)
                     .order_by(func.count().desc(), AuditEvent.actor_username).limit(TOP_USERS)).all()
    rep.tables.append(Table("users", _("Per user"), [Col("user", _("User"), "text"), Col("role", _("Role"), "text"), *cols],
                            [{"user": a, "role": r, "entries": k, "views": v, "exports": e, "denials": n, "grants": g,
                              "_link": "/audit?" + urlencode({"actor": a, "since": f.period.start.isoformat(),
                                                              "until": f.period.end.isoformat()})}
                             for a, r, k, v, e, n, g in rows], translate=("role",)))

    unit = func.coalesce(OrgUnit.code, literal_column("'-'")).label("unit")
    rows = s.execute(select(unit, *_sums())
                     .select_from(AuditEvent).outerjoin(User, User.id == AuditEvent.actor_id)
                     .outerjoin(OrgUnit, OrgUnit.id == User.unit_id).where(span)
                     .group_by("unit").order_by("unit")).all()
    per_unit = [{"unit": c, "entries": k, "views": v, "exports": e, "denials": n, "grants": g}
                for c, k, v, e, n, g in rows]
    rep.tables.append(Table("units", _("Per unit"), [Col("unit", _("Unit"), "text"), *cols], per_unit))
    rep.charts.append(Chart("units", _("Views and refusals per unit"), "bar", [r["unit"] for r in per_unit],
                            [(_("Views"), [r["views"] for r in per_unit]), (_("Refusals"), [r["denials"] for r in per_unit])]))
    rep.tables.append(Table("unusual", _("Unusual activity"), [
        Col("user", _("User"), "text"), Col("kind", _("What"), "text"), Col("count", _("Count"), "int")],
        unusual(s, f, u), translate=("kind",),
        note=_("Many files: more distinct files in the period's last 7 days than 3 times the user's weekly usual of "
             "the 8 weeks before (and at least 10). Outside working hours: views before the start or after the end "
             "of the working day, or at weekends. Many refusals: 5 or more in the period.")))
    return rep


def unusual(s: Session, f: ReportFilter, u: Unusual) -> list[dict]:
    lo, hi = f.period.utc_bounds()
    since, until = f.period.start.isoformat(), f.period.end.isoformat()
    found: list[dict] = []

    def link(**q) -> str:
        return "/audit?" + urlencode(q)

    # A user viewing far more files than usual: the last 7 days against the 8 weeks before.
    recent_lo, base_lo = hi - timedelta(days=7), hi - timedelta(days=63)
    recent = func.count(distinct(case((AuditEvent.at >= recent_lo, AuditEvent.object_id))))
    before = func.count(distinct(case((AuditEvent.at < recent_lo, AuditEvent.object_id))))
    for who, n, b in s.execute(
            select(AuditEvent.actor_username, recent, before)
            .where(VIEW, AuditEvent.outcome == "allowed", AuditEvent.at >= base_lo, AuditEvent.at < hi)
            .group_by(AuditEvent.actor_username)
            .having(and_(recent >= u.files_min, recent * 8 > u.files_factor * before))
            .order_by(recent.desc())):
        found.append({"user": who, "kind": _("Many more files than usual"), "count": n,
                      "_link": link(actor=who, action="customer.view",
                                    since=(f.period.end - timedelta(days=6)).isoformat(), until=until)})
    # Views outside working hours (Shanghai time) or at weekends.
    hour, wd = hour_of(AuditEvent.at, SHANGHAI_HOURS), weekday_of(AuditEvent.at, SHANGHAI_HOURS)
    off = or_(hour < u.work_start_hour, hour >= u.work_end_hour, wd == 0, wd == 6)
    for who, n in s.execute(select(AuditEvent.actor_username, func.count())
                            .where(VIEW, AuditEvent.at >= lo, AuditEvent.at < hi, off)
                            .group_by(AuditEvent.actor_username).order_by(func.count().desc())):
        found.append({"user": who, "kind": _("Views outside working hours"), "count": n,
                      "_link": link(actor=who, action="customer.view", since=since, until=until)})
    # Many refusals.
    for who, n in s.execute(select(AuditEvent.actor_username, func.count())
                            .where(DENIED, AuditEvent.at >= lo, AuditEvent.at < hi)
                            .group_by(AuditEvent.actor_username).having(func.count() >= u.denials)
                            .order_by(func.count().desc())):
        found.append({"user": who, "kind": _("Many refusals"), "count": n,
                      "_link": link(actor=who, outcome="denied", since=since, until=until)})
    return found
