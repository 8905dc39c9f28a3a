"""report_member and report_flow, the overview's and the monthly report's member figures, kept in
the transactions of the facts like ``report_month`` (rollup.py): the one module that knows them.

``report_member``: members per (owner, unit path, tier, status) as they stand now, how many hold a
card account, and their points and stored-value balances (the overview's members by tier and
status and its outstanding balances; the monthly report's active members).

``report_flow``: per month and (owner, unit path, tier) as they stand now, the joinings by cause,
the referred joinings, the tier events by direction and cause, the tier_change rows by (from, to)
pair and the cards issued, new or replacements (new members, upgrades and downgrades, referrals,
the tiers at each month's end, new cards), and the active members by joining day (the service
report's visit coverage).
A member's rows move with them (owner, unit or tier changed); a restarted membership moves its
joining to the new month and cause.
"""
from __future__ import annotations

from collections import defaultdict
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import false, func, or_, select, text
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..membership.models import CardAccount, MemberCard, MemberEvent, Membership, TierChange
from ..membership.settings import Tier
from ..policy import Action
from ..policy.actions import Relation
from ..policy.scope import arm_clause, arm_values, scope_shape, subtree_range
from .models import ReportFlow as RF, ReportMember as RMB
from ..upsert import add_up

Key = tuple[int, str, str]            # owner_id, unit_path, tier (rollup.Key)
MEMBER_FIGURES = ("members", "holders", "points_balance", "stored_value_fen")
FlowKey = tuple[str, str, str, str]   # month, kind, a, b
_RANK = {t.value: t.rank for t in Tier}
SHANGHAI = timedelta(hours=8)


# ---------------------------------------------------------------- report_member

def _holding(s: Session, membership_id: int) -> dict[str, int]:
    """One member's share of report_member: 1 member, and what their card accounts hold."""
    n, points, stored = s.execute(
        select(func.count(), func.coalesce(func.sum(CardAccount.points_balance), 0),
               func.coalesce(func.sum(CardAccount.stored_value_fen), 0))
        .where(CardAccount.membership_id == membership_id)).one()
    return {"members": 1, "holders": 1 if n else 0, "points_balance": int(points), "stored_value_fen": int(stored)}


def _add_member(s: Session, key: Key, status: str, figs: dict[str, int], sign: int = 1) -> None:
    add_up(s, RMB, ("owner_id", "unit_path", "tier", "status"), MEMBER_FIGURES,
            [{"owner_id": key[0], "unit_path": key[1], "tier": key[2], "status": status,
              **{f: sign * figs.get(f, 0) for f in MEMBER_FIGURES}}])


def locked_key(s: Session, membership_id: int) -> tuple[Key, str] | None:
    """The member's key and status as committed now, the membership locked until commit (PostgreSQL):
    a balance written and a member moved are counted one after the other, each under the right key.
    Lock order as the till's: card accounts (locked by the writers of balances) before the membership."""
    row = s.execute(select(Membership.owner_id, Membership.unit_path, Membership.tier, Membership.status)
                    .where(Membership.id == membership_id).with_for_update()).first()
    return None if row is None else ((row[0], row[1], row[2]), row[3])


def member_restated(s: Session, membership_id: int, old: Key | None, old_status: str, new: Key,
                    new_status: str) -> None:
    """The member's owner, unit, tier or status changed (``old`` None: a new membership): their
    share goes from the old key to the new."""
    if (old, old_status) == (new, new_status):
        return
    s.flush()
    locked_key(s, membership_id)
    figs = _holding(s, membership_id)
    if old is not None:
        _add_member(s, old, old_status, figs, -1)
    _add_member(s, new, new_status, figs)
    # The active members by joining day (kind "act"): a membership's joining day changes only
    # while it is not active (a restart), so the old row is the same day as the new.
    joined_on = s.scalar(select(Membership.joined_on).where(Membership.id == membership_id))
    if old is not None and old_status == "active":
        _add_flows(s, old, active_flow(joined_on), -1)
    if new_status == "active":
        _add_flows(s, new, active_flow(joined_on))


def balances_changed(s: Session, membership_id: int, *, points: int = 0, stored_fen: int = 0,
                     holders: int = 0) -> None:
    """Points or stored value written to one of the member's accounts, or their first account opened."""
    s.flush()
    now = locked_key(s, membership_id)
    if now is not None:
        _add_member(s, now[0], now[1], {"points_balance": points, "stored_value_fen": stored_fen, "holders": holders})


def account_opened(s: Session, membership_id: int) -> None:
    """A card account was added (flushed): the member holds one now if it is their first."""
    if s.scalar(select(func.count()).where(CardAccount.membership_id == membership_id)) == 1:
        balances_changed(s, membership_id, holders=1)


# ---------------------------------------------------------------- report_flow

def _month(on: date | datetime) -> str:
    return f"{on.year:04d}-{on.month:02d}"


def _shanghai_month(at: datetime) -> str:
    if at.tzinfo is not None:
        at = at.astimezone(timezone.utc).replace(tzinfo=None)
    return _month(at + SHANGHAI)


def direction(from_tier: str, to_tier: str) -> str:
    return "up" if _RANK.get(to_tier, -1) > _RANK.get(from_tier, -1) else "down"


def _join_flows(joined_on: date, cause: str, referred: bool) -> dict[FlowKey, int]:
    out = {(_month(joined_on), "join", cause, ""): 1}
    if referred:
        out[(_month(joined_on), "ref", "", "")] = 1
    return out


def active_flow(joined_on: date) -> dict[FlowKey, int]:
    """An active membership under the day it joined: kind "act", a = the day of the month (two
    digits), so counts of active members joined by a given day read whole months and one month's
    days (the service report's visit coverage)."""
    return {(_month(joined_on), "act", f"{joined_on.day:02d}", ""): 1}


def _add_flows(s: Session, key: Key, flows: dict[FlowKey, int], sign: int = 1) -> None:
    add_up(s, RF, ("month", "owner_id", "unit_path", "tier", "kind", "a", "b"), ("n",),
            [{"month": mo, "owner_id": key[0], "unit_path": key[1], "tier": key[2], "kind": kind, "a": a, "b": b,
              "n": sign * n} for (mo, kind, a, b), n in flows.items()])


def flow_history(s: Session, membership_id: int) -> dict[FlowKey, int]:
    """All of one member's flows, from the facts."""
    s.flush()
    m = s.get(Membership, membership_id)
    out: dict[FlowKey, int] = defaultdict(int)
    for k, n in _join_flows(m.joined_on, m.join_cause, m.referrer_id is not None).items():
        out[k] += n
    for at, frm, to, cause in s.execute(select(MemberEvent.at, MemberEvent.from_value, MemberEvent.to_value,
                                               MemberEvent.cause).where(MemberEvent.membership_id == membership_id,
                                                                        MemberEvent.kind == "tier")):
        out[(_shanghai_month(at), "move", direction(frm, to), cause or "")] += 1
    for on, frm, to in s.execute(select(TierChange.changed_on, TierChange.from_tier, TierChange.to_tier)
                                 .where(TierChange.membership_id == membership_id)):
        out[(_month(on), "tc", frm or "", to)] += 1
    for on, replaces in s.execute(select(MemberCard.issued_on, MemberCard.replaces_id)
                                  .join(CardAccount, CardAccount.id == MemberCard.account_id)
                                  .where(CardAccount.membership_id == membership_id)):
        out[(_month(on), "card", "new" if replaces is None else "replacement", "")] += 1
    return out


def flows_moved(s: Session, membership_id: int, old: Key, new: Key) -> None:
    if old == new:
        return
    history = flow_history(s, membership_id)
    _add_flows(s, old, history, -1)
    _add_flows(s, new, history)


def joined(s: Session, m: Membership) -> None:
    """A new membership: its joining (and the referral) under its key."""
    _add_flows(s, (m.owner_id, m.unit_path, m.tier), _join_flows(m.joined_on, m.join_cause, m.referrer_id is not None))


def join_replaced(s: Session, key: Key, old: tuple[date, str, bool], new: tuple[date, str, bool]) -> None:
    """A restarted membership: the old joining (month, cause, referred) becomes the new one, under ``key``."""
    _add_flows(s, key, _join_flows(*old), -1)
    _add_flows(s, key, _join_flows(*new))


def _add_member_flows(s: Session, membership_id: int, flows: dict[FlowKey, int]) -> None:
    """Flows of one member under their key as it stands (locked: a concurrent move of the member
    either sees these facts or is seen by them)."""
    s.flush()
    now = locked_key(s, membership_id)
    if now is not None:
        _add_flows(s, now[0], flows)


def tier_event(s: Session, m: Membership, at: datetime, from_tier: str, to_tier: str, cause: str) -> None:
    """A member_event of kind "tier", under the member's (new) key."""
    _add_member_flows(s, m.id, {(_shanghai_month(at), "move", direction(from_tier, to_tier), cause or ""): 1})


def card_issued(s: Session, membership_id: int, on: date, replacement: bool) -> None:
    """A member_card issued (a first card or a replacement), under the member's key."""
    _add_member_flows(s, membership_id, {(_month(on), "card", "replacement" if replacement else "new", ""): 1})


def tier_changed(s: Session, m: Membership, on: date, from_tier: str, to_tier: str) -> None:
    """A tier_change row, under the member's key."""
    _add_member_flows(s, m.id, {(_month(on), "tc", from_tier or "", to_tier): 1})


# ---------------------------------------------------------------- bulk: rebuilt from the facts

def _rank_sql(col: str) -> str:
    return "CASE " + " ".join(f"WHEN {col} = '{t}' THEN {r}" for t, r in _RANK.items()) + " ELSE -1 END"


def rebuild_sql(dialect: str) -> list[str]:
    pg = dialect == "postgresql"
    jm = "to_char(joined_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', joined_on)"
    jd = "to_char(joined_on, 'DD')" if pg else "strftime('%d', joined_on)"
    em = """to_char("at" + interval '8 hours', 'YYYY-MM')""" if pg else """strftime('%Y-%m', "at", '+8 hours')"""
    tm = "to_char(changed_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', changed_on)"
    cm = "to_char(c.issued_on, 'YYYY-MM')" if pg else "strftime('%Y-%m', c.issued_on)"
    members = """
INSERT INTO report_member (owner_id, unit_path, tier, status, members, holders, points_balance, stored_value_fen)
SELECT m.owner_id, m.unit_path, m.tier, m.status, count(*), sum(CASE WHEN a.n > 0 THEN 1 ELSE 0 END),
       coalesce(sum(a.pts), 0), coalesce(sum(a.sv), 0)
FROM membership m LEFT JOIN (SELECT membership_id, count(*) AS n, sum(points_balance) AS pts,
                                    sum(stored_value_fen) AS sv FROM card_account GROUP BY membership_id) a
  ON a.membership_id = m.id
GROUP BY m.owner_id, m.unit_path, m.tier, m.status"""
    flows = f"""
INSERT INTO report_flow (month, owner_id, unit_path, tier, kind, a, b, n)
SELECT f.month, m.owner_id, m.unit_path, m.tier, f.kind, f.a, f.b, count(*)
FROM (
  SELECT id AS mid, {jm} AS month, 'join' AS kind, join_cause AS a, '' AS b FROM membership
  UNION ALL
  SELECT id, {jm}, 'ref', '', '' FROM membership WHERE referrer_id IS NOT NULL
  UNION ALL
  SELECT id, {jm}, 'act', {jd}, '' FROM membership WHERE status = 'active'
  UNION ALL
  SELECT membership_id, {em}, 'move',
         CASE WHEN {_rank_sql('to_value')} > {_rank_sql('from_value')} THEN 'up' ELSE 'down' END, cause
  FROM member_event WHERE kind = 'tier'
  UNION ALL
  SELECT membership_id, {tm}, 'tc', from_tier, to_tier FROM tier_change
  UNION ALL
  SELECT a.membership_id, {cm}, 'card', CASE WHEN c.replaces_id IS NULL THEN 'new' ELSE 'replacement' END, ''
  FROM member_card c JOIN card_account a ON a.id = c.account_id
) f JOIN membership m ON m.id = f.mid
GROUP BY f.month, m.owner_id, m.unit_path, m.tier, f.kind, f.a, f.b"""
    return [members, flows]


def rebuild(conn) -> None:
    """Recompute both summaries from the facts, in the database (``conn``: a Session or Connection)."""
    dialect = conn.get_bind().dialect.name if isinstance(conn, Session) else conn.dialect.name
    conn.execute(RMB.__table__.delete())
    conn.execute(RF.__table__.delete())
    for sql in rebuild_sql(dialect):
        conn.execute(text(sql))


# ---------------------------------------------------------------- reading

def keyed_where(actor: Actor, f, owner, unit_path, tier_col, *, tier: bool = True,
                action: Action = Action.REPORT_VIEW) -> list | None:
    """WHERE clauses over a summary keyed by (owner, unit path, tier): the policy's owner and unit
    arms, the filter's unit and (``tier``) tier; None when it cannot answer: a category, or a
    scope with grants to single files (the live query answers those)."""
    if f.category:
        return None
    conds = []
    shape = scope_shape(actor, action)
    if shape is not None:
        arms, grant_scopes = shape
        if Relation.GRANTED in arms:
            return None
        if not arms:
            return [false()]
        values = arm_values(actor)
        conds.append(or_(*(arm_clause(rel, grant_scopes, bind=values.__getitem__, owner=owner,
                                      unit_path=unit_path) for rel in arms)))
    if f.unit is not None:
        lo, hi = subtree_range(f.unit.path)
        conds += [unit_path >= lo, unit_path < hi]
    if tier and f.tier:
        conds.append(tier_col == f.tier)
    return conds


def member_where(actor: Actor, f) -> list | None:
    """Over report_member (any period: it holds the members as they stand now)."""
    return keyed_where(actor, f, RMB.owner_id, RMB.unit_path, RMB.tier)


def flow_where(actor: Actor, f, kind: str, *, tier: bool = True, opening: bool = False) -> list | None:
    """Over report_flow rows of a kind in the filter's whole months (``opening``: and all the
    months before them); None for a custom period."""
    if f.period.kind not in ("month", "quarter", "year"):
        return None
    conds = keyed_where(actor, f, RF.owner_id, RF.unit_path, RF.tier, tier=tier)
    if conds is None:
        return None
    months = f.period.months()
    return [RF.kind == kind, *(() if opening else (RF.month >= months[0],)), RF.month <= months[-1], *conds]
