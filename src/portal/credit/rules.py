"""Credit rules as pure functions: the customer's credit class, the limit and period checks,
due dates and ageing. No database, no clock: the use cases pass everything in.

Seed 000 ("Financial management"): government agencies, enterprises, institutions and group
companies may owe at most 10 boxes at any time, for at most one month from delivery;
individuals and small businesses at most 5 boxes for 20 days. Above either, a written
application approved by a leader above the file is needed, for that one order.
"""
from __future__ import annotations

import calendar
import json
from dataclasses import asdict, dataclass
from datetime import date

INSTITUTIONAL_CATEGORIES = frozenset({"government", "soe", "finance", "military_police", "enterprise"})
CLASSES = ("institutional", "individual")
BUCKETS = ("not_due", "1-30", "31-60", "61-90", "90+")


@dataclass(frozen=True)
class CreditTerms:
    """The figures of one version of the credit terms (defaults: seed 000)."""

    institutional_boxes: int = 10
    institutional_months: int = 1
    institutional_days: int = 0
    individual_boxes: int = 5
    individual_months: int = 0
    individual_days: int = 20
    overdue_block_days: int = 30      # anything overdue longer blocks new credit sales
    discount_valid_days: int = 7      # an approved special price is usable once within this
    line_leader_fine_permille: int = 100  # the line leader's fine: 10 % of the written-off amount

    def limit(self, credit_class: str) -> "Limit":
        if credit_class == "institutional":
            return Limit(self.institutional_boxes, self.institutional_months, self.institutional_days)
        return Limit(self.individual_boxes, self.individual_months, self.individual_days)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str) -> "CreditTerms":
        known = {k: v for k, v in json.loads(raw).items() if k in cls.__dataclass_fields__}
        return cls(**known)


@dataclass(frozen=True)
class Limit:
    boxes: int
    months: int
    days: int


class CreditRefused(ValueError):
    """A credit sale the rules refuse; ``field`` says where the message belongs, ``code`` which
    rule. ``template`` is a literal English text with %(name)s places filled from ``params``, so
    a page can translate the template and then fill it."""

    def __init__(self, field: str, code: str, template: str, **params) -> None:
        self.field, self.code, self.template, self.params = field, code, template, params
        self.message = template % params if params else template
        super().__init__(self.message)


def credit_class(category: str) -> str:
    return "institutional" if category in INSTITUTIONAL_CATEGORIES else "individual"


def add_period(start: date, months: int, days: int) -> date:
    """start + months (same day of month, or the month's last day) + days."""
    y, m = divmod(start.month - 1 + months, 12)
    year, month = start.year + y, m + 1
    day = min(start.day, calendar.monthrange(year, month)[1])
    from datetime import timedelta
    return date(year, month, day) + timedelta(days=days)


# The refusals' texts (translated by the pages as they are, then filled in).
OVER_LIMIT = ("Over the credit limit: the limit is %(limit)s boxes, %(outstanding)s are outstanding and "
              "this sale adds %(boxes)s. To sell above it, write an application (reason, extra boxes or "
              "days) on the customer's credit page; a leader above the file approves it for this one order.")
OVER_PERIOD = ("The account period is at most %(months)s month(s) and %(days)s days from delivery. To sell "
               "on longer terms, write an application (reason, extra days) on the customer's credit page; a "
               "leader above the file approves it for this one order.")
OVERDUE = ("The customer has an order %(days)s days overdue (more than %(block)s): no sale on credit until it "
           "is settled, or a leader above the file approves an application for this order.")


def check_credit_sale(*, limit: Limit, outstanding_boxes: int, boxes: int, extra_days_asked: int,
                      approved_extra_boxes: int = 0, approved_extra_days: int = 0,
                      overdue_days: int = 0, overdue_block_days: int = 30,
                      has_application: bool = False) -> None:
    """Refuse a sale of ``boxes`` on credit that the limits do not allow.

    ``extra_days_asked``: days beyond the class's period the sale asks for (0: the standard
    period). An approved application for this order adds its boxes and days, and also lifts
    the overdue block (a leader decided on this order knowing the customer's account)."""
    if boxes <= 0:
        raise CreditRefused("lines", "credit.no_boxes", "A sale on credit needs at least one whole box.")
    if overdue_days > overdue_block_days and not has_application:
        raise CreditRefused("_form", "credit.overdue", OVERDUE, days=overdue_days, block=overdue_block_days)
    allowed = limit.boxes + approved_extra_boxes
    if outstanding_boxes + boxes > allowed:
        raise CreditRefused("lines", "credit.over_limit", OVER_LIMIT, limit=allowed,
                            outstanding=outstanding_boxes, boxes=boxes)
    if extra_days_asked > approved_extra_days:
        raise CreditRefused("period_days", "credit.over_period", OVER_PERIOD, months=limit.months,
                            days=limit.days + approved_extra_days)


def ageing_bucket(due_on: date | None, today: date) -> str:
    if due_on is None or today <= due_on:
        return "not_due"
    late = (today - due_on).days
    return "1-30" if late <= 30 else "31-60" if late <= 60 else "61-90" if late <= 90 else "90+"


def days_overdue(due_on: date | None, today: date) -> int:
    return max(0, (today - due_on).days) if due_on is not None else 0


def line_leader_fine(amount_fen: int, permille: int) -> int:
    """10 % of the written-off amount, rounded half up to the fen (integers only)."""
    return (amount_fen * permille + 500) // 1000
