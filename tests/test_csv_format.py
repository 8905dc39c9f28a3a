"""Tests for portal.customers.csv_format: decoding, header, per-line validation and duplicates."""
from __future__ import annotations

import codecs
from datetime import date

import pytest

from portal.customers.csv_format import (
    COLUMNS,
    CustomerRow,
    ParseResult,
    RowError,
    parse_customers_csv,
)
from portal.customers.rules import Category, Gender

TODAY = date(2025, 6, 15)
HEADER = "name,gender,mobile,id_number,birthday,address,employer,position,category,notes"
WEIGHTS = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]


def make_id(region: str = "440305", born: date = date(1990, 3, 7), seq: int = 123) -> str:
    first17 = f"{region}{born:%Y%m%d}{seq:03d}"
    return first17 + "10X98765432"[sum(int(d) * w for d, w in zip(first17, WEIGHTS)) % 11]


ID_A = make_id(born=date(1990, 3, 7), seq=123)  # male
ID_B = make_id(born=date(1985, 11, 30), seq=246)  # female
ID_KNOWN = "11010519491231002X"


def csv_bytes(*lines: str, bom: bool = False, eol: str = "\n") -> bytes:
    data = eol.join(lines).encode("utf-8") + eol.encode()
    return codecs.BOM_UTF8 + data if bom else data


def parse(*lines: str, **kw) -> ParseResult:
    return parse_customers_csv(csv_bytes(*lines, **kw), today=TODAY)


def errors_of(result: ParseResult) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in result.errors]


GOOD_1 = f"王小明,男,138 1234 5678,{ID_A},,深圳市南山区,腾讯,经理,民营企业,喜欢茶"
GOOD_2 = "李娜,女,+86 139-0000-1111,,1985-11-30,,,,individual,"


# ---------------------------------------------------------------------------
# Happy paths and encodings
# ---------------------------------------------------------------------------


def test_valid_file():
    result = parse(HEADER, GOOD_1, GOOD_2)
    assert result.ok and result.errors == []
    assert result.rows == [
        CustomerRow(line=2, name="王小明", gender=Gender.MALE, mobile="13812345678",
                    id_number=ID_A, birthday=date(1990, 3, 7), address="深圳市南山区",
                    employer="腾讯", position="经理", category=Category.ENTERPRISE, notes="喜欢茶"),
        CustomerRow(line=3, name="李娜", gender=Gender.FEMALE, mobile="13900001111",
                    id_number=None, birthday=date(1985, 11, 30), address="", employer="",
                    position="", category=Category.INDIVIDUAL, notes=""),
    ]


def test_columns_constant_matches_spec():
    assert ",".join(COLUMNS) == HEADER


@pytest.mark.parametrize("bom", [False, True])
@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_bom_and_line_endings(bom, eol):
    result = parse(HEADER, GOOD_1, GOOD_2, bom=bom, eol=eol)
    assert result.ok, result.errors
    assert [r.line for r in result.rows] == [2, 3]
    assert result.rows[0].name == "王小明"  # no BOM or CR left on any value
    assert result.rows[1].notes == ""


def test_excel_style_bom_crlf_without_trailing_newline():
    data = codecs.BOM_UTF8 + f"{HEADER}\r\n{GOOD_1}".encode()
    result = parse_customers_csv(data, today=TODAY)
    assert result.ok and len(result.rows) == 1


def test_columns_in_any_order():
    header = "category,notes,mobile,name,gender,birthday,id_number,address,employer,position"
    result = parse(header, "金融,,13812345678,张三,M,,,,,")
    assert result.ok
    row = result.rows[0]
    assert (row.name, row.gender, row.mobile, row.category) == (
        "张三", Gender.MALE, "13812345678", Category.FINANCE)


def test_header_case_and_whitespace_tolerated():
    header = " Name , GENDER,mobile,id_number,birthday,address,employer,position,category,notes"
    assert parse(header, GOOD_2).ok


def test_chinese_gender_and_category_labels():
    lines = [HEADER]
    for i, (g, cat) in enumerate([("男", "政府机关"), ("女", "国有企业"), ("m", "金融"),
                                  ("F", "军警"), ("male", "民营企业"), ("female", "个人")]):
        lines.append(f"客户{i},{g},1380000000{i},,,,,,{cat},")
    result = parse(*lines)
    assert result.ok, result.errors
    assert [r.gender for r in result.rows] == [Gender.MALE, Gender.FEMALE] * 3
    assert [r.category for r in result.rows] == list(Category)


def test_quoted_fields_with_commas_quotes_and_newlines():
    row = '"Smith, John",M,13812345678,,,"1 Road, ""A"" Tower",,,individual,"line 1\r\nline 2"'
    result = parse(HEADER, row, "王五,男,13812345679,,,,,,individual,", eol="\r\n")
    assert result.ok, result.errors
    assert result.rows[0].name == "Smith, John"
    assert result.rows[0].address == '1 Road, "A" Tower'
    assert result.rows[0].notes == "line 1\nline 2"
    # Line numbers are CSV records, not physical lines: the multi-line record is line 2.
    assert [r.line for r in result.rows] == [2, 3]


def test_values_are_normalised():
    row = f"  王  小明 ,男,0086 13812345678,{ID_A.lower()},,  北京   朝阳 ,,,SOE,  keep \n"
    result = parse(HEADER, row.rstrip("\n"))
    assert result.ok, result.errors
    r = result.rows[0]
    assert (r.name, r.mobile, r.id_number, r.address, r.category, r.notes) == (
        "王 小明", "13812345678", ID_A.upper(), "北京 朝阳", Category.SOE, "keep")


def test_blank_records_are_skipped_but_counted():
    result = parse(HEADER, "", GOOD_1, ",,,,,,,,,", "   ", GOOD_2, ",,,,,,,,,")
    assert result.ok
    assert [r.line for r in result.rows] == [3, 6]


def test_trailing_empty_cells_tolerated():
    result = parse(HEADER + ",,", GOOD_1 + ",,", GOOD_2)
    assert result.ok, result.errors


# ---------------------------------------------------------------------------
# Birthday from ID
# ---------------------------------------------------------------------------


def test_birthday_derived_from_id():
    result = parse(HEADER, f"张三,女,13812345678,{ID_B},,,,,individual,")
    assert result.ok
    assert result.rows[0].birthday == date(1985, 11, 30)


def test_known_id_example():
    result = parse(HEADER, f"张三,女,13812345678,{ID_KNOWN},1949-12-31,,,,individual,")
    assert result.ok, result.errors
    assert result.rows[0].birthday == date(1949, 12, 31)


def test_birthday_matching_id_accepted():
    assert parse(HEADER, f"张三,男,13812345678,{ID_A},1990-03-07,,,,individual,").ok


def test_birthday_disagreeing_with_id_is_a_birthday_error():
    result = parse(HEADER, f"张三,男,13812345678,{ID_A},1990-03-08,,,,individual,")
    assert not result.ok and result.rows == []
    assert errors_of(result) == [(2, "birthday")]
    assert "1990-03-07" in result.errors[0].message


def test_invalid_id_reports_only_id():
    bad = ID_A[:-1] + ("0" if ID_A[-1] != "0" else "1")
    result = parse(HEADER, f"张三,男,13812345678,{bad},,,,,individual,")
    assert errors_of(result) == [(2, "id_number")]
    assert bad not in result.errors[0].message


# ---------------------------------------------------------------------------
# Errors by line, collected exhaustively
# ---------------------------------------------------------------------------


def test_required_fields():
    result = parse(HEADER, ",,,,,,,,,note only")
    assert errors_of(result) == [(2, "name"), (2, "gender"), (2, "mobile"), (2, "category")]
    assert all("required" in e.message for e in result.errors)


def test_all_errors_collected_across_rows_and_fields():
    result = parse(
        HEADER,
        GOOD_1,                                                               # 2 ok
        "张三,X,12345,123,1990-02-30,,,,unknown,",                            # 3 five errors
        GOOD_2,                                                               # 4 ok
        f"李四,女,13700000000,,{TODAY.replace(day=16).isoformat()},,,,金融,",  # 5 future birthday
        "王五,男,13600000000,,1899-01-01,,,,金融,",                           # 6 too early
    )
    assert not result.ok
    assert errors_of(result) == [
        (3, "gender"), (3, "mobile"), (3, "id_number"), (3, "birthday"), (3, "category"),
        (5, "birthday"), (6, "birthday"),
    ]
    # Valid rows are still reported, but the caller must not import anything.
    assert [r.line for r in result.rows] == [2, 4]


def test_length_limits():
    ok = parse(HEADER, f"张三,男,13812345678,,,{'地' * 200},{'e' * 100},{'p' * 100},金融,{'n' * 2000}")
    assert ok.ok, ok.errors
    bad = parse(HEADER, f"张三,男,13812345678,,,{'地' * 201},{'e' * 101},{'p' * 101},金融,{'n' * 2001}")
    assert errors_of(bad) == [(2, "address"), (2, "employer"), (2, "position"), (2, "notes")]
    assert "200" in bad.errors[0].message


def test_name_too_long():
    result = parse(HEADER, f"{'名' * 51},男,13812345678,,,,,,金融,")
    assert errors_of(result) == [(2, "name")]


def test_excel_scientific_notation_hint():
    result = parse(HEADER, "张三,男,1.38123E+10,4.40305E+17,,,,,金融,")
    assert errors_of(result) == [(2, "mobile"), (2, "id_number")]
    assert all("Excel" in e.message for e in result.errors)


def test_wrong_number_of_cells():
    result = parse(HEADER, "张三,男,13812345678,,,,,,金融", GOOD_2, GOOD_1 + ",extra")
    assert errors_of(result) == [(2, "row"), (4, "row")]
    assert [r.line for r in result.rows] == [3]


# ---------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------


def test_duplicate_mobile_after_normalisation():
    result = parse(HEADER, GOOD_1, GOOD_2, "赵六,男,+86 138-1234-5678,,,,,,金融,")
    assert errors_of(result) == [(4, "mobile")]
    assert "line 2" in result.errors[0].message
    assert "13812345678" not in result.errors[0].message


def test_duplicate_id_number():
    result = parse(HEADER, GOOD_2, GOOD_1, f"赵六,男,13700000000,{ID_A.lower()},,,,,金融,")
    assert errors_of(result) == [(4, "id_number")]
    assert "line 3" in result.errors[0].message


def test_every_later_duplicate_names_the_first_line():
    result = parse(HEADER, GOOD_1, GOOD_1, GOOD_1)
    assert errors_of(result) == [(3, "mobile"), (3, "id_number"), (4, "mobile"), (4, "id_number")]
    assert all("line 2" in e.message for e in result.errors)


def test_first_occurrence_counts_even_if_its_row_has_other_errors():
    result = parse(HEADER, "张三,?,13812345678,,,,,,金融,", "李四,男,13812345678,,,,,,金融,")
    assert errors_of(result) == [(2, "gender"), (3, "mobile")]


# ---------------------------------------------------------------------------
# File-level problems
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("data", [b"", codecs.BOM_UTF8, b"\r\n\r\n", b",,,\n"])
def test_empty_file(data):
    result = parse_customers_csv(data, today=TODAY)
    assert not result.ok and result.rows == []
    assert len(result.errors) == 1
    assert "no rows" in result.errors[0].message.lower()


@pytest.mark.parametrize("tail", ["", "\n", "\r\n,,,,,,,,,\r\n"])
def test_header_only(tail):
    result = parse_customers_csv((HEADER + tail).encode(), today=TODAY)
    assert [e.field for e in result.errors] == ["file"]
    assert "no rows" in result.errors[0].message.lower()


def test_extra_column_is_an_error():
    result = parse(HEADER + ",wechat", GOOD_1 + ",wx123")
    assert errors_of(result) == [(1, "header")]
    assert "wechat" in result.errors[0].message


def test_missing_column_is_an_error():
    header = HEADER.replace(",notes", "")
    result = parse(header, "张三,男,13812345678,,,,,,金融")
    assert errors_of(result) == [(1, "header")]
    assert "notes" in result.errors[0].message


def test_repeated_and_unnamed_columns():
    result = parse(HEADER + ",name", GOOD_1 + ",x")
    assert errors_of(result) == [(1, "header")]
    assert "Repeated" in result.errors[0].message
    result = parse("name,,gender,mobile,id_number,birthday,address,employer,position,category,notes")
    assert errors_of(result) == [(1, "header")]


def test_semicolon_file_gets_header_error():
    result = parse(HEADER.replace(",", ";"), GOOD_1.replace(",", ";"))
    assert {(e.line, e.field) for e in result.errors} == {(1, "header")}
    assert result.rows == []


def test_gbk_file_is_reported_not_guessed():
    data = (HEADER + "\n" + GOOD_1 + "\n").encode("gbk")
    result = parse_customers_csv(data, today=TODAY)
    assert result.rows == []
    assert len(result.errors) == 1
    err = result.errors[0]
    assert err.field == "file"
    assert err.line == 2  # the first non-UTF-8 byte is in the first data row
    assert "UTF-8" in err.message


def test_invalid_utf8_line_number_counts_records():
    data = csv_bytes(HEADER, 'a,M,13812345678,,,,,,金融,"multi\nline"', GOOD_2) + b"x,\xff\xfe\n"
    result = parse_customers_csv(data, today=TODAY)
    assert [(e.line, e.field) for e in result.errors] == [(4, "file")]


def test_truncated_utf8_at_end():
    data = csv_bytes(HEADER, GOOD_1) + "王".encode()[:2]
    result = parse_customers_csv(data, today=TODAY)
    assert errors_of(result) == [(3, "file")]


def test_malformed_quoting_reported_on_its_line():
    result = parse(HEADER, GOOD_1, 'x,M,13812345678,,,"unterminated,,,金融,')
    assert result.errors[-1].line == 3
    assert result.errors[-1].field == "row"
    assert not result.ok


def test_default_today_is_used_when_not_given():
    result = parse_customers_csv(csv_bytes(HEADER, GOOD_2))
    assert result.ok


def test_dataclasses_are_frozen():
    err = RowError(2, "mobile", "x")
    with pytest.raises(AttributeError):
        err.line = 3  # type: ignore[misc]
    assert ParseResult().ok and not ParseResult(errors=[err]).ok
