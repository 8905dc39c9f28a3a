"""Which backups a retention schedule keeps: the newest of each of the last N days, weeks, months.

`choose()` is pure: given the backups' times it says which to keep and why. Each rule looks at
every backup on its own (a backup can be a day's and a week's at once), days, ISO weeks and
months are counted in the portal's time zone, and a period with no backup is not counted
(keeping 7 daily backups keeps the last 7 days that have one). The newest backup is always
kept, whatever the numbers say.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Hashable, Iterable
from zoneinfo import ZoneInfo

from . import container
from .container import BackupError
from .service import PREFIX


@dataclass(frozen=True)
class Schedule:
    daily: int = 7
    weekly: int = 4
    monthly: int = 12


def _periods(local: datetime) -> dict[str, tuple]:
    iso = local.isocalendar()
    return {"daily": (local.year, local.month, local.day), "weekly": (iso[0], iso[1]),
            "monthly": (local.year, local.month)}


def choose(backups: Iterable[tuple[Hashable, datetime]], schedule: Schedule,
           tz: str = "Asia/Shanghai") -> dict[Hashable, list[str]]:
    """{backup: [the rules that keep it]} for the backups to keep; the others may go."""
    zone = ZoneInfo(tz)
    ordered = sorted(backups, key=lambda b: b[1], reverse=True)  # newest first
    keep: dict[Hashable, list[str]] = {}
    if ordered:
        keep[ordered[0][0]] = ["newest"]
    for rule, limit in (("daily", schedule.daily), ("weekly", schedule.weekly),
                        ("monthly", schedule.monthly)):
        seen: set[tuple] = set()
        for ident, at in ordered:
            if len(seen) >= limit:
                break
            period = _periods(at.astimezone(zone))[rule]
            if period in seen:
                continue
            seen.add(period)
            keep.setdefault(ident, []).append(rule)
    return keep


@dataclass
class Found:
    path: Path
    created: datetime


def _parse_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=ZoneInfo("UTC"))


def list_backups(directory: Path) -> tuple[list[Found], list[tuple[Path, str]]]:
    """The backups in `directory` (by their manifest's time), and the files named like backups
    that cannot be read (left alone by prune, reported)."""
    found, unreadable = [], []
    for p in sorted(Path(directory).glob(f"{PREFIX}*{container.SUFFIX}")):
        if not p.is_file():
            continue
        try:
            found.append(Found(p, _parse_time(container.read_header(p).manifest["created"])))
        except (BackupError, KeyError, ValueError, TypeError, OSError) as exc:
            unreadable.append((p, str(exc) or type(exc).__name__))
    return found, unreadable


@dataclass
class PrunePlan:
    keep: list[tuple[Found, list[str]]]
    remove: list[Found]
    unreadable: list[tuple[Path, str]]


def plan(directory: Path, schedule: Schedule, tz: str) -> PrunePlan:
    found, unreadable = list_backups(directory)
    kept = choose(((f.path, f.created) for f in found), schedule, tz)
    by_time = sorted(found, key=lambda f: f.created, reverse=True)
    return PrunePlan([(f, kept[f.path]) for f in by_time if f.path in kept],
                     [f for f in by_time if f.path not in kept], unreadable)
