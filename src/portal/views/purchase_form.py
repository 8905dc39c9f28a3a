"""The purchase form of a customer file: as many lines as the sale has, a running total, and
POST/redirect/GET once it is recorded.

One route pair, three answers to a POST besides recording: "add_line" and "remove_line" give the
form back with a line more or less (the no-script way; static/purchase.js does the same in the
page), and "quote" gives the figures (total, discount, points) the lines would come to, as the
fragment `_quote.html` for htmx or the whole page without script. A recorded purchase redirects
to the form's own address with `?done=<purchase id>`, which shows what was recorded.
"""
from __future__ import annotations

import re
from datetime import date
from uuid import UUID

from litestar import Request, Response, get, post
from litestar.response import Redirect

from .. import i18n
from ..credit import sales as credit_sales
from ..credit.rules import CreditRefused
from ..customers import service as customers
from ..customers.rules import InvalidField
from ..customers.service import InvalidInput
from ..membership import cards, members, programme, purchases
from ..membership.outcomes import ON_TERMS, PAYMENT_METHODS, PurchaseRequest
from ..membership.rules import PurchaseLine, programme_today
from ..membership.settings import Tier
from ..policy import Action
from .membership import R, Form, _echo, fen_of, field_errors, suggest_receipt, whole_number
from .rendering import is_htmx, render
from .security import current_actor

MAX_LINES = 50        # lines of one purchase (the form offers one more at a time)
PRODUCT_MAX = 200     # characters of a product's name (the form's maxlength says the same)
_LINE_FIELD = re.compile(r"(product|qty|price|special|group)_([1-9][0-9]{0,2})")
BIRTHDAY_CHECKS = ("verified", "unverified", "mismatch")  # the birthday discount at the till (no personal data)
_ = i18n.gettext


def line_numbers(data: dict[str, str]) -> list[int]:
    """The form's line numbers, in order (gaps are fine: a line removed in the page leaves one)."""
    found = {int(m.group(2)) for k in data if (m := _LINE_FIELD.fullmatch(k))}
    return sorted(n for n in found if n <= 999)[:MAX_LINES]


def _blank(data: dict[str, str], i: int) -> bool:
    return not data.get(f"product_{i}", "").strip() and not data.get(f"price_{i}", "").strip()


def parse_lines(data: dict[str, str]) -> tuple[list[PurchaseLine], list[int], dict[str, str]]:
    """(lines, the form line of each, {field: message}); blank lines are skipped."""
    errors: dict[str, str] = {}
    lines, rows = [], []
    for i in line_numbers(data):
        if _blank(data, i):
            continue
        product, price = data.get(f"product_{i}", "").strip(), data.get(f"price_{i}", "").strip()
        try:
            quantity = whole_number(data.get(f"qty_{i}", "") or "1", f"qty_{i}")
            if not 1 <= quantity <= 100_000:
                raise InvalidField(f"qty_{i}", "quantity.invalid", _("Quantity must be a whole number of at least 1."))
        except InvalidField as exc:
            errors[exc.field], quantity = exc.message, 1
        try:
            price_fen = fen_of(price, f"price_{i}")
        except InvalidField as exc:
            errors[exc.field], price_fen = exc.message, 0
        if not product:
            errors[f"product_{i}"] = _("Name the product.")
        elif len(product) > PRODUCT_MAX:
            errors[f"product_{i}"] = _("At most 200 characters.")
        lines.append(PurchaseLine(product, quantity, price_fen, special_price=bool(data.get(f"special_{i}")),
                                  group_buy=bool(data.get(f"group_{i}"))))
        rows.append(i)
    return lines, rows, errors


def purchase_request(data: dict[str, str], file_id: UUID) -> tuple[PurchaseRequest, list[int]]:
    """The form as a PurchaseRequest and the form line of each purchase line; InvalidInput naming fields."""
    lines, rows, errors = parse_lines(data)
    if not lines:
        errors["lines"] = _("A purchase needs at least one line.")
    on = None
    try:
        on = date.fromisoformat(data.get("purchased_on", "").strip())
    except ValueError:
        errors["purchased_on"] = _("Enter a date like 2026-03-10.")
    points_used = None
    if data.get("points_used", "").strip():
        try:
            points_used = whole_number(data["points_used"], "points_used")
        except InvalidField as exc:
            errors[exc.field] = exc.message
    if errors:
        raise InvalidInput(errors)
    return PurchaseRequest(receipt_no=data.get("receipt_no", ""), lines=tuple(lines),
                           payment_method=data.get("payment_method", ""), customer_id=file_id, purchased_on=on,
                           pin=data.get("pin") or None,
                           referrer_card=data.get("referrer_card", "").strip() or None,
                           coupon_code=data.get("coupon_code", "").strip() or None, points_used=points_used,
                           holder_check=data.get("holder_check", "").strip() or None), rows


def _quote(request: Request, file_id: UUID, data: dict[str, str]) -> dict:
    """The figures the lines come to for this buyer, or why there are none yet. Reads, writes nothing."""
    if data.get("payment_method") in ON_TERMS:
        return {"note": _("A sale on terms is priced from the product catalogue when it is recorded.")}
    lines, _rows, errors = parse_lines(data)
    lines = [ln for ln in lines if ln.product and len(ln.product) <= PRODUCT_MAX]
    if errors or not lines:
        return {"note": _("Enter each line's product and price to see the total.")}
    try:
        on = date.fromisoformat(data.get("purchased_on", "").strip())
    except ValueError:
        on = None
    st = request.app.state
    try:
        with st.db.read() as s:
            priced = purchases.quote_purchase(s, st.vault, current_actor(request), file_id, lines, on)
    except (InvalidInput, InvalidField):
        return {"note": _("Enter each line's product and price to see the total.")}
    return {"priced": priced, "count": sum(ln.quantity for ln in lines)}


def _page(request: Request, file_id: UUID, *, form: dict[str, str] | None = None, rows: list[int] | None = None,
          errors: dict[str, str] | None = None, quote: dict | None = None, status: int = 200) -> Response:
    actor = current_actor(request)
    today = programme_today()
    with request.app.state.db.read() as s:
        f = customers.get_file_for(s, actor, file_id, Action.MEMBER_PURCHASE)
        m = members.membership_of(s, f.id)
        account = members.primary_account(s, m) if m is not None and m.status == "active" else None
        card = members.current_card(s, account.id) if account is not None else None
        settings = programme.current_settings(s)
    form = form or {"receipt_no": suggest_receipt(today), "purchased_on": today.isoformat(),
                    "payment_method": "cash"}
    return render(request, "membership/purchase.html", status=status, file=f, member=m, account=account,
                  member_card=card, form=form, errors=errors or {}, rows=rows or [1], max_lines=MAX_LINES,
                  payment_methods=PAYMENT_METHODS, today=today, quote=quote or {}, settings=settings)


@get(R + "/purchases/new", opt={"action": Action.MEMBER_PURCHASE}, sync_to_thread=True)
def new_purchase_form(request: Request, file_id: UUID, done: int | None = None, joined: str = "",
                      tier: str = "", birthday: str = "") -> Response:
    """The empty form; with `done`, the purchase just recorded (what it came to, the balances now)."""
    if done is not None:
        with request.app.state.db.read() as s:
            outcome = purchases.recorded_outcome(
                s, current_actor(request), file_id, done, joined=joined == "1",
                tier_changed_to=tier if tier in {t.value for t in Tier} else None,
                birthday_check=birthday if birthday in BIRTHDAY_CHECKS else None)
            f = customers.get_file_for(s, current_actor(request), file_id, Action.MEMBER_PURCHASE)
        if outcome is not None:
            return render(request, "membership/purchase_done.html", file=f, outcome=outcome)
    return _page(request, file_id)


def _rows_for(data: dict[str, str]) -> list[int]:
    rows = line_numbers(data) or [1]
    if data.get("add_line") and len(rows) < MAX_LINES:
        rows.append(rows[-1] + 1)
    removed = data.get("remove_line", "")
    if removed.isdigit() and int(removed) in rows:
        rows.remove(int(removed))
    return rows or [1]


@post(R + "/purchases/new", opt={"action": Action.MEMBER_PURCHASE}, sync_to_thread=True, status_code=200)
def record_purchase(request: Request, file_id: UUID, data: Form) -> Response:
    actor = current_actor(request)
    st = request.app.state
    with st.db.read() as s:  # authorise before reading (or echoing) anything
        customers.get_file_for(s, actor, file_id, Action.MEMBER_PURCHASE)
    if data.get("quote") or data.get("add_line") or data.get("remove_line"):
        quote = _quote(request, file_id, data)
        if data.get("quote") and is_htmx(request):
            return render(request, "membership/_quote.html", quote=quote)
        return _page(request, file_id, form=_echo(data), rows=_rows_for(data), quote=quote)
    rows: list[int] = []
    try:
        req, rows = purchase_request(data, file_id)
        outcome = cards.guarded(st.db, actor, lambda s: credit_sales.record_sale(s, st.vault, actor, req))
    except CreditRefused as exc:
        return _page(request, file_id, form=_echo(data), rows=_rows_for(data), errors={
            "lines" if exc.field != "_form" else "payment_method": i18n.error_text(exc)}, status=400)
    except (InvalidInput, InvalidField) as exc:
        rename = {"card_number": "_form", "customer": "_form", "points": "points_used"}
        for n, row in enumerate(rows):
            rename.update({f"lines[{n}].product": f"product_{row}", f"lines[{n}].quantity": f"qty_{row}",
                           f"lines[{n}].unit_price_fen": f"price_{row}", f"lines[{n}]": "lines"})
        fields = ("receipt_no", "purchased_on", "payment_method", "pin", "referrer_card", "lines",
                  "coupon_code", "points_used", "holder_check",
                  *(f"{k}_{i}" for i in line_numbers(data) for k in ("product", "qty", "price")))
        return _page(request, file_id, form=_echo(data), rows=_rows_for(data),
                     errors=field_errors(exc, fields, rename), status=400)
    done = f"/customers/{file_id}/purchases/new?done={outcome.purchase_id}"
    if outcome.joined:
        done += "&joined=1"
    if outcome.tier_changed_to:
        done += f"&tier={outcome.tier_changed_to}"
    if outcome.birthday_check:
        done += f"&birthday={outcome.birthday_check}"
    return Redirect(path=done, status_code=303)


ROUTES = [new_purchase_form, record_purchase]
