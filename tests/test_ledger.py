"""Unit and property tests for portal.membership.ledger (points lots, FIFO, expiry, reversal, stored value)."""
from __future__ import annotations

import dataclasses
from datetime import date, timedelta

import pytest
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule

from portal.customers.rules import InvalidField
from portal.membership.ledger import (
    InsufficientPoints,
    InsufficientStoredValue,
    LedgerError,
    PointsEntry,
    PointsKind,
    RedemptionClosed,
    StoredValueEntry,
    StoredValueKind,
    adjust_stored_value,
    apply_deduction,
    apply_redemption,
    available_to_redeem,
    balance,
    check_ledger,
    expire_due,
    expiring_of,
    expiring_within,
    lots,
    recharge,
    redeem_item,
    redeemable_of,
    refund_stored_value,
    reverse_purchase,
    spend_stored_value,
)
from portal.membership.rules import DEFAULT_SETTINGS

K = PointsKind


def earn(points: int, on: date, ref: str | None = None) -> PointsEntry:
    return PointsEntry(K.EARN, points, on, ref=ref)


# --- entries and balance ----------------------------------------------------


def test_balance_is_the_sum_of_entries():
    entries = [earn(1_000, date(2025, 1, 1)), PointsEntry(K.REDEEM, -300, date(2025, 1, 2), lot=0)]
    assert balance(entries) == 700
    assert balance([]) == 0


@pytest.mark.parametrize("kind, points", [
    (K.EARN, -1), (K.REFERRAL, -5), (K.EVENT, -5), (K.REDEEM, 5), (K.EXPIRE, 5), (K.REVERSAL, 5),
    (K.ADJUST, 0), (K.EARN, 1.5), (K.EARN, True),
])
def test_entries_carry_the_sign_of_their_kind(kind, points):
    with pytest.raises(ValueError):
        PointsEntry(kind, points, date(2025, 1, 1))


def test_adjust_and_transfer_go_either_way():
    PointsEntry(K.ADJUST, 5, date(2025, 1, 1))
    PointsEntry(K.ADJUST, -5, date(2025, 1, 1))
    PointsEntry(K.TRANSFER, 5, date(2025, 1, 1))
    PointsEntry(K.TRANSFER, -5, date(2025, 1, 1))


def test_a_debit_with_nothing_behind_it_breaks_the_ledger():
    with pytest.raises(LedgerError):
        check_ledger([PointsEntry(K.ADJUST, -1, date(2025, 1, 1))])
    with pytest.raises(LedgerError):
        check_ledger([earn(10, date(2025, 1, 1)), PointsEntry(K.REDEEM, -11, date(2025, 1, 2), lot=0)])
    with pytest.raises(LedgerError):
        check_ledger([earn(10, date(2025, 1, 1)), PointsEntry(K.REDEEM, -1, date(2025, 1, 2), lot=5)])


def test_a_debit_without_a_lot_draws_oldest_first():
    entries = [earn(10, date(2025, 1, 1)), earn(10, date(2025, 2, 1)),
               PointsEntry(K.ADJUST, -15, date(2025, 3, 1))]
    assert [lot.remaining for lot in lots(entries)] == [0, 5]


# --- redemption -------------------------------------------------------------


def test_redemption_consumes_the_oldest_lots_first():
    entries = [earn(1_000, date(2024, 6, 1)), earn(500, date(2024, 1, 1)), earn(800, date(2024, 9, 1))]
    new = apply_redemption(entries, 1_200, date(2025, 1, 1), ref="R1")
    assert [(e.kind, e.points, e.lot, e.ref) for e in new] == [
        (K.REDEEM, -500, 1, "R1"), (K.REDEEM, -700, 0, "R1")]
    assert balance(entries + new) == 1_100


def test_points_earned_today_cannot_be_redeemed_today():
    today = date(2025, 5, 1)
    entries = [earn(1_000, today)]
    assert available_to_redeem(entries, today) == 0
    with pytest.raises(InsufficientPoints) as err:
        apply_redemption(entries, 500, today)
    assert (err.value.field, err.value.requested, err.value.available) == ("points", 500, 0)
    assert available_to_redeem(entries, today + timedelta(days=1)) == 1_000
    assert len(apply_redemption(entries, 500, today + timedelta(days=1))) == 1


def test_any_credit_made_today_waits_until_tomorrow():
    today = date(2025, 5, 1)
    entries = [earn(100, date(2025, 4, 1)), PointsEntry(K.REFERRAL, 300, today)]
    assert available_to_redeem(entries, today) == 100


def test_redeeming_more_than_available_raises_and_writes_nothing():
    entries = [earn(400, date(2025, 1, 1))]
    before = list(entries)
    with pytest.raises(InsufficientPoints):
        apply_redemption(entries, 401, date(2025, 2, 1))
    assert entries == before


@pytest.mark.parametrize("points", [0, -5, 1.0, True])
def test_redemption_needs_a_positive_whole_number(points):
    with pytest.raises(InvalidField):
        apply_redemption([earn(400, date(2025, 1, 1))], points, date(2025, 2, 1))


def test_redeem_catalogue_items():
    entries = [earn(1_600, date(2025, 1, 1))]
    gift = redeem_item(entries, "gift-100", date(2025, 2, 1), ref="R1")
    assert sum(e.points for e in gift) == -1_000 and gift[0].note == "gift-100"
    entries += gift
    entries += redeem_item(entries, "coupon-50", date(2025, 2, 1))
    assert balance(entries) == 100
    with pytest.raises(InsufficientPoints):
        redeem_item(entries, "coupon-50", date(2025, 2, 1))
    with pytest.raises(InvalidField):
        redeem_item(entries, "yacht", date(2025, 2, 1))


def test_redemption_windows_march_and_august():
    windows = dataclasses.replace(DEFAULT_SETTINGS, redemption_months=(3, 8))
    entries = [earn(5_000, date(2025, 1, 1))]
    with pytest.raises(RedemptionClosed) as err:
        redeem_item(entries, "gift-100", date(2025, 4, 15), settings=windows)
    assert err.value.field == "date"
    assert redeem_item(entries, "gift-100", date(2025, 3, 15), settings=windows)
    assert redeem_item(entries, "gift-100", date(2025, 8, 31), settings=windows)


# --- expiry -----------------------------------------------------------------


def test_points_expire_at_exactly_two_years_oldest_first():
    entries = [earn(1_000, date(2023, 4, 1)), earn(500, date(2023, 4, 2))]
    assert available_to_redeem(entries, date(2025, 3, 31)) == 1_500
    assert expire_due(entries, date(2025, 3, 31)) == []
    assert available_to_redeem(entries, date(2025, 4, 1)) == 500  # unusable even before the job runs
    expired = expire_due(entries, date(2025, 4, 2))
    assert [(e.kind, e.points, e.lot, e.on) for e in expired] == [
        (K.EXPIRE, -1_000, 0, date(2025, 4, 1)), (K.EXPIRE, -500, 1, date(2025, 4, 2))]
    entries += expired
    assert balance(entries) == 0
    assert expire_due(entries, date(2025, 4, 2)) == []


def test_expiry_takes_only_what_is_left_of_a_lot():
    entries = [earn(1_000, date(2023, 4, 1)), earn(700, date(2024, 1, 1))]
    entries += apply_redemption(entries, 1_200, date(2023, 12, 1) + timedelta(days=60))
    expired = expire_due(entries, date(2025, 4, 1))
    assert expired == []  # the 2023 lot was fully redeemed; 500 left in the 2024 lot
    expired = expire_due(entries, date(2026, 1, 1))
    assert [(e.points, e.lot) for e in expired] == [(-500, 1)]


def test_expiring_within_30_days():
    today = date(2025, 3, 1)
    entries = [earn(100, date(2023, 3, 2)), earn(200, date(2023, 3, 31)), earn(300, date(2023, 4, 1)),
               earn(400, date(2023, 3, 1))]
    soon = expiring_within(entries, today)
    assert [(lot.expires_on, lot.remaining) for lot in soon] == [
        (date(2025, 3, 2), 100), (date(2025, 3, 31), 200)]
    assert sum(lot.remaining for lot in expiring_within(entries, today, days=31)) == 600


# --- reversal ---------------------------------------------------------------


def test_reversal_takes_back_unspent_purchase_points():
    entries = [earn(300, date(2025, 1, 1), ref="P1"), earn(200, date(2025, 1, 2), ref="P2")]
    r = reverse_purchase(entries, "P2", date(2025, 1, 5))
    assert (r.reversed_points, r.shortfall) == (200, 0)
    assert [(e.kind, e.points, e.lot, e.ref) for e in r.entries] == [(K.REVERSAL, -200, 1, "P2")]
    entries += r.entries
    assert balance(entries) == 300
    again = reverse_purchase(entries, "P2", date(2025, 1, 6))
    assert (again.entries, again.reversed_points, again.shortfall) == ([], 0, 0)


def test_reversal_of_spent_points_takes_what_is_left_and_reports_the_shortfall():
    entries = [earn(1_000, date(2025, 1, 1), ref="P1"), earn(100, date(2025, 1, 1), ref="P0")]
    entries += apply_redemption(entries, 1_000, date(2025, 1, 2))
    r = reverse_purchase(entries, "P1", date(2025, 1, 3))
    assert (r.reversed_points, r.shortfall) == (100, 900)
    entries += r.entries
    assert balance(entries) == 0
    check_ledger(entries)


def test_a_later_reversal_collects_an_outstanding_shortfall():
    entries = [earn(500, date(2025, 1, 1), ref="P1")]
    entries += apply_redemption(entries, 500, date(2025, 1, 2))
    entries += reverse_purchase(entries, "P1", date(2025, 1, 3)).entries
    entries.append(earn(800, date(2025, 1, 4), ref="P2"))
    r = reverse_purchase(entries, "P1", date(2025, 1, 5))
    assert (r.reversed_points, r.shortfall) == (500, 0)


def test_partial_reversal_for_a_partial_return():
    entries = [earn(300, date(2025, 1, 1), ref="P1")]
    r = reverse_purchase(entries, "P1", date(2025, 1, 2), points=120)
    assert (r.reversed_points, r.shortfall) == (120, 0)
    entries += r.entries
    assert reverse_purchase(entries, "P1", date(2025, 1, 3)).reversed_points == 180


def test_points_that_already_expired_are_not_owed():
    entries = [earn(300, date(2023, 1, 1), ref="P1"), earn(1_000, date(2024, 6, 1))]
    entries += expire_due(entries, date(2025, 1, 1))
    r = reverse_purchase(entries, "P1", date(2025, 1, 2))
    assert (r.entries, r.reversed_points, r.shortfall) == ([], 0, 0)


def test_reversing_a_purchase_that_earned_nothing_writes_nothing():
    assert reverse_purchase([earn(10, date(2025, 1, 1), ref="P1")], "P9", date(2025, 1, 2)).entries == []


def test_deduction_takes_todays_points_but_never_more_than_there_is():
    today = date(2025, 5, 1)
    entries = [earn(100, today)]
    new = apply_deduction(entries, 60, today, note="wrong scan")
    assert [(e.kind, e.points, e.lot) for e in new] == [(K.ADJUST, -60, 0)]
    with pytest.raises(InsufficientPoints):
        apply_deduction(entries, 101, today)
    with pytest.raises(ValueError):
        apply_deduction(entries, 10, today, kind=K.REDEEM)


# --- stored value -------------------------------------------------------------


def test_stored_value_ledger():
    day = date(2025, 1, 1)
    entries = [recharge(100_000, day, ref="TOPUP1")]
    entries.append(spend_stored_value(entries, 30_000, day, ref="P1"))
    assert balance(entries) == 70_000
    with pytest.raises(InsufficientStoredValue) as err:
        spend_stored_value(entries, 70_001, day, ref="P2")
    assert err.value.field == "amount_fen"
    entries.append(refund_stored_value(entries, 10_000, day, ref="P1"))
    with pytest.raises(InvalidField):
        refund_stored_value(entries, 20_001, day, ref="P1")  # only 20,000 of P1 left to refund
    entries.append(adjust_stored_value(entries, -80_000, day, note="closing correction"))
    assert balance(entries) == 0
    with pytest.raises(InsufficientStoredValue):
        adjust_stored_value(entries, -1, day, note="too much")
    with pytest.raises(InvalidField):
        adjust_stored_value(entries, 5, day, note=" ")
    with pytest.raises(InvalidField):
        recharge(0, day)
    with pytest.raises(ValueError):
        StoredValueEntry(StoredValueKind.SPEND, 100, day)
    with pytest.raises(ValueError):
        StoredValueEntry(StoredValueKind.RECHARGE, 1.5, day)  # never float


# --- properties ---------------------------------------------------------------


class PointsLedgerMachine(RuleBasedStateMachine):
    """Random earn / redeem / expire / reverse / deduct sequences over a moving calendar."""

    purchases = Bundle("purchases")

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[PointsEntry] = []
        self.today = date(2024, 1, 1)
        self.n = 0

    @rule(target=purchases, points=st.integers(1, 5_000))
    def earn_for_purchase(self, points):
        self.n += 1
        ref = f"P{self.n}"
        self.entries.append(earn(points, self.today, ref))
        return ref

    @rule(kind=st.sampled_from([K.REFERRAL, K.EVENT, K.ADJUST, K.TRANSFER]), points=st.integers(1, 2_000))
    def other_credit(self, kind, points):
        self.entries.append(PointsEntry(kind, points, self.today))

    @rule(days=st.integers(0, 400))
    def advance(self, days):
        self.today += timedelta(days=days)

    @rule(points=st.integers(1, 12_000))
    def redeem(self, points):
        available = available_to_redeem(self.entries, self.today)
        before = list(self.entries)
        if points > available:
            with pytest.raises(InsufficientPoints):
                apply_redemption(self.entries, points, self.today)
            assert self.entries == before
            return
        new = apply_redemption(self.entries, points, self.today)
        assert self.entries == before
        assert -sum(e.points for e in new) == points
        by_index = {lot.index: lot for lot in lots(self.entries)}
        for e in new:
            lot = by_index[e.lot]
            assert lot.earned_on < self.today < lot.expires_on  # never today's, never expired
        self.entries += new
        assert available_to_redeem(self.entries, self.today) == available - points

    @rule(points=st.integers(1, 12_000))
    def deduct(self, points):
        try:
            new = apply_deduction(self.entries, points, self.today, kind=K.TRANSFER)
        except InsufficientPoints:
            return
        assert -sum(e.points for e in new) == points
        self.entries += new

    @rule()
    def expire(self):
        before = {lot.index: lot.remaining for lot in lots(self.entries)}
        new = expire_due(self.entries, self.today)
        for e in new:
            assert -e.points == before[e.lot]  # exactly the remainder, never more
        self.entries += new
        assert expire_due(self.entries, self.today) == []
        assert all(lot.remaining == 0 for lot in lots(self.entries) if lot.expires_on <= self.today)

    @rule(ref=purchases, partial=st.none() | st.integers(0, 5_000))
    def reverse(self, ref, partial):
        before = balance(self.entries)
        r = reverse_purchase(self.entries, ref, self.today, points=partial)
        assert r.reversed_points >= 0 and r.shortfall >= 0
        assert -sum(e.points for e in r.entries) == r.reversed_points
        assert r.reversed_points <= before
        if partial is not None:
            assert r.reversed_points + r.shortfall <= partial
        self.entries += r.entries

    @invariant()
    def balance_is_the_sum_and_never_negative(self):
        total = balance(self.entries)
        assert total == sum(e.points for e in self.entries)
        assert total >= 0
        check_ledger(self.entries)
        assert sum(lot.remaining for lot in lots(self.entries)) == total
        assert 0 <= available_to_redeem(self.entries, self.today) <= total

    @invariant()
    def the_file_pages_figures_from_one_replay_are_the_ledgers(self):
        """points.points_view replays the ledger once for the redeemable points and the expiring lots."""
        replayed = lots(self.entries)
        assert redeemable_of(replayed, self.today) == sum(
            lot.remaining for lot in replayed if lot.remaining > 0 and lot.earned_on < self.today < lot.expires_on)
        horizon = self.today + timedelta(days=DEFAULT_SETTINGS.expiry_warning_days)
        assert expiring_of(replayed, self.today, DEFAULT_SETTINGS.expiry_warning_days) == \
            expiring_within(self.entries, self.today) == \
            sorted([lot for lot in replayed if lot.remaining > 0 and self.today < lot.expires_on <= horizon],
                   key=lambda lot: (lot.expires_on, lot.index))

    @invariant()
    def running_balance_never_dips_below_zero(self):
        running = 0
        for e in self.entries:
            running += e.points
            assert running >= 0


PointsLedgerMachine.TestCase.settings = hsettings(max_examples=150, stateful_step_count=40, deadline=None)
TestPointsLedger = PointsLedgerMachine.TestCase
