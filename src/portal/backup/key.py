"""The backup key: 256 random bits in a file of its own, never the data key, never in a backup.

A backup is sealed under a key derived from this one, so a stolen backup plus the data key file
opens nothing, and the backup key alone holds no customer data. The file is created mode 0600
(O_EXCL: two processes starting at once never hold different keys) and its id, a hash of the
key, is written into each backup's manifest so a wrong key is named as such.
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path


class BackupKeyError(Exception):
    """The backup key file is missing, unreadable or not a backup key."""


@dataclass(frozen=True)
class BackupKey:
    key: bytes
    created: str = ""

    @property
    def key_id(self) -> str:
        """A public fingerprint of the key (16 hex digits): names it without revealing it."""
        return hashlib.sha256(b"portal-backup-key-id\x00" + self.key).hexdigest()[:16]


def _write_new(path: Path, key: BackupKey) -> None:
    parent = path.parent
    if not parent.exists():
        parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    doc = {"kind": "portal-backup-key", "version": 1, "created": key.created,
           "key": base64.b64encode(key.key).decode("ascii")}
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.chmod(path, 0o600)


def create(path: Path) -> BackupKey:
    """Write a new key to `path` (mode 0600); refuses to overwrite an existing one."""
    path = Path(path)
    if path.exists():
        raise BackupKeyError(f"a backup key already exists at {path}; it is never overwritten "
                             "(backups made with it could no longer be opened)")
    key = BackupKey(secrets.token_bytes(32),
                    datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    try:
        _write_new(path, key)
    except FileExistsError:
        return load(path)
    return key


def load(path: Path) -> BackupKey:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupKeyError(f"no backup key at {path} (`portal backup init-key` creates one; "
                             "to restore, put the kept copy there or name it with "
                             "PORTAL_BACKUP_KEY_FILE)") from None
    except (OSError, ValueError) as exc:
        raise BackupKeyError(f"cannot read the backup key at {path}: {exc}") from None
    if not isinstance(doc, dict) or doc.get("kind") != "portal-backup-key":
        raise BackupKeyError(f"{path} is not a backup key file")
    try:
        raw = base64.b64decode(doc["key"], validate=True)
    except (KeyError, ValueError):
        raise BackupKeyError(f"{path}: the key is not valid base64") from None
    if len(raw) != 32:
        raise BackupKeyError(f"{path}: the key is not 256 bits")
    return BackupKey(raw, str(doc.get("created", "")))


def load_or_create(path: Path) -> tuple[BackupKey, bool]:
    """The key at `path`, created on first use; (key, created now)."""
    path = Path(path)
    if path.exists():
        return load(path), False
    return create(path), True
