"""Bulk seeding for the report benchmarks: memberships, cards, tier history, points and two years
of purchases for the customer files that are not members yet.

Used by `portal bench seed-purchases` after `portal bench seed N`. Rows go in with SQLAlchemy
Core executemany, one transaction per batch of files; primary keys are taken in the batch's
transaction (PostgreSQL: from the tables' sequences in blocks; SQLite: past the largest, the
seeder being the only writer) so the rows can name each other without a round trip each. The rows are what the
programme itself would have written (the reports read them the same way):

- ``share`` of the files join on a day after the file was created (cause as the demo's);
  each gets a card account and card (numbers from the region's sequence, as ``new_card``),
  a "joined" and a "card_issued" member event and a joining row in the tier history;
- purchases from the joining day to yesterday, seasonal (Spring Festival, Mid-Autumn) like the
  demo's, by three kinds of buyer (a few big ones, regulars, occasional buyers); the tier's
  discount and points rate apply; an upgrade (12 months' spend over silver's or gold's
  threshold) is a "tier" event and a tier-history row on the day of the purchase;
- one purchase line each (the demo's products) and one "earn" points entry each; the account's
  cached balance is the sum of its entries.

A leader at the company's root unit (`lhq`, password as `portal demo`) is added so that the
company-wide view of the reports can be measured.
"""
from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, datetime, time as dtime, timedelta, timezone
from typing import Callable

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from .. import demo
from ..accounts import service as accounts
from ..accounts.models import Role, User
from ..customers.models import CustomerFile
from ..db import Database
from ..demo_reports import MONTH_WEIGHT, PRODUCTS
from ..membership.models import (CardAccount, MemberCard, MemberEvent, Membership, PointsEntryRow, Purchase,
                                 PurchaseLineRow, TierChange)
from ..membership.programme import settings_on
from ..membership.rules import (CARD_SEQ_MAX, card_expires_on, format_card_number, points_expire_on,
                                programme_today)
from ..membership.settings import Tier
from ..org import service as org
from ..org.models import OrgUnit
from ..reports import audit_days, card_rollup, class_window, rollup
from .seed import BY

COMPANY_LEADER = "lhq"
SH = timezone(timedelta(hours=8))
KINDS = (("big", 1, (10, 18), 3), ("regular", 3, (4, 9), 1), ("occasional", 6, (1, 3), 1))  # visits in 2 years
CAUSES = ("single_purchase", "cumulative", "application", "application")
PAYMENTS = ("cash", "card", "card", "wechat")


@dataclass
class PurchaseSeedReport:
    files: int = 0
    members: int = 0
    purchases: int = 0
    upgrades: int = 0
    rows: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def _noon(day: date) -> datetime:
    return datetime.combine(day, dtime(12), SH).astimezone(timezone.utc)


def ensure_company_leader(s: Session, password: str) -> bool:
    """A leader at the root unit (the company-wide view); True if added."""
    if s.scalar(select(User.id).where(User.username == COMPANY_LEADER)) is not None:
        return False
    root = s.scalar(select(OrgUnit).where(OrgUnit.parent_id.is_(None)).order_by(OrgUnit.id).limit(1))
    if root is None:
        raise RuntimeError("no organisation; run `portal demo` first")
    accounts.add_user(s, COMPANY_LEADER, Role.LEADER, root.code, password, display_name="总部负责人", by=BY)
    return True


def _regions(s: Session) -> dict[str, str]:
    """unit path -> the region code its cards are numbered in."""
    return {u.path: org.region_of(s, u).code for u in org.all_units(s)}


class _Ids:
    """Primary keys for a table's new rows, taken in the batch's transaction: on PostgreSQL from
    the table's own sequence in blocks (nextval needs only USAGE, which the application role
    has), on SQLite after the largest id (the seeder is the only writer)."""

    BLOCK = 2000

    def __init__(self, s: Session, model, sqlite: bool):
        self.s, self.table, self.sqlite = s, model.__tablename__, sqlite
        self.free: list[int] = []
        if sqlite:
            self.next = (s.scalar(select(func.max(model.id))) or 0) + 1

    def take(self) -> int:
        if self.sqlite:
            self.next += 1
            return self.next - 1
        if not self.free:
            self.free = list(self.s.scalars(text(
                "SELECT nextval(pg_get_serial_sequence(:t, 'id')) FROM generate_series(1, :k)"),
                {"t": self.table, "k": self.BLOCK}))[::-1]
        return self.free.pop()


def _take_cards(s: Session, region: str, k: int) -> int:
    s.execute(text("INSERT INTO card_number_sequence (region_code, next_seq) VALUES (:r, 1) "
                   "ON CONFLICT (region_code) DO NOTHING"), {"r": region})
    return s.execute(text("UPDATE card_number_sequence SET next_seq = next_seq + :k WHERE region_code = :r "
                          "RETURNING next_seq - :k"), {"r": region, "k": k}).scalar_one()


class _Batch:
    """The rows of one batch of new members, table by table."""

    def __init__(self):
        self.memberships, self.accounts, self.cards, self.events, self.tiers = [], [], [], [], []
        self.purchases, self.lines, self.points = [], [], []
        self.upgrades = 0

    def tables(self):
        return ((Membership, self.memberships), (CardAccount, self.accounts), (MemberCard, self.cards),
                (MemberEvent, self.events), (TierChange, self.tiers), (Purchase, self.purchases),
                (PurchaseLineRow, self.lines), (PointsEntryRow, self.points))


def _buying_days(rnd: random.Random, joined: date, last: date, visits: int) -> list[date]:
    span = (last - joined).days
    days = {joined}
    tries = 0
    while len(days) < visits and span > 0 and tries < visits * 20:
        tries += 1
        d = joined + timedelta(days=rnd.randint(1, span))
        if rnd.random() * 3 < MONTH_WEIGHT[d.month]:
            days.add(d)
    return sorted(days)


def _member(b: _Batch, rnd: random.Random, f, ids: dict, card: str, region: str, seq: int, today: date,
            settings, named: bool) -> None:
    """One new member's rows (ids taken from ``ids`` and moved on)."""
    fid, owner_id, unit_path, created_at = f
    yesterday = today - timedelta(days=1)
    joined = min(yesterday, (created_at.astimezone(SH).date() if created_at.tzinfo else
                             (created_at + timedelta(hours=8)).date()) + timedelta(days=rnd.randint(0, 60)))
    mid, aid = ids["membership"].take(), ids["card_account"].take()
    kind, _w, (lo, hi), qty_mult = rnd.choices(KINDS, weights=[k[1] for k in KINDS])[0]
    visits = max(1, round(rnd.randint(lo, hi) * min(1.0, ((yesterday - joined).days + 1) / 730)))
    days = _buying_days(rnd, joined, yesterday, visits)
    cause = rnd.choice(CAUSES)
    at = _noon(joined)
    b.events.append(dict(membership_id=mid, account_id=None, kind="joined", from_value="", to_value="regular",
                         cause=cause, reason="", actor_id=owner_id, at=at))
    b.events.append(dict(membership_id=mid, account_id=aid, kind="card_issued", from_value="", to_value=card,
                         cause="standard", reason="", actor_id=owner_id, at=at))
    b.tiers.append(dict(membership_id=mid, changed_on=joined, from_tier="", to_tier="regular", cause=cause, at=at))
    b.cards.append(dict(number=card, region_code=region, seq=seq, account_id=aid, status="current",
                        issued_on=joined, replaces_id=None, created_at=at))
    tier, balance, window = Tier.REGULAR, 0, []
    for when in days:
        pid = ids["purchase"].take()
        product, price, max_qty = rnd.choice(PRODUCTS)
        qty = rnd.randint(1, max_qty * qty_mult)
        list_fen = price * qty
        rate = settings.discount_per_mille(tier)
        paid = list_fen * rate // 1000
        earned = paid // 100 * settings.points_per_yuan(tier)
        noon = _noon(when)
        b.purchases.append(dict(
            id=pid, receipt_no=f"BP-{pid:09d}", customer_id=fid, membership_id=mid, account_id=aid,
            card_number=card, purchased_on=when, payment_method=rnd.choice(PAYMENTS), list_total_fen=list_fen,
            discount_total_fen=list_fen - paid, paid_total_fen=paid, rate_per_mille=rate,
            discount_reason="tier" if rate < 1000 else "none", points_earned=earned, spend_counted_fen=paid,
            status="complete", recorded_by_id=owner_id, created_at=noon))
        b.lines.append(dict(purchase_id=pid, line_no=1, product=product, quantity=qty, unit_price_fen=price,
                            special_price=False, group_buy=False, list_fen=list_fen, paid_fen=paid))
        if earned:
            b.points.append(dict(account_id=aid, kind="earn", points=earned, on=when,
                                 expires_on=points_expire_on(when, settings), ref=f"BP-{pid:09d}", note="",
                                 actor_id=owner_id, created_at=noon))
            balance += earned
        window.append((when, paid))
        spend = sum(v for d, v in window if d > when - timedelta(days=365))
        reached = (Tier.GOLD if spend >= settings.gold_spend_fen else
                   Tier.SILVER if spend >= settings.silver_spend_fen else Tier.REGULAR)
        if reached > tier:
            b.events.append(dict(membership_id=mid, account_id=None, kind="tier", from_value=tier.value,
                                 to_value=reached.value, cause="upgrade", reason="", actor_id=owner_id, at=noon))
            b.tiers.append(dict(membership_id=mid, changed_on=when, from_tier=tier.value, to_tier=reached.value,
                                cause="upgrade", at=noon))
            b.upgrades += 1
            tier = reached
    b.memberships.append(dict(
        id=mid, customer_id=fid, owner_id=owner_id, unit_path=unit_path, tier=tier.value, status="active",
        joined_on=joined, join_cause=cause, last_purchase_on=days[-1], created_at=at, updated_at=_noon(days[-1])))
    b.accounts.append(dict(
        id=aid, membership_id=mid, card_type="standard", named=named, status="active", issued_on=joined,
        expires_on=card_expires_on(joined, settings), points_balance=balance, stored_value_fen=0,
        created_at=at, updated_at=at))


def _write_batch(db: Database, files: list, rnd: random.Random, share: float, regions: dict[str, str],
                 today: date, settings, named: bool) -> _Batch:
    with db.write() as s:
        if db.sqlite:
            s.execute(text("PRAGMA cache_size=-262144"))
        # Whether a file joins follows from its (random) id, so a later run never picks a file an
        # earlier run left out: the share of members stays ``share`` however many runs.
        chosen = [f for f in files if f[0].int % 10_000 < share * 10_000]
        by_region: dict[str, int] = {}
        for f in chosen:
            by_region[regions[f[2]]] = by_region.get(regions[f[2]], 0) + 1
        seqs = {r: _take_cards(s, r, k) for r, k in by_region.items()}
        ids = {m.__tablename__: _Ids(s, m, db.sqlite) for m in (Membership, CardAccount, Purchase)}
        b = _Batch()
        for f in chosen:
            region = regions[f[2]]
            seq = seqs[region]
            if seq > CARD_SEQ_MAX:
                continue  # the region's card numbers are used up: the file stays a non-member
            seqs[region] += 1
            _member(b, rnd, f, ids, format_card_number(region, seq), region, seq, today, settings, named)
        conn = s.connection()
        for model, rows in b.tables():
            if rows:
                conn.execute(model.__table__.insert(), rows)
    return b


def not_a_member():
    """The files that are not members yet, as NOT EXISTS (an anti-join): PostgreSQL runs NOT IN
    (subquery) as a subplan per file once the members outgrow work_mem (hours at 1M files)."""
    return ~select(Membership.id).where(Membership.customer_id == CustomerFile.id).exists()


def seed_purchases(db: Database, *, share: float = 0.9, batch: int = 5000, seed: int = 1,
                   password: str | None = None,
                   progress: Callable[[int], None] | None = None) -> PurchaseSeedReport:
    """Make ``share`` of the files that are not members yet into members with two years of purchases.

    Needs the demo company (`portal demo`); run after `portal bench seed N`. Each batch of files
    is one transaction; a run adds to what is there (files already members are left alone)."""
    if not 0 < share <= 1 or batch < 1:
        raise ValueError("share must be in (0, 1] and batch positive")
    report = PurchaseSeedReport()
    t0 = time.perf_counter()
    rnd = random.Random(seed)
    with db.write() as s:
        ensure_company_leader(s, password or demo.demo_password())
        today = programme_today()
        settings = settings_on(s, today)
        named = settings.card_type("standard").named
        regions = _regions(s)
    after = None
    while True:
        with db.read() as s:
            q = (select(CustomerFile.id, CustomerFile.owner_id, CustomerFile.unit_path, CustomerFile.created_at)
                 .where(CustomerFile.erased_at.is_(None), not_a_member())
                 .order_by(CustomerFile.id).limit(batch))
            files = [tuple(r) for r in s.execute(q if after is None else q.where(CustomerFile.id > after))]
        if not files:
            break
        after = files[-1][0]
        b = _write_batch(db, files, rnd, share, regions, today, settings, named)
        report.files += len(files)
        report.members += len(b.memberships)
        report.purchases += len(b.purchases)
        report.upgrades += b.upgrades
        report.rows += sum(len(rows) for _m, rows in b.tables())
        if progress:
            progress(len(files))
    with db.write() as s:  # the report summary of what is there, from the facts, in the database
        rollup.rebuild(s)
        card_rollup.rebuild(s)
        class_window.rebuild(s, today)
    with db.write() as s:  # the audit analytics' summary of the log seeded with the files
        audit_days.catch_up(s)
    if not db.sqlite:
        # Fresh planner statistics after a bulk load (the owner's right: the application role is skipped).
        with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            for table in ("membership", "card_account", "member_card", "member_event", "tier_change",
                          "purchase", "purchase_line", "points_entry", "report_month", "report_product",
                          "report_member", "report_flow", "card_month", "card_issue", "class_member",
                          "class_count", "audit_day", "audit_view_day", "audit_file_day"):
                c.exec_driver_sql(f"ANALYZE {table}")
    else:
        db.refresh_statistics()
    report.seconds = time.perf_counter() - t0
    return report
