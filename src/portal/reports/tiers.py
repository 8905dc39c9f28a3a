"""Members by tier and status over time: how many members held each tier (and how many had
ended) at the end of each month, from the tier each member held then (``TierChange``), not from
today's tier.

One GROUP BY over the scoped members' tier changes up to the period's end: the changes before
the period fold into one opening bucket, the rest are counted per month and per (from, to)
pair; the month-end figures are the opening plus the running sum of those counts.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date

from sqlalchemy import case, func, literal, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..membership.models import ENDED, Membership, TierChange
from ..membership.settings import Tier
from .filters import ReportFilter
from . import summaries
from .model import _, Chart, Col, Table, members_driving, suppress
from .models import ReportFlow as RF
from .sqlfn import month_of

TIERS = [t.value for t in Tier]


def month_end_counts(s: Session, actor: Actor, f: ReportFilter, today: date) -> list[dict]:
    """{month, <tier>..., active, ended} at the end of each month of the period up to today
    (the current month: as of today), unsuppressed. A tier filter picks the members who held
    that tier at each date, so the scope leaves it out here."""
    p = f.period
    end = min(p.end, today)
    months = [m for m in p.months() if m <= f"{end:%Y-%m}"]
    if not months:
        return []
    rolled = summaries.flow_where(actor, f, "tc", tier=False, opening=True)
    if rolled is not None:
        # report_flow's tier_change counts per month (tier changes are never dated after today, so
        # the current month's row holds the changes up to today).
        bucket = case((RF.month < months[0], literal("")), else_=RF.month).label("bucket")
        rows = [(b, frm, to, int(n)) for b, frm, to, n in s.execute(
            select(bucket, RF.a, RF.b, func.coalesce(func.sum(RF.n), 0))
            .where(*rolled, RF.month <= months[-1]).group_by("bucket", RF.a, RF.b)).all()]
    else:
        bucket = case((TierChange.changed_on < p.start, literal("")),
                      else_=month_of(TierChange.changed_on)).label("bucket")
        rows = s.execute(select(bucket, TierChange.from_tier, TierChange.to_tier, func.count())
                         .join(Membership, Membership.id == TierChange.membership_id)
                         .where(*members_driving(actor, f, tier=False), TierChange.changed_on <= end)
                         .group_by("bucket", TierChange.from_tier, TierChange.to_tier)).all()
    delta: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for b, frm, to, n in rows:
        delta[b][to] += n
        if frm:
            delta[b][frm] -= n
    running: dict[str, int] = defaultdict(int, delta.get("", {}))
    out = []
    for m in months:
        for state, n in delta.get(m, {}).items():
            running[state] += n
        row = {"month": m, **{t: running[t] for t in TIERS}, "ended": running[ENDED]}
        row["active"] = sum(row[t] for t in TIERS)
        out.append(row)
    return out


def tier_over_time(s: Session, actor: Actor, f: ReportFilter, today: date) -> tuple[Table, Chart]:
    """The table and the stacked chart of members by tier at each month's end."""
    shown = [f.tier] if f.tier else TIERS
    cols = [Col("month", _("Month"), "month"), *(Col(t, t, "count") for t in shown)]
    if not f.tier:
        cols += [Col("active", _("Active"), "count"), Col("ended", _("Ended"), "count")]
    rows = [{c.key: r[c.key] for c in cols} for r in month_end_counts(s, actor, f, today)]
    suppress(rows, cols, basis="")
    table = Table("tiers_over_time", _("Members by tier at each month's end"), cols, rows,
                  note=_("Each member is counted in the tier they held on that day, not in today's tier; "
                         "the current month is counted as of today."))
    chart = Chart("tiers_over_time", _("Members by tier over time"), "stack", [r["month"] for r in rows],
                  [(t, [r[t] for r in rows]) for t in shown])
    return table, chart
