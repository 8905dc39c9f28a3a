"""The customers' own data keys, kept out of the backups: key backups, and keys for a restore.

A backup never holds `customer_key` rows (snapshot.py), so a backup made before an erasure holds
nothing that opens the erased customer's fields. A restore takes the keys from one of:

- the live database (`portal backup restore FILE --to URL --keys-from LIVE_URL`): a drill, or a
  restore to look into the past while production runs;
- a key backup (`--keys KEYFILE`), for when the live database itself is lost. `portal backup
  keys` writes one: every `customer_key` row (each key still wrapped by the key ring, tombstones
  included), sealed with the backup key in the same container as a backup, named
  portal-keys-<UTC>.pbk. Each run keeps only the newest few in its directory and rewrites the
  ones it keeps without the keys destroyed since they were made, so after the next run an erased
  customer's key is in no key backup either.

Installing the keys in a restored database copies those of the customers it holds; a customer
erased after the backup was made (a tombstone in the source, the file not yet marked erased in
the backup) is erased again there — blind indexes, PIN hash, open correction requests — with an
audit entry, so a restore never brings an erased person back.
"""
from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from sqlalchemy import insert, select, update

from . import container
from .container import BackupError
from .key import BackupKey

PREFIX = "portal-keys-"
PAYLOAD = "customer_key.jsonl"
CONTENTS = "customer-keys"


@dataclass(frozen=True)
class KeyRow:
    customer_id: uuid.UUID
    key_ct: bytes | None  # wrapped by the key ring; None: destroyed (the customer was erased)
    created_at: datetime
    erased_at: datetime | None


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.astimezone(timezone.utc).isoformat()


def _to_line(r: KeyRow) -> str:
    return json.dumps({"c": str(r.customer_id), "k": None if r.key_ct is None else
                       base64.b64encode(bytes(r.key_ct)).decode("ascii"),
                       "t": _iso(r.created_at), "e": _iso(r.erased_at)}, separators=(",", ":"))


def _from_line(line: str) -> KeyRow:
    d = json.loads(line)
    return KeyRow(uuid.UUID(d["c"]), None if d["k"] is None else base64.b64decode(d["k"]),
                  datetime.fromisoformat(d["t"]), None if d["e"] is None else datetime.fromisoformat(d["e"]))


def read_database(url: str) -> list[KeyRow]:
    """Every customer_key row of a database (the live one, usually)."""
    from sqlalchemy import inspect

    from ..db import Database
    from ..subject_keys import TABLE, CustomerKey

    db = Database(url)
    try:
        if TABLE not in inspect(db.engine).get_table_names():
            raise BackupError(f"the database at the key source has no {TABLE} table")
        t = CustomerKey.__table__
        with db.read() as s:
            return [KeyRow(*row) for row in s.execute(
                select(t.c.customer_id, t.c.key_ct, t.c.created_at, t.c.erased_at).order_by(t.c.customer_id))]
    finally:
        db.dispose()


# ---------------------------------------------------------------- key backups

@dataclass
class KeyBackup:
    path: Path
    sha256: str
    keys: int           # customers with a key
    erased: int         # tombstones
    removed: list[Path] = field(default_factory=list)     # older key backups deleted
    scrubbed: list[Path] = field(default_factory=list)    # kept ones rewritten without erased keys
    unreadable: list[tuple[Path, str]] = field(default_factory=list)


def _seal(rows: list[KeyRow], manifest: dict, key: BackupKey, out: Path) -> str:
    work = Path(tempfile.mkdtemp(prefix="portal-keys-"))  # 0700
    try:
        plain = work / PAYLOAD
        fd = os.open(plain, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            for r in rows:
                fh.write(_to_line(r) + "\n")
        partial = out.with_name(f".{out.name}.partial")
        partial.unlink(missing_ok=True)
        digest = container.write(partial, {**manifest, "contents": CONTENTS, "keys":
                                           sum(r.key_ct is not None for r in rows),
                                           "erased": sum(r.key_ct is None for r in rows)}, [(PAYLOAD, plain)], key)
        os.replace(partial, out)
        return digest
    finally:
        shutil.rmtree(work, ignore_errors=True)


def read_key_backup(path: Path, key: BackupKey) -> tuple[dict, list[KeyRow]]:
    """The manifest and rows of a key backup, verified as `backup verify` does."""
    header = container.read_header(Path(path))
    if header.manifest.get("contents") != CONTENTS:
        raise BackupError(f"{Path(path).name} is not a key backup (`portal backup keys` makes them)")
    work = Path(tempfile.mkdtemp(prefix="portal-keys-"))
    try:
        header, files = container.extract(Path(path), key, work)
        if [p.name for p in files] != [PAYLOAD]:
            raise BackupError("a key backup holds exactly one file of keys")
        with open(files[0], encoding="utf-8") as fh:
            return header.manifest, [_from_line(line) for line in fh if line.strip()]
    finally:
        shutil.rmtree(work, ignore_errors=True)


def write_key_backup(url: str, key: BackupKey, out_dir: Path, *, keep: int = 3,
                     key_files: tuple[Path, ...] = (), now: datetime | None = None) -> KeyBackup:
    """Write a new key backup of the database at `url` into out_dir, delete all but the newest
    `keep` there, and rewrite the kept ones without the keys destroyed since they were made."""
    from .service import _inside, _private_dir

    if keep < 1:
        raise BackupError("keep at least one key backup")
    out_dir = Path(out_dir)
    for kf in key_files:
        if _inside(Path(kf), out_dir):
            raise BackupError(f"the key file {kf} lies inside the key backup directory {out_dir}")
    _private_dir(out_dir)
    at = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    rows = read_database(url)
    name = f"{PREFIX}{at:%Y%m%dT%H%M%SZ}{container.SUFFIX}"
    n = 1
    while (out_dir / name).exists():
        n += 1
        name = f"{PREFIX}{at:%Y%m%dT%H%M%SZ}-{n}{container.SUFFIX}"
    created = at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    path = out_dir / name
    made = KeyBackup(path, _seal(rows, {"created": created}, key, path),
                     sum(r.key_ct is not None for r in rows), sum(r.key_ct is None for r in rows))

    found: list[tuple[str, Path]] = []
    for p in out_dir.glob(f"{PREFIX}*{container.SUFFIX}"):
        if p == path:
            continue
        try:
            found.append((str(container.read_header(p).manifest.get("created", "")), p))
        except (BackupError, OSError) as exc:
            made.unreadable.append((p, str(exc)))
    found.sort(reverse=True)
    erased = {r.customer_id: r.erased_at for r in rows if r.key_ct is None}
    for created_at, p in found[keep - 1:]:
        p.unlink()
        made.removed.append(p)
    for created_at, p in found[:keep - 1]:
        try:
            manifest, old = read_key_backup(p, key)
        except BackupError as exc:
            made.unreadable.append((p, str(exc)))
            continue
        if any(r.key_ct is not None and r.customer_id in erased for r in old):
            kept = [KeyRow(r.customer_id, None, r.created_at, erased[r.customer_id])
                    if r.key_ct is not None and r.customer_id in erased else r for r in old]
            _seal(kept, {"created": manifest.get("created", created_at), "scrubbed": created}, key, p)
            made.scrubbed.append(p)
    return made


# ---------------------------------------------------------------- into a restored database

@dataclass
class Installed:
    copied: int = 0                                          # keys put into the restored database
    erased_again: list[str] = field(default_factory=list)   # file numbers erased after the backup
    missing: int = 0   # files sealed with a key of their own that the source does not hold


def install(url: str, rows: list[KeyRow]) -> Installed:
    """Put the keys of the customers the restored database at `url` holds into it; erase again
    the customers erased after the backup was made. One transaction, audited."""
    from ..accounts.actor import Actor
    from ..audit import service as audit
    from ..customers.models import PERSONAL_FIELDS, CustomerFile
    from ..db import Database
    from ..privacy.erasure import shred_remains
    from ..privacy.models import ErasureRequest
    from ..subject_keys import CustomerKey

    t = CustomerKey.__table__
    out = Installed()
    db = Database(url)
    try:
        with db.write() as s:
            files = dict(s.execute(select(CustomerFile.id, CustomerFile.erased_at)).all())
            have = set(s.scalars(select(t.c.customer_id)))  # a backup made before keys were left out
            new = [r for r in rows if r.customer_id in files and r.customer_id not in have]
            for i in range(0, len(new), 1000):
                s.execute(insert(t), [{"customer_id": r.customer_id, "key_ct": r.key_ct,
                                       "created_at": r.created_at, "erased_at": r.erased_at}
                                      for r in new[i:i + 1000]])
            out.copied = sum(r.key_ct is not None for r in new)
            for r in rows:
                if r.key_ct is not None or r.customer_id not in files:
                    continue
                if r.customer_id in have:
                    s.execute(update(t).where(t.c.customer_id == r.customer_id)
                              .values(key_ct=None, erased_at=r.erased_at))
                if files[r.customer_id] is None:
                    f = s.get(CustomerFile, r.customer_id)
                    shred_remains(s, f, r.erased_at or datetime.now(timezone.utc))
                    s.execute(update(ErasureRequest).where(ErasureRequest.customer_id == f.id,
                                                           ErasureRequest.status == "pending")
                              .values(status="approved", decided_at=r.erased_at,
                                      decision_note="erased after this backup was made"))
                    audit.record(s, Actor.system("restore"), "privacy.erase", object_type="customer",
                                 object_id=f.file_no, fields=PERSONAL_FIELDS,
                                 detail=f"erased on {_iso(r.erased_at)}, after this backup was made; "
                                        "erased again at restore")
                    out.erased_again.append(f.file_no)
            for (blob,) in s.execute(select(CustomerFile.name_ct).where(
                    CustomerFile.erased_at.is_(None), CustomerFile.id.not_in(select(t.c.customer_id)))):
                if blob is not None and bytes(blob)[:1] == b"\x02":  # sealed with a key of its own
                    out.missing += 1
    finally:
        db.dispose()
    return out
