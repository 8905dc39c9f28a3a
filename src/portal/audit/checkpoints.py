"""Signed checkpoints of the audit chain (Ed25519, key outside the database)."""
from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .. import clock
from .chain import GENESIS
from .models import AuditCheckpoint, AuditEvent


def _message(seq: int, head_hash: str) -> bytes:
    return f"vip-portal-audit-checkpoint\x1f{seq}\x1f{head_hash}".encode()


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Signer:
    """Signs checkpoints; `every` entries, record() asks for one in the same transaction."""

    private_key: Ed25519PrivateKey
    every: int = 1000

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.private_key.public_key()

    def sign(self, seq: int, head_hash: str) -> tuple[str, str]:
        sig = self.private_key.sign(_message(seq, head_hash))
        return key_id_of(self.public_key), base64.b64encode(sig).decode()


def write_checkpoint(s: Session, signer: Signer, seq: int | None = None, head_hash: str | None = None) -> AuditCheckpoint:
    """Sign the given head (or the current one, on demand)."""
    if seq is None:
        seq, head_hash = s.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()
    kid, sig = signer.sign(seq, head_hash)
    cp = AuditCheckpoint(seq=seq, head_hash=head_hash, at=clock.now(), key_id=kid, signature=sig)
    s.add(cp)
    s.flush()
    return cp


def checkpoint_valid(cp: AuditCheckpoint, public_keys: dict[str, Ed25519PublicKey]) -> bool:
    pk = public_keys.get(cp.key_id)
    if pk is None:
        return False
    try:
        pk.verify(base64.b64decode(cp.signature), _message(cp.seq, cp.head_hash))
        return True
    except (InvalidSignature, ValueError):
        return False


def all_checkpoints(s: Session) -> list[AuditCheckpoint]:
    return list(s.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))


def signer_from(ring, every: int = 1000) -> Signer | None:
    """The checkpoint signer for a key ring (None if the ring has no signing key)."""
    if not ring.signing_key:
        return None
    return Signer(Ed25519PrivateKey.from_private_bytes(ring.signing_key), every=every)


def public_keys_of(ring) -> dict[str, Ed25519PublicKey]:
    signer = signer_from(ring)
    return {key_id_of(signer.public_key): signer.public_key} if signer else {}


@dataclass
class CheckpointReport:
    ok: bool
    checked: int
    latest_seq: int | None
    problem: str = ""
    bad_seq: int | None = None


def verify_checkpoints(s: Session, public_keys: dict[str, Ed25519PublicKey], chain_count: int) -> CheckpointReport:
    """Every checkpoint is signed by a known key and matches the entry it names; none lies
    beyond the end of the log (which would mean entries were cut off the end)."""
    cps = all_checkpoints(s)
    if not cps:
        return CheckpointReport(True, 0, None)
    stored = dict(s.execute(select(AuditEvent.seq, AuditEvent.hash)
                            .where(AuditEvent.seq.in_([c.seq for c in cps]))).all())
    for cp in cps:
        if not checkpoint_valid(cp, public_keys):
            return CheckpointReport(False, len(cps), cps[-1].seq,
                                    f"checkpoint at entry {cp.seq} has a bad signature", cp.seq)
        if cp.seq == 0:  # signed before the first entry: the head was the genesis hash
            if cp.head_hash != GENESIS:
                return CheckpointReport(False, len(cps), cps[-1].seq,
                                        "entry 0 differs from its signed checkpoint", cp.seq)
            continue
        if cp.seq > chain_count or cp.seq not in stored:
            return CheckpointReport(False, len(cps), cps[-1].seq,
                                    f"a signed checkpoint names entry {cp.seq}, but the log ends at "
                                    f"{chain_count}: entries were cut off", cp.seq)
        if stored[cp.seq] != cp.head_hash:
            return CheckpointReport(False, len(cps), cps[-1].seq,
                                    f"entry {cp.seq} differs from its signed checkpoint", cp.seq)
    return CheckpointReport(True, len(cps), cps[-1].seq)
