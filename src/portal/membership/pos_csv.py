"""Parse and validate a point-of-sale CSV export into purchases (lines grouped by receipt) or per-line errors; no DB.

The file is UTF-8 (a BOM is allowed), with a header row naming the columns in any order:

    receipt_no, date, card_number, file_no, product, quantity, unit_price, special_price,
    group_buy, payment_method, coupon_code, points_used

``card_number``, ``file_no``, ``special_price``, ``group_buy``, ``coupon_code`` (one of the
member's coupons) and ``points_used`` (points paying part of the sale; payment method "points"
pays it all) may be left out of the header or left blank. Consecutive rows with the same ``receipt_no`` are the lines of one purchase and
must agree on date, card, file and payment method. A row with neither card nor file is an
anonymous sale (its points can be claimed later with the receipt number).

Money is parsed to integer fen from its decimal text (never through a float). Line numbers in
errors are CSV record numbers, the header being line 1, as for the customer import. Checks
that need the database (receipts already recorded, unknown cards or files, whose clients they
are) are the caller's: see ``portal purchases import``.
"""
from __future__ import annotations

import codecs
import csv
import io
import re
import unicodedata
from dataclasses import dataclass, field
from datetime import date

from ..customers.csv_format import RowError
from ..customers.rules import format_file_number, parse_file_number
from .coupon_rules import normalise_code
from .outcomes import PAYMENT_METHODS, PurchaseRequest
from .rules import PurchaseLine, format_card_number, parse_card_number, programme_today

__all__ = [
    "COLUMNS",
    "MAX_ROWS",
    "MAX_UNIT_PRICE_FEN",
    "MAX_QUANTITY",
    "REQUIRED_COLUMNS",
    "PosParseResult",
    "PosPurchase",
    "RowError",
    "parse_bool",
    "parse_pos_csv",
    "parse_yuan",
]

COLUMNS: tuple[str, ...] = (
    "receipt_no", "date", "card_number", "file_no", "product", "quantity", "unit_price",
    "special_price", "group_buy", "payment_method", "coupon_code", "points_used",
)
REQUIRED_COLUMNS: frozenset[str] = frozenset(
    {"receipt_no", "date", "product", "quantity", "unit_price", "payment_method"})
MAX_ROWS = 50_000
MAX_QUANTITY = 100_000
MAX_UNIT_PRICE_FEN = 1_000_000_000  # ¥10,000,000
PRODUCT_MAX = 200

# The same shape as ``purchases.RECEIPT`` (a test keeps the two in step).
RECEIPT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,39}")
_YUAN = re.compile(r"(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.([0-9]*))?")
_DATE = re.compile(r"([0-9]{4})[-/]([0-9]{1,2})[-/]([0-9]{1,2})")
_TRUE = frozenset({"1", "yes", "y", "true", "是"})
_FALSE = frozenset({"", "0", "no", "n", "false", "否"})
# What tills and people write for the payment methods the programme knows.
_PAYMENT_ALIASES = {
    "cash": "cash", "现金": "cash",
    "cheque": "cheque", "check": "cheque", "支票": "cheque",
    "bank_transfer": "bank_transfer", "bank transfer": "bank_transfer", "transfer": "bank_transfer",
    "银行转账": "bank_transfer", "转账": "bank_transfer",
    "wire": "wire", "电汇": "wire",
    "stored_value": "stored_value", "stored value": "stored_value", "储值": "stored_value",
    "储值卡": "stored_value",
    "credit": "credit", "挂账": "credit", "赊账": "credit",
    "cash_on_delivery": "cash_on_delivery", "cod": "cash_on_delivery", "货到付款": "cash_on_delivery",
    "points": "points", "积分": "points", "積分": "points",
}
assert set(_PAYMENT_ALIASES.values()) == set(PAYMENT_METHODS)

FILE, HEADER, ROW = "file", "header", "row"
# Per-receipt fields that every line of the receipt must repeat.
_RECEIPT_FIELDS = ("date", "card_number", "file_no", "payment_method", "coupon_code", "points_used")


@dataclass(frozen=True)
class PosPurchase:
    """One receipt: its lines in file order and the CSV line of each."""

    receipt_no: str
    purchased_on: date
    card_number: str | None     # normalised "755 00243", or None
    file_no: str | None         # normalised "755 00012", or None
    payment_method: str
    lines: tuple[PurchaseLine, ...]
    line_numbers: tuple[int, ...]
    coupon_code: str | None = None
    points_used: int | None = None

    @property
    def line(self) -> int:
        """The CSV line of the receipt's first row (where receipt-level errors are reported)."""
        return self.line_numbers[0]

    @property
    def anonymous(self) -> bool:
        return self.card_number is None and self.file_no is None

    def request(self, customer_id=None) -> PurchaseRequest:
        """The use case's input. The card, when there is one, names the buyer."""
        return PurchaseRequest(receipt_no=self.receipt_no, lines=self.lines, payment_method=self.payment_method,
                               card_number=self.card_number,
                               customer_id=None if self.card_number else customer_id,
                               purchased_on=self.purchased_on, coupon_code=self.coupon_code,
                               points_used=self.points_used)


@dataclass
class PosParseResult:
    purchases: list[PosPurchase] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0  # data rows read (blank records not counted)

    @property
    def ok(self) -> bool:
        """True when there are no errors; record nothing unless it is."""
        return not self.errors

    @property
    def line_count(self) -> int:
        return sum(len(p.lines) for p in self.purchases)


class _Bad(ValueError):
    """A cell's problem, in words for the person who exported the file."""


def _nfkc(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


def parse_yuan(raw: str) -> int:
    """"128.50", "128.5", "1,280", "¥99" -> fen as an exact integer; _Bad (a ValueError) otherwise."""
    text = _nfkc(raw).replace(" ", "")
    text = text[1:] if text[:1] in ("¥", "￥") else text
    m = _YUAN.fullmatch(text)
    if not m:
        raise _Bad(f"{raw!r} is not an amount in yuan like 128.50.")
    decimals = m.group(1)
    if decimals is not None and len(decimals) > 2:
        raise _Bad(f"{raw!r} has more than 2 decimals (fen are the smallest unit).")
    whole = text.split(".")[0].replace(",", "")
    fen = int(whole) * 100 + int((decimals or "").ljust(2, "0"))
    if fen > MAX_UNIT_PRICE_FEN:
        raise _Bad(f"{raw!r} is more than ¥{MAX_UNIT_PRICE_FEN // 100:,}.")
    return fen


def parse_bool(raw: str) -> bool:
    """1/0, yes/no, y/n, true/false, 是/否; blank is no."""
    value = _nfkc(raw).lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise _Bad(f"{raw!r}: write 1 or 0 (yes or no).")


def _quantity(raw: str) -> int:
    text = _nfkc(raw)
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_QUANTITY:
        raise _Bad(f"{raw!r}: the quantity is a whole number from 1 to {MAX_QUANTITY:,}.")
    return int(text)


def _date(raw: str, today: date) -> date:
    m = _DATE.fullmatch(_nfkc(raw))
    if not m:
        raise _Bad(f"{raw!r} is not a date like 2026-03-10.")
    try:
        day = date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        raise _Bad(f"{raw!r} is not a real date.") from None
    if day > today:
        raise _Bad(f"{day.isoformat()} is in the future.")
    if day.year < 2000:
        raise _Bad(f"{day.isoformat()} is too long ago.")
    return day


def _receipt(raw: str) -> str:
    value = _nfkc(raw)
    if not RECEIPT.fullmatch(value):
        raise _Bad(f"{raw!r}: a receipt number is 1 to 40 letters, digits, '.', '_', '/' or '-'.")
    return value


def _card(raw: str) -> str | None:
    if not raw.strip():
        return None
    parsed = parse_card_number(raw)
    if parsed is None:
        raise _Bad(f"{raw!r} is not a card number like 755 00243.")
    return format_card_number(*parsed)


def _file_no(raw: str) -> str | None:
    if not raw.strip():
        return None
    parsed = parse_file_number(raw)
    if parsed is None:
        raise _Bad(f"{raw!r} is not a file number like 755 00012.")
    return format_file_number(*parsed)


def _payment(raw: str) -> str:
    key = " ".join(_nfkc(raw).lower().replace("-", " ").split())
    method = _PAYMENT_ALIASES.get(key) or _PAYMENT_ALIASES.get(key.replace(" ", "_"))
    if method is None:
        raise _Bad(f"{raw!r}: the payment method is one of {', '.join(PAYMENT_METHODS)}.")
    if method == "stored_value":
        raise _Bad("Stored-value payments need the member's PIN at the till; record them on the "
                   "POS or in the portal, not by import.")
    return method


def _coupon(raw: str) -> str | None:
    if not raw.strip():
        return None
    code = normalise_code(raw)
    if code is None:
        raise _Bad(f"{raw!r} is not a coupon code like 7KQ2-M9XB-A4TD.")
    return code


def _points(raw: str) -> int | None:
    text = _nfkc(raw).replace(",", "")
    if not text:
        return None
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 100_000_000:
        raise _Bad(f"{raw!r}: points used are a whole number of at least 1.")
    return int(text)


def _product(raw: str) -> str:
    value = " ".join(raw.split())
    if not value:
        raise _Bad("Name the product.")
    if len(value) > PRODUCT_MAX:
        raise _Bad(f"At most {PRODUCT_MAX} characters (it has {len(value)}).")
    return value


def _decode(data: bytes) -> str | None:
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _check_header(record: list[str], line: int) -> tuple[dict[str, int] | None, list[RowError]]:
    names = [_nfkc(h).lower().replace(" ", "_") for h in record]
    while names and not names[-1]:
        names.pop()
    errors: list[RowError] = []
    unknown = [n for n in names if n not in COLUMNS]
    missing = [c for c in COLUMNS if c in REQUIRED_COLUMNS and c not in names]
    repeated = sorted({n for n in names if n in COLUMNS and names.count(n) > 1})
    expected = ", ".join(COLUMNS)
    if unknown:
        errors.append(RowError(line, HEADER, f"Unknown column(s): {', '.join(repr(n) for n in unknown)}. "
                                             f"Expected: {expected}"))
    if missing:
        errors.append(RowError(line, HEADER, f"Missing column(s): {', '.join(missing)}. Expected: {expected}"))
    if repeated:
        errors.append(RowError(line, HEADER, f"Repeated column(s): {', '.join(repeated)}."))
    if errors:
        return None, errors
    return {n: i for i, n in enumerate(names)}, []


@dataclass
class _Receipt:
    receipt_no: str
    first_line: int
    head: dict[str, object]          # the first line's date, card, file, payment (those that parsed)
    lines: list[PurchaseLine] = field(default_factory=list)
    line_numbers: list[int] = field(default_factory=list)


def parse_pos_csv(data: bytes, *, today: date | None = None) -> PosParseResult:
    """Parse a whole POS export; every problem is reported on its CSV line (header = line 1).

    Purchases are returned only when the whole file is valid (``result.ok``).
    """
    text = _decode(data)
    if text is None:
        return PosParseResult(errors=[RowError(0, FILE, "The file is not UTF-8 text. Export it as UTF-8 "
                                                        "(in Excel: \"CSV UTF-8\").")])
    today = today or programme_today()  # one "today" for the whole file
    result = PosParseResult()
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    columns: dict[str, int] | None = None
    receipts: dict[str, _Receipt] = {}
    order: list[_Receipt] = []
    previous: str | None = None
    line = 0
    while True:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            result.errors.append(RowError(line + 1, ROW, f"Malformed CSV: {exc}."))
            return result
        line += 1
        if all(not cell.strip() for cell in record):
            continue
        if columns is None:
            columns, header_errors = _check_header(record, line)
            if header_errors:
                result.errors.extend(header_errors)
                return result
            continue
        result.rows += 1
        if result.rows > MAX_ROWS:
            result.errors.append(RowError(line, FILE, f"More than {MAX_ROWS:,} rows; split the file."))
            return result
        previous = _parse_row(record, line, columns, today, receipts, order, previous, result)

    if columns is None:
        result.errors.append(RowError(0, FILE, "No rows: the file is empty."))
    elif result.rows == 0:
        result.errors.append(RowError(0, FILE, "No rows: the file has a header but no sales."))
    if result.errors:
        return result
    result.purchases = [
        PosPurchase(receipt_no=r.receipt_no, purchased_on=r.head["date"], card_number=r.head["card_number"],
                    file_no=r.head["file_no"], payment_method=r.head["payment_method"],
                    lines=tuple(r.lines), line_numbers=tuple(r.line_numbers),
                    coupon_code=r.head.get("coupon_code"), points_used=r.head.get("points_used"))
        for r in order]
    return result


def _parse_row(record: list[str], line: int, columns: dict[str, int], today: date,
               receipts: dict[str, _Receipt], order: list[_Receipt], previous: str | None,
               result: PosParseResult) -> str | None:
    """Parse one data row into its receipt; returns the row's receipt number (for grouping)."""
    width = len(columns)
    if len(record) < width or any(cell.strip() for cell in record[width:]):
        result.errors.append(RowError(line, ROW, f"Row has {len(record)} columns but the header has {width}; "
                                                 "check for unquoted commas in a value."))
        return previous
    cell = {name: record[i] for name, i in columns.items()}
    problems: list[RowError] = []
    values: dict[str, object] = {}

    def run(name: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
        raw = cell.get(name, "")
        if name in REQUIRED_COLUMNS and not raw.strip():
            problems.append(RowError(line, name, f"{name} is required."))
            return
        try:
            values[name] = fn(raw, *args)
        except _Bad as exc:
            problems.append(RowError(line, name, str(exc)))

    run("receipt_no", _receipt)
    run("date", _date, today)
    run("card_number", _card)
    run("file_no", _file_no)
    run("product", _product)
    run("quantity", _quantity)
    run("unit_price", parse_yuan)
    run("special_price", parse_bool)
    run("group_buy", parse_bool)
    run("payment_method", _payment)
    run("coupon_code", _coupon)
    run("points_used", _points)

    receipt_no = values.get("receipt_no")
    if not isinstance(receipt_no, str):
        result.errors.extend(problems)
        return previous
    r = receipts.get(receipt_no)
    if r is not None and previous != receipt_no:
        problems.append(RowError(line, "receipt_no", (
            f"Receipt {receipt_no} already appeared on line {r.first_line}; a receipt's lines must be "
            "next to each other, and a receipt number is used once.")))
    elif r is None:
        r = _Receipt(receipt_no, line, {k: values[k] for k in _RECEIPT_FIELDS if k in values})
        receipts[receipt_no] = r
        order.append(r)
    else:
        for name in _RECEIPT_FIELDS:
            if name in values and name in r.head and values[name] != r.head[name]:
                problems.append(RowError(line, name, (
                    f"Differs from line {r.first_line}, where receipt {receipt_no} starts; every line of "
                    f"a receipt has the same {name.replace('_', ' ')}.")))
    if problems:
        result.errors.extend(problems)
        return receipt_no
    r.lines.append(PurchaseLine(values["product"], values["quantity"], values["unit_price"],
                                values["special_price"], values["group_buy"]))
    r.line_numbers.append(line)
    return receipt_no
