"""Member service's and credit's codes in words (channels, kinds, statuses, terms, buckets...),
looked up once per language.

templates/service/_labels.html's and templates/credit/_labels.html's macros read these tables
(one source for the words); a page that prints a code on every row of a long table (the
complaints queue, the receivables board) takes the table once and looks each row's code up in
it, instead of calling a macro per cell that rebuilt its whole dictionary of translated words.
"""
from __future__ import annotations

from functools import lru_cache

from markupsafe import Markup

from .. import i18n


def _translator(locale: str):
    t = i18n.translations(locale)

    def _(message: str) -> Markup:
        return Markup(t.gettext(message))  # as `_()` gives it in templates (autoescape on)
    return _


class ServiceWords:
    """Member service's codes: complaints, follow-up visits, care."""

    def __init__(self, locale: str):
        _ = _translator(locale)
        self.channel = {"hotline": _("Hotline"), "online": _("Online"), "email": _("E-mail"),
                        "in_store": _("In store"), "salesperson": _("Through the salesperson")}
        self.kind = {"product": _("Product"), "service": _("Service"), "delivery": _("Delivery"),
                     "price": _("Price"), "points": _("Points"), "other": _("Other")}
        self.cause = {"product_defect": _("Product defect"), "staff_conduct": _("Staff conduct"),
                      "process": _("Process"), "logistics": _("Logistics"), "pricing_error": _("Pricing error"),
                      "system": _("System"), "misunderstanding": _("Misunderstanding"), "other": _("Other")}
        self.status = {"recorded": _("Recorded"), "reopened": _("Reopened"), "investigated": _("Investigated"),
                       "proposed": _("Resolution proposed"), "told": _("Member told"), "closed": _("Closed")}
        self.step = {"recorded": _("Recorded"), "investigated": _("Investigated"),
                     "proposed": _("Resolution proposed"), "told": _("Member told"),
                     "satisfaction": _("Member's satisfaction"), "closed": _("Closed"), "reopened": _("Reopened")}
        self.how = {"phone": _("Phone"), "sms": _("SMS"), "email": _("E-mail"), "in_person": _("In person")}
        self.verdict = {"satisfied": _("Satisfied"), "not_satisfied": _("Not satisfied")}
        self.visit_kind = {"phone": _("Phone"), "survey": _("Survey"), "interview": _("Interview")}
        self.reason = {"schedule": _("Scheduled for the tier"), "complaint": _("After a resolved complaint"),
                       "purchase": _("After a large purchase")}
        self.benefit = {"care_package": _("Care package"), "birthday_gift": _("Birthday gift")}
        self.priority, self.overdue = _("priority"), _("overdue")


class CreditWords:
    """Credit's codes: terms, customer classes, ageing buckets, payments, approvals, liability."""

    def __init__(self, locale: str):
        _ = _translator(locale)
        self.terms = {"credit": _("on credit"), "cod": _("cash on delivery")}
        self.klass = {"institutional": _("institutional"), "individual": _("individual")}
        self.bucket = {"not_due": _("not yet due"), "1-30": _("1–30 days overdue"), "31-60": _("31–60 days overdue"),
                       "61-90": _("61–90 days overdue"), "90+": _("more than 90 days overdue")}
        self.method = {"cash": _("cash"), "cash_cheque": _("cash cheque"), "transfer": _("transfer"),
                       "wire": _("wire"), "other": _("other")}
        self.status = {"pending": _("pending"), "approved": _("approved"), "refused": _("refused"), "used": _("used")}
        self.role = {"operator": _("operator (full amount)"), "line_leader": _("line leader (fine)")}
        self.settlement_status = {"settled": _("settled"), "part": _("partly settled"), "open": _("not settled")}
        self.settlement_method = {"payroll": _("deducted from pay"), "cash": _("cash"), "transfer": _("transfer"),
                                  "other": _("other")}
        self.not_delivered = _("not delivered")


@lru_cache(maxsize=4)
def _service(locale: str) -> ServiceWords:
    return ServiceWords(locale)


@lru_cache(maxsize=4)
def _credit(locale: str) -> CreditWords:
    return CreditWords(locale)


def service_words() -> ServiceWords:
    """The request's language's member-service words (a template global)."""
    return _service(i18n.current_locale.get())


def credit_words() -> CreditWords:
    """The request's language's credit words (a template global)."""
    return _credit(i18n.current_locale.get())
