"""Customer export as CSV: the actor's scoped files, cells neutralised, the bytes' SHA-256 audited."""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..policy import Action, PermissionDenied, can, customer_scope
from ..vault import Vault
from .models import PERSONAL_FIELDS, CustomerFile
from .service import _open

EXPORT_COLUMNS = ("file_no", "category", "gender", *PERSONAL_FIELDS, "owner", "created_at")


def neutralise_cell(v: str) -> str:
    """Spreadsheet formula injection: a cell starting with = + - @ (or tab/CR) is prefixed with '."""
    return "'" + v if v and v[0] in "=+-@\t\r" else v


@dataclass
class Export:
    content: bytes
    rows: int
    sha256: str
    file_nos: list[str] = field(default_factory=list)



def exportable_ids(actor: Actor) -> Select:
    """The ids of the files the actor may export now (to freeze an export's set of files)."""
    return select(CustomerFile.id).where(customer_scope(actor, Action.CUSTOMER_EXPORT))


def export_files(s: Session, vault: Vault, actor: Actor, *, purpose: str = "", export_id: int | None = None,
                 only: Select | None = None, requested: int | None = None) -> Export:
    """The actor's exportable files as CSV (UTF-8 with BOM, for Excel); the entry records the row
    count, the purpose and the SHA-256 of the exact bytes delivered.

    `only` (a select of file ids) limits the export to a set frozen earlier; of those, the files
    no longer in the actor's scope are left out, and the entry says how many of `requested`."""
    if not can(actor, Action.CUSTOMER_EXPORT, owner_id=actor.user_id or -1, unit_path=actor.unit_path):
        raise PermissionDenied(Action.CUSTOMER_EXPORT)
    stmt = select(CustomerFile).where(customer_scope(actor, Action.CUSTOMER_EXPORT))
    if only is not None:
        stmt = stmt.where(CustomerFile.id.in_(only))
    stmt = stmt.order_by(CustomerFile.created_at.desc(), CustomerFile.id.desc())
    owners = dict(s.execute(select(User.id, User.username)).all())
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow(EXPORT_COLUMNS)
    file_nos = []
    for f in s.scalars(stmt.execution_options(yield_per=500)):
        p = _open(vault, f)
        row = [f.file_no, f.category, f.gender, *(p[c] or "" for c in PERSONAL_FIELDS),
               owners.get(f.owner_id, "?"), f.created_at.isoformat(timespec="seconds")]
        w.writerow([neutralise_cell(str(v)) for v in row])
        file_nos.append(f.file_no)
    n = len(file_nos)
    content = ("\ufeff" + buf.getvalue()).encode("utf-8")
    digest = hashlib.sha256(content).hexdigest()
    audit.record(s, actor, "customer.export", object_type="customer", fields=PERSONAL_FIELDS,
                 reason=purpose, detail=f"rows={n} sha256={digest}"
                 + (f" export={export_id}" if export_id else "")
                 + (f" requested={requested} left_out={requested - n}" if requested is not None else ""))
    return Export(content=content, rows=n, sha256=digest, file_nos=file_nos)
