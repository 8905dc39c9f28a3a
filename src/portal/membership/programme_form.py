"""The programme settings form in human units: money in yuan, discounts in 折, months as "3,8",
one catalogue item or card type per line. ``settings_from_form`` turns the administrator's form
into a validated ``ProgrammeSettings`` or an ``InvalidInput`` naming every bad field;
``form_values`` is its inverse for pre-filling the form. Re-exported by programme.py."""
from __future__ import annotations

import dataclasses
import re
import unicodedata
from collections.abc import Mapping
from datetime import date

from ..customers.service import InvalidInput
from .settings import CARD_KINDS, CASH_ITEM, CardType, ProgrammeSettings, RedemptionItem

# How the form spells each figure: money in yuan, discounts in 折, the rest as they are.
MONEY_FIELDS = ("join_single_purchase_fen", "join_cumulative_fen", "joining_fee_fen",
                "silver_spend_fen", "gold_spend_fen", "single_purchase_silver_fen", "single_purchase_gold_fen",
                "leak_penalty_fen", "class_a_spend_fen", "class_b_spend_fen", "class_c_spend_fen",
                "birthday_coupon_regular_fen", "birthday_coupon_silver_fen", "birthday_coupon_gold_fen",
                "birthday_coupon_platinum_fen")
DISCOUNT_FIELDS = ("regular_discount_per_mille", "silver_discount_per_mille", "gold_discount_per_mille",
                   "platinum_discount_per_mille", "birthday_discount_per_mille")
BOOL_FIELDS = ("discount_group_buy", "frozen_spend_counts", "tier_points_accumulated",
               "group_buy_counts_toward_tiers", "cancelled_spend_counts")
_SPECIAL = {"effective_from", "redemption_months", "catalogue", "card_types"}
INT_FIELDS = tuple(f.name for f in dataclasses.fields(ProgrammeSettings)
                   if f.name not in {*MONEY_FIELDS, *DISCOUNT_FIELDS, *BOOL_FIELDS, *_SPECIAL})
_AT_LEAST_ONE = ("join_window_months", "tier_window_months", "lapse_after_months",
                 "card_validity_years", "points_validity_years", "class_window_months",
                 "points_payment_points_per_yuan", "gold_cash_points_per_yuan", "platinum_cash_points_per_yuan",
                 "birthday_coupon_days")


# ---------------------------------------------------------------------------
# Human units
# ---------------------------------------------------------------------------

_YUAN = re.compile(r"([0-9]{1,12})(?:\.([0-9]{1,2}))?")
_ZHE = re.compile(r"([0-9]{1,2})(?:\.([0-9]{1,2}))?")
_WHOLE = re.compile(r"[0-9]{1,12}")
_CODE = re.compile(r"[a-z0-9-]{1,32}")


def _clean(raw: str) -> str:
    """Full-width digits and punctuation to ASCII, surrounding space dropped."""
    return unicodedata.normalize("NFKC", raw or "").strip()


def fen_from_yuan(raw: str) -> int | None:
    """"680" -> 68000, "680.5" -> 68050, "¥1,000.00" -> 100000; None when it is not an amount.

    String arithmetic only (no floats), at most two decimals, never negative.
    """
    text = _clean(raw).lstrip("¥￥").replace(",", "").strip()
    m = _YUAN.fullmatch(text)
    if not m:
        return None
    return int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))


def per_mille_from_zhe(raw: str) -> int | None:
    """A discount in 折 to per mille of list price: "9.5" -> 950, "8.8" -> 880, "10" -> 1000."""
    text = _clean(raw).removesuffix("折").strip()
    m = _ZHE.fullmatch(text)
    if not m:
        return None
    value = int(m.group(1)) * 100 + int((m.group(2) or "").ljust(2, "0"))
    return value if value <= 1000 else None


def yuan_text(fen: int, grouping: bool = False) -> str:
    """68050 -> "680.50" (``grouping``: "1,000.00")."""
    yuan, cents = divmod(fen, 100)
    return f"{yuan:,}.{cents:02d}" if grouping else f"{yuan}.{cents:02d}"


def zhe_text(per_mille: int) -> str:
    """950 -> "9.5", 1000 -> "10", 885 -> "8.85"."""
    whole, frac = divmod(per_mille, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".")


def form_values(settings: ProgrammeSettings) -> dict[str, str]:
    """The form's fields pre-filled from ``settings`` (``settings_from_form`` reads them back)."""
    values: dict[str, str] = {"effective_from": settings.effective_from.isoformat()}
    for name in MONEY_FIELDS:
        values[name] = yuan_text(getattr(settings, name))
    for name in DISCOUNT_FIELDS:
        values[name] = zhe_text(getattr(settings, name))
    for name in INT_FIELDS:
        values[name] = str(getattr(settings, name))
    for name in BOOL_FIELDS:
        values[name] = "on" if getattr(settings, name) else ""
    values["redemption_months"] = ",".join(str(m) for m in settings.redemption_months)
    values["catalogue"] = "\n".join(f"{i.code} | {i.name} | {i.points} | {yuan_text(i.value_fen)}"
                                    for i in settings.catalogue)
    values["card_types"] = "\n".join(f"{c.code} | {c.name} | {c.kind}" + ("" if c.named else " | anonymous")
                                     for c in settings.card_types)
    return values


# ---------------------------------------------------------------------------
# Reading the form
# ---------------------------------------------------------------------------


def _lines(raw: str) -> list[list[str]]:
    return [[part.strip() for part in re.split(r"[|｜]", line)]
            for line in (raw or "").replace("\r", "").split("\n") if line.strip()]


def _catalogue(raw: str, errors: dict[str, str]) -> tuple[RedemptionItem, ...] | None:
    items: list[RedemptionItem] = []
    for parts in _lines(raw):
        if len(parts) != 4:
            errors["catalogue"] = "Write one item per line: code | name | points | value in yuan."
            return None
        code, name, points, value = parts
        points_text = _clean(points).replace(",", "")
        value_fen = fen_from_yuan(value)
        if not _CODE.fullmatch(code):
            errors["catalogue"] = "Item codes use a-z, 0-9 and '-' (at most 32 characters)."
        elif code == CASH_ITEM:
            errors["catalogue"] = "The item code 'cash' is kept for points exchanged for cash."
        elif not name or len(name) > 200:
            errors["catalogue"] = "Every item needs a name (at most 200 characters)."
        elif not _WHOLE.fullmatch(points_text) or int(points_text) < 1:
            errors["catalogue"] = "Item points must be a whole number of at least 1."
        elif value_fen is None:
            errors["catalogue"] = "Item values are amounts in yuan, e.g. 100 or 99.50."
        else:
            items.append(RedemptionItem(code, name, int(points_text), value_fen))
            continue
        return None
    if len({i.code for i in items}) != len(items):
        errors["catalogue"] = "Item codes must be unique."
        return None
    return tuple(items)


def _card_types(raw: str, errors: dict[str, str]) -> tuple[CardType, ...] | None:
    types: list[CardType] = []
    for parts in _lines(raw):
        if len(parts) not in (3, 4):
            errors["card_types"] = "Write one card type per line: code | name | kind, and | anonymous for a bearer card."
            return None
        code, name, kind = parts[:3]
        flag = parts[3].strip().lower() if len(parts) == 4 else ""
        if flag not in ("", "anonymous", "named"):
            errors["card_types"] = "Write one card type per line: code | name | kind, and | anonymous for a bearer card."
        elif not _CODE.fullmatch(code):
            errors["card_types"] = "Card type codes use a-z, 0-9 and '-' (at most 32 characters)."
        elif not name or len(name) > 100:
            errors["card_types"] = "Every card type needs a name (at most 100 characters)."
        elif kind not in CARD_KINDS:
            errors["card_types"] = "A card type's kind is one of tier, service, co_branded, family."
        else:
            types.append(CardType(code, name, kind, named=flag != "anonymous"))
            continue
        return None
    if not types:
        errors["card_types"] = "The programme needs at least one card type."
    elif len({c.code for c in types}) != len(types):
        errors["card_types"] = "Card type codes must be unique."
    else:
        return tuple(types)
    return None


def _months(raw: str) -> tuple[int, ...] | None:
    parts = [p for p in re.split(r"[,\s、;]+", _clean(raw)) if p]
    if not all(p.isdigit() and 1 <= int(p) <= 12 for p in parts):
        return None
    months = sorted(int(p) for p in parts)
    return tuple(months) if len(set(months)) == len(months) else None


def settings_from_form(form: Mapping[str, str], base: ProgrammeSettings) -> ProgrammeSettings:
    """The settings the administrator's form describes; ``InvalidInput`` naming every bad field.

    A field missing from the form keeps ``base``'s value, except checkboxes (an unticked box is
    not sent, so a missing box is "off"). ``effective_from`` (YYYY-MM-DD) is required.
    """
    errors: dict[str, str] = {}
    values: dict[str, object] = {}

    def given(name: str) -> str | None:
        value = form.get(name)
        return None if value is None else str(value)

    raw_day = _clean(given("effective_from") or "")
    try:
        values["effective_from"] = date.fromisoformat(raw_day)
    except ValueError:
        errors["effective_from"] = "Enter the date the figures take effect, as YYYY-MM-DD."
    for name in MONEY_FIELDS:
        if (raw := given(name)) is not None:
            fen = fen_from_yuan(raw)
            if fen is None:
                errors[name] = "Enter an amount in yuan, e.g. 680 or 680.50."
            else:
                values[name] = fen
    for name in DISCOUNT_FIELDS:
        if (raw := given(name)) is not None:
            rate = per_mille_from_zhe(raw)
            if rate is None:
                errors[name] = "Enter a discount in 折 from 0 to 10, e.g. 9.5 (10 = no discount)."
            else:
                values[name] = rate
    for name in INT_FIELDS:
        if (raw := given(name)) is not None:
            text = _clean(raw).replace(",", "")
            if not _WHOLE.fullmatch(text):
                errors[name] = "Enter a whole number, zero or more."
            elif name in _AT_LEAST_ONE and int(text) < 1:
                errors[name] = "Enter a whole number of at least 1."
            else:
                values[name] = int(text)
    for name in BOOL_FIELDS:
        values[name] = (given(name) or "").strip().lower() in ("on", "1", "true", "yes")
    if (raw := given("redemption_months")) is not None:
        months = _months(raw)
        if months is None:
            errors["redemption_months"] = "Enter distinct months 1 to 12 separated by commas, e.g. 3,8 (empty: always open)."
        else:
            values["redemption_months"] = months
    if (raw := given("catalogue")) is not None and (catalogue := _catalogue(raw, errors)) is not None:
        values["catalogue"] = catalogue
    if (raw := given("card_types")) is not None and (card_types := _card_types(raw, errors)) is not None:
        values["card_types"] = card_types

    def figure(name: str) -> object:
        return values.get(name, getattr(base, name))

    for kind in ("points", "spend_fen"):
        silver, gold = f"silver_{kind}", f"gold_{kind}"
        if silver not in errors and gold not in errors and figure(silver) > figure(gold):
            errors[silver] = "Silver's threshold cannot be above gold's."
    cash = ("gold_cash_points_per_yuan", "platinum_cash_points_per_yuan")
    if not any(name in errors for name in cash) and figure(cash[1]) > figure(cash[0]):
        errors[cash[1]] = "Platinum's cash rate must be at least as good as gold's (as many points per yuan or fewer)."
    for higher, lower in (("class_a_spend_fen", "class_b_spend_fen"), ("class_b_spend_fen", "class_c_spend_fen")):
        if higher not in errors and lower not in errors and figure(lower) > figure(higher):
            errors[lower] = "A class's spend threshold cannot be above the class above it."
    if errors:
        raise InvalidInput(errors)
    try:
        return dataclasses.replace(base, **values)
    except ValueError as exc:  # a rule of ProgrammeSettings the checks above do not cover
        raise InvalidInput({"form": "These figures do not fit together."}) from exc
