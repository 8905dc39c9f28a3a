"""The `portal` command's base: errors, settings, the main group; commands live beside it.

The command line: migrate, serve, load the demo, manage units and users, import, audit, keys.

Every command works on the database and key file named by the PORTAL_* settings. Errors are
one line on stderr and a non-zero exit (2 for bad input), never a traceback; set
PORTAL_DEBUG=1 to see the traceback of an unexpected error.
"""
from __future__ import annotations

import os
import sys

import click
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url

from ..accounts import service as accounts
from ..accounts.actor import Actor
from ..config import Settings
from ..customers import service as customers
from ..customers.rules import InvalidField
from ..db import Database
from ..org import service as org
from ..vault import KeyRing, Vault, VaultError

CLI = Actor.system("cli")


class BadInput(click.ClickException):
    """Input the command refuses (exit 2, like a usage error, but without the usage text)."""

    exit_code = 2


class Failed(click.ClickException):
    exit_code = 1


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class PortalGroup(click.Group):
    """Turns domain errors raised anywhere below into one-line messages."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # Output piped into `head` and the like: stop quietly (as the Python docs advise).
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            raise click.exceptions.Exit(1) from None
        except (org.OrgError, accounts.AccountError) as exc:
            raise BadInput(f"{exc.field}: {exc}") from None
        except customers.InvalidInput as exc:
            raise BadInput(str(exc)) from None
        except InvalidField as exc:
            raise BadInput(f"{exc.field}: {exc.message}") from None
        except VaultError as exc:
            raise Failed(f"key problem: {exc}") from None
        except sa_exc.OperationalError as exc:
            # Only the driver's message: the statement and its parameters may hold personal data.
            msg = _first_line(exc.orig) if exc.orig is not None else "database error"
            if "no such table" in msg or "does not exist" in msg:
                raise Failed("the database is not set up; run `portal db upgrade` first") from None
            raise Failed(f"database error: {msg}") from None
        except sa_exc.SQLAlchemyError as exc:
            msg = _first_line(exc.orig) if getattr(exc, "orig", None) is not None else type(exc).__name__
            raise Failed(f"database error: {msg}") from None
        except OSError as exc:
            raise Failed(f"{exc.strerror or exc}{': ' + str(exc.filename) if exc.filename else ''}") from None
        except Exception as exc:
            if Settings.from_env().debug:
                raise
            raise Failed(f"unexpected {type(exc).__name__}: {_first_line(exc)} "
                         "(set PORTAL_DEBUG=1 for the traceback)") from None


class Env:
    """Settings, and the database and vault opened on first use (closed at exit)."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._db: Database | None = None
        self._vault: Vault | None = None

    @property
    def db(self) -> Database:
        if self._db is None:
            from ..audit.checkpoints import signer_from
            ring = KeyRing.load_or_create(self.settings.key_file)
            self._db = Database(self.settings.database_url,
                                audit_signer=signer_from(ring, every=self.settings.audit_checkpoint_every,
                                                         seconds=self.settings.audit_checkpoint_seconds))
        return self._db

    @property
    def vault(self) -> Vault:
        if self._vault is None:
            path = self.settings.key_file
            if not path.exists():
                raise Failed(f"no key file at {path}; run `portal db upgrade` first")
            self._vault = Vault(KeyRing.load(path))
        return self._vault

    def close(self) -> None:
        if self._db is not None:
            self._db.dispose()


pass_env = click.make_pass_decorator(Env)


def _safe_url(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


def _read_secret_stdin() -> str:
    line = sys.stdin.readline()
    value = line.rstrip("\r\n")
    if not value:
        raise BadInput("no password on standard input")
    return value


def _prompt_password() -> str:
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group(cls=PortalGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.pass_context
def main(ctx: click.Context) -> None:
    """VIP Portal administration.

    Settings come from PORTAL_* environment variables, chiefly PORTAL_DATABASE_URL
    (default sqlite:///./var/portal.db) and PORTAL_KEY_FILE (default ./var/keys.json).
    Start with `portal db upgrade`, then `portal demo` or `portal org add` / `portal user add`,
    then `portal serve`.
    """
    env = Env()
    ctx.obj = env
    ctx.call_on_close(env.close)


# ---------------------------------------------------------------- output

def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    """A plain text table; widths count East Asian wide characters as two columns."""
    import unicodedata

    def width(text: str) -> int:
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    cols = list(zip(header, *rows))
    widths = [max(width(str(c)) for c in col) for col in cols]

    def line(cells) -> str:
        return "  ".join(str(c) + " " * (w - width(str(c))) for c, w in zip(cells, widths)).rstrip()

    click.echo(line(header))
    click.echo("  ".join("-" * w for w in widths))
    for r in rows:
        click.echo(line(r))


