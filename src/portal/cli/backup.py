"""`portal backup` commands: encrypted backups made while the portal serves, verified, restored, pruned."""
from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path

import click

from .base import BadInput, CLI, Env, Failed, _safe_url, main, pass_env


@contextmanager
def _plain_errors():
    from ..backup.container import BackupError
    from ..backup.key import BackupKeyError
    from ..backup.snapshot import SnapshotError
    try:
        yield
    except (BackupError, BackupKeyError, SnapshotError) as exc:
        raise Failed(str(exc)) from None


def _load_key(env: Env):
    from ..backup import key as backup_key
    return backup_key.load(env.settings.backup_key_file)


def _size(n: int) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _describe(m: dict) -> None:
    a = m["audit"]
    click.echo(f"made {m.get('created')} from a {m.get('database')} database at schema revision "
               f"{m.get('schema_revision') or '-'}")
    click.echo(f"audit log: {a['count']} entries, head {a['head_hash']}")
    for f in m["files"]:
        click.echo(f"file {f['name']}: {_size(f['size'])}, sha256 {f['sha256']}")


@main.group("backup")
def backup_group() -> None:
    """Encrypted backups of the database: create, verify, restore, prune.

    Backups are sealed (AES-256-GCM) with the backup key in PORTAL_BACKUP_KEY_FILE (default
    ./var/backup-key.json), which is not the data key: keep a copy of each key somewhere else,
    never beside the backups (see the README's "Backups").
    """


@backup_group.command("init-key", short_help="Create the backup key file (0600).")
@pass_env
def backup_init_key(env: Env) -> None:
    """Create the backup key file (mode 0600) at PORTAL_BACKUP_KEY_FILE; refuses to replace one.
    `backup create` also creates it on first use."""
    from ..backup import key as backup_key
    with _plain_errors():
        k = backup_key.create(env.settings.backup_key_file)
    click.echo(f"backup key {k.key_id} written to {env.settings.backup_key_file} (mode 0600)")
    click.echo("copy it now to a safe place away from this server and from the backups: "
               "without it no backup can be restored")


@backup_group.command("create", short_help="Make an encrypted backup while the portal serves.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for the backup (created 0700). Default: PORTAL_BACKUP_DIR (./var/backups).")
@pass_env
def backup_create(env: Env, out_dir: Path | None) -> None:
    """Back up the database while the portal serves: a consistent copy (SQLite's online backup
    API; pg_dump in custom format from one snapshot on PostgreSQL), encrypted with the backup key,
    written 0600 as portal-backup-<UTC time>.pbk with a manifest (time, database kind, schema
    revision, the audit log's entry count and head hash, each file's SHA-256). No key is ever
    put in a backup. Audited."""
    from importlib.metadata import PackageNotFoundError, version

    from ..audit import service as audit
    from ..backup import key as backup_key
    from ..backup.service import create_backup

    st = env.settings
    try:
        portal_version = version("vip-portal")
    except PackageNotFoundError:
        portal_version = ""
    with _plain_errors():
        k, new = backup_key.load_or_create(st.backup_key_file)
        if new:
            click.echo(f"created backup key {k.key_id} at {st.backup_key_file}: copy it now to a safe "
                       "place away from this server and from the backups", err=True)
        made = create_backup(st.database_url, k, out_dir or st.backup_dir,
                             key_files=(st.key_file, st.backup_key_file), version=portal_version)
    m = made.manifest
    with env.db.write() as s:
        audit.record(s, CLI, "backup.create", object_type="backup", object_id=made.path.name,
                     detail=f"entries={m['audit']['count']} head={m['audit']['head_hash']} "
                            f"sha256={made.sha256} key={k.key_id}")
    click.echo(f"wrote {made.path} ({_size(made.path.stat().st_size)}, sha256 {made.sha256})")
    _describe(m)


@backup_group.command("verify", short_help="Check a backup's tags and hashes without restoring.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_env
def backup_verify(env: Env, file: Path) -> None:
    """Check a backup without restoring it: the manifest, every chunk's authentication tag and
    every file's SHA-256. Needs the backup key; not the database. Exit 1 if anything differs."""
    from ..backup.service import verify_backup

    with _plain_errors():
        header = verify_backup(file, _load_key(env))
    m = header.manifest
    if m.get("contents") == "customer-keys":
        click.echo(f"key backup made {m.get('created')}: {m.get('keys')} customer keys, {m.get('erased')} erased"
                   + (f" (rewritten {m['scrubbed']})" if m.get("scrubbed") else ""))
    else:
        _describe(m)
    click.echo(f"backup intact: every chunk and every file's SHA-256 match the manifest "
               f"(backup key {header.manifest['backup_key_id']})")


@backup_group.command("restore", short_help="Restore into an empty database, then check it.")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--to", "url", required=True, metavar="URL",
              help="An EMPTY database of the backup's kind: sqlite:///path/new.db (a file that does "
                   "not exist yet) or postgresql+psycopg://user@host/newdb (after createdb).")
@click.option("--keys-from", "keys_from", metavar="URL",
              help="Take the customers' own data keys (no backup holds them) from this database: "
                   "the live one.")
@click.option("--keys", "keys_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="... or from this key backup (`portal backup keys`; the newest), when the live "
                   "database is lost.")
@pass_env
def backup_restore(env: Env, file: Path, url: str, keys_from: str | None, keys_file: Path | None) -> None:
    """Restore a backup into an empty database (a non-empty one is refused), then check it: the
    audit chain verifies and ends exactly at the manifest's head, and no table lost rows.
    Backups never hold the customers' own data keys: name where they come from, the live database
    (--keys-from) or a key backup (--keys). A customer erased since the backup was made is erased
    again in the restored copy. With the data key file (PORTAL_KEY_FILE) at hand, also that every
    encrypted value opens, the signed checkpoints hold and every points and stored-value balance
    equals its ledger. Exit 1 if the restored database fails any check (it is left in place for
    inspection)."""
    from ..audit import service as audit
    from ..backup import customer_keys
    from ..backup.service import restore_backup
    from ..db import Database
    from ..vault import KeyRing

    if (keys_from is None) == (keys_file is None):
        raise BadInput("say where the customers' own data keys come from (backups never hold them): "
                       "--keys-from URL (the live database) or --keys FILE (a key backup)")
    ring = KeyRing.load(env.settings.key_file) if env.settings.key_file.exists() else None
    def from_live():  # read (and recorded there) only once the backup is in
        rows = customer_keys.read_database(keys_from)
        _record_keys_copied(keys_from, f"{len(rows)} rows read to restore {file.name} into {_safe_url(url)}")
        return rows

    with _plain_errors():
        bkey = _load_key(env)
        if keys_from is not None:
            keys, source = from_live, _safe_url(keys_from)
        else:
            keys, source = customer_keys.read_key_backup(keys_file, bkey)[1], keys_file.name
        report = restore_backup(file, bkey, url, ring=ring, keys=keys)
    m = report.manifest
    click.echo(f"restored {file.name} into {_safe_url(url)}")
    _describe(m)
    click.echo(f"restored audit log: {report.audit_count} entries, head {report.audit_head}")
    k = report.keys
    click.echo(f"customer keys from {source}: {k.copied} put in; "
               f"{len(k.erased_again)} customer(s) erased since the backup erased again"
               + (f" (files {', '.join(k.erased_again)})" if k.erased_again else ""))
    if ring is None:
        click.echo(f"no data key file at {env.settings.key_file}: encrypted values and ledgers not "
                   "checked", err=True)
    else:
        click.echo(f"{report.checked_values} encrypted values open with the data key; "
                   f"{report.checked_accounts} card accounts balance with their ledgers")
    db = Database(url)
    try:
        with db.write() as s:
            audit.record(s, CLI, "backup.restore", object_type="backup", object_id=file.name,
                         outcome=audit.ALLOWED if report.ok else audit.DENIED,
                         detail=f"entries={m['audit']['count']} head={m['audit']['head_hash']} "
                                f"keys={k.copied} from={source} erased_again={len(k.erased_again)} "
                                f"problems={len(report.problems)}")
    finally:
        db.dispose()
    if not report.ok:
        for p in report.problems:
            click.echo(f"problem: {p}", err=True)
        raise Failed(f"the restored database fails {len(report.problems)} check(s)")
    click.echo("restore verified: the audit chain is intact up to the manifest's head")


def _record_keys_copied(url: str, detail: str) -> None:
    """Copying the customers' keys out of a database is recorded in that database's audit log."""
    from ..audit import service as audit
    from ..db import Database

    db = Database(url)
    try:
        with db.write() as s:
            audit.record(s, CLI, "backup.keys", object_type="backup", object_id="customer_key", detail=detail)
    finally:
        db.dispose()


@backup_group.command("keys", short_help="Back up the customers' own data keys, kept a few days.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory for key backups (created 0700), apart from the backups. "
                   "Default: PORTAL_KEY_BACKUP_DIR (./var/key-backups).")
@click.option("--keep", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Key backups to keep in the directory, newest first; older ones are deleted.")
@pass_env
def backup_keys(env: Env, out_dir: Path | None, keep: int) -> None:
    """Write a key backup: the customers' own data keys (still wrapped by the key ring), which
    no backup holds, sealed with the backup key, as portal-keys-<UTC time>.pbk. Then delete all
    but the newest KEEP in the directory and rewrite the ones kept without the keys destroyed
    since they were made: after this runs, an erased customer's key is in no key backup. Restore
    uses the newest (`backup restore FILE --to URL --keys KEYFILE`). Audited."""
    from ..audit import service as audit
    from ..backup import customer_keys
    from ..backup import key as backup_key

    st = env.settings
    with _plain_errors():
        k, new = backup_key.load_or_create(st.backup_key_file)
        if new:
            click.echo(f"created backup key {k.key_id} at {st.backup_key_file}: copy it now to a safe "
                       "place away from this server and from the backups", err=True)
        made = customer_keys.write_key_backup(st.database_url, k, out_dir or st.key_backup_dir, keep=keep,
                                              key_files=(st.key_file, st.backup_key_file))
    with env.db.write() as s:
        audit.record(s, CLI, "backup.keys", object_type="backup", object_id=made.path.name,
                     detail=f"keys={made.keys} erased={made.erased} sha256={made.sha256} "
                            f"deleted={len(made.removed)} rewritten={len(made.scrubbed)} key={k.key_id}")
    click.echo(f"wrote {made.path} ({made.keys} customer keys, {made.erased} erased; sha256 {made.sha256})")
    for p in made.scrubbed:
        click.echo(f"rewrote {p.name} without the keys erased since it was made")
    for p in made.removed:
        click.echo(f"deleted {p.name}")
    for p, problem in made.unreadable:
        click.echo(f"left alone (not readable as a key backup: {problem}): {p.name}", err=True)
    if made.unreadable:
        raise Failed(f"{len(made.unreadable)} file(s) in {made.path.parent} could not be checked for "
                     "erased customers' keys: move or delete them")


@backup_group.command("prune", short_help="Delete backups the retention schedule no longer keeps.")
@click.option("--dir", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Directory of backups. Default: PORTAL_BACKUP_DIR (./var/backups).")
@click.option("--keep-daily", default=7, show_default=True, type=click.IntRange(0, 10000),
              help="Keep the newest backup of each of the last N days that have one.")
@click.option("--keep-weekly", default=4, show_default=True, type=click.IntRange(0, 10000),
              help="... of each of the last N ISO weeks.")
@click.option("--keep-monthly", default=12, show_default=True, type=click.IntRange(0, 10000),
              help="... of each of the last N months.")
@click.option("--dry-run", is_flag=True, help="Say what would be kept and deleted; delete nothing.")
@pass_env
def backup_prune(env: Env, directory: Path | None, keep_daily: int, keep_weekly: int,
                 keep_monthly: int, dry_run: bool) -> None:
    """Delete the backups a retention schedule no longer keeps (days, weeks and months in
    PORTAL_TIMEZONE, by the time in each backup's manifest). The newest backup is always kept;
    files that cannot be read as backups are reported and left alone."""
    from ..backup.prune import Schedule, plan

    directory = directory or env.settings.backup_dir
    if not directory.is_dir():
        raise BadInput(f"no backup directory at {directory}")
    with _plain_errors():
        p = plan(directory, Schedule(keep_daily, keep_weekly, keep_monthly), env.settings.timezone)
    for found, why in p.keep:
        click.echo(f"keep    {found.path.name} ({', '.join(why)})")
    for found in p.remove:
        click.echo(f"{'would delete' if dry_run else 'delete'}  {found.path.name}")
        if not dry_run:
            found.path.unlink()
    for path, problem in p.unreadable:
        click.echo(f"left alone (not readable as a backup: {problem}): {path.name}", err=True)
    verb = "would delete" if dry_run else "deleted"
    click.echo(f"kept {len(p.keep)}, {verb} {len(p.remove)}")
