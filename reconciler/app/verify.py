"""`reconciler verify`: each query of the spec, explained on the database, judged against the
indexes it `uses` and its budgets.

One job: the order of the verify workflow. References are checked before connecting; every
EXPLAIN runs in a READ ONLY transaction that is rolled back (`pg.explain`); `--analyze`
executes a query only when it cannot write (sqlglot says so, READ ONLY enforces it), or, with
`--allow-writes`, in a read-write transaction that is rolled back after each run; and before any
query runs, every function its plan would call is looked up and a VOLATILE one refuses the whole
run (`queries.calls`), unless `--allow-volatile`.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import psycopg

from ..core.sqltext import placeholder_count
from ..errors import ReconcilerError, SpecError
from ..pg.explain import ExplainSession, QueryRefused, called_functions, index_ancestors
from ..queries import Verdict, judge, parse_explain
from ..spec import QueryEntry, Selection, Spec, query_reference_problems


@dataclass(frozen=True)
class VerifyOptions:
    analyze: bool = False
    runs: int = 3
    allow_writes: bool = False
    allow_volatile: bool = False
    statement_timeout_ms: int = 30000
    lock_timeout_ms: int = 3000


def check_queries(spec: Spec) -> None:
    """What can be refused before connecting: a `uses` that names no index of the spec."""
    problems = query_reference_problems(spec)
    if problems:
        q, msg = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise SpecError(f"{q.where}: query {q.name!r}: {msg}{more}", "run `reconciler validate` to see every problem")


def selected_queries(spec: Spec, selection: Selection) -> list[QueryEntry]:
    """Every query, or with --select those that use a selected index."""
    if not selection.partial:
        return list(spec.queries)
    chosen = {e.name for e in spec.entries if selection.index(e.schema, e.name, e.table, e.tags)}
    return [q for q in spec.queries if chosen.intersection(q.uses)]


def refusal(e: QueryRefused) -> str:
    return f"PostgreSQL refuses it: {e.message}" if e.by_server else e.message


def refused(q: QueryEntry, e: QueryRefused) -> ReconcilerError:
    return ReconcilerError(f"{q.where}: query {q.name!r}: {refusal(e)}",
                           "the query ran only inside EXPLAIN, in a read-only transaction that was rolled back"
                           if e.by_server else None)


def classify(sql: str) -> tuple[bool, str]:
    """(could it write, why): sqlglot's reading, conservative (normalize.statement)."""
    from ..normalize import classify_statement

    info = classify_statement(sql)
    return info.modifies, info.reason


def run_verify(conn: psycopg.Connection, queries: list[QueryEntry], opts: VerifyOptions,
               classify: Callable[[str], tuple[bool, str]] = classify) -> list[Verdict]:
    """`classify(sql) -> (modifies, reason)` decides which queries --analyze may execute."""
    docs: list[tuple[QueryEntry, dict, str]] = []
    with ExplainSession(conn, statement_timeout_ms=opts.statement_timeout_ms,
                        lock_timeout_ms=opts.lock_timeout_ms) as session:
        try:
            results = session.explain_all([(q.sql, q.params) for q in queries])
        except QueryRefused as e:
            raise refused(queries[e.position or 0], e) from None
        docs = [(q, doc, mode) for q, (doc, mode) in zip(queries, results)]
    runs: dict[str, list] = {}
    notes: dict[str, list[str]] = {}
    if opts.analyze:
        runs, notes = _measure(conn, queries, opts, classify)
    plans = {q.name: parse_explain(doc) for q, doc, _ in docs}
    names = {i for p in plans.values() for i in p.indexes}
    ancestors = index_ancestors(conn, names)

    def serves(plan_index: str, spec_index: str) -> bool:
        return plan_index == spec_index or spec_index in ancestors.get(plan_index, ())

    out = []
    for q, _doc, mode in docs:
        out.append(judge(name=q.name, where=q.where, sql=q.sql, mode=mode, uses=q.uses, plan=plans[q.name],
                         serves=serves, budget_ms=q.budget_ms, budget_cost=q.budget_cost,
                         runs=runs.get(q.name, []), notes=notes.get(q.name, [])))
    return out


def verify_outcome(conn: psycopg.Connection, queries: list[QueryEntry], opts: VerifyOptions, selection: str,
                   fmt: str):
    """`verify` on one database of a fleet, as an `Outcome` (a miss is "changes", exit 2)."""
    import json

    from ..fleet import Outcome, Status
    from ..render.verify import RENDERERS, summary

    verdicts = run_verify(conn, queries, opts) if queries else []
    text = RENDERERS[fmt](verdicts, selection)
    bad = any(not v.ok for v in verdicts)
    return Outcome(Status.CHANGES if bad else Status.OK, 2 if bad else 0, summary(verdicts, selection), text,
                   json.loads(text) if fmt == "json" else None)


def _measure(conn, queries: list[QueryEntry], opts: VerifyOptions, classify) -> tuple[dict, dict]:
    runs: dict[str, list] = {}
    notes: dict[str, list[str]] = {}
    readers, writers = [], []
    for q in queries:
        modifies, reason = classify(q.sql)
        if not modifies:
            readers.append(q)
        elif opts.allow_writes:
            writers.append(q)
            notes.setdefault(q.name, []).append(f"data-modifying ({reason}): measured in a transaction rolled "
                                                "back after each run (--allow-writes)")
        else:
            notes.setdefault(q.name, []).append(f"not measured: data-modifying ({reason}); --allow-writes runs "
                                                "it in a transaction that is rolled back")
    if not opts.allow_volatile:
        refuse_side_effects(conn, readers, writers, opts)
    for group, writable in ((readers, False), (writers, True)):
        if not group:
            continue
        with ExplainSession(conn, statement_timeout_ms=opts.statement_timeout_ms,
                            lock_timeout_ms=opts.lock_timeout_ms, writable=writable) as session:
            for q in group:
                for _ in range(max(1, opts.runs)):
                    try:
                        doc, _mode = session.explain(q.sql, q.params, analyze=True)
                    except QueryRefused as e:
                        notes.setdefault(q.name, []).append(f"not measured: {e.message}")
                        break
                    runs.setdefault(q.name, []).append(parse_explain(doc))
                    if writable:
                        session.restart()   # each run sees the data as it was
    return runs, notes


def refuse_side_effects(conn, readers: list[QueryEntry], writers: list[QueryEntry], opts: VerifyOptions) -> None:
    """Before any query runs: plan each one (EXPLAIN without ANALYZE, READ ONLY, rolled back),
    read the functions its plan tree would call and refuse the run, naming the query and the
    function, when one is VOLATILE and not a harmless built-in. Fails closed: no plan tree, no run."""
    from ..queries.calls import describe_risk, plan_calls, reached_by, side_effect_risks, union   # --analyze only

    with ExplainSession(conn, statement_timeout_ms=opts.statement_timeout_ms,
                        lock_timeout_ms=opts.lock_timeout_ms) as session:
        seen = []
        for q in readers + writers:
            if q.params is None and placeholder_count(q.sql):
                continue        # never measured: no sample values (a note says so)
            try:
                trees = session.plan_trees(q.sql, q.params)
            except QueryRefused as e:
                raise refused(q, e) from None
            if not trees:
                raise ReconcilerError(f"{q.where}: query {q.name!r}: not run: the server sent no plan tree, so "
                                      "the functions it would call are unknown",
                                      "--allow-volatile runs it without this check")
            seen.append((q, plan_calls(trees)))
    if not seen:
        return
    writing = {id(q) for q in writers}
    everything = union([calls for _, calls in seen])
    rows = called_functions(conn, everything.functions, everything.operators, everything.types, everything.written)
    for q, calls in seen:
        risks = side_effect_risks(reached_by(rows, calls), writing=id(q) in writing)
        if risks:
            more = f" (and {len(risks) - 1} more)" if len(risks) > 1 else ""
            raise ReconcilerError(
                f"{q.where}: query {q.name!r}: not run: it would call {describe_risk(risks[0])}{more}, which can "
                "act outside the transaction (a rollback does not undo it)",
                "nothing was executed; --allow-volatile runs such queries anyway (see SECURITY.md)")
