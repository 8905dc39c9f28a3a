"""The texts of messages to members, in zh_CN and en, chosen by the member's language.

Each kind has a subject (e-mail) and a body (e-mail and SMS). Bodies are filled from the
message's context (card numbers, tiers, points, dates: no personal data) plus the member's
name, which the sender decrypts when it renders the message. Every body ends with the way to
opt out: a link in e-mail, a reply keyword in SMS. No template ever carries a password or PIN.
"""
from __future__ import annotations

from dataclasses import dataclass

LANGUAGES = ("zh_CN", "en")
OPT_OUT_KEYWORDS = ("T", "TD", "N", "退订", "STOP", "UNSUBSCRIBE")

# kind -> purpose: marketing needs consent given; service goes unless withdrawn.
KINDS = {
    "joining": "service",
    "card_dispatch": "service",
    "points_expiry": "service",
    "birthday": "service",
    "complaint_reply": "service",
    "event_notice": "service",
    "event_invitation": "marketing",
    "care": "marketing",
}

TIER_NAMES = {
    "zh_CN": {"regular": "普通会员", "silver": "银卡会员", "gold": "金卡会员", "platinum": "白金会员"},
    "en": {"regular": "Regular", "silver": "Silver", "gold": "Gold", "platinum": "Platinum"},
}

_T = {
    ("joining", "zh_CN"): ("欢迎加入会员", "{name}您好，欢迎成为我们的{tier_name}。您的会员卡号：{card_number}。"
                           "卡片不设密码短信，储值密码请您在门店自行设置。"),
    ("joining", "en"): ("Welcome to the membership", "Dear {name}, welcome as a {tier_name} member. "
                        "Your card number is {card_number}. We never send passwords; set your PIN in store."),
    ("card_dispatch", "zh_CN"): ("会员卡已寄出", "{name}您好，您的会员卡（卡号{card_number}）已寄出，请注意查收。"),
    ("card_dispatch", "en"): ("Your card is on its way", "Dear {name}, your member card {card_number} has been sent."),
    ("points_expiry", "zh_CN"): ("积分即将到期提醒", "{name}您好，您卡号{card_number}上的{points}积分将于{expires_on}到期，"
                                 "请在到期前使用。"),
    ("points_expiry", "en"): ("Your points expire soon", "Dear {name}, {points} points on card {card_number} "
                              "expire on {expires_on}. Use them before then."),
    ("birthday", "zh_CN"): ("生日快乐", "{name}，祝您生日快乐！今天凭会员卡{card_number}购物可享{benefit_zh}。"),
    ("birthday", "en"): ("Happy birthday", "Happy birthday, {name}! Today your card {card_number} gives you "
                         "{benefit_en}."),
    ("care", "zh_CN"): ("{month}月会员关怀", "{name}您好，{month}月会员关怀：{offer_zh} 您目前的积分余额为{points}。"),
    ("care", "en"): ("Member care for {month}", "Dear {name}, this month for our members: {offer_en} "
                     "Your points balance is {points}."),
    ("event_invitation", "zh_CN"): ("活动邀请：{event_title}", "{name}您好，诚邀您参加{event_title}（{event_when}，{event_place}）。"),
    ("event_invitation", "en"): ("Invitation: {event_title}", "Dear {name}, you are invited to {event_title} "
                                 "({event_when}, {event_place})."),
    ("event_notice", "zh_CN"): ("活动通知：{event_title}", "{name}您好，关于{event_title}：{notice_zh}"),
    ("event_notice", "en"): ("Event notice: {event_title}", "Dear {name}, about {event_title}: {notice_en}"),
    ("complaint_reply", "zh_CN"): ("关于您的反馈（编号{complaint_no}）", "{name}您好，关于您的反馈（编号{complaint_no}）：{text}"),
    ("complaint_reply", "en"): ("About your feedback ({complaint_no})", "Dear {name}, about your feedback "
                                "({complaint_no}): {text}"),
}

_OPT_OUT = {
    ("sms", "zh_CN"): " 回T退订",
    ("sms", "en"): " Reply T to opt out.",
    ("email", "zh_CN"): "\n\n不想再收到此类消息？点击退订：{opt_out_url}",
    ("email", "en"): "\n\nNo more of these messages? Opt out: {opt_out_url}",
}
SMS_SIGNATURE = {"zh_CN": "【会员中心】", "en": "[Members] "}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def language_of(raw: str | None) -> str:
    return raw if raw in LANGUAGES else "zh_CN"


def render(kind: str, language: str, channel: str, values: dict) -> Rendered:
    """Subject and body of one message; unknown placeholders render empty, never raise."""
    language = language_of(language)
    subject, body = _T[(kind, language)]
    v = _Blank(values)
    v.setdefault("tier_name", TIER_NAMES[language].get(values.get("tier", ""), values.get("tier", "")))
    text = body.format_map(v) + _OPT_OUT[(channel, language)].format_map(v)
    if channel == "sms":
        text = SMS_SIGNATURE[language] + text
    return Rendered(subject.format_map(v), text)
