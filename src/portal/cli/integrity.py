"""`portal` commands: The audit chain and the key ring."""
from __future__ import annotations

import os

import click
from ..accounts.actor import Actor
from ..audit import service as audit
from ..vault import KeyRing, Vault


from .base import (CLI, Env, Failed, _table, main, pass_env)
from .progress import on_terminal, progress


# ---------------------------------------------------------------- audit

@main.group("audit")
def audit_group() -> None:
    """The append-only audit log."""


@audit_group.command("verify")
@pass_env
def audit_verify(env: Env) -> None:
    """Recompute the hash chain over every entry and check the signed checkpoints; exit 1 if any
    entry was changed, removed, inserted or reordered, or entries were cut off the end up to the
    newest checkpoint. Says how old that checkpoint is and how many entries follow it (those are
    not yet protected against being cut off)."""
    from .. import clock
    from ..audit.checkpoints import describe_age, newest_checkpoint, public_keys_of, verify_checkpoints

    with env.db.read() as s:
        # A long log is checked in stretches, one process per core.
        report = audit.verify_chain(s, workers=os.cpu_count() or 1)
        cps = verify_checkpoints(s, public_keys_of(_load_ring(env)), report.count) if report.ok else None
        newest = newest_checkpoint(s)
    if not report.ok:
        raise Failed(f"audit chain broken at entry {report.first_bad_seq}: {report.problem}")
    if not cps.ok:
        raise Failed(f"audit chain broken at entry {cps.bad_seq}: {cps.problem}")
    if cps.checked:
        after = report.count - newest.seq
        signed = (f", {cps.checked} signed checkpoint(s) up to entry {cps.latest_seq} "
                  f"(newest signed {describe_age(newest.at, clock.now())}, at entry {newest.seq}; "
                  f"{after} entr{'y' if after == 1 else 'ies'} after it not yet signed)")
    elif report.count:
        signed = (", no signed checkpoint yet: entries cut off the end would go unnoticed "
                  "(`portal audit checkpoint` signs one)")
    else:
        signed = ""
    click.echo(f"audit chain intact: {report.count} entries, head {report.head_hash}{signed}")


@audit_group.command("checkpoint")
@pass_env
def audit_checkpoint(env: Env) -> None:
    """Sign the chain's current head now, once the entries since the newest checkpoint check
    (exit 1 and sign nothing if not; the full check is `portal audit verify`). Servers also sign
    every N entries and once a minute while entries are appended; `portal jobs checkpoint`
    signs only if the head moved."""
    from ..audit.checkpoints import signer_from
    from ..audit.incremental import ChainBroken, precheck, sign_checked

    signer = signer_from(_load_ring(env))
    try:
        trusted = precheck(env.db, signer)  # the long part without the head's lock
        with env.db.write() as s:
            cp = sign_checked(s, signer, trusted=trusted)
            audit.record(s, Actor.system("cli"), "audit.checkpoint", object_type="audit",
                         detail=f"seq={cp.seq}")
    except ChainBroken as exc:
        raise Failed(f"{exc}; no checkpoint signed") from None
    click.echo(f"signed checkpoint at entry {cp.seq}: {cp.head_hash}")


# ---------------------------------------------------------------- keys

@main.group("keys")
def keys_group() -> None:
    """Field-encryption keys."""


def _load_ring(env: Env) -> KeyRing:
    path = env.settings.key_file
    if not path.exists():
        raise Failed(f"no key file at {path}; run `portal db upgrade` first")
    return KeyRing.load(path)


def _row_count(env: Env, tables) -> int:
    """Rows the rotation will look at: the length of its progress bar."""
    from sqlalchemy import func, select
    with env.db.read() as s:
        return sum(s.scalar(select(func.count()).select_from(t.table)) or 0 for t in tables)


def _registry():
    from .. import models
    from ..encrypted_columns import registry
    return registry(models.metadata)


def _in_use(env: Env) -> set[int]:
    from ..encrypted_columns import keys_in_use
    with env.db.read() as s:
        return keys_in_use(s, _registry())


def _retire_unused(env: Env, ring: KeyRing) -> list[int]:
    """Forget the keys (other than the active one) that seal no blob in any encrypted column."""
    in_use = _in_use(env)
    retired = []
    for kid in sorted(ring.data_keys):
        if kid != ring.active and kid not in in_use:
            ring.retire(kid)
            retired.append(kid)
    return retired


@keys_group.command("status")
@pass_env
def keys_status(env: Env) -> None:
    """Show the active key, the keys held and retired, and how many encrypted values each key
    seals in each table that holds any (customer files, second-factor secrets, ...). The row
    "own" counts the values sealed with each customer's own key (those keys are in customer_key)."""
    from ..encrypted_columns import SUBJECT_KEY, key_counts

    ring = _load_ring(env)
    tables = _registry()
    with env.db.read() as s:
        counts = key_counts(s, tables)
    click.echo(f"active key: {ring.active}")
    names = [et.name for et in tables]

    def cells(k: int) -> list[str]:
        return [str(counts.get(n, {}).get(k, 0)) for n in names]

    rows = [(str(k), "active" if k == ring.active else "held", *cells(k)) for k in sorted(ring.data_keys)]
    rows += [(str(k), f"retired {at}", *cells(k)) for k, at in sorted(ring.retired.items())]
    rows.append(("own", "customer's own key", *cells(SUBJECT_KEY)))
    _table(("key", "state", *names), rows)
    orphaned = sorted(k for per in counts.values() for k, n in per.items()
                      if n and k != SUBJECT_KEY and k not in ring.data_keys)
    if orphaned:
        raise Failed(f"values sealed by key(s) {', '.join(map(str, sorted(set(orphaned))))} "
                     "that the key file no longer holds cannot be opened")


# Servers re-read the key file about once a second (vault.py): wait until each has switched to
# the new key before walking the tables, so no row is written under the old key behind the walk.
FOLLOW_SECONDS = 2.0


@keys_group.command("rotate")
@click.option("--batch", default=500, show_default=True, type=click.IntRange(1, 100000),
              help="Rows re-encrypted per transaction.")
@click.option("--retire/--no-retire", default=True, show_default=True,
              help="Forget old keys once no encrypted value uses them. Use --no-retire while servers "
                   "started before the rotation still run, restart them, then `portal keys retire`.")
@pass_env
def keys_rotate(env: Env, batch: int, retire: bool) -> None:
    """Make a new data key active, re-encrypt every encrypted column of every table under it
    (second-factor secrets, the wrapped customer keys, ...), move customer files still under a
    ring key to each customer's own key, and retire the old keys no value uses any more."""
    import time

    from ..encrypted_columns import reencrypt_all

    ring = _load_ring(env)
    old = ring.active
    new = ring.add_key()
    vault = Vault(ring)
    click.echo(f"new data key {new} is active (was {old})")
    time.sleep(FOLLOW_SECONDS)
    tables = _registry()
    done = 0

    with progress(_row_count(env, tables) if on_terminal() else 0, "re-encrypting") as step:
        def batch_done(table: str, n: int, looked: int) -> None:
            nonlocal done
            done += n
            step(looked)  # a bar on a terminal
            if n and not on_terminal():  # one line per batch when the output is a log
                click.echo(f"{table}: {n} row(s) re-encrypted, {done} in all")

        report = reencrypt_all(env.db.write, vault, tables, new, batch, batch_done)
    per_table = ", ".join(f"{n} {t}" for t, n in report.changed.items())
    click.echo(f"re-encrypted {report.total} row(s) under key {new}: {per_table}")
    retired = _retire_unused(env, ring) if retire else []
    if retired:
        click.echo(f"retired key(s) {', '.join(map(str, retired))}")
    held = [k for k in sorted(ring.data_keys) if k != new]
    if held:
        click.echo(f"still held: key(s) {', '.join(map(str, held))}")
    with env.db.write() as s:
        audit.record(s, CLI, "keys.rotate", object_type="key", object_id=str(new),
                     detail=f"new_key={new} previous={old} reencrypted={report.total} "
                            + " ".join(f"{t}={n}" for t, n in report.changed.items())
                            + f" retired={','.join(map(str, retired)) or '-'}")
    click.echo("restart running servers so new writes use the new key")


@keys_group.command("retire")
@pass_env
def keys_retire(env: Env) -> None:
    """Forget every data key (except the active one) that no encrypted value in any table uses."""
    ring = _load_ring(env)
    retired = _retire_unused(env, ring)
    if not retired:
        click.echo("no unused keys to retire")
        return
    with env.db.write() as s:
        audit.record(s, CLI, "keys.retire", object_type="key", object_id=",".join(map(str, retired)),
                     detail=f"retired={','.join(map(str, retired))} active={ring.active}")
    click.echo(f"retired key(s) {', '.join(map(str, retired))}")
