"""Demo data for sales on credit: the credit terms' first version, a catalogue, customers with
credit, an approved application, paid, partly paid and overdue orders, cash on delivery not yet
collected, a written-off debt with its liabilities (the line leader's fine settled, the operator's
partly paid back), and today's overdue reminders in the inbox. Made through the use cases, on the
days they would have happened.

Idempotent: nothing is added once the catalogue has a product (a second `portal demo`, or a
database in real use, is left alone).
"""
from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import clock
from .accounts import service as accounts
from .accounts.models import User
from .catalogue import service as catalogue
from .catalogue.models import ProductVersion
from .credit import accounts as credit
from .credit import liabilities, receivables, reminders, sales
from .credit import terms as credit_terms
from .credit.rules import INSTITUTIONAL_CATEGORIES, CreditTerms
from .customers.models import CustomerFile
from .membership.rules import PROGRAMME_TZ, programme_today
from .org.models import OrgUnit
from .vault import Vault

PRODUCTS = [("MT53", "飞天茅台 53度 500ml", 6, 299_900, 269_900),
            ("WLY52", "五粮液 第八代 52度 500ml", 6, 139_900, 109_900),
            ("GJ1573", "国窖1573 52度 500ml", 6, 129_900, 99_900),
            # The demo's sales use the house wine: small sums that leave the programme's tiers alone.
            ("HJ42", "家宴酒 42度 500ml", 6, 9_900, 7_900)]


def _actor(s: Session, username: str):
    u = s.scalar(select(User).where(User.username == username, User.is_active.is_(True)))
    return accounts.actor_for(u, s.get(OrgUnit, u.unit_id)) if u is not None else None


def seed(s: Session, vault: Vault, summary) -> None:
    if s.scalar(select(ProductVersion.id).limit(1)) is not None:
        return
    erin, alice, bob, grace = _actor(s, "erin"), _actor(s, "alice"), _actor(s, "bob"), _actor(s, "grace")
    if not (erin and alice and bob and grace):
        summary.warnings.append("no credit demo: erin, alice, bob or grace is missing")
        return
    files = list(s.scalars(select(CustomerFile).where(CustomerFile.owner_id == alice.user_id)
                           .order_by(CustomerFile.file_no)))
    inst = [f for f in files if f.category in INSTITUTIONAL_CATEGORIES]
    indiv = [f for f in files if f.category not in INSTITUTIONAL_CATEGORIES]
    if len(inst) < 1 or len(indiv) < 2:
        summary.warnings.append("no credit demo: alice needs an institutional and two individual clients")
        return
    a, b, c = inst[-1], indiv[-1], indiv[-2]
    today = programme_today()
    previous = getattr(clock, "_override", None)

    def on(days_ago: int):
        day = today - timedelta(days=days_ago)
        clock.set_now(datetime.combine(day, time(12), PROGRAMME_TZ).astimezone(timezone.utc))
        return day

    def sell(f, receipt, code, boxes, terms="credit", **kw):
        return sales.sell_on_terms(s, vault, alice, sales.TermsSale(
            customer_id=f.id, receipt_no=receipt, items=(sales.Item(code, boxes),), terms=terms, **kw))[0].id

    try:
        day = on(200)
        credit_terms.save_terms(s, erin, CreditTerms(), effective_from=day, today=day,
                                reason="按会员管理方案（种子 000）的授信额度与账期")
        for code, name, bpb, list_fen, group_fen in PRODUCTS:
            catalogue.add_version(s, erin, catalogue.ProductInput(
                code=code, name=name, bottles_per_box=bpb, list_price_fen=list_fen, group_price_fen=group_fen,
                active_from=today - timedelta(days=200), note="经销商报价单"), today=today - timedelta(days=200))
        on(160)
        for f in (a, b, c):
            credit.grant_credit(s, bob, f.id, "老客户，回款记录良好")
        # c: bought, never paid, written off: alice owes it in full, bob is fined 10 %.
        on(150)
        bad = sell(c, "CR-DEMO-01", "HJ42", 2)
        on(148)
        receivables.deliver(s, alice, bad)
        on(100)
        owed = {li.role: li for li in receivables.write_off(s, bob, bad, reason="客户失联，多次催收无果，作坏账核销")}
        # The fine is paid at once (grace, above bob); alice pays back her part from her pay.
        day = on(95)
        liabilities.settle(s, grace, owed["line_leader"].id, amount_fen=owed["line_leader"].amount_fen, paid_on=day,
                           method="transfer", note="连带责任罚款一次付清")
        for days_ago in (70, 40):
            day = on(days_ago)
            liabilities.settle(s, bob, owed["operator"].id, amount_fen=20_000, paid_on=day, method="payroll",
                               note="从当月工资中扣回")
        # a: paid in full.
        on(100)
        paid = sell(a, "CR-DEMO-02", "HJ42", 4)
        on(98)
        receivables.deliver(s, alice, paid)
        on(80)
        receivables.record_payment(s, alice, paid, amount_fen=4 * 6 * 7_900, method="transfer",
                                   reference="网银 20xx")
        # b: partly paid and overdue (more than 30 days: new credit sales are blocked).
        on(60)
        late = sell(b, "CR-DEMO-03", "HJ42", 3)
        on(58)
        receivables.deliver(s, alice, late)
        on(40)
        receivables.record_payment(s, alice, late, amount_fen=50_000, method="cash", received_by="alice")
        # a: an approved application for one order above the 10-box limit, delivered, not yet due.
        on(12)
        app = credit.apply_for_credit(s, alice, a.id, reason="年会用酒，一次订货较多", extra_boxes=4, extra_days=0)
        on(11)
        credit.decide(s, bob, app.id, approve=True, note="同意，本单有效")
        big = sell(a, "CR-DEMO-04", "HJ42", 12, application_id=app.id)
        on(10)
        receivables.deliver(s, alice, big)
        # a: cash on delivery, delivered and not collected: due at once.
        on(5)
        cod = sell(a, "CR-DEMO-05", "HJ42", 1, terms="cod")
        on(4)
        receivables.deliver(s, alice, cod)
        # a: a special price approved two days ago, usable once within 7 days (no invoice).
        on(3)
        disc = credit.apply_for_discount(s, alice, a.id, reason="竞品价格压力，客户长期合作",
                                         product_code="GJ1573", price_fen=89_900, group_price_fen=99_900)
        on(2)
        credit.decide(s, bob, disc.id, approve=True, note="一次性特价")
    finally:
        clock.set_now(previous)
    # Today's overdue reminders in the inboxes (a later `portal jobs overdue-reminders` today posts nothing).
    reminders.post_overdue_reminders(s, today)
