"""A hot path's prebuilt Core statement run on the driver's own cursor.

SQLAlchemy compiles a statement once and caches it, but each execution still builds an
execution context, runs the connection's events and wraps the cursor in a result: about as much
CPU as the statement itself for a page's one indexed read. `Prebuilt` keeps what that work
produces for a statement and a dialect (the SQL text with every value a bound parameter, the
parameters' order and their type conversions, the result columns' conversions), and runs it on
the driver's cursor of the caller's connection, inside the caller's transaction (begun first, so
the statement reads in the caller's snapshot and the connection is returned as usual).

The values go through the same type processors SQLAlchemy applies (the UTC datetime column, UUIDs
stored as text on SQLite, ...), so a row reads exactly as `conn.execute(stmt, params).all()`
would give it; tests/test_customer_lists.py compares the two.
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection


class _Compiled:
    __slots__ = ("sql", "compiled", "order", "binds", "results")

    def __init__(self, stmt, dialect):
        # Expanding IN lists of the statement itself (constants) become plain parameters. (Not
        # beside a required parameter: rendering them asks for its value; write such a list as
        # literal()s, as policy.scope.arm_clause does.)
        c = stmt.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
        self.sql = str(c)
        self.compiled = c
        self.order = tuple(c.positiontup) if c.positional else None
        # name -> conversion of a bound value for the driver (None: passed as it is)
        self.binds = {}
        for bind, name in c.bind_names.items():
            proc = bind.type.dialect_impl(dialect).bind_processor(dialect)
            if proc is not None:
                self.binds[c.escaped_bind_names.get(name, name)] = proc
        # Conversions of the columns a SELECT returns (a text() statement's values come as the
        # driver gives them).
        self.results = tuple(col.type.dialect_impl(dialect).result_processor(dialect, None)
                             for col in getattr(stmt, "selected_columns", ()))


def driver_error(dialect, fairy, exc: Exception, sql: str, cursor=None, invalidate=None) -> sa_exc.DBAPIError:
    """A driver's error as SQLAlchemy raises it (sqlalchemy.exc.OperationalError, IntegrityError,
    ...; no parameters in the message); a lost connection is invalidated (`invalidate`, by default
    the pooled connection's own), so the pool does not hand it out again."""
    lost = dialect.is_disconnect(exc, fairy.dbapi_connection, cursor)
    err = sa_exc.DBAPIError.instance(sql, None, exc, dialect.loaded_dbapi.Error, hide_parameters=True,
                                     connection_invalidated=lost, dialect=dialect, ismulti=False)
    if lost:
        (invalidate or fairy.invalidate)(err)
    return err


class RawTransaction:
    """A pooled driver connection (`fairy`: SQLAlchemy's pool proxy) in a transaction begun and
    ended on the driver itself (portal.db.Database.raw_read / raw_write), and its dialect: what
    `Prebuilt` needs to run in it (`all` and `run` take it where they take a Connection)."""

    __slots__ = ("fairy", "dialect")

    def __init__(self, fairy, dialect):
        self.fairy = fairy
        self.dialect = dialect


class Prebuilt:
    """`Prebuilt(stmt).all(conn, params)`: `conn.execute(stmt, params).all()` as plain tuples;
    `.run(conn, params)`: `conn.execute(stmt, params)` for a statement that returns no rows.
    `conn`: a Core Connection, or a RawTransaction."""

    __slots__ = ("stmt", "_by_dialect")

    def __init__(self, stmt):
        self.stmt = stmt
        self._by_dialect: dict[tuple[str, str, str], _Compiled] = {}

    def _compiled(self, dialect) -> _Compiled:
        key = (dialect.name, dialect.driver, dialect.paramstyle)  # the SQL text depends on all three
        c = self._by_dialect.get(key)
        if c is None:
            c = self._by_dialect[key] = _Compiled(self.stmt, dialect)
        return c

    def _execute(self, conn, params: dict[str, Any], fetch: bool) -> tuple[_Compiled, list]:
        if conn.__class__ is RawTransaction:  # Database.raw_read() / raw_write(): begun already
            return self._on_driver(conn.dialect, conn.fairy, params, fetch)
        if not conn.in_transaction():
            conn.begin()  # the caller's transaction (on SQLite its BEGIN: one snapshot for the page)
        return self._on_driver(conn.dialect, conn.connection, params, fetch, conn.invalidate)

    def _on_driver(self, dialect, fairy, params: dict[str, Any], fetch: bool,
                   invalidate=None) -> tuple[_Compiled, list]:
        """Run on the pooled driver connection `fairy` (in whatever transaction it is in)."""
        c = self._compiled(dialect)
        values = c.compiled.construct_params(params)
        for name, proc in c.binds.items():
            v = values.get(name)
            if v is not None:
                values[name] = proc(v)
        dbapi_conn = fairy.dbapi_connection
        cur = dbapi_conn.cursor()
        try:
            cur.execute(c.sql, tuple(values[n] for n in c.order) if c.order is not None else values)
            return c, cur.fetchall() if fetch else []
        except dialect.loaded_dbapi.Error as exc:
            raise driver_error(dialect, fairy, exc, c.sql, cur, invalidate) from exc
        finally:
            cur.close()

    def run(self, conn: Connection, params: dict[str, Any]) -> None:
        """An INSERT or UPDATE without RETURNING: `conn.execute(stmt, params)`."""
        self._execute(conn, params, fetch=False)

    def all(self, conn: Connection, params: dict[str, Any] | None = None) -> list[tuple]:
        return self._rows(*self._execute(conn, params or {}, fetch=True))

    def run_raw(self, raw: "RawTransaction", params: dict[str, Any]) -> None:
        """`run()` inside a `RawTransaction` (portal.db.Database.raw_write)."""
        self._on_driver(raw.dialect, raw.fairy, params, fetch=False)

    def all_raw(self, raw: "RawTransaction", params: dict[str, Any] | None = None) -> list[tuple]:
        """`all()` inside a `RawTransaction` (portal.db.Database.raw_write)."""
        return self._rows(*self._on_driver(raw.dialect, raw.fairy, params or {}, fetch=True))

    @staticmethod
    def _rows(c: _Compiled, rows: list) -> list[tuple]:
        procs = [(i, p) for i, p in enumerate(c.results) if p is not None]
        if not procs or not rows:
            return [tuple(r) for r in rows]
        # Column by column (each conversion mapped over its column, the rows zipped back once)
        # rather than a list built and converted per row.
        cols = list(zip(*rows))
        for i, p in procs:
            cols[i] = tuple(map(p, cols[i]))
        return list(zip(*cols))
