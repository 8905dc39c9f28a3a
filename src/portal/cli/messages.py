"""`portal` commands: messages to members (the send job, the sending rules, SMS replies)."""
from __future__ import annotations

from dataclasses import asdict, fields, replace

import click

from .base import BadInput, CLI, Env, main, pass_env
from .jobs import jobs_group


@jobs_group.command("send")
@click.option("--batch", default=50, show_default=True, type=click.IntRange(1, 1000),
              help="Messages claimed per transaction.")
@click.option("--no-occasions", is_flag=True,
              help="Only send; do not first write today's birthday wishes and expiry reminders.")
@pass_env
def jobs_send(env: Env, batch: int, no_occasions: bool) -> None:
    """Send the messages to members that are due (run it every few minutes from cron or a timer).

    First writes today's occasions into the outbox, each once per member however often it runs:
    birthday wishes on the day (with the birthday benefit) and points-expiry reminders a month
    before the points expire. Then claims due messages (safe with several `jobs send` at once:
    each message is sent by one of them), sends e-mail through PORTAL_SMTP_HOST (else into
    PORTAL_MAIL_DIR) and SMS through PORTAL_SMS_GATEWAY_URL (else into PORTAL_SMS_FILE), and
    records each outcome. Failures are retried with back-off; no SMS goes out in the quiet hours
    and no channel beyond its rate per minute (`portal messages rules`). Prints counts only.
    """
    from ..membership.rules import programme_today
    from ..messages.channels import channels_from
    from ..messages.occasions import enqueue_occasions
    from ..messages.sender import send_due

    st = env.settings
    if not no_occasions:
        occ = enqueue_occasions(env.db, env.vault, programme_today())
        click.echo(f"written: {occ.birthdays} birthday wish(es), {occ.expiry_reminders} expiry reminder(s)"
                   f" ({occ.skipped} already written or without a consented channel)")
    report = send_due(env.db, env.vault, channels_from(st), public_url=st.public_url, batch=batch)
    click.echo(f"sent {report.sent}, to retry {report.retried}, failed {report.failed}, "
               f"suppressed {report.suppressed}")
    for channel, why in report.held.items():
        click.echo(f"{channel}: held back ({why})")


@main.group("messages")
def messages_group() -> None:
    """Messages to members: the sending rules, SMS replies."""


_RULE_HELP = {
    "quiet_start": "No SMS from this local time (HH:MM)", "quiet_end": "... until this local time (HH:MM)",
    "sms_per_minute": "SMS per minute, all senders together", "email_per_minute": "E-mails per minute",
    "max_attempts": "Tries before a message fails", "backoff_seconds": "First retry after (doubling)",
    "backoff_max_seconds": "Longest wait between tries", "lease_seconds": "A claim older than this is taken again",
    "expiry_notice_days": "Points-expiry reminder this many days ahead",
}


@messages_group.command("rules")
@click.option("--set", "changes", multiple=True, metavar="NAME=VALUE",
              help="Change a rule (repeatable), e.g. --set quiet_start=21:30 --set sms_per_minute=30.")
@click.option("--reason", default="", help="Why (required with --set; audited).")
@pass_env
def messages_rules(env: Env, changes: tuple[str, ...], reason: str) -> None:
    """Show the sending rules in force, or save a new version of them (audited, from now on)."""
    from ..messages.rules import MessageRules, rules_at, save_rules

    with env.db.write() as s:
        rules = rules_at(s)
        if changes:
            if len(reason.strip()) < 5:
                raise BadInput("--reason: say why (at least 5 characters)")
            kinds = {f.name: f.type for f in fields(MessageRules)}
            new = {}
            for change in changes:
                name, _, value = change.partition("=")
                if name not in kinds:
                    raise BadInput(f"--set: unknown rule {name!r} (known: {', '.join(kinds)})")
                try:
                    new[name] = int(value) if kinds[name] in ("int", int) else value
                except ValueError:
                    raise BadInput(f"--set {name}: a whole number") from None
            try:
                rules = replace(rules, **new)
            except ValueError as exc:
                raise BadInput(f"--set: {exc}") from None
            save_rules(s, CLI, rules, note=reason.strip())
            click.echo("saved a new version of the sending rules")
    for name, value in asdict(rules).items():
        click.echo(f"{name:22} {value!s:8} {_RULE_HELP.get(name, '')}")


@messages_group.command("sms-reply")
@click.option("--mobile", required=True, help="The number the reply came from.")
@click.option("--text", required=True, help="The reply's text, e.g. T or 退订.")
@pass_env
def messages_sms_reply(env: Env, mobile: str, text: str) -> None:
    """Record a member's reply to an SMS, as the gateway reports it: an opt-out keyword (T, TD,
    退订, STOP) withdraws SMS consent for every purpose (for a gateway's reply callback)."""
    from ..messages.contact import sms_reply

    with env.db.write() as s:
        n = sms_reply(s, env.vault, mobile, text)
    click.echo(f"opt-out recorded for {n} file(s)" if n else "no opt-out recorded")
