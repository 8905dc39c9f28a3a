"""Sales and credit (issue 13): sales on terms by product, unit, salesperson and month over the
period; the receivables' ageing now; liabilities per person (operators' amounts, line leaders'
fines, settled or not). Every figure is a GROUP BY within the policy's scope (a salesperson's own
clients, a leader's units); a group of fewer than 3 customers is suppressed."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import case, func, or_, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..catalogue.models import ProductVersion
from ..credit.models import CreditOrder, Liability
from ..credit.rules import BUCKETS
from ..customers.models import CustomerFile
from ..membership.models import PurchaseLineRow
from ..membership.rules import programme_today
from ..org.models import OrgUnit
from ..policy import Action, customer_scope
from ..policy.scope import subtree_range
from .filters import ReportFilter
from .model import _, Chart, Col, Report, Table, file_filters, suppress
from .sqlfn import month_of

BUCKET_LABELS = {"not_due": _("Not yet due"), "1-30": _("1–30 days overdue"), "31-60": _("31–60 days overdue"),
                 "61-90": _("61–90 days overdue"), "90+": _("More than 90 days overdue")}
FIGURES = [Col("customers", _("Customers"), "count"), Col("orders", _("Orders"), "int"),
           Col("boxes", _("Boxes"), "int"), Col("amount", _("Amount"), "fen")]


def _figures():
    return (func.count(func.distinct(CreditOrder.customer_id)), func.count(func.distinct(CreditOrder.id)))


def _orders(actor: Actor, f: ReportFilter):
    """Sales on terms ordered in the period, within scope and filters (a select to add columns to)."""
    return (select().select_from(CreditOrder).join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
            .where(*file_filters(actor, f), CreditOrder.ordered_on >= f.period.start,
                   CreditOrder.ordered_on <= f.period.end))


def _grouped(s: Session, actor: Actor, f: ReportFilter, *keys, join=None, outer=True) -> list[tuple]:
    q = _orders(actor, f).add_columns(*keys, *_figures(), func.sum(CreditOrder.boxes), func.sum(CreditOrder.amount_fen))
    if join is not None:
        q = q.outerjoin(*join) if outer else q.join(*join)
    return list(s.execute(q.group_by(*keys).order_by(*keys)))


def _row(key: dict, customers, orders, boxes, amount) -> dict:
    return {**key, "customers": customers, "orders": orders, "boxes": int(boxes or 0), "amount": int(amount or 0)}


def sales(s: Session, actor: Actor, f: ReportFilter) -> Report:
    rep = Report("sales", _("Sales and credit"))
    # By product: the order's lines (catalogue "CODE name", bottles); boxes from the catalogue's box size.
    q = (_orders(actor, f).join(PurchaseLineRow, PurchaseLineRow.purchase_id == CreditOrder.purchase_id)
         .add_columns(PurchaseLineRow.product, *_figures(), func.sum(PurchaseLineRow.quantity),
                      func.sum(PurchaseLineRow.paid_fen))
         .group_by(PurchaseLineRow.product).order_by(PurchaseLineRow.product))
    products = []
    for product, customers, orders, bottles, amount in s.execute(q):
        code, _sep, name = product.partition(" ")
        products.append({"code": code, "name": name, "customers": customers, "orders": orders,
                         "bottles": int(bottles or 0), "amount": int(amount or 0)})
    per_box = dict(s.execute(select(ProductVersion.code, func.max(ProductVersion.bottles_per_box))
                             .where(ProductVersion.code.in_({p["code"] for p in products}))
                             .group_by(ProductVersion.code)).all()) if products else {}
    for p in products:
        p["boxes"] = p.pop("bottles") // per_box.get(p["code"], 1)
    cols = [Col("code", _("Product code"), "text"), Col("name", _("Product"), "text"), *FIGURES]
    rep.tables.append(Table("products", _("Sales on terms by product"), cols, suppress(products, cols, "customers")))

    cols = [Col("unit", _("Unit"), "text"), Col("name", _("Name"), "text"), *FIGURES]
    units = [_row({"unit": code, "name": name}, *rest) for code, name, *rest in
             _grouped(s, actor, f, OrgUnit.code, OrgUnit.name, join=(OrgUnit, OrgUnit.id == CustomerFile.unit_id))]
    rep.tables.append(Table("units", _("Sales on terms by unit"), cols, suppress(units, cols, "customers")))

    cols = [Col("salesperson", _("Salesperson"), "text"), *FIGURES]
    people = [_row({"salesperson": name or "—"}, *rest) for name, *rest in
              _grouped(s, actor, f, User.username, join=(User, User.id == CreditOrder.operator_id))]
    rep.tables.append(Table("salespeople", _("Sales on terms by salesperson"), cols,
                            suppress(people, cols, "customers"), note=_("The salesperson is who recorded the sale.")))

    month = month_of(CreditOrder.ordered_on)
    got = {m: _row({"month": m}, *rest) for m, *rest in _grouped(s, actor, f, month.label("month"))}
    cols = [Col("month", _("Month"), "month"), *FIGURES]
    months = suppress([got.get(m) or _row({"month": m}, 0, 0, 0, 0) for m in f.period.months()], cols, "customers")
    rep.tables.append(Table("months", _("Sales on terms per month"), cols, months))
    rep.charts.append(Chart("months", _("Sales on terms per month"), "bar", [r["month"] for r in months],
                            [(_("Amount"), [r["amount"] for r in months])], money=True))
    if products:
        rep.charts.append(Chart("products", _("Sales on terms by product"), "bar", [p["name"] or p["code"] for p in products],
                                [(_("Amount"), [p["amount"] for p in products])], money=True))
    _ageing(s, actor, f, rep)
    _liabilities(s, actor, f, rep)
    return rep


def _ageing(s: Session, actor: Actor, f: ReportFilter, rep: Report) -> None:
    """Open orders now by how long they are overdue (the same buckets as the receivables board)."""
    today = programme_today()
    due = CreditOrder.due_on
    bucket = case((or_(due.is_(None), due >= today), "not_due"), (due >= today - timedelta(days=30), "1-30"),
                  (due >= today - timedelta(days=60), "31-60"), (due >= today - timedelta(days=90), "61-90"),
                  else_="90+").label("bucket")
    q = (select(bucket, *_figures(), func.sum(CreditOrder.balance_fen))
         .join(CustomerFile, CustomerFile.id == CreditOrder.customer_id)
         .where(*file_filters(actor, f), CreditOrder.settled_at.is_(None), CreditOrder.balance_fen > 0)
         .group_by(bucket))
    got = {b: (c, n, int(fen or 0)) for b, c, n, fen in s.execute(q)}
    cols = [Col("bucket", _("Overdue"), "text"), Col("customers", _("Customers"), "count"),
            Col("orders", _("Orders"), "int"), Col("balance", _("Outstanding"), "fen")]
    rows = [dict(zip(("customers", "orders", "balance"), got.get(b, (0, 0, 0))), bucket=BUCKET_LABELS[b]) for b in BUCKETS]
    rows = suppress(rows, cols, "customers")
    rep.tables.append(Table("ageing", _("Receivables ageing (open orders today)"), cols, rows, translate=("bucket",),
                            note=_("Ageing is as of today, whatever the period; unit, tier and category apply.")))
    rep.charts.append(Chart("ageing", _("Receivables ageing (open orders today)"), "bar",
                            [BUCKET_LABELS[b] for b in BUCKETS], [(_("Outstanding"), [r["balance"] for r in rows])],
                            money=True))


def _liabilities(s: Session, actor: Actor, f: ReportFilter, rep: Report) -> None:
    """What each person owes from write-offs recorded in the period (seed 000): the operator's
    amount, the line leader's fine, and how much of it is still unsettled."""
    lo, hi = f.period.utc_bounds()
    conds = [customer_scope(actor, Action.REPORT_VIEW, owner=Liability.person_id,
                            unit_path=Liability.person_unit_path, file_id=Liability.id),
             Liability.created_at >= lo, Liability.created_at < hi]
    if f.unit is not None:
        ulo, uhi = subtree_range(f.unit.path)
        conds += [Liability.person_unit_path >= ulo, Liability.person_unit_path < uhi]
    q = (select(User.username,
                func.sum(case((Liability.role == "operator", Liability.amount_fen), else_=0)),
                func.sum(case((Liability.role == "line_leader", Liability.amount_fen), else_=0)),
                func.sum(Liability.settled_fen),  # settlements' sum, partial ones included
                func.sum(Liability.amount_fen - Liability.settled_fen))
         .join(User, User.id == Liability.person_id).where(*conds).group_by(User.username).order_by(User.username))
    keys = ("person", "operator", "line_leader", "settled", "unsettled")
    rows = [dict(zip(keys, (name, *(int(v or 0) for v in vals)))) for name, *vals in s.execute(q)]
    rep.tables.append(Table("liabilities", _("Liabilities per person"), [
        Col("person", _("Person"), "text"), Col("operator", _("Owed as operator"), "fen"),
        Col("line_leader", _("Fines as line leader"), "fen"), Col("settled", _("Settled"), "fen"),
        Col("unsettled", _("Unsettled"), "fen")], rows,
        note=_("Write-offs recorded in the period; the unit filter applies to the person's unit.")))
