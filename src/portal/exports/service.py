"""Export control: purpose, approval above a size, one download within 24 hours, leak tracing."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import Integer, func, insert, literal, or_, select, update
from sqlalchemy.orm import Session

from .. import clock
from ..accounts.actor import Actor
from ..accounts.service import leaders_above
from ..audit import service as audit
from ..customers import export as csv_export
from ..customers.models import CustomerFile
from ..customers.rules import format_file_number, looks_like_mobile, parse_file_number
from ..inbox.service import notify
from ..policy import Action, PermissionDenied, can, customer_scope
from ..policy.scope import subtree_range
from ..vault import Vault
from .models import ExportItem, ExportRecord

DOWNLOAD_WINDOW = timedelta(hours=24)
MIN_PURPOSE = 4


class InvalidExport(ValueError):
    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(errors.values()))
        self.errors = errors


@dataclass
class ExportOutcome:
    record: ExportRecord
    export: csv_export.Export | None  # None while the export waits for approval


def _purpose(purpose: str) -> str:
    purpose = " ".join((purpose or "").split())
    if len(purpose) < MIN_PURPOSE:
        raise InvalidExport({"purpose": "State the purpose of the export (at least 4 characters)."})
    return purpose[:500]


def start_export(s: Session, vault: Vault, actor: Actor, purpose: str, *, threshold: int) -> ExportOutcome:
    """Small exports are delivered at once; larger ones become a request a leader approves.

    Either way the set of files is frozen now (export_item): an approved export delivers the files
    that were approved, never the ones added since."""
    if not can(actor, Action.CUSTOMER_EXPORT, owner_id=actor.user_id or -1, unit_path=actor.unit_path):
        raise PermissionDenied(Action.CUSTOMER_EXPORT)
    purpose = _purpose(purpose)
    now = clock.now()
    rec = ExportRecord(actor_id=actor.user_id, actor_username=actor.username, unit_path=actor.unit_path,
                       purpose=purpose, rows=0, status="pending", created_at=now)
    s.add(rec)
    s.flush()
    ids = csv_export.exportable_ids(actor).subquery()
    s.execute(insert(ExportItem).from_select(
        ["export_id", "customer_id"], select(literal(rec.id, Integer), ids.c.id)))
    rows = s.scalar(select(func.count()).select_from(ExportItem).where(ExportItem.export_id == rec.id)) or 0
    rec.rows = rows
    if rows <= threshold:
        rec.status = "delivered"
    s.flush()
    if rec.status == "pending":
        for leader in leaders_above(s, actor.unit_path, exclude={actor.user_id}):
            notify(s, leader.id, "export.to_decide", "%(user)s asks to export %(rows)s files.",
                   link="/exports", user=actor.username, rows=rows)
        audit.record(s, actor, "customer.export_request", object_type="export", object_id=str(rec.id),
                     reason=purpose, detail=f"rows={rows} threshold={threshold}")
        return ExportOutcome(rec, None)
    return ExportOutcome(rec, _deliver(s, vault, actor, rec))


def _frozen(export_id: int):
    return select(ExportItem.customer_id).where(ExportItem.export_id == export_id)


def _deliver(s: Session, vault: Vault, actor: Actor, rec: ExportRecord) -> csv_export.Export:
    """The export's frozen files that are still in the actor's scope; `rec.rows` (what was asked
    for and approved) stays as it was, `rows_delivered` says how many went out."""
    out = csv_export.export_files(s, vault, actor, purpose=rec.purpose, export_id=rec.id,
                                  only=_frozen(rec.id), requested=rec.rows)
    rec.rows_delivered, rec.sha256, rec.file_nos = out.rows, out.sha256, ",".join(out.file_nos)
    rec.delivered_at = clock.now()
    s.flush()
    return out


def may_decide(actor: Actor, rec: ExportRecord) -> bool:
    return actor.user_id != rec.actor_id and can(actor, Action.EXPORT_DECIDE, owner_id=-1, unit_path=rec.unit_path)


def _claim(s: Session, export_id: int, *conditions, **values) -> bool:
    """Move an export on from one status, once: a conditional UPDATE whose row count decides.

    Of simultaneous requests only one finds the row still in the old status (on PostgreSQL the
    others wait for its row lock, then see the new status; on SQLite writers take turns)."""
    done = s.execute(update(ExportRecord).where(ExportRecord.id == export_id, *conditions).values(**values)
                     .execution_options(synchronize_session=False)).rowcount
    return done == 1


def decide(s: Session, actor: Actor, export_id: int, approve: bool, note: str = "") -> ExportRecord:
    rec = s.get(ExportRecord, export_id)
    if rec is None:
        raise LookupError(export_id)
    if not may_decide(actor, rec):
        raise PermissionDenied(Action.EXPORT_DECIDE, str(export_id))
    if rec.status != "pending":
        raise InvalidExport({"export": "This export has already been decided."})
    note = " ".join((note or "").split())
    if len(note) > 500:
        raise InvalidExport({"note": "At most 500 characters."})
    if not approve and len(note) < 5:
        raise InvalidExport({"note": "Give a reason for the refusal."})
    now = clock.now()
    values = dict(status="approved" if approve else "denied", decided_by_id=actor.user_id, decided_at=now,
                  decision_note=note, download_until=now + DOWNLOAD_WINDOW if approve else None)
    if not _claim(s, export_id, ExportRecord.status == "pending", **values):
        raise InvalidExport({"export": "This export has already been decided."})
    for k, v in values.items():
        setattr(rec, k, v)
    s.flush()
    notify(s, rec.actor_id, "export.decided",
           "%(by)s approved your export of %(rows)s files." if approve else "%(by)s refused your export of %(rows)s files.",
           link="/exports", by=actor.username, rows=rec.rows)
    audit.record(s, actor, "export.approve" if approve else "export.deny", object_type="export",
                 object_id=str(rec.id), reason=note, detail=f"rows={rec.rows} exporter={rec.actor_username}")
    return rec


def download(s: Session, vault: Vault, actor: Actor, export_id: int) -> ExportOutcome:
    """An approved export, downloaded once by its requester within 24 hours of approval: exactly
    the files frozen at request time, less those no longer in the requester's scope."""
    rec = s.get(ExportRecord, export_id)
    if rec is None or rec.actor_id != actor.user_id:
        raise PermissionDenied(Action.CUSTOMER_EXPORT, str(export_id))
    now = clock.now()
    if rec.status != "approved":
        raise InvalidExport({"export": "This export is not approved for download."})
    if rec.download_until is None or now >= rec.download_until:
        raise InvalidExport({"export": "The 24 hours to download this export have passed."})
    if not _claim(s, export_id, ExportRecord.actor_id == actor.user_id, ExportRecord.status == "approved",
                  ExportRecord.download_until > now, status="downloaded"):
        raise InvalidExport({"export": "This export is not approved for download."})
    rec.status = "downloaded"
    return ExportOutcome(rec, _deliver(s, vault, actor, rec))


def record_refused_download(s: Session, actor: Actor, export_id: int, reason: str) -> None:
    """A download refused (already used, expired, not approved) is on record like any refusal."""
    audit.record(s, actor, Action.CUSTOMER_EXPORT.value, audit.DENIED, object_type="export",
                 object_id=str(export_id), reason=reason[:200], detail="download")


def still_exportable(s: Session, actor: Actor, recs: list[ExportRecord]) -> dict[int, int]:
    """For the actor's approved exports: how many of each one's frozen files the download would
    deliver now (the rest have left the actor's scope since the request)."""
    ids = [r.id for r in recs if r.status == "approved"]
    if not ids:
        return {}
    counts = dict(s.execute(
        select(ExportItem.export_id, func.count()).join(CustomerFile, CustomerFile.id == ExportItem.customer_id)
        .where(ExportItem.export_id.in_(ids), customer_scope(actor, Action.CUSTOMER_EXPORT))
        .group_by(ExportItem.export_id)).all())
    return {i: counts.get(i, 0) for i in ids}


def my_exports(s: Session, actor: Actor, limit: int = 100) -> list[ExportRecord]:
    return list(s.scalars(select(ExportRecord).where(ExportRecord.actor_id == actor.user_id)
                          .order_by(ExportRecord.id.desc()).limit(limit)))


def exports_to_decide(s: Session, actor: Actor, limit: int = 100) -> list[ExportRecord]:
    if actor.role != "leader" or not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    return list(s.scalars(select(ExportRecord).where(
        ExportRecord.status == "pending", ExportRecord.unit_path >= lo, ExportRecord.unit_path < hi,
        ExportRecord.actor_id != actor.user_id).order_by(ExportRecord.id.desc()).limit(limit)))


# ---------------------------------------------------------------- leak tracing

@dataclass
class TraceMatch:
    record: ExportRecord
    exact: bool
    overlap: int      # file numbers shared with the leaked file
    leaked_rows: int  # file numbers found in the leaked file
    score: float      # share of the leaked rows found in this export


def _file_numbers_in(data: bytes) -> set[str]:
    text = data.decode("utf-8-sig", errors="replace")
    found = set()
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            cell = cell.strip().lstrip("'")
            # An 11-digit mobile number has a file number's shape too (6 + 5 digits): the export
            # writes file numbers with a space, so a bare run of digits that is a mobile is one.
            if len(cell) > 12 or (cell.isdigit() and looks_like_mobile(cell)):
                continue
            parsed = parse_file_number(cell)
            if parsed:
                found.add(format_file_number(*parsed))
    return found


def trace(s: Session, actor: Actor, data: bytes, filename: str = "") -> list[TraceMatch]:
    """Which export produced a leaked CSV: the exact bytes' hash, else the best match by rows."""
    digest = hashlib.sha256(data).hexdigest()
    exact = list(s.scalars(select(ExportRecord).where(ExportRecord.sha256 == digest)))
    matches = [TraceMatch(r, True, n, n, 1.0) for r in exact
               for n in [r.rows if r.rows_delivered is None else r.rows_delivered]]
    if not matches:
        leaked = _file_numbers_in(data)
        if leaked:
            # Candidates are the exports that delivered at least one of these numbers.
            conds = [ExportRecord.file_nos.contains(n) for n in list(leaked)[:50]]
            for r in s.scalars(select(ExportRecord).where(ExportRecord.sha256 != "", or_(*conds))):
                shared = len(leaked & set(r.file_nos.split(",")))
                if shared:
                    matches.append(TraceMatch(r, False, shared, len(leaked), shared / len(leaked)))
            matches.sort(key=lambda m: (-m.score, -m.overlap, m.record.id))
            matches = matches[:10]
        audit.record(s, actor, "audit.trace", object_type="export",
                     object_id=",".join(str(m.record.id) for m in matches[:10]),
                     detail=f"sha256={digest} rows_with_file_numbers={len(leaked)} file={filename[:100]}")
    else:
        audit.record(s, actor, "audit.trace", object_type="export",
                     object_id=",".join(str(m.record.id) for m in matches),
                     detail=f"sha256={digest} exact match file={filename[:100]}")
    return matches
