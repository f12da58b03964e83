"""What a planned query would call, and which of those calls `verify --analyze` must not make.

One job: read the planner's node tree (the text `debug_print_plan` sends) for the OIDs of
every function, operator and type it names, and judge the functions the server resolves them
to. Pure: `pg.explain` fetches the tree and the catalog rows.

Why the plan tree and not the query text: the tree is what the executor runs, after views are
expanded, row-level-security policies are added, SQL functions are inlined and constants are
folded. A function hidden in a view, a policy, an operator, a LIMIT or a VALUES list is there
by OID, so neither a name nor a search_path can disguise it. READ ONLY does not stop what a
function does outside the transaction (signalling a backend, an advisory lock, dblink, a
sequence), so every VOLATILE function is refused unless it is one of a few harmless built-ins.
IMMUTABLE and STABLE functions are trusted as the database marks them: the planner itself may
run them while planning any query, EXPLAIN included.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Fields of the node tree (outfuncs.c) that hold a function's OID: FuncExpr, OpExpr and its
# kin (opfuncid), hashed ScalarArrayOpExpr, Aggref, WindowFunc, TABLESAMPLE's handler.
_FUNCTION_FIELDS = re.compile(r":(?:funcid|opfuncid|hashfuncid|negfuncid|aggfnoid|winfnoid|tsmhandler)\s+(\d+)")
# An operator's OID (resolved to its function by the server, in case opfuncid is unset);
# RowCompareExpr keeps a list: `:opnos (o 96 97)`.
_OPERATOR_FIELD = re.compile(r":opno\s+(\d+)")
_OPERATOR_LISTS = re.compile(r":opnos\s+\(o((?:\s+\d+)*)\s*\)")
# Every type the tree names (vartype, consttype, resulttype...): a domain among them may have
# CHECK constraints, which the executor evaluates when a value is coerced to it.
_TYPE_FIELDS = re.compile(r":[A-Za-z]*type\s+(\d+)", re.IGNORECASE)
# Range-table entries: a relation locked ROW EXCLUSIVE or stronger (rellockmode >= 3) is written
# by the statement, and its triggers fire (only `--allow-writes` runs such a statement).
_RTE = "{RANGETBLENTRY"
_RELID = re.compile(r":relid\s+(\d+)")
_LOCKMODE = re.compile(r":rellockmode\s+(\d+)")
ROW_EXCLUSIVE = 3

# VOLATILE built-ins (schema pg_catalog only) whose every effect stays inside the session and
# the statement: randomness, clocks, sizes and state read from the server. Reviewed one by one;
# anything else VOLATILE is refused.
HARMLESS_VOLATILE = frozenset("""
random random_normal array_sample array_shuffle gen_random_uuid uuidv4 uuidv7 clock_timestamp timeofday
currval lastval pg_relation_size pg_table_size pg_indexes_size pg_total_relation_size pg_database_size
pg_tablespace_size pg_is_in_recovery pg_partition_ancestors pg_partition_tree pg_lock_status pg_blocking_pids
bernoulli system
""".split())
# With --allow-writes a data-modifying query runs in a transaction that is rolled back; a
# serial column's default calls nextval(), whose only lasting effect is a skipped number.
HARMLESS_WHEN_WRITING = frozenset({"nextval"})


@dataclass(frozen=True)
class PlanCalls:
    """OIDs named by one query's plan tree."""
    functions: frozenset[int]
    operators: frozenset[int]
    types: frozenset[int]
    written: frozenset[int] = frozenset()     # relations the statement writes (their triggers fire)

    @property
    def roots(self) -> frozenset[tuple[str, int]]:
        """(kind, OID) as the catalog look-up names the root a function was reached from."""
        return frozenset([("f", o) for o in self.functions] + [("o", o) for o in self.operators]
                         + [("t", o) for o in self.types] + [("w", o) for o in self.written])


def union(calls: list[PlanCalls]) -> PlanCalls:
    """Every OID of many queries' plans: one catalog look-up for all of them."""
    return PlanCalls(frozenset().union(*(c.functions for c in calls)), frozenset().union(*(c.operators for c in calls)),
                     frozenset().union(*(c.types for c in calls)), frozenset().union(*(c.written for c in calls)))


def plan_calls(trees: list[str]) -> PlanCalls:
    """The OIDs named in the node trees of one query (several trees: each one counts).

    A name or a string inside the tree cannot hide a field: outfuncs.c writes every blank inside
    a name with a backslash, and constants as bytes, so a match is never removed, only (at worst)
    added, which refuses more, never less."""
    functions: set[int] = set()
    operators: set[int] = set()
    types: set[int] = set()
    written: set[int] = set()
    for tree in trees:
        for entry in tree.split(_RTE)[1:]:
            relid, lockmode = _RELID.search(entry), _LOCKMODE.search(entry)
            # an entry whose lock mode cannot be read counts as written: refuse more, never less
            if relid and (lockmode is None or int(lockmode.group(1)) >= ROW_EXCLUSIVE):
                written.add(int(relid.group(1)))
        functions.update(int(m) for m in _FUNCTION_FIELDS.findall(tree))
        operators.update(int(m) for m in _OPERATOR_FIELD.findall(tree))
        for group in _OPERATOR_LISTS.findall(tree):
            operators.update(int(m) for m in group.split())
        types.update(int(m) for m in _TYPE_FIELDS.findall(tree))
    functions.discard(0)
    operators.discard(0)
    types.discard(0)
    written.discard(0)
    return PlanCalls(frozenset(functions), frozenset(operators), frozenset(types), frozenset(written))


@dataclass(frozen=True)
class CalledFunction:
    """A function the query would call, as the catalog describes it."""
    oid: int
    schema: str
    name: str
    arguments: str          # the argument types, as format_type prints them
    volatility: str         # 'i', 's' or 'v' (pg_proc.provolatile)
    language: str
    via: str                # how the plan reaches it: "called by the plan", "operator ...", "inside ..."

    @property
    def signature(self) -> str:
        from ..core.ident import qualified

        return f"{qualified(self.schema, self.name)}({self.arguments})"


def reached_by(rows: list[tuple], calls: PlanCalls) -> list[CalledFunction]:
    """The functions one query's plan reaches, from the look-up's rows for many queries
    (kind, key, then the CalledFunction fields)."""
    roots = calls.roots
    found: dict[int, CalledFunction] = {}
    for r in rows:
        if (r[0], r[1]) in roots:
            f = CalledFunction(*r[2:])
            # one entry per function; of its paths the more telling ("behind operator ...")
            if f.oid not in found or found[f.oid].via == "called by the plan":
                found[f.oid] = f
    return list(found.values())


def side_effect_risks(functions: list[CalledFunction], *, writing: bool = False) -> list[CalledFunction]:
    """The functions that make running the query unsafe: VOLATILE and not a harmless built-in."""
    harmless = HARMLESS_VOLATILE | HARMLESS_WHEN_WRITING if writing else HARMLESS_VOLATILE
    return sorted((f for f in functions if f.volatility == "v"
                   and not (f.schema == "pg_catalog" and f.name in harmless)),
                  key=lambda f: (f.via != "called by the plan", f.schema, f.name, f.oid))


def describe_risk(f: CalledFunction) -> str:
    """`public."Grab"(integer) (VOLATILE, plpgsql; inside a view's ...)`, one line, for a refusal."""
    from ..core.display import shown

    via = "" if f.via == "called by the plan" else f", {f.via}"
    return f"{shown(f.signature)} (VOLATILE, {shown(f.language)}{shown(via)})"
