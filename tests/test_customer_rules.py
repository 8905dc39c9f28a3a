"""Unit and property tests for portal.customers.rules (validation, normalisation, masking, file numbers)."""
from __future__ import annotations

from contextlib import contextmanager
from datetime import date, datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from portal import clock
from portal.customers.rules import (
    CATEGORY_LABELS,
    Category,
    Gender,
    InvalidField,
    china_today,
    format_file_number,
    id_check_char,
    id_number_birthday,
    id_number_gender,
    looks_like_id_number,
    looks_like_mobile,
    mask_id_number,
    mask_mobile,
    mask_name,
    mask_text,
    normalise_id_number,
    normalise_mobile,
    normalise_name,
    parse_birthday,
    parse_category,
    parse_file_number,
    parse_gender,
)

TODAY = date(2025, 6, 15)

# Independent implementation of GB 11643 / ISO 7064 MOD 11-2 for building test data.
WEIGHTS = [2 ** (17 - i) % 11 for i in range(17)]
assert WEIGHTS == [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
CHECK_CHARS = "10X98765432"
ALL_CHECK_CHARS = "0123456789X"


def check_char(first17: str) -> str:
    return CHECK_CHARS[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


def make_id(region: str = "110105", born: date = date(1990, 3, 7), seq: int = 123) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + check_char(first17)


KNOWN_VALID = "11010519491231002X"  # the standard's own example (female, born 1949-12-31)


@contextmanager
def raises_invalid(field: str, code: str | None = None):
    """Like pytest.raises(InvalidField), also checking .field, .code and a non-empty message."""
    with pytest.raises(InvalidField) as info:
        yield info
    assert info.value.field == field
    if code is not None:
        assert info.value.code == code
    assert str(info.value)


# ---------------------------------------------------------------------------
# Enums, labels, exception
# ---------------------------------------------------------------------------


def test_enum_values():
    assert [c.value for c in Category] == [
        "government", "soe", "finance", "military_police", "enterprise", "individual"]
    assert Gender.MALE == "M" and Gender.FEMALE == "F"


def test_category_labels_cover_every_category():
    assert set(CATEGORY_LABELS) == set(Category)
    assert CATEGORY_LABELS[Category.SOE] == ("State-owned enterprise", "国有企业")
    for en, zh in CATEGORY_LABELS.values():
        assert en and zh


def test_invalid_field_attributes():
    exc = InvalidField("mobile", "mobile.invalid", "Bad mobile.")
    assert isinstance(exc, ValueError)
    assert (exc.field, exc.code, str(exc), exc.message) == (
        "mobile", "mobile.invalid", "Bad mobile.", "Bad mobile.")


# ---------------------------------------------------------------------------
# Mobile
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [
    "13812345678", " 138 1234 5678 ", "138-1234-5678", "+8613812345678", "+86 138 1234 5678",
    "008613812345678", "0086-138-1234-5678", "8613812345678", "１３８１２３４５６７８",
    "＋86 138\u30001234 5678",
])
def test_normalise_mobile_accepts(raw):
    assert normalise_mobile(raw) == "13812345678"


@pytest.mark.parametrize("raw", [
    "", "   ", "1381234567", "138123456789", "12812345678", "23812345678", "1381234567a",
    "+85213812345678", "+8612812345678", "+86138123456", "(138)12345678", "138.1234.5678",
    "٣٨١٢٣٤٥٦٧٨١",  # non-ASCII digits are not accepted
    "1\u0663812345678",
])
def test_normalise_mobile_rejects(raw):
    with raises_invalid("mobile", "mobile.invalid"):
        normalise_mobile(raw)


def test_normalise_mobile_eleven_digits_starting_86_are_not_a_prefix():
    with raises_invalid("mobile", "mobile.invalid"):
        normalise_mobile("86123456789")


def test_mobile_error_message_does_not_echo_value():
    with pytest.raises(InvalidField) as info:
        normalise_mobile("13999999")
    assert "13999999" not in str(info.value)


@pytest.mark.parametrize("second", "3456789")
def test_all_mobile_prefixes_13_to_19(second):
    assert normalise_mobile(f"1{second}000000000") == f"1{second}000000000"


# ---------------------------------------------------------------------------
# Resident ID
# ---------------------------------------------------------------------------


def test_known_valid_id():
    assert normalise_id_number(KNOWN_VALID, today=TODAY) == KNOWN_VALID
    assert normalise_id_number(KNOWN_VALID.lower(), today=TODAY) == KNOWN_VALID
    assert normalise_id_number(" 110105 19491231 002x ", today=TODAY) == KNOWN_VALID
    assert id_number_birthday(KNOWN_VALID) == date(1949, 12, 31)
    assert id_number_gender(KNOWN_VALID) is Gender.FEMALE


def test_test_helper_matches_known_example():
    assert make_id("110105", date(1949, 12, 31), 2) == KNOWN_VALID
    assert id_check_char(KNOWN_VALID[:17]) == "X"


@pytest.mark.parametrize("id_number", [
    "440305199003071236", "110101199003071233", "310104200002290049",
])
def test_precomputed_valid_ids(id_number):
    assert normalise_id_number(id_number, today=TODAY) == id_number


def test_gender_from_17th_digit():
    assert id_number_gender(make_id(seq=123)) is Gender.MALE
    assert id_number_gender(make_id(seq=124)) is Gender.FEMALE
    assert id_number_gender(make_id(seq=0)) is Gender.FEMALE
    assert id_number_gender(make_id(seq=999)) is Gender.MALE


def test_birthday_from_id():
    assert id_number_birthday(make_id(born=date(2000, 2, 29))) == date(2000, 2, 29)
    assert id_number_birthday(make_id(born=date(1990, 3, 7)).lower()) == date(1990, 3, 7)


def test_id_checksum_error_code():
    good = make_id()
    wrong = next(c for c in ALL_CHECK_CHARS if c != good[-1])
    with raises_invalid("id_number", "id_number.checksum"):
        normalise_id_number(good[:-1] + wrong, today=TODAY)


@pytest.mark.parametrize("raw", [
    "", "1101051949123100", "11010519491231002XX", "1101051949123100X2", "X1010519491231002X",
    "110105194912310023A", "11010519491231002Y", "110105194912310",  # old 15-digit form
    "１１０１０５１９４９１２３１００２Ｘ"[:-1] + "Y",
])
def test_id_shape_rejected(raw):
    with raises_invalid("id_number", "id_number.invalid"):
        normalise_id_number(raw, today=TODAY)


def test_fullwidth_id_accepted():
    fullwidth = "".join(chr(ord(c) + 0xFEE0) for c in KNOWN_VALID)
    assert normalise_id_number(fullwidth, today=TODAY) == KNOWN_VALID


@pytest.mark.parametrize("yyyymmdd", ["19900230", "19901301", "19900000", "20010229", "19000100"])
def test_id_impossible_birth_date(yyyymmdd):
    first17 = f"110105{yyyymmdd}123"
    with raises_invalid("id_number", "id_number.invalid"):
        normalise_id_number(first17 + check_char(first17), today=TODAY)


def test_id_birth_date_in_future_rejected_and_today_allowed():
    assert normalise_id_number(make_id(born=TODAY), today=TODAY)
    with raises_invalid("id_number", "id_number.invalid"):
        normalise_id_number(make_id(born=TODAY + timedelta(days=1)), today=TODAY)


def test_id_birth_before_1900_rejected():
    with raises_invalid("id_number", "id_number.invalid"):
        normalise_id_number(make_id(born=date(1899, 12, 31)), today=TODAY)
    assert normalise_id_number(make_id(born=date(1900, 1, 1)), today=TODAY)


def test_id_default_today_uses_portal_clock_in_china_time():
    born = date(2030, 1, 2)
    id_number = make_id(born=born)
    try:
        # 2030-01-01 17:00 UTC is already 2030-01-02 01:00 in Beijing.
        clock.set_now(datetime(2030, 1, 1, 17, 0, tzinfo=timezone.utc))
        assert china_today() == born
        assert normalise_id_number(id_number) == id_number
        clock.set_now(datetime(2030, 1, 1, 15, 0, tzinfo=timezone.utc))
        with raises_invalid("id_number", "id_number.invalid"):
            normalise_id_number(id_number)
    finally:
        clock.set_now(None)


def test_id_helpers_reject_garbage():
    with raises_invalid("id_number"):
        id_number_birthday("not an id")
    with raises_invalid("id_number"):
        id_number_gender("123")


def test_id_error_message_does_not_echo_value():
    bad = KNOWN_VALID[:-1] + "1"
    with pytest.raises(InvalidField) as info:
        normalise_id_number(bad, today=TODAY)
    assert bad not in str(info.value)


# ---------------------------------------------------------------------------
# Gender, birthday, category, name
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("raw,expected", [
    ("M", Gender.MALE), ("m", Gender.MALE), ("男", Gender.MALE), ("male", Gender.MALE),
    ("Male", Gender.MALE), (" MALE ", Gender.MALE), ("Ｍ", Gender.MALE),
    ("F", Gender.FEMALE), ("f", Gender.FEMALE), ("女", Gender.FEMALE), ("female", Gender.FEMALE),
    ("FEMALE", Gender.FEMALE),
])
def test_parse_gender(raw, expected):
    assert parse_gender(raw) is expected


@pytest.mark.parametrize("raw", ["", " ", "x", "man", "MF", "男女", "1", "0"])
def test_parse_gender_rejects(raw):
    with raises_invalid("gender", "gender.invalid"):
        parse_gender(raw)


@pytest.mark.parametrize("raw,expected", [
    ("1990-03-07", date(1990, 3, 7)), (" 1990-03-07 ", date(1990, 3, 7)),
    ("1990/3/7", date(1990, 3, 7)), ("2000-02-29", date(2000, 2, 29)),
    ("1900-01-01", date(1900, 1, 1)), (TODAY.isoformat(), TODAY),
])
def test_parse_birthday(raw, expected):
    assert parse_birthday(raw, today=TODAY) == expected


@pytest.mark.parametrize("raw", [
    "", "1990", "07-03-1990", "1990-02-30", "1990-13-01", "19900307", "1990-03-07T00:00",
    "1990-03/07", "abcd-ef-gh", "1990年3月7日",
])
def test_parse_birthday_invalid(raw):
    with raises_invalid("birthday", "birthday.invalid"):
        parse_birthday(raw, today=TODAY)


def test_parse_birthday_range():
    with raises_invalid("birthday", "birthday.future"):
        parse_birthday((TODAY + timedelta(days=1)).isoformat(), today=TODAY)
    with raises_invalid("birthday", "birthday.too_early"):
        parse_birthday("1899-12-31", today=TODAY)


@pytest.mark.parametrize("raw,expected", [
    ("government", Category.GOVERNMENT), ("soe", Category.SOE), ("SOE", Category.SOE),
    ("finance", Category.FINANCE), ("military_police", Category.MILITARY_POLICE),
    ("enterprise", Category.ENTERPRISE), ("individual", Category.INDIVIDUAL),
    ("政府机关", Category.GOVERNMENT), ("国有企业", Category.SOE), ("金融", Category.FINANCE),
    ("军警", Category.MILITARY_POLICE), ("民营企业", Category.ENTERPRISE),
    (" 个人 ", Category.INDIVIDUAL), ("State-owned enterprise", Category.SOE),
])
def test_parse_category(raw, expected):
    assert parse_category(raw) is expected


@pytest.mark.parametrize("raw", ["", "company", "政府", "military police", "国企"])
def test_parse_category_rejects(raw):
    with raises_invalid("category", "category.invalid"):
        parse_category(raw)


@pytest.mark.parametrize("raw,expected", [
    ("王小明", "王小明"), ("  王小明 ", "王小明"), ("John   Smith", "John Smith"),
    ("John\t\nSmith", "John Smith"), ("王\u3000小明", "王 小明"), ("a" * 50, "a" * 50),
    ("阿卜杜拉·买买提", "阿卜杜拉·买买提"),
])
def test_normalise_name(raw, expected):
    assert normalise_name(raw) == expected


def test_normalise_name_rejects():
    with raises_invalid("name", "name.required"):
        normalise_name("   ")
    with raises_invalid("name", "name.too_long"):
        normalise_name("a" * 51)
    with raises_invalid("name", "name.invalid"):
        normalise_name("王\x00明")


# ---------------------------------------------------------------------------
# Masking
# ---------------------------------------------------------------------------


def test_mask_examples():
    assert mask_mobile("13812345678") == "138****5678"
    assert mask_mobile("12345678") == "123*5678"
    assert mask_mobile("1234567") == "*******"
    assert mask_mobile("") == ""
    assert mask_id_number("110101199003071234") == "1101**********1234"
    assert mask_id_number("123456789") == "1234*6789"
    assert mask_id_number("12345678") == "********"
    assert mask_id_number("") == ""
    assert mask_name("王小明") == "王*明"
    assert mask_name("王明") == "王*"
    assert mask_name("欧阳小明") == "欧**明"
    assert mask_name("王") == "*"
    assert mask_name("") == ""
    # First and last character kept, length preserved (10 characters in, 10 out).
    assert mask_name("John Smith") == "J********h"
    assert mask_text("北京市朝阳区") == "***"
    assert mask_text("x") == "***"
    assert mask_text("") == ""


def _assert_masked(original: str, masked: str, head: int, tail: int) -> None:
    assert len(masked) == len(original)
    n = len(original)
    keep = n > head + tail
    for i, ch in enumerate(masked):
        if keep and (i < head or i >= n - tail):
            assert ch == original[i]
        else:
            assert ch == "*"
    revealed = sum(1 for a, b in zip(original, masked) if b != "*" and a == b)
    assert revealed <= head + tail


@given(st.text(max_size=40))
def test_mask_mobile_property(s):
    _assert_masked(s, mask_mobile(s), 3, 4)


@given(st.text(max_size=40))
def test_mask_id_property(s):
    _assert_masked(s, mask_id_number(s), 4, 4)


@given(st.text(min_size=1, max_size=60))
def test_mask_name_property(s):
    masked = mask_name(s)
    assert len(masked) == len(s)
    if len(s) <= 2:
        assert masked[1:] == "*" * (len(s) - 1)
        assert masked[0] == ("*" if len(s) == 1 else s[0])
    else:
        assert masked[0] == s[0] and masked[-1] == s[-1]
        assert masked[1:-1] == "*" * (len(s) - 2)


@given(st.text())
def test_mask_text_property(s):
    assert mask_text(s) == ("***" if s else "")


# ---------------------------------------------------------------------------
# Hypothesis: resident IDs
# ---------------------------------------------------------------------------

regions = st.sampled_from(["110101", "110105", "310104", "440305", "440106", "510107", "650102"])
births = st.dates(min_value=date(1900, 1, 1), max_value=TODAY)
seqs = st.integers(min_value=0, max_value=999)
valid_ids = st.builds(make_id, regions, births, seqs)


@given(valid_ids)
def test_generated_ids_accepted(id_number):
    assert normalise_id_number(id_number, today=TODAY) == id_number
    assert normalise_id_number(id_number.lower(), today=TODAY) == id_number
    assert looks_like_id_number(id_number)
    assert id_number_birthday(id_number) == date(
        int(id_number[6:10]), int(id_number[10:12]), int(id_number[12:14]))
    assert id_number_gender(id_number) is (Gender.MALE if int(id_number[16]) % 2 else Gender.FEMALE)


@given(valid_ids)
def test_every_check_char_mutation_rejected(id_number):
    for c in ALL_CHECK_CHARS:
        if c == id_number[-1]:
            continue
        with raises_invalid("id_number", "id_number.checksum"):
            normalise_id_number(id_number[:-1] + c, today=TODAY)


@given(valid_ids, st.integers(min_value=0, max_value=16), st.integers(min_value=1, max_value=9))
def test_single_digit_substitution_in_body_rejected(id_number, pos, delta):
    mutated_digit = str((int(id_number[pos]) + delta) % 10)
    mutated = id_number[:pos] + mutated_digit + id_number[pos + 1:]
    with raises_invalid("id_number"):
        normalise_id_number(mutated, today=TODAY)


@given(valid_ids)
def test_masked_id_reveals_only_ends(id_number):
    masked = mask_id_number(id_number)
    assert masked == id_number[:4] + "*" * 10 + id_number[-4:]


# ---------------------------------------------------------------------------
# Hypothesis: mobiles
# ---------------------------------------------------------------------------

valid_mobiles = st.from_regex(r"\A1[3-9][0-9]{9}\Z")


@given(valid_mobiles, st.sampled_from(["", "+86", "0086", "86", "+86 ", "+86-"]),
       st.sampled_from([" ", "-", ""]))
def test_formatted_mobiles_normalise(mobile, prefix, sep):
    formatted = prefix + sep.join([mobile[:3], mobile[3:7], mobile[7:]])
    assert normalise_mobile(formatted) == mobile
    assert looks_like_mobile(formatted)


@given(valid_mobiles)
def test_masked_mobile(mobile):
    assert mask_mobile(mobile) == mobile[:3] + "****" + mobile[-4:]


# ---------------------------------------------------------------------------
# File numbers
# ---------------------------------------------------------------------------


def test_format_file_number():
    assert format_file_number("755", 243) == "755 00243"
    assert format_file_number("1", 1) == "1 00001"
    assert format_file_number("110000", 99999) == "110000 99999"


@pytest.mark.parametrize("region,seq", [
    ("755", 0), ("755", 100000), ("755", -1), ("", 1), ("1234567", 1), ("75a", 1),
    ("７５５", 1), ("755", True), ("755", 1.0),
])
def test_format_file_number_rejects(region, seq):
    with pytest.raises(ValueError):
        format_file_number(region, seq)


@pytest.mark.parametrize("raw,expected", [
    ("755 00243", ("755", 243)), ("75500243", ("755", 243)), ("755-00243", ("755", 243)),
    (" 755 - 00243 ", ("755", 243)), ("１00001", ("1", 1)), ("110000 99999", ("110000", 99999)),
    ("012 00010", ("012", 10)),
])
def test_parse_file_number(raw, expected):
    assert parse_file_number(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "755", "00243", "755 0243", "755 000243", "1234567 00001", "755 00000", "abc 00243",
    "755_00243", "王小明", "755 00243x",
])
def test_parse_file_number_rejects(raw):
    assert parse_file_number(raw) is None


@given(st.from_regex(r"\A[0-9]{1,6}\Z"), st.integers(min_value=1, max_value=99999))
def test_file_number_round_trip(region, seq):
    text = format_file_number(region, seq)
    assert parse_file_number(text) == (region, seq)
    assert parse_file_number(text.replace(" ", "")) == (region, seq)
    assert parse_file_number(text.replace(" ", "-")) == (region, seq)


# ---------------------------------------------------------------------------
# Search-box routing
# ---------------------------------------------------------------------------


def test_looks_like():
    assert looks_like_mobile("138 1234 5678")
    assert not looks_like_mobile("王小明")
    assert not looks_like_mobile("755 00243")
    assert not looks_like_mobile("")
    assert looks_like_id_number(KNOWN_VALID.lower())
    assert not looks_like_id_number(KNOWN_VALID[:-1] + "1")
    assert not looks_like_id_number("13812345678")
    assert not looks_like_id_number("")


@settings(max_examples=300)
@given(st.text(max_size=30))
def test_looks_like_never_raises(q):
    assert isinstance(looks_like_mobile(q), bool)
    assert isinstance(looks_like_id_number(q), bool)
    parse_file_number(q)


def test_looks_like_tolerates_non_strings():
    assert looks_like_mobile(None) is False  # type: ignore[arg-type]
    assert looks_like_id_number(12345) is False  # type: ignore[arg-type]
    assert parse_file_number(None) is None  # type: ignore[arg-type]
