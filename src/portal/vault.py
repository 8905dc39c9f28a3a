"""Field encryption (AES-256-GCM under a rotating key ring) and blind indexes for exact search.

Blob layout: version byte 0x01 | key id (uint16, big-endian) | 96-bit random nonce | ciphertext+tag.
A blob sealed with a customer's own data key (subject_keys.py; erasing the customer destroys
that key) is version 0x02 | the customer's id (16 bytes) | nonce | ciphertext+tag.
The associated data binds a blob to its table, column and row id, so a ciphertext copied
into another row or column does not decrypt. Key material lives in a JSON file outside the
database, created with mode 0600; it is never logged.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import struct
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

_VERSION = 1
_HEADER = struct.Struct(">BH")
SUBJECT_VERSION = 2  # sealed with a customer's own data key, named by the customer's id
_SUBJECT_HEAD = 17  # version byte + 16-byte UUID
SUBJECT_KEY_TABLE = "customer_key"  # where customers' own keys are kept, wrapped (subject_keys.py)
SUBJECT_CACHE_SIZE = 4096  # unwrapped customer keys remembered per process (Vault.subject_aead)


class VaultError(Exception):
    """A blob cannot be decrypted (unknown or retired key, tampering, wrong row)."""


def _make_private_dir(directory: Path) -> None:
    """Create the key file's directory for its owner only (0700); an existing one is left alone."""
    if not directory.exists():
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(directory, 0o700)


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode("ascii")


def _unb64(s: str) -> bytes:
    return base64.b64decode(s.encode("ascii"))


@dataclass
class KeyRing:
    """Data keys by id (one active for new writes), the blind-index key, the app secret."""

    path: Path
    data_keys: dict[int, bytes]
    retired: dict[int, str]
    active: int
    index_key: bytes
    secret_key: bytes
    # Ed25519 private key that signs audit checkpoints (raw 32 bytes).
    signing_key: bytes = b""

    @classmethod
    def load_or_create(cls, path: Path) -> "KeyRing":
        path = Path(path)
        if path.exists():
            ring = cls.load(path)
            if not ring.signing_key:  # a key file from before audit checkpoints
                ring.signing_key = secrets.token_bytes(32)
                ring.save()
            return ring
        ring = cls(path=path, data_keys={1: AESGCM.generate_key(256)}, retired={}, active=1,
                   index_key=secrets.token_bytes(32), secret_key=secrets.token_bytes(32),
                   signing_key=secrets.token_bytes(32))
        _make_private_dir(path.parent)
        try:
            # O_EXCL: when several processes start at once, one creates the file and the
            # others load that one, so no two processes ever hold different keys.
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return cls._load_when_written(path)
        os.close(fd)
        ring.save()
        return ring

    @classmethod
    def _load_when_written(cls, path: Path) -> "KeyRing":
        import time
        for _ in range(100):
            try:
                return cls.load(path)
            except (ValueError, KeyError):  # the creator has not written it yet
                time.sleep(0.05)
        return cls.load(path)

    @classmethod
    def load(cls, path: Path) -> "KeyRing":
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return cls(
            path=Path(path),
            data_keys={int(k): _unb64(v) for k, v in doc["data_keys"].items()},
            retired={int(k): v for k, v in doc.get("retired", {}).items()},
            active=int(doc["active"]),
            index_key=_unb64(doc["index_key"]),
            secret_key=_unb64(doc["secret_key"]),
            signing_key=_unb64(doc["signing_key"]) if doc.get("signing_key") else b"",
        )

    def save(self) -> None:
        """Atomically rewrite the key file with mode 0600."""
        _make_private_dir(self.path.parent)
        doc = {
            "version": 1,
            "active": self.active,
            "data_keys": {str(k): _b64(v) for k, v in sorted(self.data_keys.items())},
            "retired": {str(k): v for k, v in sorted(self.retired.items())},
            "index_key": _b64(self.index_key),
            "secret_key": _b64(self.secret_key),
            "signing_key": _b64(self.signing_key),
        }
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(doc, fh)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)

    def add_key(self) -> int:
        """A new data key becomes active for new writes; old ones still decrypt."""
        kid = max([*self.data_keys, *self.retired]) + 1
        self.data_keys[kid] = AESGCM.generate_key(256)
        self.active = kid
        self.save()
        return kid

    def retire(self, kid: int) -> None:
        """Forget a data key's material once no row uses it."""
        if kid == self.active:
            raise ValueError("cannot retire the active key")
        self.data_keys.pop(kid, None)
        self.retired[kid] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        self.save()


class Vault:
    """Encrypts and decrypts personal fields; computes blind indexes."""

    def __init__(self, ring: KeyRing):
        self._lock = threading.Lock()
        self._use(ring)

    def _use(self, ring: KeyRing) -> None:
        self.ring = ring
        self._checked = time.monotonic()
        try:
            self._mtime = ring.path.stat().st_mtime_ns
        except OSError:
            self._mtime = None
        # One AESGCM object per key, built once (building it per call is the slow part).
        self._aead = {kid: AESGCM(k) for kid, k in ring.data_keys.items()}
        self._subjects: dict[tuple[uuid.UUID, bytes], AESGCM] = {}

    def reload(self) -> None:
        """Pick up keys added by another process (e.g. `portal keys rotate`)."""
        with self._lock:
            self._use(KeyRing.load(self.ring.path))

    @property
    def active_key_id(self) -> int:
        return self.ring.active

    @staticmethod
    def _aad(table: str, column: str, row_id: object) -> bytes:
        return f"{table}\x1f{column}\x1f{row_id}".encode()

    def _follow_rotation(self) -> None:
        """After `portal keys rotate` in another process, write with the new key (checked ~1/s),
        so no server keeps writing under a key that is about to be retired."""
        now = time.monotonic()
        if now - self._checked < 1.0:
            return
        self._checked = now
        try:
            mtime = self.ring.path.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._mtime:
            self.reload()

    def current_key(self) -> int:
        """The key id new writes use; pass it to every encrypt() of one row so a row never mixes keys."""
        self._follow_rotation()
        return self.ring.active

    def encrypt(self, value: str | None, *, table: str, column: str, row_id: object,
                key_id: int | None = None, subject: uuid.UUID | None = None) -> bytes | None:
        """Seal a value under the ring's key, or with ``subject`` under that customer's own data
        key (created on first use, in the open transaction: see subject_keys.py)."""
        if value is None:
            return None
        nonce = secrets.token_bytes(12)
        aad = self._aad(table, column, row_id)
        if subject is not None:
            from . import subject_keys
            aead = subject_keys.aead_for(self, subject, create=True)
            return bytes([SUBJECT_VERSION]) + subject.bytes + nonce + aead.encrypt(nonce, value.encode("utf-8"), aad)
        kid = key_id if key_id is not None else self.current_key()
        ct = self._aead[kid].encrypt(nonce, value.encode("utf-8"), aad)
        return _HEADER.pack(_VERSION, kid) + nonce + ct

    def decrypt(self, blob: bytes | None, *, table: str, column: str, row_id: object) -> str | None:
        """The plain value; None for None and for a value of an erased customer (its key is gone)."""
        if blob is None:
            return None
        blob = bytes(blob)
        if blob[:1] == bytes([SUBJECT_VERSION]):
            from . import subject_keys
            aead = subject_keys.aead_for(self, uuid.UUID(bytes=blob[1:_SUBJECT_HEAD]), create=False)
            if aead is None:
                return None
            nonce, body = blob[_SUBJECT_HEAD:_SUBJECT_HEAD + 12], blob[_SUBJECT_HEAD + 12:]
        else:
            version, kid = _HEADER.unpack_from(blob)
            if version != _VERSION:
                raise VaultError("unknown blob version")
            aead = self._aead.get(kid)
            if aead is None:
                self.reload()
                aead = self._aead.get(kid)
                if aead is None:
                    raise VaultError(f"data key {kid} is not available")
            nonce, body = blob[3:15], blob[15:]
        try:
            pt = aead.decrypt(nonce, body, self._aad(table, column, row_id))
        except Exception as exc:  # InvalidTag: tampered, or moved to another row/column
            raise VaultError("field failed authentication") from exc
        return pt.decode("utf-8")

    def subject_aead(self, customer_id: uuid.UUID, wrapped: bytes) -> AESGCM:
        """A customer's own key, from its wrapped form (``customer_key.key_ct``) as the caller has
        just read it with the customer's row.

        Unwrapped keys are remembered by (customer, wrapped key): an erased customer's row reads
        NULL and never reaches here, a re-wrapped key (rotation) is a new entry, so erasure still
        holds at once in every process; only the unwrapping (an AES-GCM decryption, a base64
        decoding and building an AESGCM object) is saved. The ring key that unwraps them is in
        this process's memory anyway."""
        k = (customer_id, bytes(wrapped))
        aead = self._subjects.get(k)
        if aead is None:
            raw = self.decrypt(wrapped, table=SUBJECT_KEY_TABLE, column="key", row_id=customer_id)
            aead = AESGCM(base64.b64decode(raw))
            if len(self._subjects) >= SUBJECT_CACHE_SIZE:
                self._subjects.clear()
            self._subjects[k] = aead
        return aead

    def open_row(self, table: str, row_id: uuid.UUID, columns, blobs, *, key_read: bool,
                 wrapped_key: bytes | None) -> list[str | None]:
        """Open several fields of one row at once, with the AES-GCM objects directly (no per-field
        lookups): ``blobs`` are the row's ciphertexts for ``columns``; ``key_read`` and
        ``wrapped_key`` are the customer's ``customer_key`` row as read with it (False: no such
        row; None: erased, so the fields read None). Anything unusual (a key not loaded, a blob
        sealed for another customer) goes through decrypt()."""
        rid = str(row_id)
        subject: AESGCM | None | bool = False  # False: not needed yet
        out: list[str | None] = []
        for column, blob in zip(columns, blobs):
            if blob is None:
                out.append(None)
                continue
            version = blob[0]
            if version == SUBJECT_VERSION and blob[1:_SUBJECT_HEAD] == row_id.bytes:
                if subject is False:
                    if not key_read:
                        raise VaultError("no data key for this customer")
                    subject = None if wrapped_key is None else self.subject_aead(row_id, wrapped_key)
                if subject is None:
                    out.append(None)
                    continue
                aead, nonce, body = subject, blob[_SUBJECT_HEAD:_SUBJECT_HEAD + 12], blob[_SUBJECT_HEAD + 12:]
            elif version == _VERSION and (aead := self._aead.get((blob[1] << 8) | blob[2])) is not None:
                nonce, body = blob[3:15], blob[15:]
            else:
                out.append(self.decrypt(blob, table=table, column=column, row_id=row_id))
                continue
            try:
                out.append(aead.decrypt(nonce, body, f"{table}\x1f{column}\x1f{rid}".encode()).decode("utf-8"))
            except Exception as exc:  # InvalidTag: tampered, or moved to another row/column
                raise VaultError("field failed authentication") from exc
        return out

    @staticmethod
    def subject_of(blob: bytes) -> uuid.UUID | None:
        """The customer whose own key sealed a blob (None for a blob under the ring's key)."""
        blob = bytes(blob)
        return uuid.UUID(bytes=blob[1:_SUBJECT_HEAD]) if blob[:1] == bytes([SUBJECT_VERSION]) else None

    @staticmethod
    def key_id_of(blob: bytes) -> int:
        """The ring key that sealed a blob; 0 for a blob under a customer's own key."""
        version, kid = _HEADER.unpack_from(bytes(blob))
        return 0 if version == SUBJECT_VERSION else kid

    def blind_index(self, kind: str, normalised: str) -> str:
        """Keyed HMAC-SHA256 of a normalised value; equal inputs give equal indexes."""
        mac = hmac.new(self.ring.index_key, f"{kind}\x1f{normalised}".encode("utf-8"), hashlib.sha256)
        return mac.hexdigest()

    def sign(self, purpose: str, value: str) -> str:
        """HMAC with the app secret (CSRF tokens, session id hashing)."""
        return hmac.new(self.ring.secret_key, f"{purpose}\x1f{value}".encode(), hashlib.sha256).hexdigest()


# ---------------------------------------------------------------- blind indexes for name search
# Separate functions (not Vault methods) so that key-rotation work on the class stays apart.
# Each index has its own key, derived from the blind-index key with HMAC-SHA256 under the
# index's name ("name", "surname", "mobile_tail"): a value of one index says nothing about
# another index's values, nor about the mobile and ID-number indexes above.

_DERIVED: dict[tuple[bytes, str], bytes] = {}


def derived_index_key(vault: Vault, purpose: str) -> bytes:
    """The sub-key of one blind index (cached per index key, so a rotated ring gets new ones)."""
    base = vault.ring.index_key
    key = _DERIVED.get((base, purpose))
    if key is None:
        key = hmac.new(base, f"portal-blind-index-key\x1f{purpose}".encode(), hashlib.sha256).digest()
        _DERIVED[(base, purpose)] = key
    return key


def keyed_index(vault: Vault, purpose: str, normalised: str, *, bits: int | None = None) -> str:
    """HMAC-SHA256 of a normalised value under the index's own key, as hex.

    With ``bits`` the MAC is cut to its first ``bits`` bits (a number in hex), so that many
    different values share one index value: a truncated index only narrows a search, and the
    caller confirms each candidate by decrypting it.
    """
    mac = hmac.new(derived_index_key(vault, purpose), normalised.encode("utf-8"), hashlib.sha256).digest()
    if bits is None:
        return mac.hex()
    return format(int.from_bytes(mac[:4], "big") >> (32 - bits), "x")
