"""Signed checkpoints of the audit chain (Ed25519, key outside the database).

A checkpoint at entry N proves the log once held N entries, so entries cut off the end are
caught, but only those up to the newest checkpoint. Checkpoints are therefore signed by count
(every `every` entries, in the appending transaction) and by time: the first append once the
newest checkpoint is `seconds` old signs one, and `sign_if_moved()` (the server's sweep each
quarter interval, `portal jobs checkpoint` from cron) signs the head when entries were appended
since the newest checkpoint, so a quiet log's last entries are covered too. Both take the
audit head's row lock first: of several processes, at most one signs.
"""
from __future__ import annotations

import base64
import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from .. import clock
from .chain import GENESIS
from .models import AuditCheckpoint, AuditEvent

log = logging.getLogger(__name__)


def _message(seq: int, head_hash: str) -> bytes:
    return f"vip-portal-audit-checkpoint\x1f{seq}\x1f{head_hash}".encode()


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass
class Signer:
    """Signs checkpoints: every `every` entries, and once `seconds` passed since the newest
    (0 turns either off); record() asks after_append() in the appending transaction."""

    private_key: Ed25519PrivateKey
    every: int = 1000
    seconds: int = 60
    # The newest committed checkpoint this process has seen is fresh until then: no need to ask
    # the database again before (an optimisation only; the database decides).
    _fresh: tuple[datetime, datetime] | None = field(default=None, repr=False, compare=False)

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


def recent_checkpoints(s: Session, n: int) -> list[AuditCheckpoint]:
    """The newest n checkpoints, newest first."""
    return list(s.scalars(select(AuditCheckpoint)
                          .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc()).limit(n)))


def signer_from(ring, every: int = 1000, seconds: int = 60) -> Signer | None:
    """The checkpoint signer for a key ring (None if the ring has no signing key)."""
    if not ring.signing_key:
        return None
    return Signer(Ed25519PrivateKey.from_private_bytes(ring.signing_key), every=every, seconds=seconds)


# ---------------------------------------------------------------- signing on time

def newest_checkpoint(s: Session) -> AuditCheckpoint | None:
    return s.scalar(select(AuditCheckpoint)
                    .order_by(AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc()).limit(1))


def _older_than(at: datetime, now: datetime, seconds: int) -> bool:
    """The checkpoint is at least `seconds` old, or dated well ahead of this clock (a clock set
    back must not stop the signing)."""
    return now - at >= timedelta(seconds=seconds) or at - now > timedelta(seconds=seconds)


def may_be_due(signer: Signer, seq: int) -> bool:
    """False when after_append() would certainly sign nothing for entry `seq` without asking the
    database (the common case: not a multiple of `every`, and the newest checkpoint known fresh)."""
    if signer.every and seq % signer.every == 0:
        return True
    if not signer.seconds:
        return False
    fresh = signer._fresh
    return fresh is None or not (fresh[0] <= clock.now() < fresh[1])


def after_append(s: Session, signer: Signer, seq: int, head_hash: str) -> AuditCheckpoint | None:
    """Called by audit.record() right after entry `seq`, while its transaction holds the head's
    row lock (so a concurrent appender waits, then sees this checkpoint once committed)."""
    if signer.every and seq % signer.every == 0:
        return _write_here(s, signer, seq, head_hash)
    if not signer.seconds:
        return None
    now = clock.now()
    if signer._fresh is not None and signer._fresh[0] <= now < signer._fresh[1]:
        return None
    newest = s.execute(select(AuditCheckpoint.at).order_by(
        AuditCheckpoint.seq.desc(), AuditCheckpoint.id.desc()).limit(1)).scalar()
    if newest is not None and not _older_than(newest, now, signer.seconds):
        if not s.info.get("audit_checkpoint_written"):  # committed, so safe to remember
            signer._fresh = (newest, newest + timedelta(seconds=signer.seconds))
        return None
    return _write_here(s, signer, seq, head_hash)


def _write_here(s: Session, signer: Signer, seq: int, head_hash: str) -> AuditCheckpoint | None:
    """Sign the head in the appending transaction, once the entries since the newest checkpoint
    check (at most `every` entries or an interval's worth). If they do not, the append goes on
    unsigned (it must: it may be the audit of a reveal) and the sweep or `portal jobs
    checkpoint` reports where the chain breaks."""
    from .incremental import APPEND_CHECK_MAX, keys_of, verify_since_checkpoint

    newest = s.execute(select(AuditCheckpoint.seq).order_by(AuditCheckpoint.seq.desc()).limit(1)).scalar()
    if seq - (newest or 0) > max(APPEND_CHECK_MAX, 2 * signer.every):  # too long to check in a request: the sweep checks
        # it outside the lock, then signs (sweep()); until then appends need not ask again on
        # every entry (an optimisation only: the database decides at the next look).
        now = clock.now()
        signer._fresh = (now, now + timedelta(seconds=signer.seconds or 60))
        return None
    check = verify_since_checkpoint(s, keys_of(signer), (seq, head_hash))
    if not check.ok:
        log.warning("audit checkpoint not signed: the chain breaks at entry %s", check.bad_seq)
        now = clock.now()  # do not re-check on every append: once an interval (an optimisation only)
        signer._fresh = (now, now + timedelta(seconds=signer.seconds or 60))
        return None
    s.info["audit_checkpoint_written"] = True
    return write_checkpoint(s, signer, seq, head_hash)


def sign_if_moved(s: Session, signer: Signer, min_age_seconds: int = 0,
                  trusted: tuple[int, str] | None = None) -> AuditCheckpoint | None:
    """Sign the head if entries were appended since the newest checkpoint and that one is at
    least `min_age_seconds` old; None if nothing was due. Locks the head row first (as an append
    does), so of several processes sweeping at once exactly one signs. The entries since the
    newest checkpoint are checked first (incremental.sign_checked): a broken stretch raises
    incremental.ChainBroken and nothing is signed."""
    seq, head_hash = s.execute(
        text("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")).one()
    if seq == 0:
        return None
    newest = newest_checkpoint(s)
    if newest is not None and (newest.seq >= seq or (
            min_age_seconds and not _older_than(newest.at, clock.now(), min_age_seconds))):
        return None
    # Only a head whose entries since the newest checkpoint check is signed (ChainBroken if not).
    from .incremental import sign_checked
    return sign_checked(s, signer, (seq, head_hash), trusted=trusted)


def sweep_period(seconds: int) -> float:
    """How often a server checks whether a checkpoint is due: a quarter of the interval, so an
    entry waits at most about 1.25 intervals for its checkpoint."""
    return max(0.25, seconds / 4)


def describe_age(at: datetime, now: datetime) -> str:
    secs = int((now - at).total_seconds())
    if secs < 0:
        return "in the future (check the clock)"
    for unit, size in (("day", 86400), ("h", 3600), ("min", 60)):
        if secs >= size:
            n = secs // size
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return f"{secs} s ago"


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


def sweep(db) -> AuditCheckpoint | None:
    """One sweep of a server process (a `portal.db.Database` with a signer): sign the head if
    entries waited an interval for a checkpoint. Looks first in a read transaction, so a quiet
    or freshly signed log costs no write."""
    signer = db.audit_signer
    if signer is None or not signer.seconds:
        return None
    with db.read() as s:
        seq = s.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar()
        newest = newest_checkpoint(s)
        if not seq or (newest is not None and (
                newest.seq >= seq or not _older_than(newest.at, clock.now(), signer.seconds))):
            return None
    from .incremental import precheck
    trusted = precheck(db, signer)  # the long part of the check, without the head's lock
    with db.write() as s:
        return sign_if_moved(s, signer, signer.seconds, trusted=trusted)
