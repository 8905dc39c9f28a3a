"""The filters every report takes: period (month, quarter, year, custom), unit (within the user's
scope), tier and category; parsed from a query string with a message per bad field."""
from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Mapping

from sqlalchemy import select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..customers.rules import Category
from ..membership.settings import Tier
from ..org.models import OrgUnit
from ..policy.scope import subtree_range



def _(message: str) -> str:
    """Marks a msgid for extraction (the page translates the message when it shows it)."""
    return message


PERIOD_KINDS = ("month", "quarter", "year", "custom")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.I)
MAX_CUSTOM_DAYS = 3 * 366
SHANGHAI = timezone(timedelta(hours=8))


@dataclass(frozen=True)
class Period:
    kind: str
    start: date
    end: date  # inclusive

    @property
    def label(self) -> str:
        if self.kind == "month":
            return f"{self.start:%Y-%m}"
        if self.kind == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        if self.kind == "year":
            return str(self.start.year)
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as UTC instants of the Shanghai days."""
        lo = datetime.combine(self.start, time(0), SHANGHAI).astimezone(timezone.utc)
        hi = datetime.combine(self.end + timedelta(days=1), time(0), SHANGHAI).astimezone(timezone.utc)
        return lo, hi

    def months(self) -> list[str]:
        out, y, m = [], self.start.year, self.start.month
        while (y, m) <= (self.end.year, self.end.month):
            out.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return out


@dataclass(frozen=True)
class UnitChoice:
    code: str
    name: str
    path: str
    depth: int


@dataclass(frozen=True)
class ReportFilter:
    period: Period
    unit: UnitChoice | None = None
    tier: str = ""
    category: str = ""
    params: dict = field(default_factory=dict, compare=False)  # the query as given (for links)


def month_period(y: int, m: int) -> Period:
    return Period("month", date(y, m, 1), date(y, m, calendar.monthrange(y, m)[1]))


def units_in_scope(s: Session, actor: Actor) -> list[UnitChoice]:
    """The units a user may pick: a leader's unit and those below it; nobody else picks one."""
    if actor.role != "leader" or not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    return [UnitChoice(u.code, u.name, u.path, u.depth) for u in s.scalars(
        select(OrgUnit).where(OrgUnit.path >= lo, OrgUnit.path < hi).order_by(OrgUnit.path))]


def parse_filter(params: Mapping[str, str], today: date,
                 units: list[UnitChoice]) -> tuple[ReportFilter, dict[str, str]]:
    """The filter, and {field: message} for what could not be used (the default is used instead)."""
    errors: dict[str, str] = {}
    kind = (params.get("period") or "year").strip()
    if kind not in PERIOD_KINDS:
        errors["period"] = _("Choose month, quarter, year or custom.")
        kind = "year"
    period = Period("year", date(today.year, 1, 1), date(today.year, 12, 31))
    raw = (params.get(kind) or "").strip() if kind != "custom" else ""
    if kind == "month":
        m = _MONTH.match(raw or f"{today:%Y-%m}")
        if m and 1 <= int(m.group(2)) <= 12 and 2000 <= int(m.group(1)) <= 2100:
            period = month_period(int(m.group(1)), int(m.group(2)))
        else:
            errors["month"] = _("Enter a month as YYYY-MM.")
    elif kind == "quarter":
        m = _QUARTER.match(raw or f"{today.year}-Q{(today.month - 1) // 3 + 1}")
        if m and 2000 <= int(m.group(1)) <= 2100:
            y, q = int(m.group(1)), int(m.group(2))
            period = Period("quarter", date(y, 3 * q - 2, 1), month_period(y, 3 * q).end)
        else:
            errors["quarter"] = _("Enter a quarter as YYYY-Q1 to YYYY-Q4.")
    elif kind == "year":
        y = raw or str(today.year)
        if y.isdigit() and 2000 <= int(y) <= 2100:
            period = Period("year", date(int(y), 1, 1), date(int(y), 12, 31))
        else:
            errors["year"] = _("Enter a year such as 2026.")
    else:
        try:
            lo = date.fromisoformat((params.get("from") or "").strip())
            hi = date.fromisoformat((params.get("to") or "").strip())
        except ValueError:
            errors["from"] = _("Enter both dates as YYYY-MM-DD.")
        else:
            if hi < lo:
                errors["to"] = _("The end date must not be before the start date.")
            elif (hi - lo).days > MAX_CUSTOM_DAYS:
                errors["to"] = _("A custom period can be at most three years.")
            else:
                period = Period("custom", lo, hi)
    unit = None
    code = (params.get("unit") or "").strip()
    if code:
        unit = next((u for u in units if u.code == code), None)
        if unit is None:
            errors["unit"] = _("Choose one of your units.")
    tier = (params.get("tier") or "").strip()
    if tier and tier not in {t.value for t in Tier}:
        errors["tier"] = _("Choose a tier.")
        tier = ""
    category = (params.get("category") or "").strip()
    if category and category not in {c.value for c in Category}:
        errors["category"] = _("Choose a category.")
        category = ""
    given = {k: v for k, v in params.items() if k in ("period", "month", "quarter", "year", "from", "to",
                                                        "unit", "tier", "category") and v}
    return ReportFilter(period, unit, tier, category, given), errors
