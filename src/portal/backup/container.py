"""The backup file: a manifest in the clear, then each file of the backup encrypted in chunks.

Layout (all lengths big-endian):

    MAGIC (10 bytes)  u32 manifest length  manifest (UTF-8 JSON)
    for each file the manifest lists, in order:
        chunks: u32 length, AES-256-GCM ciphertext with its 16-byte tag

Each backup has a fresh random salt (in the manifest); its file key is HKDF-SHA256(backup key,
salt), so nonces can count: file index, chunk index and a flag marking each file's last chunk
(a file cut short, or chunks moved between files or reordered, fail). Every chunk carries the
whole manifest as associated data, so a manifest changed by one byte fails every tag. The
manifest names each file with its size and the SHA-256 of its plaintext, which `verify` and
`extract` recompute. The manifest holds no personal data (times, counts, hashes, the schema
revision) and is readable without the key, so `prune` and an operator can see what a file is.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Callable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from .key import BackupKey

MAGIC = b"PORTALBK\x00\x01"
FORMAT = "portal-backup/1"
CHUNK = 1 << 20  # plaintext bytes per chunk
TAG = 16
MAX_MANIFEST = 1 << 20
SUFFIX = ".pbk"


class BackupError(Exception):
    """A backup that cannot be read, verified or opened (tampered, truncated, wrong key...)."""


@dataclass(frozen=True)
class Header:
    manifest: dict
    raw: bytes        # the manifest's exact bytes (the associated data of every chunk)
    body_offset: int  # where the first chunk starts


def _file_key(key: BackupKey, salt: bytes) -> AESGCM:
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt,
                   info=b"portal-backup/1 file key").derive(key.key)
    return AESGCM(derived)


def _nonce(file_index: int, chunk_index: int, last: bool) -> bytes:
    return struct.pack(">III", file_index, chunk_index, 1 if last else 0)


def sha256_file(path: Path) -> tuple[str, int]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as fh:
        while block := fh.read(CHUNK):
            h.update(block)
            size += len(block)
    return h.hexdigest(), size


def write(out: Path, manifest: dict, files: list[tuple[str, Path]], key: BackupKey) -> str:
    """Write the backup to `out` (created 0600, never overwriting); returns the SHA-256 of the
    whole backup file. `manifest` gets the format, cipher, salt, key id and the files' hashes."""
    manifest = dict(manifest)
    salt = os.urandom(32)
    manifest.update(format=FORMAT, cipher="AES-256-GCM", kdf="HKDF-SHA256", chunk_size=CHUNK,
                    salt=salt.hex(), backup_key_id=key.key_id, files=[])
    for name, path in files:
        digest, size = sha256_file(path)
        manifest["files"].append({"name": name, "size": size, "sha256": digest})
    raw = json.dumps(manifest, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    aead = _file_key(key, salt)
    whole = hashlib.sha256()
    fd = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as fh:
            def put(b: bytes) -> None:
                fh.write(b)
                whole.update(b)

            put(MAGIC + struct.pack(">I", len(raw)) + raw)
            for fi, (_name, path) in enumerate(files):
                with open(path, "rb") as src:
                    block, ci = src.read(CHUNK), 0
                    while True:
                        nxt = src.read(CHUNK) if len(block) == CHUNK else b""
                        last = not nxt
                        ct = aead.encrypt(_nonce(fi, ci, last), block, raw)
                        put(struct.pack(">I", len(ct)) + ct)
                        if last:
                            break
                        block, ci = nxt, ci + 1
            fh.flush()
            os.fsync(fh.fileno())
    except BaseException:
        Path(out).unlink(missing_ok=True)
        raise
    os.chmod(out, 0o600)
    return whole.hexdigest()


def _read_exact(fh: BinaryIO, n: int, what: str) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise BackupError(f"the backup is truncated ({what})")
    return data


def _read_header(fh: BinaryIO) -> Header:
    if fh.read(len(MAGIC)) != MAGIC:
        raise BackupError("not a portal backup (or a format this version cannot read)")
    (n,) = struct.unpack(">I", _read_exact(fh, 4, "manifest length"))
    if n > MAX_MANIFEST:
        raise BackupError("the manifest is implausibly large: the file is damaged")
    raw = _read_exact(fh, n, "manifest")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except ValueError:
        raise BackupError("the manifest is not readable: the file is damaged") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT \
            or not isinstance(manifest.get("files"), list):
        raise BackupError("the manifest is not a portal backup manifest")
    return Header(manifest, raw, len(MAGIC) + 4 + n)


def read_header(path: Path) -> Header:
    with open(path, "rb") as fh:
        return _read_header(fh)


def _check_key(manifest: dict, key: BackupKey) -> None:
    if manifest.get("backup_key_id") != key.key_id:
        raise BackupError(f"this backup was sealed with backup key {manifest.get('backup_key_id')}; "
                          f"the key file holds key {key.key_id}")


def _walk(path: Path, key: BackupKey, sink: Callable[[int, str], BinaryIO | None]) -> Header:
    """Decrypt every chunk of every file, check each tag, size and SHA-256; write each file's
    plaintext to sink(index, name) when that returns a file object."""
    with open(path, "rb") as fh:
        header = _read_header(fh)
        m = header.manifest
        _check_key(m, key)
        try:
            aead = _file_key(key, bytes.fromhex(m["salt"]))
        except (KeyError, ValueError, TypeError):
            raise BackupError("the manifest's salt is damaged") from None
        limit = int(m.get("chunk_size", CHUNK)) + TAG
        for fi, entry in enumerate(m["files"]):
            name = str(entry.get("name", f"#{fi}"))
            out = sink(fi, name)
            h, size, ci = hashlib.sha256(), 0, 0
            while True:
                (n,) = struct.unpack(">I", _read_exact(fh, 4, f"{name}, chunk {ci}"))
                if n < TAG or n > limit:
                    raise BackupError(f"{name}: chunk {ci} has an impossible length: the file is damaged")
                ct = _read_exact(fh, n, f"{name}, chunk {ci}")
                plain, last = None, False
                for last in (False, True):
                    try:
                        plain = aead.decrypt(_nonce(fi, ci, last), ct, header.raw)
                        break
                    except InvalidTag:
                        continue
                if plain is None:
                    raise BackupError(f"{name}: chunk {ci} fails its authentication tag (the backup "
                                      "or its manifest was altered)")
                h.update(plain)
                size += len(plain)
                if out is not None:
                    out.write(plain)
                ci += 1
                if last:
                    break
            if size != entry.get("size") or h.hexdigest() != entry.get("sha256"):
                raise BackupError(f"{name}: the SHA-256 or size differs from the manifest's")
        if fh.read(1):
            raise BackupError("the backup has bytes after its last file: it was altered")
    return header


def verify(path: Path, key: BackupKey) -> Header:
    """Check the manifest, every chunk's tag and every file's SHA-256, writing nothing."""
    return _walk(path, key, lambda _i, _n: None)


def extract(path: Path, key: BackupKey, dest: Path) -> tuple[Header, list[Path]]:
    """Decrypt every file into the directory `dest` (files 0600); verified as by verify()."""
    paths: list[Path] = []
    handles: list[BinaryIO] = []

    def sink(_i: int, name: str) -> BinaryIO:
        safe = Path(name).name
        if not safe or safe in (".", "..") or safe != name:
            raise BackupError(f"the manifest names an unsafe file: {name!r}")
        p = dest / safe
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        handles.append(os.fdopen(fd, "wb"))
        paths.append(p)
        return handles[-1]

    try:
        header = _walk(path, key, sink)
    finally:
        for fh in handles:
            fh.close()
    return header, paths
