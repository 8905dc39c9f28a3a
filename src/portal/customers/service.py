"""Use cases on customer files. Every read of personal data is authorised and audited first."""
from __future__ import annotations

import uuid
from collections import namedtuple
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from .. import clock
from ..access.models import AccessRequest
from ..access.service import active_grant, grant_relation
from ..accounts.actor import Actor
from ..accounts.models import User
from ..audit import service as audit
from ..driver_sql import Prebuilt
from ..org.models import OrgUnit
from ..org.service import region_of
from ..policy import Action, PermissionDenied, can
from ..subject_keys import CustomerKey
from ..vault import Vault
from . import rules, search, tally
from .models import PERSONAL_FIELDS, CustomerFile
from .numbering import next_file_number

TABLE = "customer_file"


class NotFound(LookupError):
    pass


class InvalidInput(ValueError):
    """Field-level validation errors: {field: message}."""

    def __init__(self, errors: dict[str, str]):
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass
class CustomerInput:
    """Validated values for a file (plain text; encrypted on write)."""

    name: str
    gender: str
    mobile: str
    category: str
    id_number: str | None = None
    birthday: date | None = None
    address: str = ""
    employer: str = ""
    position: str = ""
    notes: str = ""

    def personal(self) -> dict[str, str | None]:
        return {
            "name": self.name, "mobile": self.mobile, "id_number": self.id_number,
            "birthday": self.birthday.isoformat() if self.birthday else None,
            "address": self.address or None, "employer": self.employer or None,
            "position": self.position or None, "notes": self.notes or None,
        }


LIMITS = {"address": 200, "employer": 100, "position": 100, "notes": 2000}


def validate_form(form: dict[str, str], *, today: date | None = None) -> CustomerInput:
    """Parse a submitted form into CustomerInput, collecting every field's error."""
    errors: dict[str, str] = {}

    def take(name, fn, required=True):
        raw = (form.get(name) or "").strip()
        if not raw:
            if required:
                errors[name] = "This field is required."
            return None
        try:
            return fn(raw)
        except rules.InvalidField as exc:
            errors[name] = str(exc)
            return None

    name = take("name", rules.normalise_name)
    gender = take("gender", rules.parse_gender)
    mobile = take("mobile", rules.normalise_mobile)
    category = take("category", rules.parse_category)
    id_number = take("id_number", lambda v: rules.normalise_id_number(v, today=today), required=False)
    birthday = take("birthday", lambda v: rules.parse_birthday(v, today=today), required=False)
    if id_number and birthday is None and "birthday" not in errors:
        birthday = rules.id_number_birthday(id_number)
    elif id_number and birthday and rules.id_number_birthday(id_number) != birthday:
        errors["birthday"] = "The birthday does not match the ID number."
    extra = {}
    for k, limit in LIMITS.items():
        v = (form.get(k) or "").strip()
        if len(v) > limit:
            errors[k] = f"At most {limit} characters."
        extra[k] = v
    if errors:
        raise InvalidInput(errors)
    return CustomerInput(name=name, gender=str(gender), mobile=mobile, category=str(category),
                         id_number=id_number, birthday=birthday, **extra)


# ---------------------------------------------------------------- encryption helpers

def _seal(vault: Vault, f: CustomerFile, data: CustomerInput) -> None:
    """(Re)encrypt every personal field of a file with the customer's own key; refresh blind indexes."""
    for col, value in data.personal().items():
        setattr(f, f"{col}_ct", vault.encrypt(value, table=TABLE, column=col, row_id=f.id, subject=f.id))
    f.mobile_bidx = vault.blind_index("mobile", data.mobile)
    f.id_number_bidx = vault.blind_index("id_number", data.id_number) if data.id_number else None
    for col, value in search.index_values(vault, data.name, data.mobile, data.birthday).items():
        setattr(f, col, value)
    f.key_id = 0  # the customer's own key (subject_keys.py)
    f.gender = data.gender
    f.category = data.category


def _open(vault: Vault, f: CustomerFile, cols=PERSONAL_FIELDS) -> dict[str, str | None]:
    return {c: vault.decrypt(getattr(f, f"{c}_ct"), table=TABLE, column=c, row_id=f.id) for c in cols}


# ---------------------------------------------------------------- views of a file

@dataclass
class FileSummary:
    """A list row: masked personal fields only."""

    id: uuid.UUID
    file_no: str
    name: str
    mobile: str
    category: str
    gender: str
    owner: str
    created_at: datetime
    tier: str = ""  # the membership's tier; "" for a file that is not a member
    erased: bool = False  # the customer's personal data was erased (privacy/erasure.py)


@dataclass
class FileCard:
    """A file in full, as the detail page shows it (after the audit entry is written)."""

    id: uuid.UUID
    file_no: str
    category: str
    gender: str
    owner_id: int
    owner: str
    unit: str
    created_at: datetime
    updated_at: datetime
    fields: dict[str, str | None] = field(default_factory=dict)
    allowed: set[str] = field(default_factory=set)
    # Opened under a temporary grant (not by ownership or leadership): its reason and end.
    grant_reason: str = ""
    grant_ends: datetime | None = None
    erased_at: datetime | None = None  # the customer's personal data was erased
    # How it was opened, for further decisions on the same page (open_card_for): its unit, and
    # the grant that decided (None: ownership or leadership did).
    unit_path: str = ""
    grant: AccessRequest | None = None


def _load(s: Session, file_id: uuid.UUID | str) -> CustomerFile:
    try:
        fid = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("no such file") from None
    f = s.get(CustomerFile, fid)
    if f is None:
        raise NotFound("no such file")
    return f


def open_for(s: Session, actor: Actor, file_id, action: Action) -> tuple[CustomerFile, int | None]:
    """Load a file and check the actor may do `action` to it: by ownership or leadership, else
    by an active grant read now. Returns the file and the grant's id when the grant decided.
    Raises NotFound or PermissionDenied."""
    f = _load(s, file_id)
    if can(actor, action, owner_id=f.owner_id, unit_path=f.unit_path):
        return f, None
    grant = active_grant(s, actor.user_id, f.id)
    if grant is not None and can(actor, action, owner_id=f.owner_id, unit_path=f.unit_path,
                                 grant=grant_relation(grant)):
        return f, grant.id
    raise PermissionDenied(action, f.file_no)


def open_card_for(s: Session, actor: Actor, card: FileCard, action: Action) -> tuple[FileCard, int | None]:
    """open_for() on a file that read_file() has just read and authorised in this transaction:
    the same decision (ownership or leadership, else an active grant) without reading the file,
    or the grant read_file found, again. Returns the card (it has the file's ``id``, ``owner_id``
    and ``unit_path``) and the grant's id when the grant decided."""
    if can(actor, action, owner_id=card.owner_id, unit_path=card.unit_path):
        return card, None
    grant = card.grant if card.grant is not None else active_grant(s, actor.user_id, card.id)
    if grant is not None and can(actor, action, owner_id=card.owner_id, unit_path=card.unit_path,
                                 grant=grant_relation(grant)):
        return card, grant.id
    raise PermissionDenied(action, card.file_no)


def get_file_for(s: Session, actor: Actor, file_id, action: Action) -> CustomerFile:
    """Load a file and check the actor may do `action` to it; raises NotFound or PermissionDenied."""
    return open_for(s, actor, file_id, action)[0]


def allowed_actions(s: Session, actor: Actor, f: CustomerFile, grant_id: int | None = None) -> set[str]:
    """What the page may offer: ownership and leadership, plus the grant that opened the file."""
    rel = grant_relation(s.get(AccessRequest, grant_id)) if grant_id else None
    return {a.value for a in (Action.CUSTOMER_VIEW, Action.CUSTOMER_EDIT, Action.CUSTOMER_REASSIGN)
            if can(actor, a, owner_id=f.owner_id, unit_path=f.unit_path, grant=rel)}


@dataclass(frozen=True)
class AuditNote:
    """What a read will be audited as (audit.record's arguments; no personal data)."""

    action: str
    object_type: str = ""
    object_id: str = ""
    fields: tuple[str, ...] = ()
    detail: str = ""
    grant_id: int | None = None

    def record(self, s: Session, actor: Actor) -> None:
        audit.record(s, actor, self.action, object_type=self.object_type, object_id=self.object_id,
                     fields=self.fields, detail=self.detail, grant_id=self.grant_id)


_F = CustomerFile.__table__.c
_K = CustomerKey.__table__.c
_CTS = tuple(_F[f"{c}_ct"] for c in PERSONAL_FIELDS)
# A file with its owner's name, its unit's name and its customer's wrapped key, in one read.
_CARD = (select(_F.id, _F.file_no, _F.category, _F.gender, _F.owner_id, _F.unit_id, _F.unit_path, _F.created_at,
                _F.updated_at, _F.erased_at, User.__table__.c.username, OrgUnit.__table__.c.name,
                _K.customer_id.label("key_row"), _K.key_ct, *_CTS)
         .select_from(CustomerFile.__table__
                      .outerjoin(User.__table__, User.__table__.c.id == _F.owner_id)
                      .outerjoin(OrgUnit.__table__, OrgUnit.__table__.c.id == _F.unit_id)
                      .outerjoin(CustomerKey.__table__, _K.customer_id == _F.id))
         .where(_F.id == bindparam("file_id", required=True)))
# Run on the driver's cursor (driver_sql.Prebuilt: the same SQL and type conversions, without
# SQLAlchemy's per-execution machinery); its rows by column name.
_CARD_READ = Prebuilt(_CARD)
_CardRow = namedtuple("_CardRow", [c.key for c in _CARD.selected_columns])
_BLOB_AT = {c: len(_CardRow._fields) - len(PERSONAL_FIELDS) + i for i, c in enumerate(PERSONAL_FIELDS)}


def read_file(s: Session, vault: Vault, actor: Actor, file_id, *, fields=PERSONAL_FIELDS,
              action: Action = Action.CUSTOMER_VIEW, purpose: str = "") -> tuple[FileCard, AuditNote]:
    """Authorise and read a file in full (one statement on the Core connection), with the audit
    entry the caller must append and commit before showing any of it. Reads only; raises
    NotFound or PermissionDenied."""
    try:
        fid = file_id if isinstance(file_id, uuid.UUID) else uuid.UUID(str(file_id))
    except ValueError:
        raise NotFound("no such file") from None
    rows = _CARD_READ.all(s.connection(), {"file_id": fid})
    if not rows:
        raise NotFound("no such file")
    row = _CardRow._make(rows[0])
    grant = None
    if not can(actor, action, owner_id=row.owner_id, unit_path=row.unit_path):
        grant = active_grant(s, actor.user_id, fid)
        if grant is None or not can(actor, action, owner_id=row.owner_id, unit_path=row.unit_path,
                                    grant=grant_relation(grant)):
            raise PermissionDenied(action, row.file_no)
    rel = grant_relation(grant)
    allowed = {a.value for a in (Action.CUSTOMER_VIEW, Action.CUSTOMER_EDIT, Action.CUSTOMER_REASSIGN)
               if can(actor, a, owner_id=row.owner_id, unit_path=row.unit_path, grant=rel)}
    fields = tuple(fields)
    blobs = [row[_BLOB_AT[c]] for c in fields]
    opened = vault.open_row(TABLE, fid, fields, blobs, key_read=row.key_row is not None, wrapped_key=row.key_ct)
    card = FileCard(id=fid, file_no=row.file_no, category=row.category, gender=row.gender,
                    owner_id=row.owner_id, owner=row.username or "?", unit=row.name or "?",
                    created_at=row.created_at, updated_at=row.updated_at, fields=dict(zip(fields, opened)),
                    allowed=allowed, erased_at=row.erased_at, unit_path=row.unit_path, grant=grant,
                    grant_reason=grant.reason if grant else "", grant_ends=grant.expires_at if grant else None)
    note = AuditNote(action.value, object_type="customer", object_id=row.file_no, fields=fields,
                     detail=purpose, grant_id=grant.id if grant else None)
    return card, note


def view_file(s: Session, vault: Vault, actor: Actor, file_id, *, fields=PERSONAL_FIELDS,
              action: Action = Action.CUSTOMER_VIEW, purpose: str = "") -> FileCard:
    """read_file() and its audit entry, in the caller's (write) transaction: nothing is revealed
    unless the entry commits with it."""
    card, note = read_file(s, vault, actor, file_id, fields=fields, action=action, purpose=purpose)
    note.record(s, actor)
    return card


# ---------------------------------------------------------------- writes

def create_file(s: Session, vault: Vault, actor: Actor, data: CustomerInput, *,
                owner: User | None = None, audit_it: bool = True) -> CustomerFile:
    if not can(actor, Action.CUSTOMER_CREATE):
        raise PermissionDenied(Action.CUSTOMER_CREATE)
    owner = owner or s.get(User, actor.user_id)
    unit = s.get(OrgUnit, owner.unit_id)
    region = region_of(s, unit)
    if not region.code.isdigit():
        # File numbers start with the region's numeric code; staff at the top unit have none.
        raise InvalidInput({"owner": "Files belong to a region: this user's unit is not within one."})
    now = clock.now()
    f = CustomerFile(id=uuid.uuid4(), file_no=next_file_number(s, region.code), category="",
                     gender="", owner_id=owner.id, unit_id=unit.id, unit_path=unit.path,
                     created_at=now, updated_at=now)
    _seal(vault, f, data)
    s.add(f)
    s.flush()
    tally.created(s, owner.id, unit.path)
    if audit_it:
        audit.record(s, actor, "customer.create", object_type="customer", object_id=f.file_no,
                     fields=[k for k, v in data.personal().items() if v])
    return f


def current_input(vault: Vault, f: CustomerFile) -> CustomerInput:
    p = _open(vault, f)
    return CustomerInput(
        name=p["name"] or "", gender=f.gender, mobile=p["mobile"] or "", category=f.category,
        id_number=p["id_number"], birthday=date.fromisoformat(p["birthday"]) if p["birthday"] else None,
        address=p["address"] or "", employer=p["employer"] or "", position=p["position"] or "",
        notes=p["notes"] or "")


def update_file(s: Session, vault: Vault, actor: Actor, file_id, data: CustomerInput) -> CustomerFile:
    f, grant_id = open_for(s, actor, file_id, Action.CUSTOMER_EDIT)
    if f.erased_at is not None:
        raise InvalidInput({"name": "This customer's personal data was erased."})
    before = current_input(vault, f)
    changed = [k for k in (*PERSONAL_FIELDS, "gender", "category")
               if getattr(before, k) != getattr(data, k)]
    _seal(vault, f, data)
    f.updated_at = clock.now()
    s.flush()
    audit.record(s, actor, "customer.edit", object_type="customer", object_id=f.file_no,
                 fields=changed, grant_id=grant_id)
    return f


def update_field(s: Session, vault: Vault, actor: Actor, file_id, field_name: str, raw: str) -> CustomerFile:
    """Inline edit of one personal field: re-validated together with the rest of the file."""
    f = get_file_for(s, actor, file_id, Action.CUSTOMER_EDIT)
    current = current_input(vault, f)
    form = {k: (str(v) if v is not None else "") for k, v in vars(current).items()}
    form[field_name] = raw
    if field_name == "id_number" and raw.strip() and current.birthday:
        form["birthday"] = ""  # the birthday follows a changed ID number
    return update_file(s, vault, actor, file_id, validate_form(form))


def __getattr__(name: str):
    """Reassigning files lives in reassign.py (a file's members, figures and grants move with
    it); its functions are found here too, for the callers that know them by this module (looked
    up when asked: reassign.py imports this module, in either order)."""
    if name in ("reassign_file", "reassign_all"):
        from . import reassign
        return getattr(reassign, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
