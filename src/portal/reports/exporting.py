"""A report's tables as CSV (UTF-8 with BOM, for Excel) or XLSX (openpyxl: yuan and date formats, one
sheet per table), cells neutralised against formula injection as the customer export does, audited
with the bytes' SHA-256."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import date
from typing import Callable

from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..audit import service as audit
from ..customers.export import neutralise_cell
from .model import Report, Table

FORMATS = ("csv", "xlsx")
MEDIA = {"csv": "text/csv; charset=utf-8",
         "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}
YUAN_FORMAT = '"¥"#,##0.00'
DATE_FORMAT = "yyyy-mm-dd"
SUPPRESSED = "<3"


@dataclass
class Exported:
    content: bytes
    filename: str
    media_type: str
    sha256: str
    rows: int


def _cell_kind(row: dict, col) -> str:
    return row.get("_kind", col.kind) if col.key == "value" else col.kind


def _text(value, kind: str, tr: Callable[[str], str], translated: bool) -> str:
    if value is None:
        return SUPPRESSED if kind in ("count", "int", "fen", "pct", "x100") else ""
    if kind == "fen":
        return f"{value / 100:.2f}"
    if kind == "pct":
        return f"{value / 10:.1f}%"
    if kind == "x100":
        return f"{value / 100:.2f}"
    if isinstance(value, date):
        return value.isoformat()
    return tr(str(value)) if translated else str(value)


def to_csv(rep: Report, tr: Callable[[str], str]) -> bytes:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    for i, t in enumerate(rep.tables):
        if i:
            w.writerow([])
        w.writerow([neutralise_cell(tr(t.title))])
        w.writerow([neutralise_cell(tr(c.label)) for c in t.cols])
        for row in t.rows:
            w.writerow([neutralise_cell(_text(row.get(c.key), _cell_kind(row, c), tr, c.key in t.translate))
                        for c in t.cols])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def _sheet_title(t: Table, tr, used: set[str]) -> str:
    base = "".join(ch for ch in tr(t.title) if ch not in "[]:*?/\\")[:28] or t.key
    name, n = base, 2
    while name in used:
        name, n = f"{base[:26]}{n}", n + 1
    used.add(name)
    return name


def to_xlsx(rep: Report, tr: Callable[[str], str]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.styles import Font

    wb = Workbook()
    wb.remove(wb.active)
    used: set[str] = set()
    for t in rep.tables:
        ws = wb.create_sheet(_sheet_title(t, tr, used))
        ws.append([neutralise_cell(tr(c.label)) for c in t.cols])
        for cell in ws[1]:
            cell.font = Font(bold=True)
        for r, row in enumerate(t.rows, start=2):
            for c_i, col in enumerate(t.cols, start=1):
                kind, value = _cell_kind(row, col), row.get(col.key)
                cell = ws.cell(row=r, column=c_i)
                if value is None:
                    cell.value = SUPPRESSED if kind in ("count", "int", "fen", "pct", "x100") else None
                elif kind == "fen":
                    cell.value, cell.number_format = value / 100, YUAN_FORMAT
                elif kind == "pct":
                    cell.value, cell.number_format = value / 1000, "0.0%"
                elif kind == "x100":
                    cell.value, cell.number_format = value / 100, "0.00"
                elif kind in ("count", "int"):
                    cell.value, cell.number_format = int(value), "#,##0"
                elif isinstance(value, date):
                    cell.value, cell.number_format = value, DATE_FORMAT
                else:
                    text = tr(str(value)) if col.key in t.translate else str(value)
                    cell.value = neutralise_cell(text)
                    cell.data_type = "s"
        for c_i, col in enumerate(t.cols, start=1):
            ws.column_dimensions[ws.cell(row=1, column=c_i).column_letter].width = 40 if col.kind == "text" else 16
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def export_report(s: Session, actor: Actor, rep: Report, fmt: str, *, scope: str,
                  tr: Callable[[str], str] = str) -> Exported:
    """The bytes of the export, with its audit entry appended in the caller's transaction."""
    if fmt not in FORMATS:
        raise ValueError(fmt)
    content = to_csv(rep, tr) if fmt == "csv" else to_xlsx(rep, tr)
    digest = hashlib.sha256(content).hexdigest()
    rows = sum(len(t.rows) for t in rep.tables)
    audit.record(s, actor, "report.export", object_type="report", object_id=rep.key,
                 detail=f"format={fmt} rows={rows} sha256={digest} {scope}"[:1000])
    return Exported(content, f"report-{rep.key}.{fmt}", MEDIA[fmt], digest, rows)
