"""The daily overdue reminder (``portal jobs overdue-reminders``): one inbox notice per salesperson
with overdue orders among their customers (how many, how much is owed, the oldest's days), and one
per leader summing up their units (orders, amount, salespeople concerned).

Once per day, however many times or processes run it: the day's ``reminder_run`` row is written in
the same transaction as its notices, after a named lock (PostgreSQL: an advisory lock; SQLite: the
single writer) under which the row is looked for first; its primary key is the second wall.
Figures only, no customer's name: a notice links to the overdue board.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import clock, locks
from ..accounts import service as accounts
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers.models import CustomerFile
from ..inbox.service import notify
from ..org.models import OrgUnit
from ..policy import Action, customer_scope
from .models import CreditOrder, ReminderRun

JOB = "overdue-reminders"
LINK = "/receivables?overdue=1"
SALESPERSON_TEXT = ("Overdue today: %(count)s order(s) of your customers, %(amount)s owed; the oldest is "
                    "%(days)s days overdue.")
LEADER_TEXT = ("Overdue today in your units: %(count)s order(s), %(amount)s owed, for the customers of "
               "%(people)s salesperson(s); the oldest is %(days)s days overdue.")


@dataclass(frozen=True)
class ReminderReport:
    day: date
    already_done: bool
    salespeople: int = 0
    leaders: int = 0


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _overdue(today: date):
    return (select(func.count(CreditOrder.id), func.coalesce(func.sum(CreditOrder.balance_fen), 0),
                   func.min(CreditOrder.due_on), func.count(func.distinct(CustomerFile.owner_id)))
            .select_from(CreditOrder).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
            .where(CreditOrder.settled_at.is_(None), CreditOrder.due_on < today))


def post_overdue_reminders(s: Session, today: date) -> ReminderReport:
    """Post today's notices, once; a later run of the same day does nothing and says so."""
    locks.hold(s, "reminder-run", f"{JOB}/{today.isoformat()}")
    if s.get(ReminderRun, (JOB, today)) is not None:
        return ReminderReport(today, True)
    # Salespeople: their own customers' orders (the board's scope for them), in one GROUP BY.
    sellers = list(s.scalars(select(User.id).where(User.role == "salesperson", User.is_active.is_(True))))
    per_owner = s.execute(_overdue(today).add_columns(CustomerFile.owner_id)
                          .where(CustomerFile.owner_id.in_(sellers)).group_by(CustomerFile.owner_id)).all() \
        if sellers else []
    n_sellers = 0
    for count, fen, oldest, _people, owner_id in per_owner:
        notify(s, owner_id, "credit.overdue", SALESPERSON_TEXT, link=LINK, count=count, amount=_yuan(int(fen)),
               days=(today - oldest).days)
        n_sellers += 1
    # Leaders: their units, with the same SQL scope as their board (one query per leader).
    n_leaders = 0
    for user, unit in s.execute(select(User, OrgUnit).join(OrgUnit, OrgUnit.id == User.unit_id)
                                .where(User.role == "leader", User.is_active.is_(True)).order_by(User.id)):
        leader = accounts.actor_for(user, unit)
        count, fen, oldest, people = s.execute(
            _overdue(today).where(customer_scope(leader, Action.RECEIVABLE_BOARD))).one()
        if count:
            notify(s, user.id, "credit.overdue", LEADER_TEXT, link=LINK, count=count, amount=_yuan(int(fen)),
                   people=people, days=(today - oldest).days)
            n_leaders += 1
    s.add(ReminderRun(job=JOB, day=today, claimed_at=clock.now(), notices=n_sellers + n_leaders))
    s.flush()
    audit.record(s, Actor.system("jobs.overdue-reminders"), "credit.reminders", object_type="job", object_id=JOB,
                 detail=f"{today.isoformat()}: {n_sellers} salespeople, {n_leaders} leaders notified")
    return ReminderReport(today, False, n_sellers, n_leaders)
