"""`portal receivables`: the overdue board on the command line, and payments from a bank statement."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from ..accounts import service as accounts
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..credit import board as credit_board
from ..credit import statements
from ..membership.rules import programme_today
from ..org.models import OrgUnit
from ..policy import Action, may_perform
from .base import BadInput, Env, Failed, _table, main, pass_env


class _Rollback(Exception):
    pass


def _actor(s, as_user: str | None, action: Action) -> Actor:
    if not as_user:
        return Actor.system("cli")
    user = s.scalar(select(User).where(User.username == as_user.strip().lower()))
    if user is None or not user.is_active:
        raise BadInput(f"--as: {as_user} is not an active user")
    actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))
    if not may_perform(actor, action):
        raise BadInput(f"--as: {actor.username} ({user.role}) may not do this")
    return actor


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


@main.group("receivables")
def receivables_group() -> None:
    """Sales on credit: what customers owe (the overdue board), payments from bank statements."""


@receivables_group.command("list")
@click.option("--overdue", is_flag=True, help="Only orders past their due date.")
@click.option("--as", "as_user", default=None, metavar="USER",
              help="Show USER's board (a salesperson's customers, a leader's units); default: every order.")
@pass_env
def list_receivables(env: Env, overdue: bool, as_user: str | None) -> None:
    """Print the open orders on terms (file number, receipt, salesperson, boxes, balance, due, days
    overdue) with the ageing totals per salesperson. File numbers only, no personal data; audited."""
    today = programme_today()
    with env.db.write() as s:
        actor = _actor(s, as_user, Action.RECEIVABLE_BOARD)
        b = credit_board.board(s, actor, today, overdue_only=overdue)
    _table(("file", "receipt", "salesperson", "terms", "boxes", "balance", "due", "days overdue"),
           [(r.file_no, r.receipt_no, r.operator, r.terms, str(r.boxes), _yuan(r.balance_fen),
             str(r.due_on or "not delivered"), str(r.days_overdue or "")) for r in b.rows])
    click.echo("")
    buckets = list(b.buckets)
    _table(("salesperson", *buckets),
           [(p, *(_yuan(v[k]) for k in buckets)) for p, v in sorted(b.per_salesperson.items())]
           + [("total", *(_yuan(b.buckets[k]) for k in buckets))])
    click.echo(f"{len(b.rows)} open order(s), {b.overdue_count} overdue")


@receivables_group.command("import")
@click.argument("csv_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_user", required=True, metavar="USER", help="Who records the payments (their scope).")
@click.option("--dry-run", is_flag=True, help="Check every line and print what would be recorded; record nothing.")
@pass_env
def import_payments(env: Env, csv_file: Path, as_user: str, dry_run: bool) -> None:
    """Record payments from a bank statement: UTF-8 CSV with the header
    order,file_no,date,amount,method,reference. Each line names an order (receipt number) or a
    file number (its delivered orders are settled oldest due first); amount in yuan; method cash,
    cash_cheque, transfer, wire or other. All or nothing: every problem is listed by line and
    nothing is recorded (exit 1)."""
    data = csv_file.read_bytes()
    result: dict = {}
    try:
        with env.db.write() as s:
            actor = _actor(s, as_user, Action.RECEIVABLE_COLLECT)
            try:
                count, total, errors = statements.import_statement(s, actor, data, programme_today())
            except UnicodeDecodeError:
                raise BadInput(f"{csv_file.name} is not UTF-8") from None
            result.update(count=count, total=total, errors=errors)
            if errors or dry_run:
                raise _Rollback
            audit.record(s, actor, "receivable.import", object_type="statement", object_id=csv_file.name,
                         detail=f"{count} payment(s), {total} fen")
    except _Rollback:
        pass
    if result["errors"]:
        for e in result["errors"]:
            click.echo(f"line {e.line}: {e.message}", err=True)
        raise Failed(f"nothing recorded: {len(result['errors'])} problem(s) in {csv_file.name}")
    verb = "would record" if dry_run else "recorded"
    click.echo(f"{verb} {result['count']} payment(s), {_yuan(result['total'])}")
