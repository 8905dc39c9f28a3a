"""Points and stored value as ledgers in the database: the pure ledger decides, these functions write.

Every write locks the card account first (``cards.find_card`` or ``lock_account``), replays
its entries through ``ledger``, appends the new entries and moves the cached balance in the
same transaction, so two redemptions or spends on one account can never both see the old
balance. The database's CHECK (balance >= 0) is the last line.
"""
from __future__ import annotations

from datetime import date

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput
from ..driver_sql import Prebuilt
from ..policy import Action
from ..reports import rollup, summaries
from ..vault import Vault
from . import ledger
from .cards import CardInHand, check_usable, find_card
from .pin_guard import check_holder
from .members import require_reason
from .models import CardAccount, PointsEntryRow, Redemption, StoredValueEntryRow
from .outcomes import RedemptionOutcome, StoredValueOutcome
from .programme import settings_on
from .points_money import cash_for_points
from .rules import Tier, catalogue_item, points_expire_on, programme_today, redemption_open
from .settings import CASH_ITEM


def lock_account(s: Session, account_id: int) -> CardAccount:
    """Lock the account row and read its balances *as locked*: an account object the session
    already holds (read before the lock) is refreshed, else its stale cached balance would be
    written back over a concurrent transaction's."""
    return s.get(CardAccount, account_id, with_for_update=True, populate_existing=True)


# ---------------------------------------------------------------- the points ledger

def _ledger_of(rows: list[PointsEntryRow]) -> list[ledger.PointsEntry]:
    position = {row.id: i for i, row in enumerate(rows)}
    return [ledger.PointsEntry(row.kind, row.points, row.on, ref=row.ref,
                               lot=position.get(row.lot_id) if row.lot_id else None, note=row.note,
                               expires_on=row.expires_on)
            for row in rows]


def _points_rows(s: Session, account_id: int) -> list[PointsEntryRow]:
    return list(s.scalars(select(PointsEntryRow).where(PointsEntryRow.account_id == account_id)
                          .order_by(PointsEntryRow.id)))


def points_entries(s: Session, account_id: int) -> tuple[list[ledger.PointsEntry], list[int]]:
    """The account's entries as the pure ledger sees them (lots by list position) and their row ids."""
    rows = _points_rows(s, account_id)
    return _ledger_of(rows), [row.id for row in rows]


_POINTS_VIEW = Prebuilt(select(PointsEntryRow.id, PointsEntryRow.kind, PointsEntryRow.points, PointsEntryRow.on,
                               PointsEntryRow.ref, PointsEntryRow.lot_id, PointsEntryRow.note,
                               PointsEntryRow.expires_on)
                        .where(PointsEntryRow.account_id == bindparam("aid")).order_by(PointsEntryRow.id))


def points_view(s: Session, account: CardAccount, today: date, settings, latest: int
                ) -> tuple[int, list[ledger.Lot], list[tuple]]:
    """For the file page, from one read of the ledger (on the driver's cursor, in the session's
    transaction): the points redeemable today and the lots expiring soon (as redeemable() and
    expiring_lots() give them), and the ``latest`` entries newest first, each (id, kind, points,
    on, ref, lot_id, note, expires_on)."""
    s.flush()  # as the ORM query would (autoflush)
    rows = _POINTS_VIEW.all(s.connection(), {"aid": account.id})
    position = {row[0]: i for i, row in enumerate(rows)}
    entries = [ledger.PointsEntry(kind, points, on, ref=ref, lot=position.get(lot_id) if lot_id else None,
                                  note=note, expires_on=expires_on)
               for _id, kind, points, on, ref, lot_id, note, expires_on in rows]
    replayed = ledger.lots(entries, settings)  # once for both figures
    return (ledger.redeemable_of(replayed, today), ledger.expiring_of(replayed, today, settings.expiry_warning_days),
            rows[::-1][:latest])


def _append_points(s: Session, actor: Actor, account: CardAccount, new: list[ledger.PointsEntry],
                   row_ids: list[int], settings) -> list[PointsEntryRow]:
    now = clock.now()
    written = []
    for e in new:
        row = PointsEntryRow(account_id=account.id, kind=e.kind.value, points=e.points, on=e.on,
                             expires_on=(e.expires_on or points_expire_on(e.on, settings)) if e.points > 0 else None,
                             lot_id=row_ids[e.lot] if e.lot is not None else None, ref=e.ref,
                             note=e.note[:500], actor_id=actor.user_id, created_at=now)
        s.add(row)
        written.append(row)
        account.points_balance += e.points
    account.updated_at = now
    s.flush()
    rollup.points_written(s, account, written)
    summaries.balances_changed(s, account.membership_id, points=sum(e.points for e in new))
    return written


def credit_points(s: Session, actor: Actor, account: CardAccount, points: int, *, kind: str, on: date,
                  ref: str | None = None, note: str = "") -> PointsEntryRow:
    """Earn, referral, event or a positive adjustment: a new lot."""
    lock_account(s, account.id)
    settings = settings_on(s, on)
    entry = ledger.PointsEntry(kind, points, on, ref=ref, note=note)
    return _append_points(s, actor, account, [entry], [], settings)[0]


def redeemable(s: Session, account: CardAccount, today: date) -> int:
    entries, _ = points_entries(s, account.id)
    return ledger.available_to_redeem(entries, today, settings_on(s, today))


def expiring_lots(s: Session, account: CardAccount, today: date) -> list[ledger.Lot]:
    settings = settings_on(s, today)
    entries, _ = points_entries(s, account.id)
    return ledger.expiring_within(entries, today, settings=settings)


def redeem_points(s: Session, actor: Actor, card_number: str, item_code: str, *,
                  action: Action = Action.MEMBER_REDEEM, form_key: str | None = None) -> RedemptionOutcome:
    """Redeem a catalogue item: window open, item known, points available (credited before today).

    ``form_key`` identifies one submitted form: sent again (reload, double click), the first
    redemption is returned and nothing more is taken. The account lock makes the check race-free.
    """
    hand = find_card(s, actor, card_number, action)
    form_key = (form_key or "").strip()[:64] or None
    if form_key is not None:
        done = s.scalar(select(Redemption).where(Redemption.account_id == hand.account.id,
                                                 Redemption.form_key == form_key))
        if done is not None:
            return RedemptionOutcome(redemption_id=done.id, card_number=hand.card.number,
                                     item_code=done.item_code, item_name=done.item_name, points=done.points,
                                     value_fen=done.value_fen, points_balance=hand.account.points_balance)
    today = programme_today()
    check_usable(hand, today)
    settings = settings_on(s, today)
    item = catalogue_item(item_code, settings)
    entries, ids = points_entries(s, hand.account.id)
    # Validate before writing anything: the redemption row's id becomes the entries' reference.
    new = ledger.redeem_item(entries, item.code, today, settings=settings)
    red = Redemption(account_id=hand.account.id, item_code=item.code, item_name=item.name, points=item.points,
                     value_fen=item.value_fen, on=today, actor_id=actor.user_id,
                     terminal_id=actor.terminal_id, form_key=form_key, created_at=clock.now())
    s.add(red)
    s.flush()
    ref = f"redemption:{red.id}"
    new = [ledger.PointsEntry(e.kind, e.points, e.on, ref=ref, lot=e.lot, note=e.note) for e in new]
    _append_points(s, actor, hand.account, new, ids, settings)
    audit.record(s, actor, "member.redeem", object_type="card", object_id=hand.card.number,
                 detail=f"{item.code} for {item.points} points, file {hand.file.file_no}",
                 grant_id=hand.grant_id)
    return RedemptionOutcome(redemption_id=red.id, card_number=hand.card.number, item_code=item.code,
                             item_name=item.name, points=item.points, value_fen=item.value_fen,
                             points_balance=hand.account.points_balance)


def exchange_for_cash(s: Session, actor: Actor, card_number: str, points: int, *,
                      action: Action = Action.MEMBER_REDEEM, form_key: str | None = None) -> RedemptionOutcome:
    """Gold and above exchange points for cash at their tier's rate (seed 001: "積分可按一定比例兌換
    現金使用"; platinum "更加優惠"): a ``cash`` entry in the points ledger and a redemption of
    the reserved item "cash" whose value is the cash paid out, in integer fen; audited.

    The redemption rules hold (points credited before today, within the windows), and
    ``form_key`` makes a resent form return the first exchange, as for a catalogue item.
    """
    hand = find_card(s, actor, card_number, action)
    form_key = (form_key or "").strip()[:64] or None
    if form_key is not None:
        done = s.scalar(select(Redemption).where(Redemption.account_id == hand.account.id,
                                                 Redemption.form_key == form_key))
        if done is not None:
            return RedemptionOutcome(redemption_id=done.id, card_number=hand.card.number, item_code=done.item_code,
                                     item_name=done.item_name, points=done.points, value_fen=done.value_fen,
                                     points_balance=hand.account.points_balance)
    today = programme_today()
    check_usable(hand, today)
    settings = settings_on(s, today)
    if not redemption_open(today, settings):
        raise ledger.RedemptionClosed(today)
    tier = Tier(hand.membership.tier)
    cash = cash_for_points(points, tier, settings)
    entries, ids = points_entries(s, hand.account.id)
    new = ledger.apply_redemption(entries, points, today, settings=settings, kind=ledger.PointsKind.CASH)
    red = Redemption(account_id=hand.account.id, item_code=CASH_ITEM, item_name="Cash", points=points,
                     value_fen=cash, on=today, actor_id=actor.user_id, terminal_id=actor.terminal_id,
                     form_key=form_key, created_at=clock.now())
    s.add(red)
    s.flush()
    ref = f"redemption:{red.id}"
    _append_points(s, actor, hand.account, [ledger.PointsEntry(e.kind, e.points, e.on, ref=ref, lot=e.lot,
                                                               note="cash") for e in new], ids, settings)
    audit.record(s, actor, "member.points_cash", object_type="card", object_id=hand.card.number,
                 detail=f"{points} points for {cash} fen at {settings.cash_points_per_yuan(tier)} points per yuan "
                        f"({tier.value}), file {hand.file.file_no}", grant_id=hand.grant_id)
    return RedemptionOutcome(redemption_id=red.id, card_number=hand.card.number, item_code=CASH_ITEM,
                             item_name="Cash", points=points, value_fen=cash,
                             points_balance=hand.account.points_balance)


def adjust_points(s: Session, actor: Actor, card_number: str, points: int, reason: str, *,
                  kind: str = "adjust") -> list[PointsEntryRow]:
    """A leader's correction (either sign) or event points (``kind="event"``), with a reason."""
    hand = find_card(s, actor, card_number, Action.MEMBER_ADJUST)
    reason = require_reason(reason)
    if isinstance(points, bool) or not isinstance(points, int) or points == 0 or abs(points) > 10_000_000:
        raise InvalidInput({"points": "Enter a whole number of points other than zero."})
    if kind == "event" and points < 0:
        raise InvalidInput({"points": "Event points are a credit."})
    today = programme_today()
    if points > 0:
        rows = [credit_points(s, actor, hand.account, points, kind=kind, on=today, note=reason)]
    else:
        settings = settings_on(s, today)
        entries, ids = points_entries(s, hand.account.id)
        try:
            new = ledger.apply_deduction(entries, -points, today, note=reason, settings=settings)
        except ledger.InsufficientPoints as exc:
            raise InvalidInput({"points": exc.message}) from None
        rows = _append_points(s, actor, hand.account, new, ids, settings)
    audit.record(s, actor, f"member.{kind}", object_type="card", object_id=hand.card.number,
                 reason=reason, detail=f"{points:+d} points, file {hand.file.file_no}",
                 grant_id=hand.grant_id)
    return rows


def clear_points(s: Session, actor: Actor, account: CardAccount, today: date, note: str) -> int:
    """Take every unexpired point off the account (a restore that does not keep them)."""
    settings = settings_on(s, today)
    entries, ids = points_entries(s, account.id)
    left = sum(lot.remaining for lot in ledger.lots(entries, settings)
               if lot.remaining > 0 and lot.earned_on <= today < lot.expires_on)
    if not left:
        return 0
    new = ledger.apply_deduction(entries, left, today, note=note[:500], settings=settings)
    _append_points(s, actor, account, new, ids, settings)
    return left


def expire_account(s: Session, actor: Actor, account: CardAccount, today: date) -> int:
    """Write the expire entries due on this account (idempotent); returns points expired."""
    lock_account(s, account.id)
    settings = settings_on(s, today)
    entries, ids = points_entries(s, account.id)
    new = ledger.expire_due(entries, today, settings)
    if new:
        _append_points(s, actor, account, new, ids, settings)
    return -sum(e.points for e in new)


# ---------------------------------------------------------------- stored value

def stored_value_entries(s: Session, account_id: int) -> list[ledger.StoredValueEntry]:
    return [ledger.StoredValueEntry(r.kind, r.amount_fen, r.on, r.ref, r.note)
            for r in s.scalars(select(StoredValueEntryRow).where(StoredValueEntryRow.account_id == account_id)
                               .order_by(StoredValueEntryRow.id))]


def append_stored_value(s: Session, actor: Actor, account: CardAccount,
                        entry: ledger.StoredValueEntry) -> StoredValueEntryRow:
    now = clock.now()
    row = StoredValueEntryRow(account_id=account.id, kind=entry.kind.value, amount_fen=entry.amount_fen,
                              on=entry.on, ref=entry.ref, note=entry.note[:500], actor_id=actor.user_id,
                              created_at=now)
    s.add(row)
    account.stored_value_fen += entry.amount_fen
    account.updated_at = now
    s.flush()
    summaries.balances_changed(s, account.membership_id, stored_fen=entry.amount_fen)
    return row


def _amount(amount_fen: int) -> int:
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int) or not 1 <= amount_fen <= 100_000_000:
        raise InvalidField("amount_fen", "amount.invalid", "Enter an amount between ¥0.01 and ¥1,000,000.")
    return amount_fen


def _outcome(hand: CardInHand, row: StoredValueEntryRow) -> StoredValueOutcome:
    return StoredValueOutcome(card_number=hand.card.number, kind=row.kind, amount_fen=row.amount_fen,
                              balance_fen=hand.account.stored_value_fen, entry_id=row.id)


def recharge_stored_value(s: Session, actor: Actor, card_number: str, amount_fen: int, *,
                          payment_method: str = "cash", note: str = "",
                          action: Action = Action.MEMBER_STORED_VALUE) -> StoredValueOutcome:
    hand = find_card(s, actor, card_number, action)
    today = programme_today()
    check_usable(hand, today)
    row = append_stored_value(s, actor, hand.account, ledger.recharge(
        _amount(amount_fen), today, ref=payment_method[:64], note=note))
    audit.record(s, actor, "member.stored_value", object_type="card", object_id=hand.card.number,
                 detail=f"recharge {amount_fen} fen by {payment_method}", grant_id=hand.grant_id)
    return _outcome(hand, row)


def spend_from(s: Session, vault: Vault, actor: Actor, hand: CardInHand, amount_fen: int, today: date, *,
               pin: str | None, id_number: str | None, ref: str | None) -> StoredValueEntryRow:
    """The spend itself, for a card already found, locked and checked (also used by purchases)."""
    check_holder(s, hand, vault, pin=pin, id_number=id_number)
    entry = ledger.spend_stored_value(stored_value_entries(s, hand.account.id), _amount(amount_fen), today,
                                      ref=ref)
    return append_stored_value(s, actor, hand.account, entry)


def spend_stored_value(s: Session, vault: Vault, actor: Actor, card_number: str, amount_fen: int, *,
                       pin: str | None = None, id_number: str | None = None, ref: str | None = None,
                       action: Action = Action.MEMBER_STORED_VALUE) -> StoredValueOutcome:
    hand = find_card(s, actor, card_number, action)
    today = programme_today()
    check_usable(hand, today)
    row = spend_from(s, vault, actor, hand, amount_fen, today, pin=pin, id_number=id_number,
                     ref=(ref or "")[:64] or None)
    audit.record(s, actor, "member.stored_value", object_type="card", object_id=hand.card.number,
                 detail=f"spend {amount_fen} fen", grant_id=hand.grant_id)
    return _outcome(hand, row)


def adjust_stored_value(s: Session, actor: Actor, card_number: str, amount_fen: int,
                        reason: str) -> StoredValueOutcome:
    hand = find_card(s, actor, card_number, Action.MEMBER_ADJUST)
    reason = require_reason(reason)
    if isinstance(amount_fen, int) and not isinstance(amount_fen, bool) and amount_fen:
        _amount(abs(amount_fen))  # the same bounds as a recharge
    try:
        entry = ledger.adjust_stored_value(stored_value_entries(s, hand.account.id), amount_fen,
                                           programme_today(), note=reason)
    except InvalidField as exc:
        raise InvalidInput({"amount": exc.message}) from None
    row = append_stored_value(s, actor, hand.account, entry)
    audit.record(s, actor, "member.adjust", object_type="card", object_id=hand.card.number, reason=reason,
                 detail=f"stored value {amount_fen:+d} fen", grant_id=hand.grant_id)
    return _outcome(hand, row)
