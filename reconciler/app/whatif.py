"""plan's what-if: what each planned change does to the spec's queries.

One job: simulate the plan's changes, explain every query before and after, and attach the
effects (and QUERY_REGRESSION hazards) to the plan's changes. How each change is simulated:
- an index the plan builds: a HypoPG hypothetical index (btree, brin, hash, bloom) when the
  extension is installed in the database; on a throwaway database (`--schema-sql`) a real
  CREATE INDEX in a transaction that is rolled back;
- an index the plan removes: on a throwaway database a real DROP INDEX in a transaction that
  is rolled back; elsewhere `hypopg_hide_index` (HypoPG 1.4.0+). A real target is never
  locked beyond EXPLAIN's ACCESS SHARE: nothing is dropped there to find out;
- whatever cannot be simulated is said per change, with the reason, never silently.
Everything runs in one transaction (READ ONLY on a real target) that is rolled back, and
HypoPG's per-backend state is reset afterwards.
"""
from __future__ import annotations

from dataclasses import replace

import psycopg

from ..core.hazards import Hazard, HazardCode
from ..core.kinds import Action
from ..core.plan import Plan, PlannedChange
from ..pg.explain import ExplainSession, Hypopg, QueryRefused, hypopg_info, index_ancestors
from ..queries import parse_explain
from ..queries.whatif import ChangeSim, QueryState, effects_of
from ..spec import Spec
from .verify import check_queries, refused

_BUILDS = (Action.CREATE, Action.REPLACE, Action.REBUILD)    # the changes that build an index
_REMOVES = (Action.DROP, Action.REPLACE)                       # the changes that remove one
HYPO_METHODS = ("btree", "brin", "hash", "bloom")   # HypoPG cannot size GIN/GiST/SP-GiST (hypopg#97)


def _capabilities(pc: PlannedChange, hypo: Hypopg | None, throwaway: bool) -> tuple[str | None, str | None, str]:
    """(how to add the new index, how to remove the old one, why not) with each how in
    hypo | hide | ddl | None (nothing to do)."""
    c = pc.change
    add = remove = None
    why = ""
    if c.action in _BUILDS:
        if throwaway:
            add = "ddl"
        elif hypo is None:
            why = "the hypopg extension is not installed in this database"
        elif c.desired.method not in HYPO_METHODS:
            why = f"HypoPG cannot simulate {c.desired.method} indexes (only {', '.join(HYPO_METHODS)})"
        else:
            add = "hypo"
    if c.action in _REMOVES and not why:
        if throwaway:
            remove = "ddl"
        elif hypo is not None and hypo.can_hide:
            remove = "hide"
        else:
            have = f"HypoPG {hypo.version} has no hypopg_hide_index (1.4.0+)" if hypo else \
                "hiding an index needs HypoPG 1.4.0+ (hypopg_hide_index), not installed in this database"
            why = f"{have}; reconciler never drops an index on a real database to find out"
    return add, remove, why


def simulate(conn: psycopg.Connection, plan: Plan, spec: Spec, *, throwaway: bool = False,
             statement_timeout_ms: int = 30000, lock_timeout_ms: int = 3000) -> Plan:
    """The plan with `effects`, `unsimulated` and QUERY_REGRESSION hazards on its changes."""
    if not spec.queries or plan.empty:
        return plan
    check_queries(spec)
    if not conn.autocommit:
        conn.rollback()
        conn.autocommit = True
    hypo = hypopg_info(conn)
    caps = [_capabilities(pc, hypo, throwaway) for pc in plan.changes]
    renamed = {pc.change.old_name: pc.change.index for pc in plan.changes if pc.change.action is Action.RENAME}
    hypo_names: dict[str, str] = {}
    failed: dict[int, str] = {}
    ancestors: dict[str, set[str]] = {}
    before: dict[str, object] = {}
    after: dict[str, object] = {}
    session = ExplainSession(conn, statement_timeout_ms=statement_timeout_ms, lock_timeout_ms=lock_timeout_ms,
                             writable=throwaway)
    try:
        with session:
            queries = list(spec.queries)
            try:
                docs = session.explain_all([(q.sql, q.params) for q in queries])
            except QueryRefused as e:
                raise refused(queries[e.position or 0], e) from None
            before = {q.name: parse_explain(doc) for q, (doc, _mode) in zip(queries, docs)}
            for i, (pc, (add, remove, why)) in enumerate(zip(plan.changes, caps)):
                if why or (add is None and remove is None):
                    continue
                session.run("SAVEPOINT rc_whatif")   # one refused simulation must not undo the others
                try:
                    _apply_one(session, pc, add, remove, hypo, hypo_names)
                except psycopg.Error as e:
                    failed[i] = f"the simulation failed: {(e.diag.message_primary or str(e)).strip()}"
                    session.run("ROLLBACK TO SAVEPOINT rc_whatif")
                else:
                    session.run("RELEASE SAVEPOINT rc_whatif")
            for q in spec.queries:
                try:
                    after[q.name] = parse_explain(session.explain(q.sql, q.params)[0])
                except QueryRefused:
                    pass
            # inside the transaction: the partition indexes a rolled-back CREATE INDEX made exist only here
            names = {i for p in list(before.values()) + list(after.values()) for i in p.indexes}
            ancestors = index_ancestors(conn, names)
    finally:
        if hypo is not None:
            session.hypo_reset(hypo)
    def logical(plan_names, with_hypo: bool) -> frozenset[str]:
        out = set()
        for n in plan_names:
            n = hypo_names.get(n, n) if with_hypo else n
            out.add(renamed.get(n, n))
            out.update(ancestors.get(n, ()))
        return frozenset(out)

    sims = []
    for i, (pc, (add, remove, why)) in enumerate(zip(plan.changes, caps)):
        c = pc.change
        new = c.index if c.action in _BUILDS else None
        old = (c.old_name or c.index) if c.action in _REMOVES else None
        reason = failed.get(i) or why
        sims.append(ChangeSim(i, c.action, c.table, new, old, not reason, reason))
    states = [QueryState(q.name, q.where, q.uses, q.budget_cost, before[q.name], after.get(q.name),
                         logical(before[q.name].indexes, False),
                         logical(after[q.name].indexes, True) if q.name in after else frozenset())
              for q in spec.queries]
    effects = effects_of(sims, states)
    changes = []
    for i, pc in enumerate(plan.changes):
        effs = tuple(effects.get(i, ()))
        hazards = pc.hazards
        bad = [e for e in effs if e.regression]
        if bad:
            names = ", ".join(f"{e.query!r} ({e.where})" for e in bad[:3])
            more = f" and {len(bad) - 3} more" if len(bad) > 3 else ""
            text = f"{'a query' if len(bad) == 1 else f'{len(bad)} queries'} would regress: {names}{more}"
            hazards = hazards + (Hazard(HazardCode.QUERY_REGRESSION, text),)
        unsimulated = sims[i].why_not if pc.change.action is not Action.RENAME else ""
        changes.append(replace(pc, effects=effs, hazards=hazards, unsimulated=unsimulated))
    return replace(plan, changes=tuple(changes))


def _apply_one(session: ExplainSession, pc: PlannedChange, add: str | None, remove: str | None,
               hypo: Hypopg | None, hypo_names: dict[str, str]) -> None:
    c = pc.change
    if remove == "ddl":
        live = c.live
        # a throwaway database only: ACCESS EXCLUSIVE there blocks nobody; rolled back below
        session.run(f"DROP INDEX {live.definition.qualified_name if live.definition.name else c.index}")
    elif remove == "hide":
        session.hypo_hide(hypo, c.live.oid)
    if add == "ddl":
        if c.action is Action.REBUILD:
            session.run(f"DROP INDEX {c.live.definition.qualified_name}")
        session.run(c.desired.create_sql(concurrently=False, with_tablespace=False))
    elif add == "hypo":
        _oid, name = session.hypo_create(hypo, c.desired.create_sql(concurrently=False, name="",
                                                                    with_tablespace=False))
        hypo_names[name] = c.index
