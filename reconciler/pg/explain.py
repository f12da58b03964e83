"""EXPLAIN of the spec's queries, and the hypothetical indexes of plan's what-if (HypoPG).

One job: run a query of the spec the only ways reconciler ever runs one, and hand back the
JSON plan. Query SQL is untrusted:
- it goes to the server through the extended query protocol only (Parse/Bind/Execute), which
  refuses a string holding more than one statement;
- it runs inside EXPLAIN, in a transaction that is READ ONLY (unless `writable`, which only
  `verify --analyze --allow-writes` and a throwaway database ask for) and always rolled back,
  under a statement timeout and a lock timeout;
- parameters are bound, never spliced: sample values are sent as untyped text, so the server
  infers each parameter's type from the query, as it does for literals.

Generic plans (a query with $n and no sample values) go through PREPARE + EXECUTE with
`plan_cache_mode = force_generic_plan` (Dexter's method before PostgreSQL 16) on every version:
EXPLAIN (GENERIC_PLAN) needs its $n left unbound, which only the simple query protocol
allows, and that protocol runs every statement of a string. The plan is the same.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import psycopg
from psycopg import RawCursor

from ..core.ident import quote_ident
from ..errors import DatabaseError
from ..core.sqltext import placeholder_count


class QueryRefused(DatabaseError):
    """The server refused a query of the spec (syntax, unknown table, wrong parameters), or
    (`by_server` false) reconciler did before sending it."""

    def __init__(self, message: str, hint: str | None = None, by_server: bool = True):
        super().__init__(message, hint)
        self.by_server = by_server
        self.position: int | None = None     # explain_all: which query


def bind_value(v: Any) -> str | None:
    """A YAML sample value as untyped text: the server casts it to the parameter's type."""
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True)
class Hypopg:
    version: str
    schema: str
    can_hide: bool           # hypopg_hide_index: HypoPG 1.4.0+


def hypopg_info(conn: psycopg.Connection) -> Hypopg | None:
    """HypoPG as installed in this database (never installed by us on a real target)."""
    row = conn.execute(
        "SELECT e.extversion, n.nspname, EXISTS (SELECT 1 FROM pg_proc p WHERE p.proname = 'hypopg_hide_index' "
        "AND p.pronamespace = e.extnamespace) FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace "
        "WHERE e.extname = 'hypopg'").fetchone()
    if conn.info.transaction_status != 0 and conn.autocommit is False:
        conn.rollback()
    return Hypopg(row[0], row[1], bool(row[2])) if row else None


def index_ancestors(conn: psycopg.Connection, names: Iterable[str]) -> dict[str, set[str]]:
    """For each index name that is a partition's index: the names of the partitioned indexes it
    is attached to (EXPLAIN names the partition's index, the spec names the parent's)."""
    names = sorted(set(names))
    if not names:
        return {}
    rows = conn.execute(
        "SELECT c.relname, a.relname FROM pg_class c CROSS JOIN LATERAL pg_partition_ancestors(c.oid) t "
        "JOIN pg_class a ON a.oid = t.relid WHERE c.relkind = 'i' AND c.relispartition AND c.relname = ANY(%s) "
        "AND a.oid <> c.oid", (names,)).fetchall()
    out: dict[str, set[str]] = {}
    for child, parent in rows:
        out.setdefault(child, set()).add(parent)
    return out


class ExplainSession:
    """EXPLAINs in one transaction that is always rolled back (READ ONLY unless `writable`).

    The connection must be in autocommit mode: the session issues BEGIN and ROLLBACK itself,
    and a refused query rolls back and opens a fresh transaction so that the next one runs."""

    def __init__(self, conn: psycopg.Connection, *, statement_timeout_ms: int = 30000, lock_timeout_ms: int = 3000,
                 writable: bool = False):
        if not conn.autocommit:
            raise ValueError("ExplainSession needs an autocommit connection")
        self.conn = conn
        self.statement_timeout_ms = statement_timeout_ms
        self.lock_timeout_ms = lock_timeout_ms
        self.writable = writable
        self._cur = RawCursor(conn)
        self._prepared = 0                  # names handed out: rc_query_0, rc_query_1, ...
        self._known: list[str] = []         # PREPAREd for sure
        self._maybe: list[str] = []         # sent in a pipeline that failed somewhere
        conn.prepare_threshold = None       # psycopg's own prepared statements would share the session

    def __enter__(self) -> "ExplainSession":
        self._begin()
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _begin(self) -> None:
        self._printing_plans = False        # plan_trees' SET LOCALs end with each transaction
        # READ WRITE said out loud: the read-only commands' sessions default to read-only
        self.conn.execute("BEGIN READ WRITE" if self.writable else "BEGIN READ ONLY")
        # SET LOCAL: gone with the rollback, nothing leaks into a pooled session
        self.conn.execute(f"SET LOCAL statement_timeout = {int(self.statement_timeout_ms)}")
        self.conn.execute(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}")
        self.conn.execute("SET LOCAL plan_cache_mode = force_generic_plan")

    def restart(self) -> None:
        self._rollback()
        self._begin()

    def _rollback(self) -> None:
        try:
            self.conn.execute("ROLLBACK")
        except psycopg.OperationalError:
            pass

    def close(self) -> None:
        """Deallocate our prepared statements (they outlive a rollback) by name, inside the
        transaction while it is usable (behind a transaction pooler that is the only time the
        server session is surely ours; never DEALLOCATE ALL, which would take others' too),
        then roll back."""
        known, self._known = self._known, []
        maybe, self._maybe = self._maybe, []
        if known and self.conn.info.transaction_status == psycopg.pq.TransactionStatus.INTRANS:
            try:
                with self.conn.pipeline():
                    for name in known:
                        self.conn.execute(f"DEALLOCATE {name}")
                known = []
            except psycopg.Error:
                pass
        self._rollback()
        for name in known + maybe:   # best effort: a name may never have been prepared
            try:
                self.conn.execute(f"DEALLOCATE {name}")
            except psycopg.Error:
                pass

    def run(self, sql: str, params: list | tuple = ()) -> list[tuple]:
        """One trusted statement of ours (hypopg calls, savepoints), in this transaction."""
        cur = self.conn.execute(sql, list(params) or None)
        return cur.fetchall() if cur.description else []

    def explain(self, sql: str, params: tuple | list | None = None, *, analyze: bool = False) -> tuple[Any, str]:
        """(the EXPLAIN JSON document, mode). Raises QueryRefused with the server's words,
        after which the session has a fresh transaction."""
        options = "ANALYZE, BUFFERS, FORMAT JSON" if analyze else "FORMAT JSON"
        wanted = placeholder_count(sql)
        try:
            if params is not None:
                if len(params) != wanted:
                    raise QueryRefused(f"params gives {len(params)} value(s) but the SQL uses {wanted} "
                                       f"parameter(s) ($1..${wanted})" if wanted else
                                       f"params gives {len(params)} value(s) but the SQL uses no $n parameter",
                                       by_server=False)
                row = self._cur.execute(f"EXPLAIN ({options}) {sql}", [bind_value(p) for p in params],
                                        binary=True).fetchone()
                return row[0], "custom plan (params)"
            if wanted == 0:
                row = self._cur.execute(f"EXPLAIN ({options}) {sql}", [], binary=True).fetchone()
                return row[0], "plan"
            if analyze:
                raise QueryRefused("cannot be measured without sample values for its parameters (params)",
                                   by_server=False)
            name = f"rc_query_{self._prepared}"
            self._prepared += 1
            self._cur.execute(f"PREPARE {name} AS {sql}", [], binary=True)
            self._known.append(name)
            args = ", ".join(["NULL"] * wanted)   # values are ignored by a forced generic plan
            row = self._cur.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({args})", [], binary=True).fetchone()
            return row[0], "generic plan"   # deallocated all at once by close(): one round trip less each
        except QueryRefused:
            raise
        except psycopg.errors.QueryCanceled as e:
            self.restart()
            raise QueryRefused(f"cancelled after {self.statement_timeout_ms} ms (statement or lock timeout): "
                               f"{(e.diag.message_primary or str(e)).strip()}") from None
        except psycopg.OperationalError as e:
            raise DatabaseError(f"lost the connection while explaining a query: {str(e).strip()}") from None
        except psycopg.Error as e:
            self.restart()
            msg = (e.diag.message_primary or str(e)).strip()
            if e.diag.sqlstate:
                msg += f" (SQLSTATE {e.diag.sqlstate})"
            raise QueryRefused(msg) from None

    def plan_trees(self, sql: str, params: tuple | list | None = None) -> list[str]:
        """The planner's node trees for `sql` (without running it): `debug_print_plan` sends each
        tree this session plans as a LOG message; the EXPLAIN it rides on executes nothing. The
        settings are SET LOCAL, so the rollback ends them; a session used for this should do
        nothing else (every later EXPLAIN in its transaction would send its tree too).

        PostgreSQL also writes the LOG to the server's log (log_min_messages decides)."""
        trees: list[str] = []

        def grab(diag: psycopg.errors.Diagnostic) -> None:
            # the Diagnostic lives only during the call: copy the text out
            if diag.severity_nonlocalized == "LOG" and (diag.message_primary or "").strip() == "plan:":
                trees.append(diag.message_detail or "")

        if not self._printing_plans:   # once per transaction (a refused query restarts it)
            with self.conn.pipeline():
                for setting in ("debug_print_plan = on", "debug_pretty_print = off", "client_min_messages = log"):
                    self.conn.execute(f"SET LOCAL {setting}")
            self._printing_plans = True
        self.conn.add_notice_handler(grab)
        try:
            self.explain(sql, params)
        finally:
            self.conn.remove_notice_handler(grab)
        return trees

    def explain_all(self, items: list[tuple[str, tuple | list | None]]) -> list[tuple[Any, str]]:
        """`explain` of many queries, sent in one pipeline (psycopg pipeline mode: no round trip
        per query). On any refusal the transaction is restarted and the queries are explained
        one by one, so the error names the query it belongs to (QueryRefused.position)."""
        try:
            return self._pipelined(items)
        except QueryRefused:
            pass
        except psycopg.OperationalError as e:
            raise DatabaseError(f"lost the connection while explaining queries: {str(e).strip()}") from None
        except psycopg.Error:
            pass
        self.restart()
        out = []
        for pos, (sql, params) in enumerate(items):
            try:
                out.append(self.explain(sql, params))
            except QueryRefused as e:
                e.position = pos
                raise
        return out

    def _pipelined(self, items) -> list[tuple[Any, str]]:
        pending = []
        names: list[str] = []
        try:
            return self._send(items, pending, names)
        except BaseException:
            self._maybe.extend(names)   # some may have been prepared before the failure
            raise

    def _send(self, items, pending: list, names: list[str]) -> list[tuple[Any, str]]:
        with self.conn.pipeline():
            for sql, params in items:
                wanted = placeholder_count(sql)
                cur = RawCursor(self.conn)
                if params is not None:
                    if len(params) != wanted:
                        raise QueryRefused("params count", by_server=False)   # explained again, one by one
                    cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", [bind_value(p) for p in params], binary=True)
                    pending.append((cur, "custom plan (params)"))
                elif wanted == 0:
                    cur.execute(f"EXPLAIN (FORMAT JSON) {sql}", [], binary=True)
                    pending.append((cur, "plan"))
                else:
                    name = f"rc_query_{self._prepared}"
                    self._prepared += 1
                    names.append(name)
                    cur.execute(f"PREPARE {name} AS {sql}", [], binary=True)
                    explain = RawCursor(self.conn)
                    explain.execute(f"EXPLAIN (FORMAT JSON) EXECUTE {name}({', '.join(['NULL'] * wanted)})", [],
                                    binary=True)
                    pending.append((explain, "generic plan"))
        out = [(cur.fetchone()[0], mode) for cur, mode in pending]
        self._known.extend(names)   # every statement of the pipeline ran
        return out

    # --- what-if -------------------------------------------------------------------------

    def hypo_create(self, hypo: Hypopg, create_sql: str) -> tuple[int, str]:
        row = self.run(f"SELECT indexrelid, indexname FROM {quote_ident(hypo.schema)}.hypopg_create_index(%s)",
                       [create_sql])[0]
        return int(row[0]), row[1]

    def hypo_hide(self, hypo: Hypopg, oid: int) -> bool:
        return bool(self.run(f"SELECT {quote_ident(hypo.schema)}.hypopg_hide_index(%s)", [oid])[0][0])

    def hypo_reset(self, hypo: Hypopg) -> None:
        """Hypothetical and hidden indexes live in the backend, not in the transaction."""
        try:
            self.run(f"SELECT {quote_ident(hypo.schema)}.hypopg_reset()")
            if hypo.can_hide:
                self.run(f"SELECT {quote_ident(hypo.schema)}.hypopg_unhide_all_indexes()")
        except psycopg.Error:
            self._rollback()


def called_functions(conn: psycopg.Connection, functions: Iterable[int], operators: Iterable[int],
                     types: Iterable[int], written: Iterable[int] = ()) -> list[tuple]:
    """Catalog rows (root kind, root OID, then oid, schema, name, argument types, provolatile,
    language, via) of every function reached from these OIDs: operators resolve to their
    function, domains to the functions of their CHECK constraints, written relations to their
    triggers' functions, SQL-standard bodies and aggregates to what they call. One set query
    for any number of queries' plans; OIDs are bound, never spliced."""
    from importlib import resources

    text = resources.files("reconciler.pg").joinpath("sql", "called_functions.sql").read_text()
    return conn.execute(text, {"functions": sorted(functions), "operators": sorted(operators),
                               "types": sorted(types), "written": sorted(written)}).fetchall()
