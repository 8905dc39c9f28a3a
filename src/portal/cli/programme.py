"""`portal` commands: the membership programme's settings profiles."""
from __future__ import annotations

from datetime import date

import click

from ..membership import profiles
from ..membership import programme as store
from .base import CLI, BadInput, Env, _table, main, pass_env


@main.group("programme")
def programme_group() -> None:
    """The membership programme's figures (versioned settings; see /programme/settings)."""


@programme_group.command("profiles")
def programme_profiles() -> None:
    """List the settings profiles (the programme as each seed business writes it) and their figures."""
    for p in profiles.PROFILES:
        settings = profiles.profile_settings(p.name)
        click.echo(f"{p.name}: {p.title}")
        click.echo(f"  {p.source}")
        changed = store.changed_fields(profiles.profile_settings("liquor"), settings)
        rows = [(name, _shown(settings, name)) for name in changed]
        if rows:
            _table(("figure", "value"), rows)
        click.echo("")


def _shown(settings, name: str) -> str:
    value = getattr(settings, name)
    if name in store.MONEY_FIELDS:
        return "¥" + store.yuan_text(value)
    if name in store.DISCOUNT_FIELDS:
        return store.zhe_text(value) + "折"
    if name == "catalogue":
        return "; ".join(f"{i.code} {i.points} points = ¥{store.yuan_text(i.value_fen)}" for i in value)
    return str(value)


@programme_group.command("apply")
@click.argument("profile")
@click.option("--from", "day", required=True, metavar="YYYY-MM-DD", type=click.DateTime(formats=["%Y-%m-%d"]),
              help="The day the profile's figures take effect (today or later, China time).")
@click.option("--reason", required=True, help="Why the programme changes (recorded with the version).")
@pass_env
def programme_apply(env: Env, profile: str, day, reason: str) -> None:
    """Save PROFILE's figures as a new version of the programme from --from (audited)."""
    try:
        settings = profiles.profile_settings(profile, date(day.year, day.month, day.day))
    except KeyError:
        raise BadInput(f"no profile {profile!r}; see `portal programme profiles`") from None
    with env.db.write() as s:
        try:
            version = store.save_version(s, CLI, settings, reason)
        except store.InvalidInput as exc:
            raise BadInput("; ".join(f"{k}: {v}" for k, v in exc.errors.items())) from None
    click.echo(f"programme version {version.id}: profile {profile} in effect from {version.effective_from}")
