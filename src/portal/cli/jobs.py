"""`portal` commands: Scheduled jobs and benchmark seeding."""
from __future__ import annotations

from contextlib import ExitStack

import click

from ..accounts import service as accounts
from ..pos import refusals


from .base import (BadInput, Env, Failed, _read_secret_stdin,
                   main, pass_env)
from .progress import progress


# ---------------------------------------------------------------- jobs

class _CountedJobs(click.Group):
    """Counts each job's runs and failures for /metrics (portal_job_runs_total,
    portal_job_failures_total, portal_job_last_success_timestamp_seconds; shared with the servers
    through PROMETHEUS_MULTIPROC_DIR)."""

    def resolve_command(self, ctx, args):
        name, cmd, rest = super().resolve_command(ctx, args)
        ctx.meta["portal.job"] = name
        return name, cmd, rest

    def invoke(self, ctx):
        from ..observe.metrics import job_finished

        ok = False
        try:
            rv = super().invoke(ctx)
            ok = True
            return rv
        except click.exceptions.Exit as exc:
            ok = exc.exit_code == 0
            raise
        finally:
            if ctx.meta.get("portal.job"):
                job_finished(ctx.meta["portal.job"], ok)


@main.group("jobs", cls=_CountedJobs)
def jobs_group() -> None:
    """Housekeeping jobs (run them from cron or a systemd timer)."""


@jobs_group.command("purge-sessions")
@pass_env
def jobs_purge_sessions(env: Env) -> None:
    """Delete sign-in sessions that are idle-expired or past their maximum age, and audit the
    counts of refused POS API calls of minutes that are over (one entry per address and minute)."""
    st = env.settings
    with env.db.write() as s:
        n = accounts.purge_sessions(s, idle_minutes=st.session_idle_minutes, max_hours=st.session_max_hours)
    with env.db.write() as s:
        w = refusals.purge_stale(s)
    click.echo(f"purged {n} expired session(s)")
    if w:
        click.echo(f"audited the refused API calls of {w} address-minute(s)")


@jobs_group.command("checkpoint")
@pass_env
def jobs_checkpoint(env: Env) -> None:
    """Sign the audit chain's head if entries were appended since the newest signed checkpoint
    (run it each minute from cron; servers also do it by themselves every
    PORTAL_AUDIT_CHECKPOINT_SECONDS). Only a head whose entries since the newest checkpoint
    check is signed (else exit 1). Safe to run from several machines at once: one signs."""
    from ..audit.checkpoints import sign_if_moved

    signer = env.db.audit_signer
    if signer is None:
        raise Failed("the key file has no signing key")
    from ..audit.incremental import ChainBroken, precheck

    try:
        trusted = precheck(env.db, signer)  # the long part without the head's lock
        with env.db.write() as s:
            cp = sign_if_moved(s, signer, trusted=trusted)
    except ChainBroken as exc:
        raise Failed(f"{exc}; no checkpoint signed") from None
    if cp is None:
        click.echo("no new audit entries since the newest checkpoint; nothing to sign")
    else:
        click.echo(f"signed checkpoint at entry {cp.seq}: {cp.head_hash}")


@jobs_group.command("daily")
@click.option("--date", "day", metavar="YYYY-MM-DD", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="Run as of this day (Asia/Shanghai calendar); default today. A future day is refused. "
                   "Missed days need no catching up by hand: a run covers every day since the last one "
                   "that went to the end. A day before that one visits every active member.")
@click.option("--full", is_flag=True,
              help="Visit every active member, not only those with something to do (as on the first run "
                   "and after new programme settings); the same result, much longer.")
@pass_env
def jobs_daily(env: Env, day, full: bool) -> None:
    """The membership programme's daily run (schedule it once a day, after midnight).

    With the figures of the programme settings: expires points whose validity is over (two
    years by default), ends memberships without a purchase for the lapse period (24 months),
    upgrades tiers whose thresholds are met and, at a card's validity end, moves a member down
    to the tier their 12-month spend supports (a leader's floor or ceiling still applies).

    It visits only the members with something to do since its last run that went to the end
    (points lots expiring, a lapse day or a card's validity end falling since then, or a purchase,
    points entry, member event or new card since then), found in SQL; every active member on the
    first run, when programme settings changed, or with --full. Members are handled in short
    write transactions (SQLite: batches of at most 100 members or about 0.1 s; PostgreSQL: one
    member each) and every step is idempotent, so a rerun, or two runs at once, is safe. Then the
    classes/RFM summary is rebuilt as of the day in chunks of 1,000 members, each its own short
    transaction, and switched in at once: pages keep the old figures until then; the large
    purchases' follow-ups older than the visits due's 90 days are deleted, 2,000 at a time. Exit status 1 if
    any member failed (they are listed; rerun to retry them: the next run starts from the last
    day that went to the end). On SQLite it ends by gathering the query planner's statistics
    (ANALYZE, sampled).
    """
    from ..membership.jobs import run_daily
    from ..membership.rules import programme_today

    today = programme_today()
    on = day.date() if day else today
    if on > today:
        raise BadInput(f"--date: {on.isoformat()} is in the future (today is {today.isoformat()})")
    with ExitStack() as stack:
        steps: list = []
        report = run_daily(env.db, on, full=full,
                           started=lambda n: steps.append(stack.enter_context(progress(n, "members checked"))),
                           done=lambda n: steps[0](n))
    click.echo(f"daily membership job for {on.isoformat()}")
    click.echo(f"  members visited:     {'every active member (' + report.full + ')' if report.full else 'those due'}")
    click.echo(f"  members checked:     {report.members}")
    click.echo(f"  points expired:      {report.points_expired:,} (on {report.accounts_expired} card account(s))")
    click.echo(f"  upgrades:            {report.upgrades}")
    click.echo(f"  downgrades:          {report.downgrades}")
    click.echo(f"  memberships ended:   {report.ended}")
    click.echo(f"  old follow-ups:      {report.follow_ups_purged:,} deleted (large purchases past the visits' window)")
    click.echo(f"  failures:            {len(report.failures)}")
    click.echo(f"  longest transaction: {report.longest_batch_s * 1000:.0f} ms (members), "
               f"{report.longest_class_s * 1000:.0f} ms (classes summary)")
    if env.db.refresh_statistics():
        click.echo("  planner statistics:  gathered (SQLite ANALYZE)")
    for failure in report.failures:
        click.echo(f"failed: {failure}", err=True)
    if report.failures:
        n = sum(f.startswith("membership ") for f in report.failures)
        raise Failed(f"{n} member(s) failed; rerun to retry them" if n else
                     "the classes summary was not rebuilt (the page reads the facts meanwhile); rerun to retry")


@jobs_group.command("coupons")
@pass_env
def jobs_coupons(env: Env) -> None:
    """Coupons (seed 001), once a day after midnight: expire unused coupons past their last day,
    then issue today's birthday coupons by tier (once a year per member). Idempotent."""
    from ..membership.coupons import run_coupon_jobs

    report = run_coupon_jobs(env.db, env.vault)
    click.echo(f"coupons: {report.expired} expired, {report.birthday} birthday coupon(s) issued")


@jobs_group.command("alerts")
@click.option("--days", default=7, show_default=True, type=click.IntRange(1, 90), help="How far back to look.")
@pass_env
def jobs_alerts(env: Env, days: int) -> None:
    """Put new auditor alerts into every auditor's inbox (schedule it every few minutes).

    The same alerts as /audit/alerts, with the PORTAL_ALERT_* thresholds and
    PORTAL_GRANT_REASON_MIN; each alert is posted once, so a rerun posts only what is new.
    """
    from ..audit import alerts

    t = alerts.Thresholds.from_settings(env.settings)
    with env.db.write() as s:
        found = alerts.compute(s, t, days=days)
        new = alerts.post_to_auditors(s, found)
    click.echo(f"{len(found)} alert(s) in the last {days} day(s); {new} new, posted to the auditors' inbox")


@jobs_group.command("overdue-reminders")
@pass_env
def jobs_overdue_reminders(env: Env) -> None:
    """Put today's overdue reminder into the inbox (schedule it once a day, in the morning).

    Each salesperson with overdue orders among their customers gets one notice (how many, how much
    is owed, the oldest's days overdue); each leader one summing up their units. Once per day
    (Asia/Shanghai calendar): a second run, or a second process at the same moment, posts nothing.
    """
    from ..credit.reminders import post_overdue_reminders
    from ..membership.rules import programme_today

    with env.db.write() as s:
        report = post_overdue_reminders(s, programme_today())
    if report.already_done:
        click.echo(f"overdue reminders for {report.day.isoformat()} were already posted; nothing to do")
    else:
        click.echo(f"overdue reminders for {report.day.isoformat()}: {report.salespeople} salespeople, "
                   f"{report.leaders} leaders notified")


# ---------------------------------------------------------------- bench

@main.group("bench")
def bench_group() -> None:
    """Benchmark support (see `make bench` and BENCHMARKS.md)."""


@bench_group.command("seed")
@click.argument("count", type=click.IntRange(1, 10_000_000))
@click.option("--audit-per-file", default=3, show_default=True, type=click.IntRange(0, 20),
              help="Chained audit entries written per file (create, view, list, ...).")
@click.option("--batch", default=5000, show_default=True, type=click.IntRange(1, 100_000),
              help="Files per transaction.")
@click.option("--seed", "rnd_seed", default=1, show_default=True, type=int,
              help="Random seed (names, addresses, owners); numbers stay unique whatever it is.")
@click.option("--workers", default=None, type=click.IntRange(0, 64),
              help="Processes that generate and encrypt while the main one writes "
                   "[default: one per core beyond the first; 0: none].")
@click.option("--password-stdin", is_flag=True,
              help="Password for bench users, if regions must be added (else as `portal demo`).")
@pass_env
def bench_seed(env: Env, count: int, audit_per_file: int, batch: int, rnd_seed: int,
               workers: int | None, password_stdin: bool) -> None:
    """Add COUNT realistic encrypted customer files for the demo salespeople, with audit rows.

    Needs the demo company (`portal demo`). Each run adds to what is there; file numbers,
    mobile and ID numbers stay unique. A region holds 99,999 file numbers: past that,
    regions with a team of four salespeople and a leader are added (password as `portal demo`).
    """
    from .. import demo as demo_data
    from ..bench import seed as bench

    password = demo_data.demo_password(_read_secret_stdin() if password_stdin else None)
    with progress(count, "seeding customer files") as step:
        try:
            report = bench.seed_files(env.db, env.vault, count, audit_per_file=audit_per_file,
                                      batch=batch, seed=rnd_seed, password=password,
                                      workers=workers, progress=step)
        except bench.SeedError as exc:
            raise Failed(str(exc)) from None
    if report.regions_added:
        click.echo(f"added region(s) {', '.join(report.regions_added)} (file numbers run to 99,999 per region)")
    click.echo(f"seeded {report.files} customer files and {report.audit_entries} audit entries "
               f"in {report.seconds:.1f} s ({report.files_per_second:,.0f} files/s); "
               f"{report.total_files} files in all")


@jobs_group.command("audit-summary")
@pass_env
def jobs_audit_summary(env: Env) -> None:
    """Catch the audit analytics' summary up with the log (schedule it every few minutes, or run
    it after a bulk load): per day and user, the entries appended since its last run. The page
    does it too when many entries wait; safe to run from several processes at once."""
    from ..reports import audit_days

    with env.db.write() as s:
        n = audit_days.catch_up(s)
    click.echo(f"audit summary: {n} new entr{'y' if n == 1 else 'ies'} counted")
