"""Backups as use cases: create one while the portal serves, verify one, restore one.

The plaintext copy exists only in a private temporary directory (0700, removed at once);
what lands in the output directory is the encrypted file, 0600. Neither the data key file nor
the backup key file is ever put into a backup, and a backup directory that would hold either
is refused, so copying that directory elsewhere never carries a key with it. Nor does a backup
hold the customers' own data keys (snapshot.py): a restore is given them (customer_keys.py).
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from . import container, customer_keys, snapshot
from .container import BackupError, Header
from .key import BackupKey

PREFIX = "portal-backup-"


@dataclass
class Created:
    path: Path
    sha256: str  # of the whole encrypted file (to compare a copy kept elsewhere)
    manifest: dict


def _inside(path: Path, directory: Path) -> bool:
    try:
        path.resolve().relative_to(directory.resolve())
        return True
    except ValueError:
        return False


def _private_dir(path: Path) -> None:
    if not path.exists():
        path.mkdir(mode=0o700, parents=True)
        os.chmod(path, 0o700)
    elif not path.is_dir():
        raise BackupError(f"{path} is not a directory")


def backup_name(at: datetime) -> str:
    return f"{PREFIX}{at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}{container.SUFFIX}"


def create_backup(url: str, key: BackupKey, out_dir: Path, *, key_files: tuple[Path, ...] = (),
                  now: datetime | None = None, version: str = "") -> Created:
    """Copy the database consistently, seal it under the backup key, write it to out_dir."""
    out_dir = Path(out_dir)
    for kf in key_files:
        if _inside(Path(kf), out_dir):
            raise BackupError(f"the key file {kf} lies inside the backup directory {out_dir}: "
                              "keys must never travel with the backups; choose another directory")
    _private_dir(out_dir)
    at = now or datetime.now(timezone.utc)
    work = Path(tempfile.mkdtemp(prefix="portal-backup-"))  # 0700
    try:
        snap = snapshot.take(url, work)
        manifest = {
            "created": at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
            "database": snap.kind,
            "schema_revision": snap.schema_revision,
            "audit": {"count": snap.audit_count, "head_hash": snap.audit_head},
            "tables": snap.tables,
            # Left out of the copy: a restore takes them from the live database or a key backup.
            "customer_keys": {"excluded": True, "rows": snap.customer_keys},
            "portal_version": version,
        }
        name = backup_name(at)
        n = 1
        while (out_dir / name).exists():
            n += 1
            name = backup_name(at).replace(container.SUFFIX, f"-{n}{container.SUFFIX}")
        partial = out_dir / f".{name}.partial"
        digest = container.write(partial, manifest, snap.files, key)
        os.rename(partial, out_dir / name)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    header = container.read_header(out_dir / name)
    return Created(out_dir / name, digest, header.manifest)


def verify_backup(path: Path, key: BackupKey) -> Header:
    """Every chunk's tag and every file's SHA-256, against the manifest; raises BackupError.
    Also checks a key backup (its manifest's "contents" says so)."""
    header = container.verify(Path(path), key)
    m = header.manifest
    if m.get("contents") == customer_keys.CONTENTS:  # a key backup (customer_keys.py)
        return header
    audit = m.get("audit")
    if m.get("database") not in ("sqlite", "postgresql") or not isinstance(audit, dict) \
            or not isinstance(audit.get("count"), int) or not audit.get("head_hash"):
        raise BackupError("the manifest lacks the database kind or the audit head")
    if not m["files"]:
        raise BackupError("the backup holds no files")
    return header


@dataclass
class RestoreReport:
    manifest: dict
    audit_ok: bool = False
    audit_count: int = 0
    audit_head: str = ""
    problems: list[str] = field(default_factory=list)
    checked_values: int | None = None   # encrypted values opened (with the data key)
    checked_accounts: int | None = None  # card accounts whose ledgers balance
    keys: customer_keys.Installed | None = None  # the customers' keys put in, from the key source

    @property
    def ok(self) -> bool:
        return not self.problems


def restore_backup(path: Path, key: BackupKey, url: str, *, ring=None,
                   keys: list[customer_keys.KeyRow] | Callable[[], list[customer_keys.KeyRow]] | None = None
                   ) -> RestoreReport:
    """Decrypt and verify the backup, load it into the EMPTY database at `url`, then check it:
    the audit chain verifies and ends exactly at the manifest's head, no table holds fewer rows
    than the manifest counted. `keys` (from the live database or a key backup; or a function that
    reads them, called once the backup is in) are the customers' own data keys, which no backup
    holds: those of the restored customers are put in, and a
    customer erased since the backup was made is erased again. With the data key ring also that
    every encrypted value opens, the signed checkpoints hold and every card account's balances
    equal its ledgers."""
    from ..audit import service as audit
    from ..db import Database

    header = container.read_header(Path(path))
    kind = header.manifest.get("database")
    if header.manifest.get("contents") == customer_keys.CONTENTS:
        raise BackupError(f"{Path(path).name} is a key backup: name it with --keys, and the "
                          "database backup as FILE")
    if kind not in ("sqlite", "postgresql"):
        raise BackupError("the manifest does not say which kind of database this is")
    snapshot.check_target(kind, url)  # before decrypting anything: the right kind, and empty
    work = Path(tempfile.mkdtemp(prefix="portal-restore-"))
    try:
        header, files = container.extract(Path(path), key, work)
        _one_database_file(header)
        snapshot.restore(kind, files[0], url)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    m = header.manifest
    report = RestoreReport(m)
    db = Database(url)
    try:
        with db.read() as s:
            chain = audit.verify_chain(s)
            report.audit_ok, report.audit_count, report.audit_head = chain.ok, chain.count, chain.head_hash
            if not chain.ok:
                report.problems.append(f"audit chain broken at entry {chain.first_bad_seq}: {chain.problem}")
            want_n, want_h = m["audit"]["count"], m["audit"]["head_hash"]
            if chain.count < want_n:
                report.problems.append(f"the restored log holds {chain.count} audit entries; the manifest "
                                       f"says {want_n}: {want_n - chain.count} lost")
            elif chain.ok and (chain.count != want_n or chain.head_hash != want_h):
                report.problems.append(f"the restored log ends at entry {chain.count} ({chain.head_hash[:16]}…), "
                                       f"not at the manifest's head, entry {want_n} ({want_h[:16]}…)")
        if keys is not None:
            report.keys = customer_keys.install(url, keys() if callable(keys) else keys)
            if report.keys.missing:
                report.problems.append(f"{report.keys.missing} customer file(s) are sealed with a key of "
                                       "their own that the key source does not hold (a key backup older "
                                       "than this backup?)")
        elif (m.get("customer_keys") or {}).get("rows"):
            report.problems.append("no customer keys given (--keys-from or --keys): every customer "
                                   "file on a key of its own stays sealed")
        if ring is not None:
            with db.read() as s:
                _ring_checks(s, ring, chain, report)
    finally:
        db.dispose()
    _, _, _, counts = snapshot.figures_of(url)  # the customer keys are not counted
    for table, want in sorted((m.get("tables") or {}).items()):
        got = counts.get(table)
        if got is None:
            report.problems.append(f"table {table} is missing from the restored database")
        elif got < want:
            report.problems.append(f"table {table} holds {got} rows; the manifest counted {want}")
    return report


def _ring_checks(s, ring, chain, report: RestoreReport) -> None:
    from ..audit.checkpoints import public_keys_of, verify_checkpoints
    from ..vault import Vault
    from .checks import decrypt_everything, unbalanced_accounts
    if chain.ok:
        cps = verify_checkpoints(s, public_keys_of(ring), chain.count)
        if not cps.ok:
            report.problems.append(f"signed checkpoint problem at entry {cps.bad_seq}: {cps.problem}")
    dec = decrypt_everything(s, Vault(ring))
    report.checked_values = dec.values
    if dec.failures:
        t, c, r = dec.failures[0]
        report.problems.append(f"{len(dec.failures)} encrypted value(s) do not open with the "
                               f"data key (first: {t}.{c} of row {r})")
    n, wrong = unbalanced_accounts(s)
    report.checked_accounts = n
    if wrong:
        report.problems.append(f"{len(wrong)} card account(s) whose balance differs from "
                               f"its ledger (first: account {wrong[0][0]})")


def _one_database_file(header: Header) -> None:
    m = header.manifest
    if m.get("database") not in ("sqlite", "postgresql") or not isinstance(m.get("audit"), dict):
        raise BackupError("the manifest lacks the database kind or the audit head")
    if len(m["files"]) != 1:
        raise BackupError(f"expected one database file in the backup, found {len(m['files'])}")
