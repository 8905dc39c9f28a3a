"""Checking the chain from the newest signed checkpoint to the head, and signing only what checks.

A full check (service.verify_chain, `portal audit verify`) recomputes every entry from the first;
at millions of entries that takes seconds. Signing a checkpoint needs less: the newest checkpoint
is signed by a known key and still matches the entry it names (so nothing up to it was cut off
or rewritten with the chain recomputed), and every entry after it recomputes and follows the one
before, up to the head. Then the new checkpoint covers only entries that were checked, and the
cost grows with the entries since the newest checkpoint (a thousand or a minute's worth), not
with the log. Entries before the newest checkpoint are left to the full check.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.orm import Session

from .chain import GENESIS
from .checkpoints import AuditCheckpoint, Signer, checkpoint_valid, key_id_of, newest_checkpoint, write_checkpoint
from .verify import _verify_stretch

# The integrity page recomputes every entry of a log up to this long (about a quarter of a
# second); past it, it checks from the newest checkpoint and offers the full check on a click.
FULL_CHECK_ON_PAGE = 50_000
# An append signs (as every N entries or once a minute) only if the stretch since the newest
# checkpoint is at most this long; a longer one (a log from before checkpoints) is checked by
# the sweep or `portal jobs checkpoint` outside the head's lock first (precheck()).
APPEND_CHECK_MAX = 20_000


@dataclass
class StretchCheck:
    ok: bool
    since: int            # entries after this one were recomputed (0: from the first entry)
    head: int             # ... up to this one
    head_hash: str
    problem: str = ""
    bad_seq: int | None = None

    @property
    def checked(self) -> int:
        return max(0, self.head - self.since)


class ChainBroken(RuntimeError):
    """The stretch since the newest checkpoint does not check: nothing is signed over it."""

    def __init__(self, check: StretchCheck):
        super().__init__(f"audit chain broken at entry {check.bad_seq}: {check.problem}")
        self.check = check


def verify_since_checkpoint(s: Session, public_keys: dict, head: tuple[int, str] | None = None,
                            batch: int = 5000, trusted: tuple[int, str] | None = None) -> StretchCheck:
    """Check the newest checkpoint and every entry after it up to the head (`head`: the head as
    the caller read it under its lock; else read here). `trusted`: (seq, hash) of an entry up to
    which this same check passed moments ago in a read transaction (precheck()); the entry
    must still hold that hash, and only the entries after it are recomputed here."""
    seq, head_hash = head or s.execute(text("SELECT seq, hash FROM audit_head WHERE id = 1")).one()

    def broken(bad: int, problem: str, since: int = 0) -> StretchCheck:
        return StretchCheck(False, since, seq, head_hash, problem, bad)

    cp = newest_checkpoint(s)
    since, prev = 0, GENESIS
    if cp is not None:
        if not checkpoint_valid(cp, public_keys):
            return broken(cp.seq, f"checkpoint at entry {cp.seq} has a bad signature")
        if cp.seq > seq:
            return broken(cp.seq, f"a signed checkpoint names entry {cp.seq}, but the log ends at "
                                  f"{seq}: entries were cut off")
        if cp.seq > 0:
            stored = s.execute(text("SELECT hash FROM audit_event WHERE seq = :n"), {"n": cp.seq}).scalar()
            if stored is None:
                return broken(cp.seq, f"entry {cp.seq} is missing (a signed checkpoint names it)")
            if stored != cp.head_hash:
                return broken(cp.seq, f"entry {cp.seq} differs from its signed checkpoint")
        elif cp.head_hash != GENESIS:
            return broken(0, "entry 0 differs from its signed checkpoint")
        since, prev = cp.seq, cp.head_hash
    if trusted is not None and since < trusted[0] <= seq:
        stored = s.execute(text("SELECT hash FROM audit_event WHERE seq = :n"), {"n": trusted[0]}).scalar()
        if stored != trusted[1]:
            return broken(trusted[0], f"entry {trusted[0]} changed while it was checked", since)
        since, prev = trusted
    part = _verify_stretch(s, since + 1, seq, batch, prev)
    if part.problem:
        return broken(part.bad_seq, part.problem, since)
    if part.count != seq - since:
        return broken(since + part.count + 1, f"entry {since + part.count + 1} is missing", since)
    if (part.last_hash or prev) != head_hash:
        return broken(seq, f"the head does not match entry {seq}", since)
    beyond = s.execute(text("SELECT max(seq) FROM audit_event")).scalar() or 0
    if beyond > seq:
        return broken(seq + 1, f"the log holds entries past the head (entry {seq + 1} and on)", since)
    return StretchCheck(True, since, seq, head_hash)


def head_seq(s: Session) -> int:
    """How many entries the chain's head says the log holds."""
    return s.execute(text("SELECT seq FROM audit_head WHERE id = 1")).scalar() or 0


def keys_of(signer: Signer) -> dict:
    return {key_id_of(signer.public_key): signer.public_key}


def precheck(db, signer: Signer) -> tuple[int, str]:
    """Check the stretch since the newest checkpoint in a read transaction (no lock held, so a
    long stretch does not stop appends); returns the head it reached, for sign_checked(trusted=).
    Raises ChainBroken."""
    with db.read() as s:
        check = verify_since_checkpoint(s, keys_of(signer))
    if not check.ok:
        raise ChainBroken(check)
    return check.head, check.head_hash


def sign_checked(s: Session, signer: Signer, head: tuple[int, str] | None = None, *,
                 trusted: tuple[int, str] | None = None) -> AuditCheckpoint:
    """Sign the head once the stretch since the newest checkpoint checks; raises ChainBroken
    (and signs nothing) if it does not. `head`: the head as the caller read it under the head
    row's lock; else the lock is taken here (as an append does), so the head cannot move
    between the check and the signature."""
    if head is None:
        head = tuple(s.execute(
            text("UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash")).one())
    check = verify_since_checkpoint(s, keys_of(signer), head, trusted=trusted)
    if not check.ok:
        raise ChainBroken(check)
    s.info["audit_checkpoint_written"] = True
    return write_checkpoint(s, signer, *head)
