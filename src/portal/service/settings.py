"""The member-service settings a leader sets: visit schedule per tier, the large-purchase
threshold, the follow-up delay, the survey's questions and each tier's care allowances.

Versions are append-only like the programme's: each row holds the whole settings object (JSON)
in force from its date (Asia/Shanghai) until the next version's; a change is a new version with
a reason, audited. Defaults come from the seeds: seed 002's dental clinic gives silver 1, gold 2
and platinum 4 free care packages (口腔护理套餐) a year and every member a birthday gift (seed 001
六: 生日福利); seed 001 asks for regular visits (定期回访) and seed 002 (A级VIP) for more care for
the best members, so gold is visited quarterly and platinum monthly.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from .. import clock
from .. import versions as versions_
from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.service import InvalidInput
from ..driver_sql import Prebuilt
from ..membership.rules import programme_today
from .models import ServiceSettingsVersion

TIERS = ("regular", "silver", "gold", "platinum")
BENEFITS = ("care_package", "birthday_gift")
MAX_QUESTIONS = 8


@dataclass(frozen=True)
class ServiceSettings:
    visit_every_days: dict[str, int] = field(default_factory=lambda: {
        "regular": 0, "silver": 182, "gold": 91, "platinum": 30})  # 0: no scheduled visit
    large_purchase_fen: int = 1_000_000  # a purchase of ¥10,000 or more earns a follow-up visit
    follow_up_days: int = 7  # a visit after a resolved complaint or a large purchase is due then
    reply_days: int = 3  # the promised reply date the complaint form suggests
    survey_questions: tuple[str, ...] = (
        "对我们产品的满意度", "对销售人员服务的满意度", "对投诉处理的满意度")
    care_allowances: dict[str, dict[str, int]] = field(default_factory=lambda: {
        "care_package": {"regular": 0, "silver": 1, "gold": 2, "platinum": 4},
        "birthday_gift": {"regular": 1, "silver": 1, "gold": 1, "platinum": 1}})

    def allowance(self, benefit: str, tier: str) -> int:
        return self.care_allowances.get(benefit, {}).get(tier, 0)


DEFAULTS = ServiceSettings()


def to_json(st: ServiceSettings) -> str:
    return json.dumps(asdict(st), ensure_ascii=False, sort_keys=True)


def from_json(body: str) -> ServiceSettings:
    raw = json.loads(body)
    raw["survey_questions"] = tuple(raw.get("survey_questions", ()))
    return ServiceSettings(**raw)


# The body in force on a day, on the driver's cursor (the home pages and the file page read it on
# every view); a body already seen is not parsed again (the row is still read each time, so a
# new version is seen at once in every process). Shared like DEFAULTS: never changed in place.
_BODY_ON = Prebuilt(select(ServiceSettingsVersion.body)
                    .where(ServiceSettingsVersion.effective_from <= bindparam("at", required=True))
                    .order_by(ServiceSettingsVersion.effective_from.desc()).limit(1))
_parsed = lru_cache(maxsize=32)(from_json)


def settings_on(s: Session, day: date) -> ServiceSettings:
    """The version in force on ``day`` (the latest ``effective_from <= day``), else the defaults."""
    rows = _BODY_ON.all(s.connection(), {"at": day})
    return _parsed(rows[0][0]) if rows else DEFAULTS


_V = ServiceSettingsVersion.__table__.c
# The version in force on ``since`` and every later one (those taking effect later included).
_FROM = (select(_V.effective_from, _V.body)
         .where(_V.effective_from >= func.coalesce(
             select(func.max(_V.effective_from)).where(_V.effective_from <= bindparam("since")).scalar_subquery(),
             bindparam("since"))))


def lowest_large_purchase_fen(conn, since: date) -> int:
    """The lowest large-purchase threshold in force on any day from ``since`` on, versions that
    take effect later included (a purchase at or above it may yet make a visit due: follow_ups.py).
    ``conn``: a Session or a Connection."""
    rows = conn.execute(_FROM, {"since": since}).all()
    fens = [json.loads(body).get("large_purchase_fen", DEFAULTS.large_purchase_fen) for _day, body in rows]
    if not rows or min(day for day, _body in rows) > since:  # the defaults are in force on ``since``
        fens.append(DEFAULTS.large_purchase_fen)
    return min(fens)


def current(s: Session) -> ServiceSettings:
    return settings_on(s, programme_today())


def _whole(raw: str, lo: int, hi: int) -> int | None:
    raw = (raw or "").strip()
    if not raw.isascii() or not raw.isdigit():
        return None
    n = int(raw)
    return n if lo <= n <= hi else None


def from_form(form: dict[str, str]) -> ServiceSettings:
    """A leader's form (days, yuan, one question per line) -> settings; InvalidInput names every bad field."""
    errors: dict[str, str] = {}
    every = {}
    for t in TIERS:
        n = _whole(form.get(f"every_{t}", ""), 0, 3660)
        if n is None:
            errors[f"every_{t}"] = "Enter a whole number of days from 0 to 3660."
        every[t] = n or 0
    allowances: dict[str, dict[str, int]] = {}
    for b in BENEFITS:
        allowances[b] = {}
        for t in TIERS:
            n = _whole(form.get(f"allow_{b}_{t}", ""), 0, 365)
            if n is None:
                errors[f"allow_{b}_{t}"] = "Enter a whole number from 0 to 365."
            allowances[b][t] = n or 0
    yuan = _whole(form.get("large_purchase_yuan", ""), 1, 100_000_000)
    if yuan is None:
        errors["large_purchase_yuan"] = "Enter a whole number of yuan, at least 1."
    follow = _whole(form.get("follow_up_days", ""), 0, 365)
    if follow is None:
        errors["follow_up_days"] = "Enter a whole number of days from 0 to 365."
    reply = _whole(form.get("reply_days", ""), 1, 60)
    if reply is None:
        errors["reply_days"] = "Enter a whole number of days from 1 to 60."
    questions = tuple(q.strip() for q in (form.get("survey_questions") or "").splitlines() if q.strip())
    if not questions or len(questions) > MAX_QUESTIONS or any(len(q) > 200 for q in questions):
        errors["survey_questions"] = "One to eight questions, one per line, each at most 200 characters."
    if errors:
        raise InvalidInput(errors)
    return ServiceSettings(visit_every_days=every, large_purchase_fen=yuan * 100, follow_up_days=follow,
                           reply_days=reply, survey_questions=questions, care_allowances=allowances)


def form_values(st: ServiceSettings) -> dict[str, str]:
    out = {f"every_{t}": str(st.visit_every_days.get(t, 0)) for t in TIERS}
    out |= {f"allow_{b}_{t}": str(st.allowance(b, t)) for b in BENEFITS for t in TIERS}
    out |= {"large_purchase_yuan": str(st.large_purchase_fen // 100), "follow_up_days": str(st.follow_up_days),
            "reply_days": str(st.reply_days), "survey_questions": "\n".join(st.survey_questions)}
    return out


def save_version(s: Session, actor: Actor, st: ServiceSettings, effective_from: date, note: str) -> ServiceSettingsVersion:
    """A new version from ``effective_from`` (today or later), with a reason; audited."""
    errors: dict[str, str] = {}
    today = programme_today()
    versions_.check_start(s, ServiceSettingsVersion, effective_from, today, errors)
    note = (note or "").strip()
    if len(note) < 5 or len(note) > 500:
        errors["note"] = "Give a reason of 5 to 500 characters."
    if errors:
        raise InvalidInput(errors)
    from . import follow_ups  # it reads these settings: imported at call time
    lowest = follow_ups.lowest_in_window(s, today)
    v = ServiceSettingsVersion(effective_from=effective_from, body=to_json(st), note=note,
                               created_by_id=actor.user_id, created_at=clock.now())
    versions_.add(s, v)
    if st.large_purchase_fen < lowest:  # the purchases it makes large, in this transaction
        follow_ups.add_missing(s, today)
    audit.record(s, actor, "servicerules.edit", object_type="service_settings", object_id=str(v.id),
                 reason=note, detail=f"from {effective_from.isoformat()}")
    return v


def versions(s: Session) -> list[ServiceSettingsVersion]:
    return versions_.newest_first(s, ServiceSettingsVersion)
