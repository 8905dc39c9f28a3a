"""`portal` commands: Membership purchases: import of a till's export."""
from __future__ import annotations

from pathlib import Path

import click
from sqlalchemy import select

from ..accounts import service as accounts
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..customers import service as customers
from ..customers.models import CustomerFile
from ..credit.rules import CreditRefused
from ..credit.sales import record_sale
from ..customers.rules import InvalidField
from ..org.models import OrgUnit


from .base import (BadInput, Env, Failed, _table, main, pass_env)
from .progress import progress


# ---------------------------------------------------------------- purchases

@main.group("purchases")
def purchases_group() -> None:
    """Membership purchases made at the tills (points, joining, tiers)."""


class _Rollback(Exception):
    """Leaves the import's transaction without committing (a dry run, or a file with problems)."""


def _yuan(fen: int) -> str:
    return f"¥{fen // 100:,}.{fen % 100:02d}"


def _check_buyers(s, actor: Actor, sales) -> tuple[dict, list[tuple[int, str, str]]]:
    """Before anything is recorded: receipts not yet on record, every card and file known, the
    card belonging to the file when a row names both, and each client one ``actor`` sells to.
    Returns (receipt -> customer file id, problems as (line, field, message))."""
    from ..customers.service import open_for
    from ..membership.models import CardAccount, MemberCard, Membership, Purchase
    from ..policy import Action, PermissionDenied

    receipts = [p.receipt_no for p in sales]
    recorded: set[str] = set()
    for i in range(0, len(receipts), 500):
        recorded |= set(s.scalars(select(Purchase.receipt_no).where(Purchase.receipt_no.in_(receipts[i:i + 500]))))
    problems: list[tuple[int, str, str]] = []
    buyers: dict = {}
    for p in sales:
        if p.receipt_no in recorded:
            problems.append((p.line, "receipt_no", f"Receipt {p.receipt_no} is already recorded."))
        f = field = None
        if p.file_no:
            f, field = s.scalar(select(CustomerFile).where(CustomerFile.file_no == p.file_no)), "file_no"
            if f is None:
                problems.append((p.line, "file_no", f"No customer file {p.file_no}."))
                continue
        if p.card_number:
            owner = s.scalar(select(Membership.customer_id)
                             .join(CardAccount, CardAccount.membership_id == Membership.id)
                             .join(MemberCard, MemberCard.account_id == CardAccount.id)
                             .where(MemberCard.number == p.card_number))
            if owner is None:
                problems.append((p.line, "card_number", f"No card {p.card_number}."))
                continue
            if f is not None and f.id != owner:
                problems.append((p.line, "card_number", f"Card {p.card_number} is not file {p.file_no}'s."))
                continue
            f, field = s.get(CustomerFile, owner), "card_number"
        if f is None:
            continue  # a sale without a card: anyone who records purchases may record it
        try:
            open_for(s, actor, f.id, Action.MEMBER_PURCHASE)
        except PermissionDenied:
            problems.append((p.line, field, f"File {f.file_no} is not a client {actor.username} may record "
                                            "purchases for (their own, or their team's for a leader)."))
            continue
        buyers[p.receipt_no] = f.id
    return buyers, problems


@purchases_group.command("import")
@click.argument("csv_file", metavar="FILE.csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--as", "as_user", required=True, metavar="USERNAME",
              help="The salesperson (or leader) recording the sales as their own; every card and "
                   "file in the export must belong to a client they may sell to.")
@click.option("--dry-run", is_flag=True,
              help="Check the whole file and show what would be recorded (prices, points, who "
                   "would join) without recording anything.")
@pass_env
def purchases_import(env: Env, csv_file: Path, as_user: str, dry_run: bool) -> None:
    """Record the sales in a POS export FILE.csv (UTF-8, BOM optional) as USERNAME's.

    \b
    Header row, columns in any order:
      receipt_no      1-40 letters, digits, . _ / -
      date            YYYY-MM-DD, within the last 30 days (the claim period), not in the future
      card_number     optional, e.g. 755 00243
      file_no         optional, e.g. 755 00012
      product, quantity (whole number)
      unit_price      yuan, at most 2 decimals, e.g. 128.50
      special_price   optional 1/0 (yes/no); such lines earn no points
      group_buy       optional 1/0 (yes/no); such lines earn no points
      payment_method  cash, cheque, bank_transfer, wire, credit, cash_on_delivery or points
                      (on credit or cash on delivery: product codes from the catalogue,
                      whole boxes at the group price, within the credit limit; points:
                      the member's points pay it all)
      coupon_code     optional: one of the member's coupons, e.g. 7KQ2-M9XB-A4TD (used once)
      points_used     optional: points paying part of the sale (at the redemption rate)

    Rows with the same receipt_no, next to each other, are the lines of one purchase and agree
    on date, card, file and payment. A row with neither card nor file is a sale without a card:
    its points can be claimed later with the receipt number. Each purchase is priced, earns
    points and can make the customer a member exactly as at the till (oldest first).
    Stored-value payments need the member's PIN and cannot be imported. The birthday discount
    needs the holder's ID number or mobile at the till, so imported sales get the tier's price.

    All or nothing: every problem is listed with its line number (the header is line 1) and
    nothing is recorded; exit status 1.
    """
    from ..customers.service import NotFound
    from ..membership.pos_csv import parse_pos_csv
    from ..membership.rules import programme_today
    from ..policy import Action, PermissionDenied, may_perform

    parsed = parse_pos_csv(csv_file.read_bytes(), today=programme_today())
    if not parsed.ok:
        for e in parsed.errors:
            click.echo(f"line {e.line}: {e.field}: {e.message}", err=True)
        raise Failed(f"nothing recorded: {len(parsed.errors)} problem(s) in {csv_file.name}")
    vault = env.vault
    problems: list[tuple[int, str, str]] = []
    done: list = []
    try:
        with env.db.write() as s:
            user = s.scalar(select(User).where(User.username == as_user.strip().lower()))
            if user is None or not user.is_active:
                raise BadInput(f"--as: {as_user} is not an active user")
            actor = accounts.actor_for(user, s.get(OrgUnit, user.unit_id))
            who = actor.username
            if not may_perform(actor, Action.MEMBER_PURCHASE):
                raise BadInput(f"--as: {who} ({user.role}) does not record purchases")
            buyers, problems = _check_buyers(s, actor, parsed.purchases)
            todo = [] if problems else sorted(parsed.purchases, key=lambda p: (p.purchased_on, p.line))
            with progress(len(todo), "recording purchases") as step:
                for p in todo:
                    try:
                        with s.begin_nested():  # a refused purchase leaves nothing; the others are still checked
                            done.append((p, record_sale(s, vault, actor, p.request(buyers.get(p.receipt_no)))))
                    except InvalidField as exc:
                        problems.append((p.line, exc.field, exc.message))
                    except CreditRefused as exc:
                        problems.append((p.line, exc.field, exc.message))
                    except customers.InvalidInput as exc:
                        problems.extend((p.line, k, v) for k, v in exc.errors.items())
                    except (PermissionDenied, NotFound):
                        problems.append((p.line, "row", f"This purchase cannot be recorded by {who}."))
                    step(1)
            if problems or dry_run:
                raise _Rollback
            audit.record(s, actor, "member.purchase_import", object_type="receipt",
                         detail=f"{len(done)} purchase(s) from {csv_file.name}")
    except _Rollback:
        pass
    if problems:
        for line, fld, message in sorted(problems):
            click.echo(f"line {line}: {fld}: {message}", err=True)
        raise Failed(f"nothing recorded: {len(problems)} problem(s) in {csv_file.name}")
    if dry_run:
        _table(("line", "receipt", "date", "buyer", "lines", "paid", "points", "note"),
               [(str(p.line), p.receipt_no, p.purchased_on.isoformat(), p.card_number or p.file_no or "no card",
                 str(len(p.lines)), _yuan(o.paid_total_fen), str(o.points_earned),
                 "joins" if o.joined else f"to {o.tier_changed_to}" if o.tier_changed_to else "")
                for p, o in done])
        click.echo("")
    outs = [o for _, o in done]
    click.echo(f"{'would record' if dry_run else 'recorded'} {len(done)} purchase(s) as {who} "
               f"from {csv_file.name}" + (" (dry run: nothing recorded)" if dry_run else ""))
    click.echo(f"  lines:           {parsed.line_count}")
    click.echo(f"  paid:            {_yuan(sum(o.paid_total_fen for o in outs))} "
               f"(discounts {_yuan(sum(o.discount_total_fen for o in outs))})")
    click.echo(f"  points awarded:  {sum(o.points_earned for o in outs):,}")
    click.echo(f"  members joined:  {sum(o.joined for o in outs)}")
    click.echo(f"  tier changes:    {sum(bool(o.tier_changed_to) for o in outs)}")
    anonymous = sum(p.anonymous for p, _ in done)
    if anonymous:
        click.echo(f"  without a card:  {anonymous} (points claimable with the receipt number)")
    for p, o in done:
        if o.joined:
            click.echo(f"{'would join' if dry_run else 'joined'}: {p.file_no or p.card_number} "
                       f"(receipt {p.receipt_no})" + ("" if dry_run else f", card {o.card_number}"))
