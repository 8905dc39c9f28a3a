"""Lists and search over customer files: keyset pages scoped in SQL by the policy, masked rows, duplicate checks."""
from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import false, or_, select, true, tuple_, union_all
from sqlalchemy.orm import Session

from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..org.models import OrgUnit
from ..policy import Action, customer_scope
from ..policy.actions import Relation
from ..policy.scope import scope_arms, subtree_range
from ..vault import Vault
from . import rules
from .models import CustomerFile
from .service import CustomerInput, FileSummary, _open


def _cursor_encode(f: CustomerFile | FileSummary) -> str:
    raw = f"{f.created_at.isoformat()}|{f.id}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(token: str) -> tuple[datetime, uuid.UUID] | None:
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        at, fid = raw.split("|", 1)
        return datetime.fromisoformat(at), uuid.UUID(fid)
    except (ValueError, UnicodeDecodeError):
        return None


@dataclass
class Page:
    rows: list[FileSummary]
    next_cursor: str | None
    query_kind: str = ""  # "", "file_no", "mobile", "id_number", "unsupported"


def _summaries(s: Session, vault: Vault, files) -> list[FileSummary]:
    """files: CustomerFile objects or rows with the _LIST_COLUMNS."""
    owners = {}
    ids = {f.owner_id for f in files}
    if ids:
        owners = dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    out = []
    for f in files:
        p = _open(vault, f, ("name", "mobile"))
        out.append(FileSummary(id=f.id, file_no=f.file_no, name=rules.mask_name(p["name"] or ""),
                               mobile=rules.mask_mobile(p["mobile"] or ""), category=f.category,
                               gender=f.gender, owner=owners.get(f.owner_id, "?"),
                               created_at=f.created_at))
    return out


def classify_query(vault: Vault, q: str):
    """Turn the search box into an exact SQL condition (file number or a blind index)."""
    q = q.strip()
    if not q:
        return "", None
    # A mobile number also has a file number's shape (6 + 5 digits): try it first.
    if rules.looks_like_mobile(q):
        return "mobile", CustomerFile.mobile_bidx == vault.blind_index("mobile", rules.normalise_mobile(q))
    if rules.looks_like_id_number(q):
        return "id_number", CustomerFile.id_number_bidx == vault.blind_index(
            "id_number", rules.normalise_id_number(q))
    parsed = rules.parse_file_number(q)
    if parsed:
        return "file_no", CustomerFile.file_no == rules.format_file_number(*parsed)
    return "unsupported", None


_LIST_COLUMNS = (CustomerFile.id, CustomerFile.file_no, CustomerFile.category, CustomerFile.gender,
                 CustomerFile.owner_id, CustomerFile.created_at, CustomerFile.name_ct,
                 CustomerFile.mobile_ct)


def _list_arms(s: Session, actor: Actor) -> list:
    """The list scope as disjuncts that an index walks newest first: own files by owner, the
    led subtree one unit at a time (unit_path equality, within the subtree's range), grants.
    Together they select what customer_scope() selects (every file's unit_path is its unit's)."""
    arms = scope_arms(actor, Action.CUSTOMER_LIST)
    if arms is None:
        return [true()]
    out = []
    for rel, clause in arms:
        if rel is Relation.LED:
            lo, hi = subtree_range(actor.unit_path)
            paths = s.scalars(select(OrgUnit.path).where(OrgUnit.path >= lo, OrgUnit.path < hi))
            out += [clause & (CustomerFile.unit_path == p) for p in paths]
        else:
            out.append(clause)
    return out or [false()]


def list_files(s: Session, vault: Vault, actor: Actor, *, q: str = "", cursor: str | None = None,
               limit: int = 50, owner_only: bool = False) -> Page:
    """Newest first, keyset-paginated, scoped in SQL by the policy; audited as a list or search."""
    kind, cond = classify_query(vault, q)
    if kind == "unsupported":
        audit.record(s, actor, "customer.search", detail="unsupported query")
        return Page(rows=[], next_cursor=None, query_kind=kind)
    newest_first = (CustomerFile.created_at.desc(), CustomerFile.id.desc())
    keyset = true()
    if cursor:
        c = _cursor_decode(cursor)
        if c:
            keyset = tuple_(CustomerFile.created_at, CustomerFile.id) < tuple_(*c)
    mine = CustomerFile.owner_id == actor.user_id if owner_only else true()
    if cond is not None:
        # An exact search: the blind index (or file number) finds a row or two; scope them.
        stmt = select(*_LIST_COLUMNS).where(customer_scope(actor, Action.CUSTOMER_LIST), mine, cond, keyset)
    else:
        arms = _list_arms(s, actor)
        if len(arms) == 1:
            stmt = select(*_LIST_COLUMNS).where(arms[0], mine, keyset)
        else:
            # One index walk per arm of the scope, newest first, limit+1 each; then merge.
            ids = union_all(*(select(sub.c.id) for sub in (
                select(CustomerFile.id).where(arm, mine, keyset).order_by(*newest_first)
                .limit(limit + 1).subquery() for arm in arms)))
            stmt = select(*_LIST_COLUMNS).where(CustomerFile.id.in_(ids))
    # Rows of just the listed columns (no ORM objects, no unused ciphertext).
    files = list(s.execute(stmt.order_by(*newest_first).limit(limit + 1)))
    more = len(files) > limit
    files = files[:limit]
    rows = _summaries(s, vault, files)
    if kind:
        audit.record(s, actor, "customer.search", object_type="customer",
                     object_id=",".join(r.file_no for r in rows[:10]), fields=[kind],
                     detail=f"{len(rows)} result(s)")
    else:
        audit.record(s, actor, "customer.list", object_type="customer",
                     fields=["name", "mobile"], detail=f"{len(rows)} masked row(s)")
    return Page(rows=rows, next_cursor=_cursor_encode(files[-1]) if more and files else None,
                query_kind=kind)


def find_by_contact(s: Session, vault: Vault, *, mobile: str | None, id_number: str | None) -> list[CustomerFile]:
    """Files anywhere with this mobile or ID number (duplicate detection; callers reveal no personal data)."""
    conds = []
    if mobile:
        conds.append(CustomerFile.mobile_bidx == vault.blind_index("mobile", mobile))
    if id_number:
        conds.append(CustomerFile.id_number_bidx == vault.blind_index("id_number", id_number))
    if not conds:
        return []
    return list(s.scalars(select(CustomerFile).where(or_(*conds))))


@dataclass
class Duplicate:
    file_no: str
    owner: str
    mine: bool


def check_duplicates(s: Session, vault: Vault, actor: Actor, data: CustomerInput) -> list[Duplicate]:
    """Files anywhere that already hold this mobile or ID number. The lookup is audited and
    reveals only file numbers and owners."""
    found = find_by_contact(s, vault, mobile=data.mobile, id_number=data.id_number)
    if not found:
        return []
    owners = dict(s.execute(select(User.id, User.username)
                            .where(User.id.in_({f.owner_id for f in found}))).all())
    dups = [Duplicate(f.file_no, owners.get(f.owner_id, "?"), f.owner_id == actor.user_id) for f in found]
    audit.record(s, actor, "customer.duplicate_check", object_type="customer",
                 object_id=",".join(d.file_no for d in dups)[:255],
                 fields=[k for k, v in (("mobile", data.mobile), ("id_number", data.id_number)) if v],
                 detail=f"{len(dups)} existing file(s); creation stopped")
    return dups


