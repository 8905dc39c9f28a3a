"""When a reason for seeing a colleague's file is a full reason: judged by its content, in its own language.

One rule for the request form and for the auditors' alert. A reason's *weight* counts what
carries meaning: each letter or digit counts 1, each Chinese (or Japanese, Korean) character
counts 2, since one carries about as much as a short Latin word's worth of letters; spaces and
punctuation count nothing, and a run of one repeated character counts once (so "aaaaaaaa" or
"。。。。" pad nothing). With the default minimum of 20, "Customer asked about her points
balance" and "客户来电询问积分余额和生日礼品" (16 characters) are full reasons; "need it now" and
"帮忙看一下" are not.
"""
from __future__ import annotations

import unicodedata

DEFAULT_MINIMUM = 20
CJK_WEIGHT = 2


def _is_cjk(ch: str) -> bool:
    o = ord(ch)
    return (0x4E00 <= o <= 0x9FFF or 0x3400 <= o <= 0x4DBF or 0x20000 <= o <= 0x2EBEF
            or 0xF900 <= o <= 0xFAFF or 0x3040 <= o <= 0x30FF or 0xAC00 <= o <= 0xD7AF)


def reason_weight(text: str) -> int:
    """How much a reason says (see the module's note)."""
    weight, last = 0, ""
    for ch in unicodedata.normalize("NFKC", text or "").casefold():
        if unicodedata.category(ch)[0] not in "LN" or ch == last:
            continue  # spaces and punctuation say nothing; a repeated character counts once
        last = ch
        weight += CJK_WEIGHT if _is_cjk(ch) else 1
    return weight


def is_full_reason(text: str, minimum: int = DEFAULT_MINIMUM) -> bool:
    return reason_weight(text) >= minimum


def shortest_full(minimum: int = DEFAULT_MINIMUM) -> tuple[int, int]:
    """(letters, Chinese characters) that make a full reason: for the form's hint."""
    return minimum, -(-minimum // CJK_WEIGHT)
