"""What the pages show: the membership section of a file, and each salesperson's reminder lists.

Lists are scoped in SQL by the policy (``member_scope``); only rows the viewer may see are
read, and names leave this module masked.
"""
from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import NamedTuple

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from ..access.models import AccessRequest
from ..access.service import grant_relation
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..customers.rules import mask_name
from ..driver_sql import Prebuilt
from ..policy import Action, can
from ..policy.scope import member_scope
from ..vault import Vault
from . import file_reads
from .applications import condition_met, joining_condition
from .members import spend_in_window_fen, tier_points, window_spend_fen
from .models import (CardAccount, MemberEvent, Membership, MembershipApplication, PointsEntryRow, Redemption,
                     StoredValueEntryRow)
from .outcomes import LedgerLine, MemberPanel
from .points import expiring_lots, points_view
from .programme import settings_on, settings_read
from .rules import ProgrammeSettings, birthday_applies, programme_today

MEMBER_ACTIONS = (Action.MEMBER_PURCHASE, Action.MEMBER_REDEEM, Action.MEMBER_STORED_VALUE,
                  Action.MEMBER_ADJUST, Action.MEMBER_APPLY, Action.MEMBER_TIER, Action.CARD_MANAGE,
                  Action.CARD_CANCEL, Action.MEMBER_CLAIM, Action.MEMBER_EXCEPTION)


def allowed_member_actions(s: Session, actor: Actor, f: CustomerFile, grant_id: int | None) -> set[str]:
    rel = grant_relation(s.get(AccessRequest, grant_id)) if grant_id else None
    return {a.value for a in MEMBER_ACTIONS
            if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path, grant=rel)}


# Built once: the file page reads it on every view of a file with an application.
_PENDING = (select(MembershipApplication).where(MembershipApplication.customer_id == bindparam("cid"))
            .order_by(MembershipApplication.id.desc()).limit(1))


# The member's latest ledger lines, redemptions and history, on the driver's cursor (no ORM objects).
_SV = StoredValueEntryRow
_STORED = Prebuilt(select(_SV.id, _SV.kind, _SV.amount_fen, _SV.on, _SV.ref, _SV.note)
                   .where(_SV.account_id == bindparam("aid")).order_by(_SV.id.desc()).limit(100))
_REDEMPTIONS = Prebuilt(select(Redemption.on, Redemption.item_name, Redemption.points, Redemption.value_fen)
                        .where(Redemption.account_id == bindparam("aid")).order_by(Redemption.id.desc()).limit(20))
_EVENTS = Prebuilt(select(MemberEvent.at, MemberEvent.kind, MemberEvent.from_value, MemberEvent.to_value,
                          MemberEvent.cause, MemberEvent.reason, MemberEvent.actor_id, User.username)
                   .outerjoin(User, User.id == MemberEvent.actor_id)
                   .where(MemberEvent.membership_id == bindparam("mid")).order_by(MemberEvent.id.desc()).limit(100))


class RedemptionLine(NamedTuple):
    on: date
    item_name: str
    points: int
    value_fen: int


# A probe on the driver's cursor for what most files have none of (an application): an ORM query
# that finds nothing still costs about twenty times as much CPU.
_HAS_APPLICATION = Prebuilt(select(MembershipApplication.id)
                            .where(MembershipApplication.customer_id == bindparam("cid")).limit(1))


def _any(s: Session, probe: Prebuilt, customer_id) -> bool:
    s.flush()  # as the ORM query would (autoflush): rows this session added are seen
    return bool(probe.all(s.connection(), {"cid": customer_id}))


def file_section(s: Session, actor: Actor, f: CustomerFile, grant_id: int | None = None
                 ) -> tuple[MemberPanel | None, dict | None, ProgrammeSettings]:
    """The membership section of a file the caller has already authorised (and audited) the
    view of: (the member's panel or None, the non-member's figures or None, the settings in
    effect), each row read once. ``f`` needs only ``id``, ``owner_id`` and ``unit_path``."""
    today = programme_today()
    s.flush()  # the reads run on the session's connection: nothing of this session unwritten
    conn = s.connection()
    settings = settings_read(conn, today)
    m = file_reads.membership_row(conn, f.id)
    allowed = allowed_member_actions(s, actor, f, grant_id)
    # The 30 latest purchases (both branches show them): none read means none at all.
    bought = file_reads.purchases(conn, f.id)
    member = _panel(s, f, m, allowed, today, settings, bought) if m is not None else None
    info = (_non_member(s, f, m, allowed, today, settings, bought)
            if member is None or member.status != "active" else None)
    return member, info, settings


def panel(s: Session, actor: Actor, f: CustomerFile, grant_id: int | None = None) -> MemberPanel | None:
    """The membership section of a file the caller has already authorised (and audited) the view of."""
    return file_section(s, actor, f, grant_id)[0]


def _panel(s: Session, f, m, allowed: set[str], today: date, settings: ProgrammeSettings,
           bought: list[dict]) -> MemberPanel:
    """``m``: the membership (a Membership or file_reads.MembershipRow); ``bought``: the file's
    latest purchases (file_reads.purchases)."""
    accounts = []
    conn = s.connection()
    for account, cards in file_reads.accounts_with_cards(conn, m.id):
        # One read of the points ledger gives what is redeemable, what expires soon and the latest lines.
        can_redeem, expiring, latest = points_view(s, account, today, settings, 100)
        points = [LedgerLine(i, kind, amount, on, ref, note, expires_on)
                  for i, kind, amount, on, ref, _lot, note, expires_on in latest]
        stored = [LedgerLine(*row) for row in _STORED.all(conn, {"aid": account.id})]
        accounts.append({
            "account": account, "cards": cards, "current": next((c for c in cards if c.status == "current"), None),
            "redeemable": can_redeem, "expiring": expiring,
            "points": points, "stored": stored, "expired": account.expires_on <= today,
            "redemptions": [RedemptionLine(*row) for row in _REDEMPTIONS.all(conn, {"aid": account.id})],
        })
    events = _EVENTS.all(conn, {"mid": m.id})
    history = [{"at": at, "kind": kind, "from": before, "to": after, "cause": cause, "reason": reason,
                "by": (username or "?") if actor_id else "system"}
               for at, kind, before, after, cause, reason, actor_id, username in events]
    return MemberPanel(
        membership_id=m.id, tier=m.tier, tier_floor=m.tier_floor, tier_ceiling=m.tier_ceiling,
        status=m.status, joined_on=m.joined_on, join_cause=m.join_cause, last_purchase_on=m.last_purchase_on,
        points_12m=tier_points(s, m, today, settings, since=m.spend_counted_from),
        spend_12m_fen=spend_in_window_fen(s, f.id, today, settings.tier_window_months, m.spend_counted_from),
        accounts=accounts, history=history, purchases=bought, allowed=allowed,
        coupons=file_reads.coupons(conn, m.id))


def _non_member(s: Session, f, m, allowed: set[str], today: date, settings: ProgrammeSettings,
                bought: list[dict]) -> dict:
    # One read of the joining window gives both the spend shown and the condition it meets; a
    # file with no purchase at all (most) has spent nothing in it, without asking.
    window = window_spend_fen(s, f.id, today, settings.join_window_months) if bought else (0, 0)
    return {"spend_window_fen": window[1], "condition": condition_met(window, settings),
            "settings": settings, "purchases": bought,
            "application": s.scalar(_PENDING, {"cid": f.id}) if _any(s, _HAS_APPLICATION, f.id) else None,
            "allowed": allowed, "membership": m}


# ---------------------------------------------------------------- reminder lists

@dataclass
class ReminderRow:
    customer_id: uuid.UUID
    file_no: str
    masked_name: str
    tier: str
    card_number: str
    points: int = 0
    expires_on: date | None = None
    birthday: str = ""  # "MM-DD"
    owner: str = ""


def _owners(s: Session, ids) -> dict[int, str]:
    """Usernames by id, in one query."""
    return {u.id: u.username for u in s.scalars(select(User).where(User.id.in_(set(ids))))} if ids else {}


def due_to_expire(s: Session, vault: Vault, actor: Actor, today: date | None = None) -> list[ReminderRow]:
    """Members in the viewer's scope with points expiring in the next ``expiry_warning_days``."""
    from .members import current_card
    today = today or programme_today()
    settings = settings_on(s, today)
    horizon = today + timedelta(days=settings.expiry_warning_days)
    candidates = s.execute(
        select(CardAccount, Membership, CustomerFile)
        .join(Membership, Membership.id == CardAccount.membership_id)
        .join(CustomerFile, CustomerFile.id == Membership.customer_id)
        .where(member_scope(actor, Action.MEMBER_LISTS), Membership.status == "active",
               CardAccount.status != "cancelled", CardAccount.points_balance > 0,
               CardAccount.id.in_(select(PointsEntryRow.account_id).where(
                   PointsEntryRow.points > 0, PointsEntryRow.expires_on > today,
                   PointsEntryRow.expires_on <= horizon)))
        .order_by(CardAccount.id)).all()
    owners = _owners(s, [m.owner_id for _, m, _ in candidates])
    # Audit before anything is decrypted (names are decrypted only to be masked).
    audit.record(s, actor, "member.lists", object_type="list", object_id="due_to_expire",
                 fields=["name"], detail=f"{len(candidates)} candidate accounts")
    rows = []
    for account, m, f in candidates:
        lots = expiring_lots(s, account, today)
        if not lots:
            continue
        card = current_card(s, account.id)
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        rows.append(ReminderRow(f.id, f.file_no, mask_name(name), m.tier, card.number if card else "",
                                points=sum(lot.remaining for lot in lots), expires_on=lots[0].expires_on,
                                owner=owners.get(m.owner_id, "?")))
    rows.sort(key=lambda r: (r.expires_on, r.file_no))
    return rows


def week_of(today: date) -> tuple[date, date]:
    start = today - timedelta(days=today.weekday())
    return start, start + timedelta(days=6)


def birthdays_this_week(s: Session, vault: Vault, actor: Actor, today: date | None = None) -> list[ReminderRow]:
    """Active members in the viewer's scope whose birthday falls in this week (Monday to Sunday)."""
    from .members import primary_account, current_card
    today = today or programme_today()
    start, end = week_of(today)
    days = [start + timedelta(days=i) for i in range(7)]
    found = s.execute(select(Membership, CustomerFile)
                      .join(CustomerFile, CustomerFile.id == Membership.customer_id)
                      .where(member_scope(actor, Action.MEMBER_LISTS), Membership.status == "active",
                             CustomerFile.birthday_ct.is_not(None))
                      .order_by(Membership.id)).all()
    owners = _owners(s, [m.owner_id for m, _ in found])
    audit.record(s, actor, "member.lists", object_type="list", object_id="birthdays",
                 fields=["name", "birthday"], detail=f"week of {start.isoformat()}, {len(found)} members read")
    rows = []
    for m, f in found:
        raw = vault.decrypt(f.birthday_ct, table="customer_file", column="birthday", row_id=f.id)
        try:
            born = date.fromisoformat(raw) if raw else None
        except ValueError:
            born = None
        day = next((d for d in days if birthday_applies(born, d)), None)
        if day is None:
            continue
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        account = primary_account(s, m)
        card = current_card(s, account.id) if account else None
        rows.append(ReminderRow(f.id, f.file_no, mask_name(name), m.tier, card.number if card else "",
                                expires_on=day, birthday=day.strftime("%m-%d"), owner=owners.get(m.owner_id, "?")))
    rows.sort(key=lambda r: (r.expires_on, r.file_no))
    return rows


# ---------------------------------------------------------------- the review queue

def application_rows(s: Session, vault: Vault, actor: Actor, apps) -> list[dict]:
    """Each application with its file number and the applicant's masked name.

    Every file is opened through the policy (member.review); the list is audited before any name
    is decrypted, and names leave here masked.
    """
    from ..customers.service import NotFound, open_for
    from ..policy import PermissionDenied
    opened = []
    for app in apps:
        try:
            f, _grant = open_for(s, actor, app.customer_id, Action.MEMBER_REVIEW)
        except (PermissionDenied, NotFound):
            continue
        opened.append((app, f))
    if not opened:
        return []
    audit.record(s, actor, Action.MEMBER_REVIEW.value, object_type="list", object_id="applications",
                 fields=["name"], detail=f"{len(opened)} rows")
    names = _owners(s, [uid for app, _ in opened
                        for uid in (app.submitted_by_id, app.reviewed_by_id, app.exception_by_id)
                        if uid is not None])
    today = programme_today()
    settings = settings_on(s, today)
    card_types = {c.code: c.name for c in settings.card_types}
    rows = []
    for app, f in opened:
        name = vault.decrypt(f.name_ct, table="customer_file", column="name", row_id=f.id) or ""
        condition = joining_condition(s, f.id, today, settings) if app.status == "pending" else None
        rows.append({"app": app, "file_no": f.file_no, "customer_id": f.id, "masked_name": mask_name(name),
                     "condition": condition or ("exception" if app.exception_by_id else ""),
                     "exception_by": names.get(app.exception_by_id, "") if app.exception_by_id else "",
                     "card_type": card_types.get(app.card_type, app.card_type),
                     "submitted_by": names.get(app.submitted_by_id, "?"),
                     "reviewed_by": names.get(app.reviewed_by_id, "") if app.reviewed_by_id else ""})
    return rows
