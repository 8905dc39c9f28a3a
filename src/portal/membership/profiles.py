"""Settings profiles: the programme as each seed business writes it, for an administrator to start from.

A profile is a name, a description and the figures that differ from the defaults (the liquor
distributor's, seed 000 with the figures of 001 and 004). Choosing one pre-fills the settings
form (or `portal programme apply`); like any change it becomes a new dated version, audited.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from .settings import DEFAULT_SETTINGS, ProgrammeSettings, RedemptionItem

__all__ = ["PROFILES", "Profile", "profile", "profile_settings"]


@dataclass(frozen=True)
class Profile:
    name: str
    title: str          # English; the pages translate it
    source: str         # which seed document, in its words
    changes: dict[str, Any] = field(default_factory=dict)


PROFILES: tuple[Profile, ...] = (
    Profile(
        "liquor", "Liquor distributor (default)",
        "Seeds 000, 001 and 004: ¥680 / ¥1,000 to join; silver 9.5折, gold 8.8折, platinum 7.5折; "
        "1/2/3/4 points per yuan; silver at 10,000 points, gold at 50,000.",
    ),
    Profile(
        "retail-56", "56饰 jewellery retail",
        "Seed 002 (56饰): 一次性消费实付金额满680元 or 一年内消费实付金额满1000元 makes a VIP, who gets "
        "8.8折 on full-price goods (现正价产品) and 8折 on the birthday with the ID card; special-price "
        "goods are not discounted (特价产品不参与折让).",
        {"regular_discount_per_mille": 880, "silver_discount_per_mille": 880, "gold_discount_per_mille": 880,
         "birthday_discount_per_mille": 800},
    ),
    Profile(
        "dental", "Dental clinic",
        "Seed 002 (口腔门诊): a patient registers at the first paid visit; silver from ¥3,000 and gold from "
        "¥5,000 of service fees (the same seed's VIP patients: 白银级 3000元, 黄金级 5000元); points "
        "redeem (and pay) at 100 points = ¥1 (100积分=1元) and are valid for one year (积分有效期限为一年).",
        {"join_single_purchase_fen": 1, "join_cumulative_fen": 1, "silver_spend_fen": 300_000,
         "gold_spend_fen": 500_000, "points_validity_years": 1,
         "points_payment_points_per_yuan": 100, "gold_cash_points_per_yuan": 100,
         "platinum_cash_points_per_yuan": 80,
         "catalogue": (RedemptionItem("care-voucher-10", "¥10 care voucher", 1_000, 1_000),
                       RedemptionItem("care-package-200", "¥200 oral care package", 20_000, 20_000))},
    ),
)


def profile(name: str) -> Profile:
    for p in PROFILES:
        if p.name == name:
            return p
    raise KeyError(name)


def profile_settings(name: str, effective_from: date | None = None) -> ProgrammeSettings:
    """The profile's whole programme: the defaults with its changes (and an effective date, if given).

    KeyError for an unknown profile."""
    changes = dict(profile(name).changes)
    if effective_from is not None:
        changes["effective_from"] = effective_from
    return dataclasses.replace(DEFAULT_SETTINGS, **changes)
