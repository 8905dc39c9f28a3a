"""Pure validation, normalisation and masking rules for customer files (PRC mobile, resident ID, file numbers)."""
from __future__ import annotations

import re
import unicodedata
from datetime import date, timedelta, timezone
from enum import StrEnum

from .. import clock

__all__ = [
    "CATEGORY_LABELS",
    "Category",
    "Gender",
    "InvalidField",
    "china_today",
    "NAME_MAX_LENGTH",
    "format_file_number",
    "id_check_char",
    "id_number_birthday",
    "id_number_gender",
    "looks_like_id_number",
    "looks_like_mobile",
    "mask_id_number",
    "mask_mobile",
    "mask_name",
    "mask_text",
    "normalise_id_number",
    "normalise_mobile",
    "normalise_name",
    "parse_birthday",
    "parse_category",
    "parse_file_number",
    "parse_gender",
]


class Category(StrEnum):
    GOVERNMENT = "government"
    SOE = "soe"
    FINANCE = "finance"
    MILITARY_POLICE = "military_police"
    ENTERPRISE = "enterprise"
    INDIVIDUAL = "individual"


class Gender(StrEnum):
    MALE = "M"
    FEMALE = "F"


# (English, Chinese) display labels.
CATEGORY_LABELS: dict[Category, tuple[str, str]] = {
    Category.GOVERNMENT: ("Government agency", "政府机关"),
    Category.SOE: ("State-owned enterprise", "国有企业"),
    Category.FINANCE: ("Finance", "金融"),
    Category.MILITARY_POLICE: ("Military and police", "军警"),
    Category.ENTERPRISE: ("Private enterprise", "民营企业"),
    Category.INDIVIDUAL: ("Individual", "个人"),
}

NAME_MAX_LENGTH = 50
EARLIEST_BIRTHDAY = date(1900, 1, 1)
# China Standard Time has no daylight saving; "today" for a customer is the date in China.
_CHINA_TZ = timezone(timedelta(hours=8), "CST")


class InvalidField(ValueError):
    """A field value was rejected.

    ``field`` names the field ("mobile"), ``code`` is a short machine code ("mobile.invalid")
    suitable as a translation key, and ``str(exc)`` / ``message`` is an English explanation.
    Messages never echo mobile or ID numbers (they may end up in logs).
    """

    def __init__(self, field: str, code: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"InvalidField({self.field!r}, {self.code!r}, {self.message!r})"


def china_today() -> date:
    """Today's date in China (UTC+8) according to ``portal.clock``."""
    return clock.now().astimezone(_CHINA_TZ).date()


def _today(today: date | None) -> date:
    return today if today is not None else china_today()


# Full-width ASCII forms (as typed with a Chinese input method) and the ideographic space.
_FULLWIDTH = {cp: cp - 0xFEE0 for cp in range(0xFF01, 0xFF5F)}
_FULLWIDTH[0x3000] = 0x20


def _halfwidth(raw: str) -> str:
    return raw.translate(_FULLWIDTH)


# ---------------------------------------------------------------------------
# Mobile numbers
# ---------------------------------------------------------------------------

_MOBILE_STRIP = re.compile(r"[\s\-]+")
_MOBILE_PREFIX = re.compile(r"(?:\+86|0086|86)([0-9]{11})")
_MOBILE = re.compile(r"1[3-9][0-9]{9}")


def normalise_mobile(raw: str) -> str:
    """Return the 11-digit mainland mobile number, without spaces, dashes or a +86/0086/86 prefix."""
    if not isinstance(raw, str):
        raise InvalidField("mobile", "mobile.invalid", "Mobile number is required.")
    s = _MOBILE_STRIP.sub("", _halfwidth(raw))
    m = _MOBILE_PREFIX.fullmatch(s)
    if m:
        s = m.group(1)
    if not s:
        raise InvalidField("mobile", "mobile.invalid", "Mobile number is required.")
    if not _MOBILE.fullmatch(s):
        raise InvalidField(
            "mobile", "mobile.invalid", "Mobile number must be 11 digits starting with 13-19."
        )
    return s


# ---------------------------------------------------------------------------
# Resident ID numbers (GB 11643-1999)
# ---------------------------------------------------------------------------

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"[0-9]{17}[0-9X]")


def id_check_char(first17: str) -> str:
    """ISO 7064 MOD 11-2 check character for the first 17 digits of a resident ID."""
    if not re.fullmatch(r"[0-9]{17}", first17):
        raise ValueError("need exactly 17 ASCII digits")
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK_CHARS[total % 11]


def _clean_id(raw: str) -> str:
    if not isinstance(raw, str):
        raise InvalidField("id_number", "id_number.invalid", "ID number is required.")
    return re.sub(r"\s+", "", _halfwidth(raw)).upper()


def _id_date(s: str) -> date:
    """Birth date embedded in a cleaned 18-character ID; raises InvalidField."""
    if not _ID_SHAPE.fullmatch(s):
        raise InvalidField(
            "id_number",
            "id_number.invalid",
            "ID number must be 18 characters: 17 digits followed by a digit or X.",
        )
    try:
        return date(int(s[6:10]), int(s[10:12]), int(s[12:14]))
    except ValueError:
        raise InvalidField(
            "id_number", "id_number.invalid", "ID number does not contain a valid birth date."
        ) from None


def normalise_id_number(raw: str, *, today: date | None = None) -> str:
    """Return the 18-character resident ID (uppercase X), validating birth date and check character.

    Codes: ``id_number.invalid`` for a wrong shape or an impossible, future or pre-1900 birth
    date; ``id_number.checksum`` when only the check character is wrong.
    """
    s = _clean_id(raw)
    if not s:
        raise InvalidField("id_number", "id_number.invalid", "ID number is required.")
    born = _id_date(s)
    if born > _today(today):
        raise InvalidField(
            "id_number", "id_number.invalid", "ID number contains a birth date in the future."
        )
    if born < EARLIEST_BIRTHDAY:
        raise InvalidField(
            "id_number", "id_number.invalid", "ID number contains a birth date before 1900."
        )
    if id_check_char(s[:17]) != s[17]:
        raise InvalidField(
            "id_number",
            "id_number.checksum",
            "ID number check character does not match; please check for a typing error.",
        )
    return s


def id_number_birthday(id_number: str) -> date:
    """Birth date encoded in an 18-character ID (shape and date are checked, the check char is not)."""
    return _id_date(_clean_id(id_number))


def id_number_gender(id_number: str) -> Gender:
    """Gender encoded in an 18-character ID: the 17th digit is odd for men, even for women."""
    s = _clean_id(id_number)
    if not _ID_SHAPE.fullmatch(s):
        raise InvalidField(
            "id_number",
            "id_number.invalid",
            "ID number must be 18 characters: 17 digits followed by a digit or X.",
        )
    return Gender.MALE if int(s[16]) % 2 == 1 else Gender.FEMALE


# ---------------------------------------------------------------------------
# Other fields
# ---------------------------------------------------------------------------

_GENDERS = {
    "m": Gender.MALE,
    "male": Gender.MALE,
    "男": Gender.MALE,
    "男性": Gender.MALE,
    "f": Gender.FEMALE,
    "female": Gender.FEMALE,
    "女": Gender.FEMALE,
    "女性": Gender.FEMALE,
}


def parse_gender(raw: str) -> Gender:
    """Accept M/F, male/female (any case) or 男/女."""
    key = _halfwidth(raw).strip().casefold() if isinstance(raw, str) else ""
    if not key:
        raise InvalidField("gender", "gender.invalid", "Gender is required.")
    try:
        return _GENDERS[key]
    except KeyError:
        raise InvalidField("gender", "gender.invalid", "Gender must be M or F (男 or 女).") from None


_BIRTHDAY = re.compile(r"([0-9]{4})([-/])([0-9]{1,2})\2([0-9]{1,2})")


def parse_birthday(raw: str, *, today: date | None = None) -> date:
    """Parse YYYY-MM-DD (also YYYY/M/D as Excel may rewrite it); 1900-01-01 .. today.

    Codes: ``birthday.invalid`` (not a date), ``birthday.future``, ``birthday.too_early``.
    """
    s = _halfwidth(raw).strip() if isinstance(raw, str) else ""
    m = _BIRTHDAY.fullmatch(s)
    if not m:
        raise InvalidField("birthday", "birthday.invalid", "Birthday must be a date as YYYY-MM-DD.")
    try:
        d = date(int(m.group(1)), int(m.group(3)), int(m.group(4)))
    except ValueError:
        raise InvalidField("birthday", "birthday.invalid", "The birthday is not a real date.") from None
    if d > _today(today):
        raise InvalidField("birthday", "birthday.future", "Birthday cannot be in the future.")
    if d < EARLIEST_BIRTHDAY:
        raise InvalidField("birthday", "birthday.too_early", "Birthday cannot be before 1900.")
    return d


_CATEGORIES: dict[str, Category] = {}
for _cat, (_en, _zh) in CATEGORY_LABELS.items():
    _CATEGORIES[_cat.value] = _cat
    _CATEGORIES[_en.casefold()] = _cat
    _CATEGORIES[_zh] = _cat
del _cat, _en, _zh


def parse_category(raw: str) -> Category:
    """Accept a Category value, its English label (any case) or its Chinese label (e.g. 国有企业)."""
    key = _halfwidth(raw).strip().casefold() if isinstance(raw, str) else ""
    if not key:
        raise InvalidField("category", "category.invalid", "Category is required.")
    try:
        return _CATEGORIES[key]
    except KeyError:
        allowed = ", ".join(f"{c.value} ({zh})" for c, (_, zh) in CATEGORY_LABELS.items())
        raise InvalidField(
            "category", "category.invalid", f"Category must be one of: {allowed}."
        ) from None


def normalise_name(raw: str) -> str:
    """Strip and collapse inner whitespace; 1..50 characters; no control characters.

    Codes: ``name.required``, ``name.too_long``, ``name.invalid``.
    """
    s = " ".join(raw.split()) if isinstance(raw, str) else ""
    if not s:
        raise InvalidField("name", "name.required", "Name is required.")
    if len(s) > NAME_MAX_LENGTH:
        raise InvalidField(
            "name", "name.too_long", f"Name must be at most {NAME_MAX_LENGTH} characters."
        )
    if any(unicodedata.category(ch) == "Cc" for ch in s):
        raise InvalidField("name", "name.invalid", "Name contains control characters.")
    return s


# ---------------------------------------------------------------------------
# Masking (display for users without the right to see personal data)
# ---------------------------------------------------------------------------


def _keep_ends(s: str, head: int, tail: int) -> str:
    if len(s) <= head + tail:
        return "*" * len(s)
    return s[:head] + "*" * (len(s) - head - tail) + s[len(s) - tail :]


def mask_mobile(m: str) -> str:
    """"13812345678" -> "138****5678"; strings shorter than 8 become all "*" (length kept)."""
    if not m:
        return ""
    return _keep_ends(m, 3, 4)


def mask_id_number(i: str) -> str:
    """"110101199003071234" -> "1101**********1234"; 8 characters or fewer become all "*"."""
    if not i:
        return ""
    return _keep_ends(i, 4, 4)


def mask_name(n: str) -> str:
    """Keep the first and last character of 3+ character names, the first of 2, none of 1.

    "王小明" -> "王*明", "王明" -> "王*", "欧阳小明" -> "欧**明", "John Smith" -> "J********h".
    Length is preserved.
    """
    if not n:
        return ""
    if len(n) == 1:
        return "*"
    if len(n) == 2:
        return n[0] + "*"
    return n[0] + "*" * (len(n) - 2) + n[-1]


def mask_text(s: str) -> str:
    """"***" for any non-empty value (hides even the length), "" for empty/None."""
    return "***" if s else ""


# ---------------------------------------------------------------------------
# File numbers: "<region code> <5-digit sequence>", e.g. "755 00243"
# ---------------------------------------------------------------------------

_REGION = re.compile(r"[0-9]{1,6}")
_FILE_NUMBER = re.compile(r"([0-9]{1,6})(?:\s*-\s*|\s+)?([0-9]{5})")
FILE_SEQ_MAX = 99999


def format_file_number(region_code: str, seq: int) -> str:
    """("755", 243) -> "755 00243". Region code is 1..6 digits, seq 1..99999; else ValueError."""
    if not isinstance(region_code, str) or not _REGION.fullmatch(region_code):
        raise ValueError(f"region code must be 1 to 6 digits, got {region_code!r}")
    if isinstance(seq, bool) or not isinstance(seq, int) or not 1 <= seq <= FILE_SEQ_MAX:
        raise ValueError(f"file sequence must be an integer 1..{FILE_SEQ_MAX}, got {seq!r}")
    return f"{region_code} {seq:05d}"


def parse_file_number(raw: str) -> tuple[str, int] | None:
    """Parse "755 00243", "75500243" or "755-00243" into ("755", 243); None if not a file number.

    Note: an 11-digit mobile number also has this shape (6 + 5 digits), so a search box
    should try ``looks_like_mobile`` first.
    """
    if not isinstance(raw, str):
        return None
    m = _FILE_NUMBER.fullmatch(_halfwidth(raw).strip())
    if not m:
        return None
    seq = int(m.group(2))
    if seq < 1:
        return None
    return m.group(1), seq


# ---------------------------------------------------------------------------
# Search-box routing
# ---------------------------------------------------------------------------


def looks_like_mobile(q: str) -> bool:
    """True if ``q`` normalises to a valid mobile number. Never raises."""
    try:
        normalise_mobile(q)
    except (InvalidField, TypeError, AttributeError):
        return False
    return True


def looks_like_id_number(q: str) -> bool:
    """True if ``q`` normalises to a valid resident ID (including check character). Never raises."""
    try:
        normalise_id_number(q)
    except (InvalidField, TypeError, AttributeError):
        return False
    return True
