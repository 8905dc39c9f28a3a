"""Progress of a long command: click's bar on a terminal, a few plain lines in a log.

When stderr is a terminal the command draws click's progress bar there (position and time
left). When it is a file or a pipe (cron, systemd, CI) it writes one plain line at each tenth
of the work instead ("importing customer files: 30% (300 of 1,000)"), so a log shows the job
moving without a line per row; a job of fewer than `QUIET_BELOW` items writes none. Results
stay on stdout either way, so a script reading them sees no difference.
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Callable, Iterator

import click

QUIET_BELOW = 100  # items: a shorter job ends before a line would help anyone


def on_terminal() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(length: int, label: str) -> Iterator[Callable[[int], None]]:
    """Yields `step(n)`: n more of `length` items are done."""
    if length <= 0:
        yield lambda n=1: None
        return
    if on_terminal():
        with click.progressbar(length=length, label=label, file=sys.stderr, show_pos=True,
                               show_eta=True) as bar:
            yield bar.update
        return
    done, said = 0, 0

    def step(n: int = 1) -> None:
        nonlocal done, said
        done += n
        tenth = min(10, done * 10 // length)
        if tenth > said and length >= QUIET_BELOW:
            said = tenth
            click.echo(f"{label}: {tenth * 10}% ({done:,} of {length:,})", err=True)

    yield step
