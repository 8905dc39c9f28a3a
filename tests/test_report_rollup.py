"""report_month and its siblings (report_product, report_member, report_flow), the reports'
summaries, kept in the transactions of the facts: after a seeded mix of purchases, joinings,
returns, missed-points claims, stored-value recharges, card replacements, tier changes, reassignments, the daily job,
memberships ended and one restarted, they equal the summaries rebuilt from the facts for every key,
and the overview and the monthly unit report give the same figures from them as the live queries."""
from __future__ import annotations

import importlib.util
import random
import uuid
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import select, text

from portal.customers import service as customers
from portal.customers.rules import InvalidField
from portal.customers.service import InvalidInput
from portal.membership import cards as cards_, jobs, members, points, purchases
from portal.membership.models import Membership, Purchase
from portal.membership.outcomes import PurchaseRequest
from portal.membership.rules import PurchaseLine
from portal.reports import monthly, overview, products, rollup, summaries
from portal.reports.filters import Period, ReportFilter, month_period
from portal.policy import PermissionDenied
from portal.reports.models import ReportFlow, ReportMember, ReportMonth, ReportProduct

REFUSED = (InvalidField, InvalidInput, PermissionDenied)


def _summary(s) -> dict:
    """Every summary's non-zero rows by key."""
    out = {}
    for table, figures in ((ReportMonth, rollup.FIGURES), (ReportProduct, products.FIGURES),
                           (ReportMember, summaries.MEMBER_FIGURES), (ReportFlow, ("n",))):
        keys = [c.name for c in table.__table__.primary_key.columns]
        for r in s.scalars(select(table)).all():
            if any(getattr(r, f) for f in figures):
                out[(table.__tablename__, *(getattr(r, k) for k in keys))] = tuple(int(getattr(r, f)) for f in figures)
    return out


def _play(db, vault, story, clock_at, seed: int) -> list[str]:
    """A seeded mix of the use cases over five months (crossing a quarter); the months touched."""
    rnd = random.Random(seed)
    files = [uuid.UUID(f) for f in story.files["alice"]]
    owner = {f: "alice" for f in files}
    cards: dict[uuid.UUID, str] = {}
    receipts: list[tuple[str, uuid.UUID | None]] = []
    day, n = datetime(2026, 1, 5, 4, tzinfo=timezone.utc), 0
    months = set()
    done: set[str] = set()
    for _step in range(60):
        day += timedelta(days=rnd.randint(0, 4))
        clock_at(day)
        today = day.date()
        n += 1
        f = rnd.choice(files)
        who = story.actor(db, owner[f])
        op = rnd.random()
        kind = ("sale" if op < 0.42 else "return" if op < 0.52 and receipts else "claim" if op < 0.6 and cards
                else "recharge" if op < 0.63 and cards else "replace" if op < 0.66 and cards else "tier" if op < 0.78 else "reassign" if op < 0.9
                else "daily")
        on = today - timedelta(days=rnd.choice((0, 0, 3, 12)))
        months.add(f"{on:%Y-%m}")
        try:
            with db.write() as s:
                if kind == "sale":  # a sale to the file (the card when it has one; may make it a member)
                    yuan = rnd.choice((120, 400, 700, 2_000, 9_000))
                    req = PurchaseRequest(receipt_no=f"RU-{n}", lines=(PurchaseLine("茅台", 1, yuan * 100),),
                                          payment_method="cash", purchased_on=on,
                                          card_number=cards.get(f), customer_id=None if f in cards else f)
                    out = purchases.record_purchase(s, vault, who, req)
                    if out.card_number:
                        cards[f] = out.card_number
                    receipts.append((out.receipt_no, f))
                elif kind == "return":
                    receipt, rf = rnd.choice(receipts)
                    purchases.return_purchase(s, vault, story.actor(db, owner[rf]) if rf else who, receipt,
                                              "customer changed mind")
                elif kind == "claim":  # a sale without the card, its points claimed afterwards
                    req = PurchaseRequest(receipt_no=f"RU-{n}", lines=(PurchaseLine("茅台", 1, 80_000),),
                                          payment_method="cash", purchased_on=on)
                    purchases.record_purchase(s, vault, who, req)
                    cf = rnd.choice(sorted(cards))
                    s.flush()
                    purchases.claim_missed_points(s, story.actor(db, "cathy"), f"RU-{n}", cards[cf],
                                                  "forgot the card")
                    receipts.append((f"RU-{n}", cf))
                elif kind == "recharge":  # stored value on a card
                    points.recharge_stored_value(s, who, cards[rnd.choice(sorted(cards))], rnd.choice((5_000, 20_000)))
                elif kind == "replace":  # a new card number on the same account
                    cf = rnd.choice(sorted(cards))
                    cards[cf] = cards_.replace(s, story.actor(db, owner[cf]), cards[cf], "the card is worn out").number
                elif kind == "tier":  # a leader's decision
                    members.set_tier(s, story.actor(db, "bob"), f, tier=rnd.choice(("regular", "silver", "gold",
                                                                                      "platinum")),
                                     reason="a leader's decision")
                elif kind == "reassign":  # the file changes hands (and back)
                    to = "bob" if owner[f] == "alice" else "alice"
                    customers.reassign_file(s, story.actor(db, "bob"), f, to, "covering for a colleague")
                    owner[f] = to
                else:  # the daily job (expiry, tier reviews, endings), each member in its own transaction
                    jobs.run_daily(db, today)
        except REFUSED:
            continue
        done.add(kind)
    assert done == {"sale", "return", "claim", "recharge", "replace", "tier", "reassign", "daily"}
    # Two years without a purchase end the memberships; a sale restarts one (a new joining month).
    day += timedelta(days=800)
    clock_at(day)
    jobs.run_daily(db, day.date())
    with db.write() as s:
        f = files[0]
        req = PurchaseRequest(receipt_no="RU-restart", lines=(PurchaseLine("茅台", 1, 900_000),),
                              payment_method="cash", purchased_on=day.date(), customer_id=f)
        purchases.record_purchase(s, vault, story.actor(db, owner[f]), req)
    months.add(f"{day:%Y-%m}")
    return sorted(months)


def _figures(rep, keys):
    return {k: rep.table(k).rows for k in keys}


OVERVIEW = ("members", "tiers_over_time", "joined", "moves", "spend", "spend_month", "points", "liability")
MONTHLY = ("summary", "units", "products")


def test_the_summary_equals_the_facts_and_the_reports_read_the_same_figures(db, vault, story, clock_at,
                                                                             monkeypatch):
    months = _play(db, vault, story, clock_at, seed=13)
    with db.read() as s:
        kept = _summary(s)
        assert s.scalar(select(Purchase.id).where(Purchase.status == "returned")) is not None
    with db.write() as s:
        rollup.rebuild(s)
    with db.read() as s:
        assert _summary(s) == kept and kept
        assert {k[0] for k in kept} == {"report_month", "report_product", "report_member", "report_flow"}
        assert any(k[0] == "report_member" and k[4] == "ended" for k in kept)
        assert any(k[0] == "report_member" and v[3] for k, v in kept.items())  # stored value held
        assert any(k[0] == "report_flow" and k[5] == "move" for k in kept)
        assert any(k[0] == "report_flow" and k[5:7] == ("card", "replacement") for k in kept)
        assert any(k[0] == "report_flow" and k[5] == "act" for k in kept)
    # Migrations 0028's and 0032's backfills (self-contained SQL) give the same rows.
    versions = Path(__file__).resolve().parents[1] / "migrations" / "versions"

    def load(name):
        spec = importlib.util.spec_from_file_location(name.split("_")[0], versions / name)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    migration, active = load("0028_report_members_flows_products.py"), load("0032_report_flow_active.py")
    with db.write() as s:
        for table in ("report_member", "report_flow", "report_product"):
            s.execute(text(f"DELETE FROM {table}"))
        for sql in migration._backfill(s.get_bind().dialect.name):
            s.execute(text(sql))
        s.execute(text(active.backfill_sql(s.get_bind().dialect.name)))
    with db.read() as s:
        assert _summary(s) == kept

    periods = [Period("year", date(2026, 1, 1), date(2026, 12, 31)),
               Period("quarter", date(2026, 1, 1), date(2026, 3, 31))]
    periods += [month_period(int(m[:4]), int(m[5:])) for m in months]
    live = lambda *a, **k: None  # noqa: E731
    for reader in ("bob", "alice", "grace"):
        for p in periods:
            for tier in ("", "gold"):
                f = ReportFilter(p, tier=tier)
                with db.read() as s:
                    actor = story.actor(db, reader)
                    assert rollup.summary_where(actor, f) is not None
                    assert summaries.flow_where(actor, f, "join") is not None
                    got = (_figures(overview.overview(s, actor, f), OVERVIEW),
                           _figures(monthly.monthly(s, actor, f), MONTHLY))
                    with monkeypatch.context() as mp:
                        for mod, name in ((rollup, "summary_where"), (summaries, "member_where"),
                                          (summaries, "flow_where")):
                            mp.setattr(mod, name, live)
                        want = (_figures(overview.overview(s, actor, f), OVERVIEW),
                                _figures(monthly.monthly(s, actor, f), MONTHLY))
                for a, b in zip(got, want):
                    for k in a:
                        assert a[k] == b[k], (reader, p, tier, k)
