"""Lists and search over customer files: keyset pages in any of the offered orders, filters,
scoped in SQL by the policy, masked rows, duplicate checks."""
from __future__ import annotations

import base64
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime

from sqlalchemy import case, false, or_, select, true, tuple_, union_all
from sqlalchemy.orm import Session

from .. import clock, subject_keys
from ..access.models import AccessRequest
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..membership.models import Membership
from ..org.models import OrgUnit
from ..policy import Action
from ..policy.actions import Relation
from ..policy.scope import scope_arms, subtree_range
from ..vault import Vault
from . import rules, search
from .models import CustomerFile
from .service import CustomerInput, FileSummary, _open

# ---------------------------------------------------------------- what the list shows

SORTS = ("created", "file_no", "category", "tier", "owner")
TIERS = ("regular", "silver", "gold", "platinum")
_TIER_RANK = case({t: i + 1 for i, t in enumerate(TIERS)}, value=Membership.tier, else_=0)
_USERNAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,63}")


@dataclass(frozen=True)
class ListQuery:
    """Order and filters of a list, as they travel in its URL (no personal data in them)."""

    sort: str = "created"
    direction: str = "desc"
    category: str = ""
    tier: str = ""  # a tier, "none" (not a member) or "" (any)
    owner: str = ""  # a username (leaders)
    granted: bool = False  # only files someone holds an active grant on

    @classmethod
    def from_params(cls, params: Mapping[str, str]) -> "ListQuery":
        """Read the URL's parameters; anything unknown falls back to the default."""
        def get(k):
            return (params.get(k) or "").strip()
        return cls(sort=get("sort") if get("sort") in SORTS else "created",
                   direction="asc" if get("dir") == "asc" else "desc",
                   category=get("category") if get("category") in {c.value for c in rules.Category} else "",
                   tier=get("tier") if get("tier") in (*TIERS, "none") else "",
                   owner=get("owner").lower() if _USERNAME.fullmatch(get("owner").lower()) else "",
                   granted=get("granted") == "1")

    def params(self, **over) -> dict[str, str]:
        """The non-default parameters (for links that keep the state), with ``over`` applied."""
        q = replace(self, **over)
        out = {"sort": q.sort if q.sort != "created" else "", "dir": q.direction if q.direction != "desc" else "",
               "category": q.category, "tier": q.tier, "owner": q.owner, "granted": "1" if q.granted else ""}
        return {k: v for k, v in out.items() if v}

    @property
    def filtered(self) -> bool:
        return bool(self.category or self.tier or self.owner or self.granted)

    def describe(self) -> str:
        """For the audit entry: which order and filters (no personal data)."""
        return " ".join(f"{k}={v}" for k, v in self.params().items())


def _key(sort: str) -> list:
    """The columns a sort orders by; the last ones make each position unique (keyset paging)."""
    return {"created": [CustomerFile.created_at, CustomerFile.id],
            "file_no": [CustomerFile.file_no, CustomerFile.id],
            "category": [CustomerFile.category, CustomerFile.created_at, CustomerFile.id],
            "tier": [_TIER_RANK, CustomerFile.created_at, CustomerFile.id],
            "owner": [User.username, CustomerFile.created_at, CustomerFile.id]}[sort]


def _joined(stmt, sort: str):
    stmt = stmt.select_from(CustomerFile).outerjoin(Membership, Membership.customer_id == CustomerFile.id)
    if sort == "owner":
        stmt = stmt.join(User, User.id == CustomerFile.owner_id)
    return stmt


def _cursor_encode(sort: str, values) -> str:
    def one(v):
        if isinstance(v, datetime):
            return ["t", v.isoformat()]
        if isinstance(v, uuid.UUID):
            return ["u", str(v)]
        return ["v", v]
    raw = json.dumps([sort, *map(one, values)], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _cursor_decode(token: str, sort: str) -> tuple | None:
    """The key values of the last row shown, or None for a cursor of another order or a bad one."""
    try:
        raw = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode())
        if not isinstance(raw, list) or raw[0] != sort or len(raw) != len(_key(sort)) + 1:
            return None
        conv = {"t": datetime.fromisoformat, "u": uuid.UUID, "v": lambda v: v}
        return tuple(conv[t](v) for t, v in raw[1:])
    except (ValueError, TypeError, KeyError, IndexError, UnicodeDecodeError, AttributeError):
        return None


@dataclass
class Page:
    rows: list[FileSummary]
    next_cursor: str | None
    query_kind: str = ""  # "", "file_no", "mobile", "id_number", "name", "mobile_tail", "unsupported"


def _summaries(s: Session, vault: Vault, files) -> list[FileSummary]:
    """files: rows with the _LIST_COLUMNS."""
    owners = {}
    ids = {f.owner_id for f in files}
    if ids:
        owners = dict(s.execute(select(User.id, User.username).where(User.id.in_(ids))).all())
    out = []
    subject_keys.prefetch(vault, [f.id for f in files])
    for f in files:
        p = _open(vault, f, ("name", "mobile"))
        out.append(FileSummary(id=f.id, file_no=f.file_no, name=rules.mask_name(p["name"] or ""),
                               mobile=rules.mask_mobile(p["mobile"] or ""), category=f.category,
                               gender=f.gender, owner=owners.get(f.owner_id, "?"),
                               created_at=f.created_at, tier=f.tier or "",
                               erased=f.erased_at is not None))
    return out


_LIST_COLUMNS = (CustomerFile.id, CustomerFile.file_no, CustomerFile.category, CustomerFile.gender,
                 CustomerFile.owner_id, CustomerFile.created_at, CustomerFile.name_ct,
                 CustomerFile.mobile_ct, Membership.tier, CustomerFile.erased_at)


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


def _filters(s: Session, lq: ListQuery) -> list:
    conds = []
    if lq.category:
        conds.append(CustomerFile.category == lq.category)
    if lq.tier == "none":
        conds.append(~CustomerFile.id.in_(select(Membership.customer_id)))
    elif lq.tier:
        conds.append(CustomerFile.id.in_(select(Membership.customer_id).where(Membership.tier == lq.tier)))
    if lq.owner:
        uid = s.scalar(select(User.id).where(User.username == lq.owner))
        conds.append(CustomerFile.owner_id == uid if uid is not None else false())
    if lq.granted:
        now = clock.now()
        conds.append(CustomerFile.id.in_(select(AccessRequest.file_id).where(
            AccessRequest.status == "approved", AccessRequest.revoked_at.is_(None),
            AccessRequest.expires_at > now)))
    return conds


def _walk(s: Session, arms: list, alternatives: list, where: list, lq: ListQuery, after: tuple | None,
          n: int) -> list:
    """Up to n rows in the list's order after the cursor: one walk per (scope arm, alternative),
    each in order and limited to n, then merged (an OR of them cannot be walked in order)."""
    key = _key(lq.sort)
    desc = lq.direction == "desc"
    order = [c.desc() if desc else c.asc() for c in key]
    conds = list(where)
    if after is not None:
        conds.append(tuple_(*key) < tuple_(*after) if desc else tuple_(*key) > tuple_(*after))
    pairs = [(arm, alt) for arm in arms for alt in (alternatives or [true()])]
    cols = (*_LIST_COLUMNS, *(c.label(f"k{i}") for i, c in enumerate(key)))
    if len(pairs) == 1:
        arm, alt = pairs[0]
        stmt = _joined(select(*cols), lq.sort).where(arm, alt, *conds)
    else:
        ids = union_all(*(select(sub.c.id) for sub in (
            _joined(select(CustomerFile.id), lq.sort).where(arm, alt, *conds).order_by(*order).limit(n).subquery()
            for arm, alt in pairs)))
        stmt = _joined(select(*cols), lq.sort).where(CustomerFile.id.in_(ids))
    return list(s.execute(stmt.order_by(*order).limit(n)))


def _key_of(row, sort: str) -> tuple:
    return tuple(getattr(row, f"k{i}") for i in range(len(_key(sort))))


def list_files(s: Session, vault: Vault, actor: Actor, *, q: str = "", cursor: str | None = None,
               limit: int = 50, owner_only: bool = False, query: ListQuery | None = None) -> Page:
    """A page in the chosen order (newest first by default), keyset-paginated, filtered, scoped
    in SQL by the policy; audited as a list or a search."""
    lq = query or ListQuery()
    sq = search.read_query(vault, q)
    if sq.kind == "unsupported":
        audit.record(s, actor, "customer.search", detail="unsupported query")
        return Page(rows=[], next_cursor=None, query_kind=sq.kind)
    after = _cursor_decode(cursor, lq.sort) if cursor else None
    where = _filters(s, lq)
    if owner_only:
        where.append(CustomerFile.owner_id == actor.user_id)
    arms = _list_arms(s, actor)
    if sq.tail is None:
        files = _walk(s, arms, sq.alternatives, where, lq, after, limit + 1)
    else:
        # The truncated index narrows to about 1/1,024 of the scope; decrypting confirms.
        files, chunk = [], max(200, 4 * (limit + 1))
        while len(files) <= limit:
            batch = _walk(s, arms, sq.alternatives, where, lq, after, chunk)
            files += [r for r in batch if search.mobile_ends_with(vault, r, sq.tail)]
            if len(batch) < chunk:
                break
            after = _key_of(batch[-1], lq.sort)
        files = files[:limit + 1]
    more = len(files) > limit
    files = files[:limit]
    rows = _summaries(s, vault, files)
    if sq.kind:
        audit.record(s, actor, "customer.search", object_type="customer",
                     object_id=",".join(r.file_no for r in rows[:10]), fields=sq.fields,
                     detail=f"{len(rows)} result(s)" + (f"; {lq.describe()}" if lq.describe() else ""))
    else:
        audit.record(s, actor, "customer.list", object_type="customer",
                     fields=["name", "mobile"],
                     detail=f"{len(rows)} masked row(s)" + (f"; {lq.describe()}" if lq.describe() else ""))
    return Page(rows=rows, next_cursor=_cursor_encode(lq.sort, _key_of(files[-1], lq.sort)) if more and files else None,
                query_kind=sq.kind)


def owner_choices(s: Session, actor: Actor) -> list[str]:
    """For a leader: the usernames of the staff in the units they lead (the owner filter and sort)."""
    if actor.role != "leader" or not actor.unit_path:
        return []
    lo, hi = subtree_range(actor.unit_path)
    return list(s.scalars(select(User.username).join(OrgUnit, OrgUnit.id == User.unit_id)
                          .where(OrgUnit.path >= lo, OrgUnit.path < hi,
                                 User.role.in_(("salesperson", "leader")))
                          .order_by(User.username)))


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


