"""The demo's membership programme: members, cards, purchases and ledgers made through the
programme's use cases over the last two years, and the reminder notes `portal demo` prints."""
from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from . import clock
from .accounts import service as accounts
from .accounts.models import Role, User
from .accounts.actor import Actor
from .customers.models import CustomerFile
from .org.models import OrgUnit
from .vault import Vault

if TYPE_CHECKING:
    from .demo import DemoSummary


DEMO_PIN = "246810"  # the stored-value member's PIN (printed by `portal demo`)

# (product, unit price in fen)
MOUTAI = ("茅台 飞天 53度 500ml", 149_900)
WULIANGYE = ("五粮液 第八代 500ml", 109_900)
GUOJIAO = ("国窖1573 500ml", 99_900)
FENJIU = ("汾酒 青花30 500ml", 89_900)
JIANNANCHUN = ("剑南春 水晶剑 500ml", 45_900)
LAFITE = ("拉菲传奇 波尔多红葡萄酒 750ml", 29_800)
MACALLAN = ("麦卡伦 12年 雪莉桶 700ml", 78_800)
ZODIAC = ("茅台 生肖纪念酒 500ml", 399_900)
GIFT_BOX = ("礼盒包装", 12_850)
MOONCAKE_SET = ("中秋团购 五粮液礼盒", 168_000)


def _line(product: tuple[str, int], quantity: int, *, special: bool = False, group: bool = False):
    from .membership.rules import PurchaseLine
    return PurchaseLine(product[0], quantity, product[1], special, group)


class _Till:
    """Runs the programme's own use cases as a dated plan, oldest step first: the clock is set to
    noon (Shanghai) of each step's day and put back after, so every row, ledger lot, card number
    and audit entry carries the day it describes, in the order things happened."""

    def __init__(self, s: Session, vault: Vault, today: date) -> None:
        self.s, self.vault, self.today, self.receipts = s, vault, today, 0
        self.steps: list[tuple[int, int, object]] = []
        self.day = today

    def at(self, days_ago: int, step) -> None:
        self.steps.append((days_ago, len(self.steps), step))

    def run(self) -> None:
        from datetime import datetime, time, timezone

        from .membership.rules import PROGRAMME_TZ

        previous = getattr(clock, "_override", None)  # a clock a test may have frozen
        try:
            for days_ago, _, step in sorted(self.steps, key=lambda x: (-x[0], x[1])):
                self.day = self.today - timedelta(days=days_ago)
                clock.set_now(datetime.combine(self.day, time(12), PROGRAMME_TZ).astimezone(timezone.utc))
                step()
        finally:
            clock.set_now(previous)

    def existed(self, f: CustomerFile) -> None:
        """The demo invents each file's age: make it no younger than its first use."""
        if f.created_at > clock.now():
            f.created_at = f.updated_at = clock.now() - timedelta(days=7)

    def sale(self, actor: Actor, *lines, card=None, file: CustomerFile | None = None, payment: str = "cash",
             pin: str | None = None, referrer=None):
        """A sale to record at its step; ``card`` and ``referrer`` may be callables (resolved then)."""
        from .membership import purchases
        from .membership.outcomes import PurchaseRequest

        def step():
            if file is not None:
                self.existed(file)
            self.receipts += 1
            purchases.record_purchase(self.s, self.vault, actor, PurchaseRequest(
                receipt_no=f"POS{self.day:%Y%m%d}-{self.receipts:04d}", lines=tuple(lines), payment_method=payment,
                card_number=card() if callable(card) else card, customer_id=file.id if file else None, pin=pin,
                referrer_card=referrer() if callable(referrer) else referrer))
        return step


def _birthdays_this_week(s: Session, vault: Vault, books: dict, today: date, want: int = 2) -> list:
    """Up to ``want`` demo customers whose birthday (from the ID number) falls in this week, alice's first."""
    from .membership.overview import week_of
    from .membership.rules import birthday_applies

    start, _ = week_of(today)
    days = [start + timedelta(days=i) for i in range(7)]
    found = []
    for username, (_actor, files) in books.items():
        for f in files:
            raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id) \
                if f.birthday_ct is not None else None
            born = date.fromisoformat(raw) if raw else None
            if any(birthday_applies(born, d) for d in days):
                found.append((username, f))
                if len(found) == want:
                    return found
    return found


def _ensure_programme(s: Session, vault: Vault, summary: DemoSummary) -> None:
    """Members, cards, purchases and ledgers that show every part of the programme, made through
    its use cases as the salespeople and customer service would have, over the last two years.

    Only into a programme without any data (a second run, or a database in real use, is left alone).
    """
    from .membership import applications, cards, members, points
    from .membership.models import Membership, MembershipApplication, Purchase
    from .membership.rules import programme_today

    if any(s.scalar(select(model.id).limit(1)) is not None
           for model in (Membership, Purchase, MembershipApplication)):
        return
    books: dict[str, tuple[Actor, list[CustomerFile]]] = {}
    from .demo import SALESPEOPLE

    for username in SALESPEOPLE:
        user = s.scalar(select(User).where(User.username == username))
        if user is None or not user.is_active or user.role != Role.SALESPERSON:
            continue
        files = list(s.scalars(select(CustomerFile).where(CustomerFile.owner_id == user.id)
                               .order_by(CustomerFile.file_no)))
        if files:
            books[username] = (accounts.actor_for(user, s.get(OrgUnit, user.unit_id)), files)
    cathy_user = s.scalar(select(User).where(User.username == "cathy"))
    if "alice" not in books or len(books["alice"][1]) < 10 or cathy_user is None:
        summary.warnings.append("no membership demo: alice's clients or cathy are missing")
        return
    cathy = accounts.actor_for(cathy_user, s.get(OrgUnit, cathy_user.unit_id))
    bob_user = s.scalar(select(User).where(User.username == "bob", User.role == Role.LEADER))
    bob = accounts.actor_for(bob_user, s.get(OrgUnit, bob_user.unit_id)) if bob_user else None
    till = _Till(s, vault, programme_today())
    birthday = _birthdays_this_week(s, vault, books, till.today)
    taken = {f.id for _, f in birthday}

    def clients(username: str, n: int) -> list[CustomerFile]:
        picked = [f for f in books[username][1] if f.id not in taken][:n] if username in books else []
        taken.update(f.id for f in picked)
        return picked

    def card_of(f: CustomerFile):
        """The file's card in use, looked up when the step runs."""
        def number() -> str:
            m = members.membership_of(s, f.id)
            return members.current_card(s, members.primary_account(s, m).id).number
        return number

    alice = books["alice"][0]
    # Oldest files first: the longest histories go to the files that have been there longest.
    expiring, gold, lost, silver, frozen, stored, referred, applicant = clients("alice", 8)

    # Points earned 706 days ago: they expire within the next 30 days.
    till.at(712, till.sale(alice, _line(JIANNANCHUN, 2), _line(LAFITE, 2), file=expiring))
    till.at(706, till.sale(alice, _line(MOUTAI, 1), _line(LAFITE, 1), card=card_of(expiring)))
    till.at(380, till.sale(alice, _line(FENJIU, 1), card=card_of(expiring)))
    till.at(20, till.sale(alice, _line(JIANNANCHUN, 1), card=card_of(expiring)))
    # Gold by spend: a company's annual order (¥51,564 counted) makes it a member and gold at once.
    till.at(250, till.sale(alice, _line(MOUTAI, 30), _line(WULIANGYE, 6), _line(GIFT_BOX, 2, special=True),
                           file=gold))
    till.at(90, till.sale(alice, _line(ZODIAC, 1), _line(GIFT_BOX, 1, special=True), card=card_of(gold)))
    till.at(30, lambda: points.redeem_points(s, alice, card_of(gold)(), "gift-100"))
    till.at(12, till.sale(alice, _line(GUOJIAO, 2), card=card_of(gold)))
    # A card reported lost and replaced by its salesperson: points and history moved.
    lost_card: list[str] = []
    till.at(200, till.sale(alice, _line(WULIANGYE, 1), _line(LAFITE, 2), file=lost))
    till.at(65, till.sale(alice, _line(FENJIU, 1), card=card_of(lost)))
    till.at(25, lambda: lost_card.append(cards.report_loss(s, alice, card_of(lost)(), "客户钱包丢失，会员卡一并遗失")
                                         .number))
    till.at(24, lambda: cards.replace(s, alice, lost_card[0], "客户挂失后补办新卡"))
    # Silver by spend: joined with ¥8,394, then past ¥10,000 counted (the group-buy line is not counted).
    till.at(150, till.sale(alice, _line(MOUTAI, 5), _line(FENJIU, 1), file=silver))
    till.at(40, till.sale(alice, _line(WULIANGYE, 2), _line(MOONCAKE_SET, 1, group=True), card=card_of(silver)))
    # A frozen card.
    till.at(120, till.sale(alice, _line(GUOJIAO, 1), file=frozen))
    till.at(15, lambda: cards.freeze(s, alice, card_of(frozen)(), "客户出国半年，暂停使用"))
    # Joined by application (cathy approved); stored value with a PIN, part spent.
    application: list[int] = []

    def apply(f: CustomerFile, note: str, exception: str) -> None:
        till.existed(f)
        application.append(applications.submit_application(s, alice, f.id, card_type="standard", note=note).id)
        if bob is not None:  # no spend yet: alice's leader documents an exception for customer service
            applications.grant_exception(s, bob, application[-1], exception)

    till.at(96, lambda: apply(stored, "年度礼品采购客户", "年度礼品采购客户，预付储值，特批入会"))
    till.at(95, lambda: applications.review_application(s, cathy, application[0], approve=True))
    till.at(60, lambda: points.recharge_stored_value(s, alice, card_of(stored)(), 500_000,
                                                      payment_method="bank_transfer", note="客户充值"))
    till.at(60, lambda: cards.set_pin(s, alice, card_of(stored)(), DEMO_PIN))
    till.at(10, till.sale(alice, _line(MACALLAN, 1), card=card_of(stored), payment="stored_value", pin=DEMO_PIN))
    # Referred by the gold member (100 referral points to them).
    till.at(70, till.sale(alice, _line(MOUTAI, 1), file=referred, referrer=card_of(gold)))
    # An application waiting for customer service, and a sale made without a card (claimable).
    till.at(2, lambda: apply(applicant, "老客户介绍，计划下月大额采购", "老客户介绍，下月大额采购，特批入会"))
    till.at(3, till.sale(alice, _line(MOUTAI, 1), _line(GIFT_BOX, 1, special=True)))
    # Members whose birthday is this week.
    for username, f in birthday:
        till.at(45, till.sale(books[username][0], _line(GUOJIAO, 1), file=f))
    # A few of the other salespeople's clients.
    for f in clients("amy", 1):
        till.at(100, till.sale(books["amy"][0], _line(MOUTAI, 2), file=f))
        till.at(33, till.sale(books["amy"][0], _line(LAFITE, 3), card=card_of(f)))
    for f in clients("charlie", 1):  # charlie's reminder list has points due to expire too
        till.at(715, till.sale(books["charlie"][0], _line(MOUTAI, 1), file=f))
        till.at(709, till.sale(books["charlie"][0], _line(WULIANGYE, 1), card=card_of(f)))
        till.at(30, till.sale(books["charlie"][0], _line(JIANNANCHUN, 1), card=card_of(f)))
    for f in clients("chris", 1):
        till.at(60, till.sale(books["chris"][0], _line(JIANNANCHUN, 2), file=f))
    for f in clients("frank", 1):
        till.at(80, till.sale(books["frank"][0], _line(MOUTAI, 1), _line(MOONCAKE_SET, 1, group=True), file=f))
    for f in clients("fiona", 1):  # ¥596 then ¥459: joins on the cumulative ¥1,000
        till.at(200, till.sale(books["fiona"][0], _line(LAFITE, 2), file=f))
        till.at(100, till.sale(books["fiona"][0], _line(JIANNANCHUN, 1), file=f))
    till.run()
    s.flush()
    summary.members_created = s.scalar(select(func.count()).select_from(Membership)) or 0
    summary.purchases_created = s.scalar(select(func.count()).select_from(Purchase)) or 0


def programme_notes(s: Session, vault: Vault) -> list[str]:
    """What to try in the demo's membership programme (card numbers, the PIN, a receipt), if loaded."""
    from .membership.members import current_card
    from .membership.models import (CardAccount, MemberCard, Membership, MembershipApplication,
                                    PointsEntryRow, Purchase)
    from .membership.overview import week_of
    from .membership.programme import settings_on
    from .membership.rules import birthday_applies, programme_today

    notes = []
    sv = s.scalar(select(Purchase).where(Purchase.payment_method == "stored_value").order_by(Purchase.id).limit(1))
    if sv is not None and sv.account_id is not None:
        account = s.get(CardAccount, sv.account_id)
        card = current_card(s, account.id)
        f = s.get(CustomerFile, sv.customer_id)
        notes.append(f"stored value: card {card.number if card else sv.card_number} (file {f.file_no}) holds "
                     f"¥{account.stored_value_fen / 100:,.2f}; the member's PIN is {DEMO_PIN}")
    anon = s.scalar(select(Purchase).where(Purchase.customer_id.is_(None), Purchase.claimed_at.is_(None))
                    .order_by(Purchase.id.desc()).limit(1))
    if anon is not None:
        notes.append(f"sold without a card: receipt {anon.receipt_no} ({anon.purchased_on.isoformat()}); cathy "
                     f"(customer service) can credit its points to a card within 30 days")
    app = s.scalar(select(MembershipApplication).where(MembershipApplication.status == "pending")
                   .order_by(MembershipApplication.id).limit(1))
    if app is not None:
        notes.append(f"membership application for file {s.get(CustomerFile, app.customer_id).file_no} "
                     "waits for cathy's review")
    frozen = s.scalar(select(MemberCard.number).join(CardAccount, CardAccount.id == MemberCard.account_id)
                      .where(CardAccount.status == "frozen", MemberCard.status == "current").limit(1))
    replaced = s.execute(select(MemberCard.number, MemberCard.replaces_id)
                         .where(MemberCard.replaces_id.is_not(None)).limit(1)).first()
    if frozen:
        notes.append(f"frozen card: {frozen}")
    if replaced:
        old = s.get(MemberCard, replaced.replaces_id)
        notes.append(f"lost card {old.number}, replaced by {replaced.number}")
    if notes:
        today = programme_today()
        horizon = today + timedelta(days=settings_on(s, today).expiry_warning_days)
        due = sorted(set(s.scalars(
            select(User.username).join(Membership, Membership.owner_id == User.id)
            .join(CardAccount, CardAccount.membership_id == Membership.id)
            .join(PointsEntryRow, PointsEntryRow.account_id == CardAccount.id)
            .where(Membership.status == "active", PointsEntryRow.points > 0,
                   PointsEntryRow.expires_on > today, PointsEntryRow.expires_on <= horizon))))
        start, _ = week_of(today)
        week = [start + timedelta(days=i) for i in range(7)]
        born = set()
        for f, owner in s.execute(select(CustomerFile, User.username)
                                  .join(Membership, Membership.customer_id == CustomerFile.id)
                                  .join(User, User.id == Membership.owner_id)
                                  .where(Membership.status == "active", CustomerFile.birthday_ct.is_not(None))):
            raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id)
            if raw and any(birthday_applies(date.fromisoformat(raw), d) for d in week):
                born.add(owner)
        active = s.scalar(select(func.count()).select_from(Membership).where(Membership.status == "active"))

        def names(users) -> str:
            users = sorted(users)
            return " and ".join([", ".join(users[:-1]), users[-1]] if len(users) > 1 else users) or "nobody"

        notes.insert(0, f"{active} members. Reminder lists (their salespeople's and leaders'): points due "
                        f"to expire for members of {names(due)}; birthdays this week for members of {names(born)}")
    return notes
