"""Calendar buckets in SQL on both databases: the month, day and hour of a date or UTC datetime.

Times are stored as naive UTC; the business reads them in Asia/Shanghai, which has no daylight
saving, so shifting by +8 hours is exact.
"""
from __future__ import annotations

from sqlalchemy import Integer, String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

SHANGHAI_HOURS = 8


class _Bucket(FunctionElement):
    inherit_cache = True

    def __init__(self, col, shift_hours: int = 0):
        self.shift_hours = shift_hours
        super().__init__(col)


class month_of(_Bucket):
    """'YYYY-MM' of a date, or of a UTC datetime shifted by ``shift_hours``."""
    type = String()
    name = "month_of"
    inherit_cache = True


class day_of(_Bucket):
    """'YYYY-MM-DD' (as text on both databases)."""
    type = String()
    name = "day_of"
    inherit_cache = True


class hour_of(_Bucket):
    """The hour 0..23 of a UTC datetime shifted by ``shift_hours``."""
    type = Integer()
    name = "hour_of"
    inherit_cache = True


class weekday_of(_Bucket):
    """0 = Sunday .. 6 = Saturday, of a shifted datetime."""
    type = Integer()
    name = "weekday_of"
    inherit_cache = True


_SQLITE = {"month_of": "%Y-%m", "day_of": "%Y-%m-%d", "hour_of": "%H", "weekday_of": "%w"}
_PG = {"month_of": "YYYY-MM", "day_of": "YYYY-MM-DD"}


def _arg(element, compiler, **kw) -> str:
    return compiler.process(list(element.clauses)[0], **kw)


@compiles(_Bucket, "sqlite")
def _sqlite(element, compiler, **kw):
    shift = f", '+{element.shift_hours} hours'" if element.shift_hours else ""
    text = f"strftime('{_SQLITE[element.name]}', {_arg(element, compiler, **kw)}{shift})"
    return f"CAST({text} AS INTEGER)" if element.name in ("hour_of", "weekday_of") else text


@compiles(_Bucket, "postgresql")
def _pg(element, compiler, **kw):
    col = _arg(element, compiler, **kw)
    if element.shift_hours:
        col = f"(({col}) + interval '{int(element.shift_hours)} hours')"
    if element.name == "hour_of":
        return f"CAST(EXTRACT(HOUR FROM {col}) AS INTEGER)"
    if element.name == "weekday_of":
        return f"CAST(EXTRACT(DOW FROM {col}) AS INTEGER)"
    return f"to_char({col}, '{_PG[element.name]}')"
