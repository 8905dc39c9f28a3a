"""The membership programme's codes in words (tiers, ledger kinds, statuses, causes), looked up
once per language, and the file page's history tables built from them in one pass.

templates/membership/_labels.html's macros read the same tables (one source for the words);
the file page's membership section (templates/membership/_panel.html) prints the rows built
here instead of calling a macro per cell: a member with a long history has a few hundred cells,
and each macro call rebuilt its whole dictionary of translated words. The ledgers' and history's
rows go further (MemberRows): templates/membership/_rows.html's row markup is rendered once per
table with slot markers and the rows' escaped values are filled in.
"""
from __future__ import annotations

import re
import secrets
from functools import lru_cache

from jinja2 import Environment
from markupsafe import Markup, escape

from .. import i18n
from .membership import yuan
from .rendering import local_time

PAYMENT_REFS = ("cash", "cheque", "bank_transfer", "wire", "stored_value", "credit", "cash_on_delivery")


class MemberWords:
    """One language's words: each attribute a {code: translated word} table (Markup, as `_()`
    gives in templates), plus the two messages a ledger reference is written with."""

    def __init__(self, locale: str):
        t = i18n.translations(locale)

        def _(message: str) -> Markup:
            return Markup(t.gettext(message))

        self.locale = locale
        self.tier = {"regular": _("Regular"), "silver": _("Silver"), "gold": _("Gold"), "platinum": _("Platinum")}
        self.payment = {"cash": _("Cash"), "cheque": _("Cheque"), "bank_transfer": _("Bank transfer"),
                        "wire": _("Wire transfer"), "stored_value": _("Stored value"), "credit": _("Credit"),
                        "points": _("Points"), "cash_on_delivery": _("Cash on delivery")}
        self.member_status = {"active": _("Active member"), "ended": _("Membership ended")}
        self.account_status = {"active": _("Active"), "frozen": _("Frozen"), "cancelled": _("Cancelled")}
        self.card_status = {"current": _("In use"), "lost": _("Reported lost"), "void": _("Replaced")}
        self.join_cause = {"single_purchase": _("single purchase"), "cumulative": _("cumulative spend"),
                           "application": _("application"), "import": _("imported")}
        self.points_kind = {"earn": _("Earned"), "redeem": _("Redeemed"), "expire": _("Expired"),
                            "adjust": _("Adjustment"), "referral": _("Referral"), "event": _("Event points"),
                            "transfer": _("Transfer"), "reversal": _("Returned purchase"),
                            "payment": _("Paid a purchase"), "refund": _("Payment given back"),
                            "cash": _("Exchanged for cash")}
        self.stored_kind = {"recharge": _("Recharge"), "spend": _("Spend"), "refund": _("Refund"),
                            "adjust": _("Adjustment")}
        self.purchase_status = {"complete": _("Complete"), "returned": _("Returned")}
        self.discount_reason = {"tier": _("tier discount"), "birthday": _("birthday discount"),
                                "none": _("no discount")}
        self.application_status = {"pending": _("Waiting for review"), "approved": _("Approved"),
                                   "rejected": _("Rejected")}
        self.event_kind = {"joined": _("Joined"), "card_issued": _("Card issued"), "tier": _("Tier change"),
                           "tier_bounds": _("Tier floor/ceiling"), "freeze": _("Frozen"), "unfreeze": _("Unfrozen"),
                           "cancel": _("Cancelled"), "restore": _("Restored"), "loss": _("Reported lost"),
                           "replace": _("Replaced"), "renew": _("Renewed"), "pin": _("PIN set"),
                           "holder_failed": _("Wrong PIN or ID number"), "ended": _("Membership ended"),
                           "validity_review": _("Validity review")}
        self.cause = {"upgrade": _("thresholds reached"), "downgrade": _("below the standard at validity end"),
                      "floor": _("leader's floor"), "ceiling": _("leader's ceiling"), "manual": _("leader's decision"),
                      "no_purchase": _("no purchase in time"), "single_purchase": _("single purchase"),
                      "cumulative": _("cumulative spend"), "application": _("application"),
                      "import": _("imported"), "points_kept": _("points kept"),
                      "points_cleared": _("points cleared"), "validity_end": _("end of validity")}
        self.coupon_status = {"issued": _("Unused"), "used": _("Used"), "expired": _("Expired"),
                              "voided": _("Withdrawn")}
        self.coupon_source = {"campaign": _("campaign"), "birthday": _("birthday benefit")}
        self.referral = _("Referral")
        self._redemption_no = Markup(t.gettext("Redemption #%(n)s"))
        self._event_no = Markup(t.gettext("Event #%(n)s"))
        self.special_price = _("special price")
        self.group_buy = _("group buy")
        self._coupon = Markup(t.gettext("coupon %(amount)s"))
        self._points_paid = Markup(t.gettext("%(points)s points paid %(amount)s"))

    def tier_of(self, value):
        return self.tier.get(value, value or "—")

    def change_value(self, kind: str, value):
        """The before/after value of a history line, in words where it is a state."""
        if kind in ("tier", "joined"):
            return self.tier_of(value)
        if kind in ("freeze", "unfreeze", "cancel", "restore"):
            return self.account_status.get(value, value)
        if kind == "loss":
            return self.card_status.get(value, value)
        return value

    def ledger_ref(self, value):
        """A ledger line's reference: a receipt, a redemption, a referred member, an event or a
        payment method."""
        if value and value.startswith("redemption:"):
            return self._redemption_no % {"n": value.split(":")[1]}
        if value and value.startswith("member:"):
            return self.referral
        if value and value.startswith("event:"):
            return self._event_no % {"n": value.split(":")[1]}
        if value in PAYMENT_REFS:
            return self.payment.get(value, value)
        return value or ""

    # ------------------------------------------------------------ the file page's history tables

    def points_rows(self, lines) -> list[tuple]:
        """(date, kind, points, "minus" or "", reference, expires, note) for each points ledger line."""
        kinds, ref = self.points_kind, self.ledger_ref
        return [(e.on.isoformat(), kinds.get(e.kind, e.kind), f"{e.amount:+,}", "minus" if e.amount < 0 else "",
                 ref(e.ref), e.expires_on.isoformat() if e.expires_on else "", e.note) for e in lines]

    def stored_rows(self, lines) -> list[tuple]:
        """(date, kind, amount, "minus" or "", reference, note) for each stored-value ledger line."""
        kinds, payment = self.stored_kind, self.payment
        return [(e.on.isoformat(), kinds.get(e.kind, e.kind), yuan(e.amount), "minus" if e.amount < 0 else "",
                 payment.get(e.ref, e.ref) if e.kind == "recharge" else (e.ref or ""), e.note) for e in lines]

    def purchase_rows(self, bought: list[dict]) -> list[tuple]:
        """(receipt, card number, date, lines, list price, discount, discount reason or None,
        coupon or "", paid, payment, points paid or "", points, complete, status) for each purchase
        (membership.file_reads.purchases), each line (product, quantity, unit price, paid,
        special price, group buy)."""
        reasons, payments, statuses = self.discount_reason, self.payment, self.purchase_status
        coupon, points_paid = self._coupon, self._points_paid
        rows = []
        for row in bought:
            p = row["purchase"]
            rows.append((
                p.receipt_no, p.card_number, p.purchased_on.isoformat(),
                [(ln.product, ln.quantity, yuan(ln.unit_price_fen), yuan(ln.paid_fen), ln.special_price, ln.group_buy)
                 for ln in row["lines"]],
                yuan(p.list_total_fen), yuan(p.discount_total_fen),
                reasons.get(p.discount_reason, p.discount_reason) if p.discount_total_fen else None,
                coupon % {"amount": yuan(p.coupon_discount_fen)} if p.coupon_discount_fen else "",
                yuan(p.paid_total_fen), payments.get(p.payment_method, p.payment_method),
                points_paid % {"points": f"{p.points_paid:,}", "amount": yuan(p.points_paid_fen)}
                if p.points_paid else "",
                f"{p.points_earned:,}", p.status == "complete", statuses.get(p.status, p.status)))
        return rows

    def history_rows(self, history: list[dict], card_types: dict, tz: str) -> list[tuple]:
        """(when, what, before, after, cause, reason, by) for each line of the member's history."""
        when, kinds, causes, change = local_time(tz), self.event_kind, self.cause, self.change_value
        return [(when(h["at"]), kinds.get(h["kind"], h["kind"]), change(h["kind"], h["from"]),
                 change(h["kind"], h["to"]),
                 card_types.get(h["cause"], h["cause"]) if h["kind"] == "card_issued"
                 else causes.get(h["cause"], h["cause"]), h["reason"], h["by"]) for h in history]


@lru_cache(maxsize=4)
def _words(locale: str) -> MemberWords:
    return MemberWords(locale)


def member_words() -> MemberWords:
    """The request's language's words (a template global)."""
    return _words(i18n.current_locale.get())


# ---------------------------------------------------------------- the history tables' rows

ROWS = "membership/_rows.html"
_MARK = secrets.token_hex(8)  # random per process: letters and digits, left as they are by escaping
_SLOT = re.compile(f"{_MARK}([0-9]+){_MARK}")


def _escaped(value) -> str:
    """``value`` as `{{ value }}` prints it under autoescape (markupsafe.escape), without a
    Markup object made per cell: Markup as it is, text with markupsafe's five replacements."""
    if value.__class__ is str:
        return (value.replace("&", "&amp;").replace(">", "&gt;").replace("<", "&lt;")
                .replace("'", "&#39;").replace('"', "&#34;"))
    if value.__class__ is Markup:
        return value
    return str(escape(value))


class MemberRows:
    """`member_rows` in templates: the file page's history tables' rows (points, stored value,
    member history) in the macros of templates/membership/_rows.html, each macro rendered once
    with slot markers for its values, then filled in per row with the row's values escaped (as
    `{{ }}` escapes them): the same HTML as the macro called per row, at a fraction of the cost
    (a long-standing member has a few hundred rows). Each row as the macro lays it out (with its
    indentation), one after the other on lines of their own, without a last line end."""

    def __init__(self, env: Environment):
        self.env = env
        self._stencils: dict[tuple, tuple[list[str], list[int]]] = {}

    def _stencil(self, name: str, width: int) -> tuple[list[str], list[int]]:
        """The macro's output (its last line end left off) split at its slots: the texts around
        them (one more than the slots), and which value goes in each slot (the macro may print
        its arguments in any order, each once)."""
        template = self.env.get_template(ROWS)  # a new object once the file changed (auto-reload)
        key = (template, name)
        found = self._stencils.get(key)
        if found is None:
            html = str(getattr(template.module, name)(*(f"{_MARK}{i}{_MARK}" for i in range(width))))
            pieces = _SLOT.split(html.rstrip("\n"))
            texts, order = pieces[0::2], [int(i) for i in pieces[1::2]]
            if sorted(order) != list(range(width)):
                raise ValueError(f"{ROWS} {name}: each value must be printed once")
            if len(self._stencils) > 64:
                self._stencils.clear()
            found = self._stencils[key] = (texts, order)
        return found

    def _rows(self, name: str, rows: list[tuple]) -> Markup:
        if not rows:
            return Markup("")
        texts, order = self._stencil(name, len(rows[0]))
        pairs = list(zip(texts, order))
        last = texts[-1]
        out = []
        for row in rows:
            for text, i in pairs:
                out += (text, _escaped(row[i]))
            out += (last, "\n")
        out.pop()
        return Markup("".join(out))

    def points(self, lines) -> Markup:
        """The points ledger's rows (outcomes.LedgerLine, newest first)."""
        return self._rows("points", member_words().points_rows(lines))

    def stored(self, lines) -> Markup:
        """The stored-value ledger's rows."""
        return self._rows("stored", member_words().stored_rows(lines))

    def history(self, history: list[dict], card_types: dict, tz: str) -> Markup:
        """The member history's rows (overview.file_section's panel.history)."""
        return self._rows("history", member_words().history_rows(history, card_types, tz))
