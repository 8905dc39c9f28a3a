"""Parse and validate a bulk customer import CSV (UTF-8, Excel-friendly) into rows or per-line errors; no DB."""
from __future__ import annotations

import codecs
import csv
import io
import re
from dataclasses import dataclass, field
from datetime import date

from .rules import (
    Category,
    Gender,
    InvalidField,
    china_today,
    id_number_birthday,
    normalise_id_number,
    normalise_mobile,
    normalise_name,
    parse_birthday,
    parse_category,
    parse_gender,
)

__all__ = [
    "COLUMNS",
    "MAX_LENGTHS",
    "REQUIRED_COLUMNS",
    "CustomerRow",
    "ParseResult",
    "RowError",
    "parse_customers_csv",
]

COLUMNS: tuple[str, ...] = (
    "name", "gender", "mobile", "id_number", "birthday",
    "address", "employer", "position", "category", "notes",
)
REQUIRED_COLUMNS: frozenset[str] = frozenset({"name", "gender", "mobile", "category"})
MAX_LENGTHS: dict[str, int] = {"address": 200, "employer": 100, "position": 100, "notes": 2000}

# Field names used in RowError for problems that are not about one column.
FILE = "file"
HEADER = "header"
ROW = "row"

_LABELS = {
    "name": "Name", "gender": "Gender", "mobile": "Mobile number", "id_number": "ID number",
    "birthday": "Birthday", "address": "Address", "employer": "Employer",
    "position": "Position", "category": "Category", "notes": "Notes",
}
# Excel shows long numbers in scientific notation and saves them that way (1.10105E+17).
_EXCEL_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?[eE]\+?[0-9]+")
_EXCEL_HINT = (" It looks like Excel turned it into a number; format the column as Text "
               "and type the value again.")


@dataclass(frozen=True)
class CustomerRow:
    line: int
    name: str
    gender: Gender
    mobile: str
    id_number: str | None
    birthday: date | None
    address: str
    employer: str
    position: str
    category: Category
    notes: str


@dataclass(frozen=True)
class RowError:
    line: int  # CSV record number, header = 1; 0 when not tied to a line
    field: str  # a column name, or "file" / "header" / "row"
    message: str


@dataclass
class ParseResult:
    rows: list[CustomerRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when there are no errors. Import is all-or-nothing: import rows only if ok."""
        return not self.errors


def _decode(data: bytes) -> tuple[str | None, RowError | None]:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8"), None
    except UnicodeDecodeError as exc:
        line = _record_at(data, exc.start)
        where = f" (line {line})" if line else ""
        return None, RowError(
            line, FILE,
            f"The file is not UTF-8 text{where}. In Excel, save it as "
            "\"CSV UTF-8 (Comma delimited)\" / \"CSV UTF-8(逗号分隔)\".",
        )


def _record_at(data: bytes, offset: int) -> int:
    """CSV record number (1-based) containing byte ``offset``; 0 if it cannot be determined."""
    try:
        prefix = data[:offset].decode("utf-8")
        # A sentinel at the offset lands in the same record as the undecodable byte.
        return len(list(csv.reader(io.StringIO(prefix + "?", newline=""))))
    except (UnicodeDecodeError, csv.Error):
        return 0


def _clean_text(name: str, value: str) -> str:
    """Single-line fields get whitespace collapsed; notes keep their lines (LF endings)."""
    if name == "notes":
        return value.replace("\r\n", "\n").replace("\r", "\n")
    return " ".join(value.split())


def _blank(record: list[str]) -> bool:
    return all(not cell.strip() for cell in record)


def _check_header(header: list[str], line: int) -> tuple[dict[str, int] | None, list[RowError]]:
    names = [h.strip().lower() for h in header]
    while names and not names[-1]:  # trailing empty cells, as spreadsheets sometimes write
        names.pop()
    expected = ",".join(COLUMNS)
    errors: list[RowError] = []
    unnamed = [str(i + 1) for i, n in enumerate(names) if not n]
    unknown = [n for n in names if n and n not in COLUMNS]
    missing = [c for c in COLUMNS if c not in names]
    repeated = sorted({n for n in names if n in COLUMNS and names.count(n) > 1})
    if unnamed:
        errors.append(RowError(line, HEADER, f"Column(s) {', '.join(unnamed)} have no name."))
    if unknown:
        shown = ", ".join(repr(n) for n in unknown)
        errors.append(RowError(line, HEADER, f"Unknown column(s): {shown}. Expected: {expected}"))
    if missing:
        errors.append(RowError(line, HEADER, f"Missing column(s): {', '.join(missing)}. "
                                             f"Expected: {expected}"))
    if repeated:
        errors.append(RowError(line, HEADER, f"Repeated column(s): {', '.join(repeated)}."))
    if errors:
        return None, errors
    return {n: i for i, n in enumerate(names)}, []


def parse_customers_csv(data: bytes, *, today: date | None = None) -> ParseResult:
    """Parse a whole import file; every problem is reported, each on its CSV record number.

    Rows are returned only when valid; callers must import nothing unless ``result.ok``.
    Fully blank records (e.g. trailing ",,,," rows from Excel) are skipped but still counted.
    """
    text, err = _decode(data)
    if err is not None:
        return ParseResult(errors=[err])
    assert text is not None
    if today is None:
        today = china_today()  # one "today" for the whole file

    result = ParseResult()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, int] | None = None
    seen_mobile: dict[str, int] = {}
    seen_id: dict[str, int] = {}
    line = 0
    data_rows = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(RowError(line + 1, ROW, f"Malformed CSV: {exc}."))
            return result
        line += 1
        if _blank(record):
            continue
        if columns is None:
            columns, header_errors = _check_header(record, line)
            if header_errors:
                result.errors.extend(header_errors)
                return result
            continue
        data_rows += 1
        _parse_record(record, line, columns, today, seen_mobile, seen_id, result)

    if columns is None:
        result.errors.append(RowError(0, FILE, "No rows: the file is empty."))
    elif data_rows == 0:
        result.errors.append(RowError(0, FILE, "No rows: the file has a header but no customers."))
    return result


def _parse_record(
    record: list[str],
    line: int,
    columns: dict[str, int],
    today: date | None,
    seen_mobile: dict[str, int],
    seen_id: dict[str, int],
    result: ParseResult,
) -> None:
    width = len(columns)  # named columns; cells beyond them must be empty
    extra = record[width:]
    if len(record) < width or not _blank(extra):
        result.errors.append(RowError(
            line, ROW, f"Row has {len(record)} columns but the header has {width}; "
                       "check for unquoted commas in a value."))
        return
    cell = {name: record[i].strip() for name, i in columns.items()}
    errors: list[RowError] = []
    values: dict[str, object] = {}

    def run(name: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        raw = cell[name]
        if not raw:
            if name in REQUIRED_COLUMNS:
                errors.append(RowError(line, name, f"{_LABELS[name]} is required."))
            values[name] = None
            return
        try:
            values[name] = fn(raw, *args, **kwargs)
        except InvalidField as exc:
            message = exc.message
            if name in ("mobile", "id_number") and _EXCEL_NUMBER.fullmatch(raw):
                message += _EXCEL_HINT
            errors.append(RowError(line, name, message))

    run("name", normalise_name)
    run("gender", parse_gender)
    run("mobile", normalise_mobile)
    run("id_number", normalise_id_number, today=today)
    run("birthday", parse_birthday, today=today)
    for name, limit in MAX_LENGTHS.items():
        value = _clean_text(name, cell[name])
        if len(value) > limit:
            errors.append(RowError(
                line, name, f"{_LABELS[name]} must be at most {limit} characters "
                            f"(it has {len(value)})."))
        values[name] = value
    run("category", parse_category)

    id_number = values.get("id_number")
    if isinstance(id_number, str):
        id_born = id_number_birthday(id_number)
        birthday = values.get("birthday")
        if not cell["birthday"]:
            values["birthday"] = id_born
        elif isinstance(birthday, date) and birthday != id_born:
            errors.append(RowError(
                line, "birthday", f"Birthday {birthday.isoformat()} does not match the birth date "
                                  f"in the ID number ({id_born.isoformat()})."))

    mobile = values.get("mobile")
    if isinstance(mobile, str):
        first = seen_mobile.setdefault(mobile, line)
        if first != line:
            errors.append(RowError(line, "mobile", f"Same mobile number as line {first}."))
    if isinstance(id_number, str):
        first = seen_id.setdefault(id_number, line)
        if first != line:
            errors.append(RowError(line, "id_number", f"Same ID number as line {first}."))

    if errors:
        order = {name: i for i, name in enumerate(COLUMNS)}
        errors.sort(key=lambda e: order.get(e.field, -1))
        result.errors.extend(errors)
        return
    result.rows.append(CustomerRow(
        line=line,
        name=values["name"],  # type: ignore[arg-type]
        gender=values["gender"],  # type: ignore[arg-type]
        mobile=values["mobile"],  # type: ignore[arg-type]
        id_number=values["id_number"],  # type: ignore[arg-type]
        birthday=values["birthday"],  # type: ignore[arg-type]
        address=values["address"],  # type: ignore[arg-type]
        employer=values["employer"],  # type: ignore[arg-type]
        position=values["position"],  # type: ignore[arg-type]
        category=values["category"],  # type: ignore[arg-type]
        notes=values["notes"],  # type: ignore[arg-type]
    ))
