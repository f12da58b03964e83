"""`reconciler validate`: every problem of a spec, collected instead of stopping at the first.

Offline: YAML shape, names, duplicates, SQL fragments (one expression, no statement, no
comment, no volatile function), two entries with one definition, a btree that is a prefix of
another. With a database: tables and columns exist (with "did you mean" for case mistakes), and
the server builds each index on a temp copy of its table (rolled back) so operator classes,
methods, types and extensions are checked by PostgreSQL itself.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..core.index import IndexDef
from ..core.suggest import nearest
from ..errors import ReconcilerError, SpecError, SQLFragmentError
from ..normalize import canonical_def, column_references, spec_entry_to_def
from ..spec import Spec, load_spec, query_reference_problems
from .engine import table_hint


@dataclass(frozen=True)
class Problem:
    where: str          # file:line
    index: str
    message: str
    severity: str = "error"   # error | warning
    kind: str = "index"       # index | query: what `index` names; spec: a problem of the file
                              # itself (YAML, keys, values), `message` says where in it

    def line(self) -> str:
        if self.kind == "spec":   # the message names the key (and the index) itself
            return f"{self.where}: {self.severity}: {self.message}"
        return f"{self.where}: {self.severity}: {self.kind} {self.index!r}: {self.message}"


_WHERE = re.compile(r"(.+?:\d+): (.*)", re.S)
_INDEX = re.compile(r"(?:index|query) '((?:[^'\\]|\\.)*)': ")


def load(files: list[str]) -> tuple[Spec, list[Problem]]:
    """The spec of what could be read, and every problem of every file that kept the rest from
    loading (the other commands stop at the first)."""
    errors: list[SpecError] = []
    spec = load_spec(files, errors)
    problems = []
    for err in errors:
        m = _WHERE.fullmatch(err.message)
        where, _, message = (m.group(1), "", m.group(2)) if m else err.message.partition(": ")
        named = _INDEX.match(message)
        problems.append(Problem(where, named.group(1) if named else "",
                                message + (f" ({err.hint})" if err.hint else ""), kind="spec"))
    return spec, problems


def offline(spec: Spec) -> tuple[list[Problem], list[IndexDef | None]]:
    problems: list[Problem] = []
    defs: list[IndexDef | None] = []
    for e in spec.entries:
        try:
            defs.append(spec_entry_to_def(e))
        except SQLFragmentError as err:
            # "FILE:LINE: index 'NAME': field: problem", LINE that of the offending key
            m = re.match(rf"(.+?:\d+): index {re.escape(repr(e.spec.name))}: (.*)", err.message, re.S)
            where, msg = (m.group(1), m.group(2)) if m else (e.where, err.message)
            problems.append(Problem(where, e.spec.name, msg + (f" ({err.hint})" if err.hint else "")))
            defs.append(None)
    # Each definition is canonicalized once; both checks below are dictionary look-ups, so a
    # spec of thousands of entries on one table stays linear.
    canon: list[IndexDef | None] = []
    for d in defs:
        try:
            canon.append(canonical_def(d, loose=True) if d is not None else None)
        except SQLFragmentError:
            canon.append(None)
    seen: dict = {}
    for e, d, cd in zip(spec.entries, defs, canon):
        if cd is None:
            continue
        if cd in seen:
            other = seen[cd]
            problems.append(Problem(e.where, d.name, f"same definition as {other.spec.name!r} ({other.where})"))
        else:
            seen[cd] = e
    # a btree whose keys are a prefix of another's (same table, predicate) is usually redundant
    longer: dict = {}   # (schema, table, predicate, leading keys) → the first btree that starts with them
    for e2, d2, c2 in zip(spec.entries, defs, canon):
        if c2 is None or d2.method != "btree":
            continue
        for n in range(1, len(c2.keys)):
            longer.setdefault((d2.schema, d2.table, c2.where, c2.keys[:n]), (e2, d2))
    for e, d, cd in zip(spec.entries, defs, canon):
        if cd is None or d.method != "btree" or d.unique:
            continue
        hit = longer.get((d.schema, d.table, cd.where, cd.keys))
        if hit is not None and hit[1] is not d:
            e2, d2 = hit
            problems.append(Problem(e.where, d.name, f"its columns are a prefix of {d2.name!r} ({e2.where}); "
                                                     "that index can serve the same queries", "warning"))
    return problems + offline_queries(spec), defs



def offline_queries(spec: Spec) -> list[Problem]:
    """`uses` names an index of the spec; the SQL is one statement."""
    from ..normalize import classify_statement

    problems = [Problem(q.where, q.name, msg, kind="query") for q, msg in query_reference_problems(spec)]
    for q in spec.queries:
        n = classify_statement(q.sql).statements
        if n > 1:
            problems.append(Problem(q.where, q.name, f"sql holds {n} statements; a query is one statement",
                                    kind="query"))
    return problems


def online_queries(spec: Spec, conn) -> list[Problem]:
    """Each query explained by the server (read-only, rolled back): a syntax error, an unknown
    table or column, wrong parameters are reported with the query's file:line."""
    from ..pg.explain import ExplainSession, QueryRefused
    from .verify import refusal

    if not spec.queries:
        return []
    conn.rollback()
    conn.autocommit = True
    problems = []
    with ExplainSession(conn) as session:
        for q in spec.queries:
            try:
                session.explain(q.sql, q.params)
            except QueryRefused as e:
                problems.append(Problem(q.where, q.name, refusal(e), kind="query"))
    return problems


def online(spec: Spec, defs: list[IndexDef | None], conn) -> list[Problem]:
    """Tables, columns and the server's verdict on each definition. A schema-glob entry is
    checked in every schema it covers; a problem it has in many schemas is one line naming
    them, and the server is asked once per (entry, table columns)."""
    from functools import lru_cache

    from ..pg import catalog
    from ..pg.canonicalize import canonicalize
    from ..reconcile.expand import expand, is_glob

    problems: list[Problem] = []
    snapshot = catalog.introspect(conn, spec.tables, patterns=spec.glob_entry_patterns())
    tables = {(t.schema, t.name) for t in snapshot.tables}
    at = [i for i, d in enumerate(defs) if d is not None]
    x = expand([defs[i] for i in at], [spec.entries[i].schema for i in at], [spec.entries[i].where for i in at],
               [(t.schema, t.name) for t in snapshot.tables if t.named])
    for k in x.unmatched:
        e = spec.entries[at[k]]
        problems.append(Problem(e.where, e.name, f"schema {e.schema!r} matches no schema with a table {e.table!r}",
                                "warning"))
    items = [(at[o], d) for d, o in zip(x.desired, x.owners)]
    cols = catalog.table_columns(conn, sorted({(d.schema, d.table) for _, d in items
                                               if (d.schema, d.table) in tables}))
    refs = lru_cache(maxsize=None)(column_references)
    found: dict[tuple[int, str, tuple], list[str]] = {}    # (entry, message, key) -> schemas where it holds
    to_probe: dict[tuple, tuple[int, IndexDef]] = {}
    for i, d in items:
        e = spec.entries[i]
        key = (d.schema, d.table)
        if key not in tables:
            hint = table_hint(conn, d.schema, d.table)
            problems.append(Problem(e.where_of("table"), d.name, f"table {d.schema}.{d.table} does not exist"
                                                     + (f" ({hint})" if hint else "")))
            continue
        known = cols.get(key, [])
        bad = False
        for field_name, names in (("columns", [k.expr for k in d.keys if not k.is_expression]),
                                  ("include", list(d.include))):
            for n in names:
                if n not in known:
                    found.setdefault((i, f"{field_name}: column {n!r} does not exist in {d.table}"
                                         f"{_did_you_mean(n, known, quoted=False)}", (field_name,)), []).append(d.schema)
                    bad = True
        fragments = [("where", d.where_sql, ("where",))] if d.where is not None else []
        fragments += [("expression", k.sql, ("columns", n, "expression")) for n, k in enumerate(d.keys)
                      if k.is_expression]
        for field_name, text, path in fragments:
            for name, quoted in refs(text):
                if name not in known:
                    found.setdefault((i, f"{field_name}: column {name!r} does not exist in {d.table}"
                                         f"{_did_you_mean(name, known, quoted)}", path), []).append(d.schema)
                    bad = True
        if not bad:
            digest = snapshot.digests.get(key)
            to_probe.setdefault((i, digest) if digest else (i, key), (i, d))
    for (i, message, path), schemas in found.items():
        e = spec.entries[i]
        problems.append(Problem(e.where_of(*path), e.name,
                                message + _in_schemas(e.schema, schemas, is_glob(e.schema))))
    if to_probe:
        probes = list(to_probe.values())
        try:
            results = canonicalize(conn, [d for _, d in probes])
        except ReconcilerError as err:
            problems.append(Problem("(database)", "*", f"{err.message}; server checks skipped", "warning"))
            results = {}
        for pos, (i, d) in enumerate(probes):
            r = results.get(pos)
            if r is not None and r.error:
                e = spec.entries[i]
                where = f" (in {d.schema}.{d.table})" if is_glob(e.schema) else ""
                problems.append(Problem(e.where, d.name, f"PostgreSQL refuses it{where}: {r.error}: {r.sql}"))
    return problems + online_queries(spec, conn)


def _in_schemas(written: str, schemas: list[str], glob: bool) -> str:
    if not glob:
        return ""
    shown = ", ".join(schemas[:3]) + (f" and {len(schemas) - 3:,} more" if len(schemas) > 3 else "")
    return f" (in schema{'s' if len(schemas) > 1 else ''} {shown} of {written!r})"


def online_outcome(spec: Spec, defs: list[IndexDef | None], conn, offline_problems: list[Problem], fmt: str):
    """`validate` on one database of a fleet: the offline problems (warnings only by now) and
    this database's, as an `Outcome` (an error there fails that target)."""
    from ..fleet import Outcome, Status

    problems = list(offline_problems) + online(spec, defs, conn)
    errors = [p for p in problems if p.severity == "error"]
    doc = {"valid": not errors, "problems": [p.__dict__ for p in problems]}
    text = "".join(p.line() + "\n" for p in problems)
    if errors:
        summary = f"{len(errors)} problem(s): {errors[0].line()}"
    else:
        summary = f"{len(spec.entries)} index(es) valid here" + (f" ({len(problems)} warning(s))" if problems else "")
    return Outcome(Status.FAILED if errors else Status.OK, 1 if errors else 0, summary, text,
                   doc if fmt == "json" else None)


def _did_you_mean(name: str, known: list[str], quoted: bool) -> str:
    near = nearest(name, known)
    if near is None:
        return ""
    why = " (unquoted names fold to lowercase in SQL)" if near.lower() == name.lower() and not quoted else ""
    return f'; did you mean "{near}"?{why}'
