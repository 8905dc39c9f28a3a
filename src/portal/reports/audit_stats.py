"""Audit analytics for the auditor: views, exports, refusals and grants per day, per user and per
unit, and unusual activity with links into the log. Staff activity only: no customer figures and
no personal data (file numbers appear only behind the links into the log)."""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from urllib.parse import urlencode

from sqlalchemy import and_, case, distinct, func, or_, select
from sqlalchemy.orm import Session

from ..accounts.models import User
from ..audit.models import AuditEvent
from ..org.models import OrgUnit
from . import audit_days
from .filters import ReportFilter
from .model import _, Chart, Col, Report, Table
from .sqlfn import SHANGHAI_HOURS, hour_of, weekday_of

VIEW = AuditEvent.action == "customer.view"
EXPORT = AuditEvent.action.in_(("customer.export", "audit.export", "report.export"))
DENIED = AuditEvent.outcome == "denied"
GRANT = and_(AuditEvent.action == "access.approve", AuditEvent.outcome == "allowed")
TOP_USERS = 50


@dataclass(frozen=True)
class Unusual:
    work_start_hour: int = 8
    work_end_hour: int = 20
    denials: int = 5           # refusals in the period that make a user worth a look
    files_min: int = 10        # files viewed in the last 7 days (a file counts once a day) ...
    files_factor: int = 3      # ... and more than this many times the user's weekly usual (8 weeks before)


def _off_hours(u: Unusual):
    """A view outside working hours (Shanghai time) or at a weekend."""
    hour, wd = hour_of(AuditEvent.at, SHANGHAI_HOURS), weekday_of(AuditEvent.at, SHANGHAI_HOURS)
    return and_(VIEW, or_(hour < u.work_start_hour, hour >= u.work_end_hour, wd == 0, wd == 6))


def audit_stats(s: Session, f: ReportFilter, u: Unusual = Unusual()) -> Report:
    """The period's counts per (day, user) (the summary's closed part and, live, the entries after
    it: reports.audit_days) give the tables per day, per user and per unit, and two of the
    unusual-activity checks; the third (many files) adds up the files viewed per day (reports.audit_days.files_viewed) over nine weeks."""
    lo, hi = f.period.utc_bounds()
    rep = Report("audit", _("Audit analytics"))
    cols = [Col("entries", _("Entries"), "int"), Col("views", _("Views"), "int"), Col("exports", _("Exports"), "int"), Col("denials", _("Refusals"), "int"),
            Col("grants", _("Grants"), "int")]
    keys = [c.key for c in cols]

    units = dict(s.execute(select(User.id, OrgUnit.code).join(OrgUnit, OrgUnit.id == User.unit_id)).all())
    days: dict[str, list[int]] = {}
    users: dict[tuple[str, str], list[int]] = {}
    by_unit: dict[str, list[int]] = {}
    off_hours: dict[str, int] = {}
    off_at = [h for h in range(24) if h < u.work_start_hour or h >= u.work_end_hour]
    weekend: dict[str, bool] = {}
    for d, actor_id, who, role, *figures in audit_days.cube(s, lo, hi, f.period.start.isoformat(),
                                                             f.period.end.isoformat()):
        figures, hours = [int(v or 0) for v in figures[:5]], [int(v or 0) for v in figures[5:]]
        for bucket in (days.setdefault(d, [0] * 5), users.setdefault((who, role), [0] * 5),
                       by_unit.setdefault(units.get(actor_id, "-"), [0] * 5)):
            for i, v in enumerate(figures):
                bucket[i] += v or 0
        if d not in weekend:
            weekend[d] = date.fromisoformat(d).weekday() >= 5
        n_off = sum(hours) if weekend[d] else sum(hours[h] for h in off_at)
        if n_off:
            off_hours[who] = off_hours.get(who, 0) + n_off

    per_day = [{"day": d, **dict(zip(keys, days[d]))} for d in sorted(days)]
    rep.tables.append(Table("days", _("Per day"), [Col("day", _("Day"), "text"), *cols], per_day))
    rep.charts.append(Chart("days", _("Views, exports, refusals and grants per day"), "line",
                            [r["day"] for r in per_day],
                            [(c.label, [r[c.key] for r in per_day]) for c in cols[1:]]))

    top = sorted(users.items(), key=lambda kv: (-kv[1][0], kv[0][0]))[:TOP_USERS]
    rep.tables.append(Table("users", _("Per user"), [Col("user", _("User"), "text"), Col("role", _("Role"), "text"), *cols],
                            [{"user": a, "role": r, **dict(zip(keys, v)),
                              "_link": "/audit?" + urlencode({"actor": a, "since": f.period.start.isoformat(),
                                                              "until": f.period.end.isoformat()})}
                             for (a, r), v in top], translate=("role",)))

    per_unit = [{"unit": c, **dict(zip(keys, by_unit[c]))} for c in sorted(by_unit)]
    rep.tables.append(Table("units", _("Per unit"), [Col("unit", _("Unit"), "text"), *cols], per_unit))
    rep.charts.append(Chart("units", _("Views and refusals per unit"), "bar", [r["unit"] for r in per_unit],
                            [(_("Views"), [r["views"] for r in per_unit]), (_("Refusals"), [r["denials"] for r in per_unit])]))
    refusals: dict[str, int] = {}
    for (who, _role), v in users.items():
        refusals[who] = refusals.get(who, 0) + v[3]
    rep.tables.append(Table("unusual", _("Unusual activity"), [
        Col("user", _("User"), "text"), Col("kind", _("What"), "text"), Col("count", _("Count"), "int")],
        unusual(s, f, u, off_hours=off_hours, refusals=refusals), translate=("kind",),
        note=_("Many files: more files viewed in the period's last 7 days (a file counts once a day) than 3 times the "
             "user's weekly usual of the 8 weeks before (and at least 10). Outside working hours: views before the start or after the end "
             "of the working day, or at weekends. Many refusals: 5 or more in the period.")))
    return rep


def unusual(s: Session, f: ReportFilter, u: Unusual, *, off_hours: dict[str, int] | None = None,
            refusals: dict[str, int] | None = None) -> list[dict]:
    """Users worth a look; ``off_hours`` and ``refusals`` (per user, in the period) when the
    caller has counted them already."""
    lo, hi = f.period.utc_bounds()
    since, until = f.period.start.isoformat(), f.period.end.isoformat()
    found: list[dict] = []

    def link(**q) -> str:
        return "/audit?" + urlencode(q)

    # A user viewing far more files than usual: the last 7 days against the 8 weeks before.
    base_lo = hi - timedelta(days=63)
    end = f.period.end
    recent_day, base_day = (end - timedelta(days=6)).isoformat(), (end - timedelta(days=62)).isoformat()
    v = audit_days.files_viewed(s, base_lo, hi, base_day, recent_day, end.isoformat())
    for who, n, b in s.execute(
            select(v.c.actor_username, v.c.recent, v.c.before)
            .where(v.c.recent >= u.files_min, v.c.recent * 8 > u.files_factor * v.c.before)
            .order_by(v.c.recent.desc(), v.c.actor_username)):
        found.append({"user": who, "kind": _("Many more files than usual"), "count": n,
                      "_link": link(actor=who, action="customer.view",
                                    since=(f.period.end - timedelta(days=6)).isoformat(), until=until)})
    # Views outside working hours (Shanghai time) or at weekends.
    if off_hours is None:
        off_hours = dict(s.execute(select(AuditEvent.actor_username, func.count())
                                   .where(_off_hours(u), AuditEvent.at >= lo, AuditEvent.at < hi)
                                   .group_by(AuditEvent.actor_username)).all())
    for who, n in sorted(off_hours.items(), key=lambda kv: (-kv[1], kv[0])):
        if n:
            found.append({"user": who, "kind": _("Views outside working hours"), "count": n,
                          "_link": link(actor=who, action="customer.view", since=since, until=until)})
    # Many refusals.
    if refusals is None:
        refusals = dict(s.execute(select(AuditEvent.actor_username, func.count())
                                  .where(DENIED, AuditEvent.at >= lo, AuditEvent.at < hi)
                                  .group_by(AuditEvent.actor_username)).all())
    for who, n in sorted(refusals.items(), key=lambda kv: (-kv[1], kv[0])):
        if n >= u.denials:
            found.append({"user": who, "kind": _("Many refusals"), "count": n,
                          "_link": link(actor=who, outcome="denied", since=since, until=until)})
    return found
