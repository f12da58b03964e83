"""normalize/rules.py by properties: generated predicates, each spelled many ways.

A seeded generator builds predicate trees over a table of typed columns and renders each tree
with random choices among spellings PostgreSQL reads as one thing: commuted operands of
symmetric operators, mirrored comparisons, boolean forms (`flag`, `flag = true`, `NOT (flag =
false)`, `flag IS TRUE` where only truth counts), literal spellings (`5`, `'5'::integer`,
`E'it\\'s'`, `$$it's$$`, `DATE '...'`, `'...'::date`, `1.50` vs `1.5` in a comparison), IN
lists, BETWEEN, parentheses. Properties:

- any two spellings of one tree have one comparison key (no false "changed");
- a tree with one thing changed (a literal, an operator, the operands of `-`) never has the
  key of the original (no missed change);
- on a real server, two spellings the rules call equal select the same rows, NULLs included
  (the rules are facts about PostgreSQL, not about our renderer).
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from decimal import Decimal

import pytest

from reconciler.normalize import canonical, same_definition, parse_create_index

SEED = 20260101
TREES = 300

# column → type
COLUMNS = {"a": "int", "b": "int", "big": "int8", "c": "text", "flag": "bool", "other": "bool", "d": "date",
           "ts": "ts", "n": "numeric"}
TABLE_DDL = """
CREATE TABLE p (a int, b int, big bigint, c text, flag boolean, other boolean, d date, ts timestamp, n numeric);
INSERT INTO p
SELECT CASE WHEN g % 11 = 0 THEN NULL ELSE (g % 13) - 6 END,
       CASE WHEN g % 7 = 0 THEN NULL ELSE (g % 5) - 2 END,
       CASE WHEN g % 17 = 0 THEN NULL ELSE (g % 9) - 4 END,
       CASE WHEN g % 6 = 0 THEN NULL ELSE (ARRAY['x', 'it''s', 'y', 'a\\b', ''])[g % 5 + 1] END,
       CASE WHEN g % 3 = 0 THEN NULL ELSE g % 2 = 0 END,
       CASE WHEN g % 4 = 0 THEN NULL ELSE g % 5 < 2 END,
       CASE WHEN g % 8 = 0 THEN NULL ELSE date '2024-01-01' + (g % 10) END,
       CASE WHEN g % 9 = 0 THEN NULL ELSE timestamp '2024-01-05 00:00' + (g % 7) * interval '5 hours' END,
       CASE WHEN g % 10 = 0 THEN NULL ELSE (g % 7) * 0.5 END
FROM generate_series(1, 400) g;
"""


# --- the generator -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lit:
    type: str
    value: object


@dataclass(frozen=True)
class Col:
    name: str

    @property
    def type(self) -> str:
        return COLUMNS[self.name]


@dataclass(frozen=True)
class Arith:
    op: str            # + * -
    left: object
    right: object
    type: str = "int"


@dataclass(frozen=True)
class Cmp:
    op: str            # = <> < <= > >=
    left: object
    right: object


@dataclass(frozen=True)
class BoolAtom:
    column: str
    negated: bool


@dataclass(frozen=True)
class IsNull:
    term: object
    negated: bool


@dataclass(frozen=True)
class In:
    term: object
    items: tuple


@dataclass(frozen=True)
class Between:
    term: object
    low: object
    high: object


@dataclass(frozen=True)
class Junction:
    op: str            # AND / OR
    items: tuple


TEXTS = ["x", "it's", "y", "a\\b", ""]


def literal(rng: random.Random, type_: str) -> Lit:
    if type_ in ("int", "int8"):
        return Lit("int", rng.randint(-6, 6))
    if type_ == "text":
        return Lit("text", rng.choice(TEXTS))
    if type_ == "date":
        return Lit("date", f"2024-01-{rng.randint(1, 12):02d}")
    if type_ == "ts":
        return Lit("ts", (f"2024-01-{rng.randint(5, 7):02d}", rng.choice([0, 5, 10, 15, 20])))
    if type_ == "numeric":
        return Lit("numeric", (Decimal(rng.randint(-4, 8)) / 2).quantize(Decimal("0.1")))
    raise AssertionError(type_)


def scalar(rng: random.Random, type_: str, depth: int):
    if type_ == "int" and depth < 2 and rng.random() < 0.3:
        return Arith(rng.choice("+*-"), scalar(rng, "int", depth + 1), scalar(rng, "int", depth + 1))
    if rng.random() < 0.5:
        names = [n for n, t in COLUMNS.items() if t == type_ or (type_ == "int" and t == "int8")]
        return Col(rng.choice(names))
    return literal(rng, type_)


def comparison(rng: random.Random):
    type_ = rng.choice(["int", "int", "text", "date", "ts", "numeric"])
    left = Col(rng.choice([n for n, t in COLUMNS.items() if t == type_ or (type_ == "int" and t == "int8")]))
    if type_ == "int" and rng.random() < 0.3:
        left = Arith(rng.choice("+*-"), left, scalar(rng, "int", 1))
    right = scalar(rng, type_ if left.type != "int8" else "int", 1)
    return Cmp(rng.choice(["=", "<>", "<", "<=", ">", ">="]), left, right)


def atom(rng: random.Random):
    kind = rng.random()
    if kind < 0.45:
        return comparison(rng)
    if kind < 0.65:
        return BoolAtom(rng.choice(["flag", "other"]), rng.random() < 0.4)
    if kind < 0.75:
        return IsNull(Col(rng.choice(list(COLUMNS))), rng.random() < 0.5)
    type_ = rng.choice(["int", "text"])
    term = Col(rng.choice([n for n, t in COLUMNS.items() if t == type_]))
    if kind < 0.88:
        return In(term, tuple(literal(rng, type_) for _ in range(rng.randint(2, 4))))
    low, high = sorted([literal(rng, "int"), literal(rng, "int")], key=lambda x: x.value)
    return Between(Col(rng.choice(["a", "b"])), low, high)


def tree(rng: random.Random, depth: int = 0):
    if depth < 2 and rng.random() < 0.55:
        return Junction(rng.choice(["AND", "OR"]), tuple(tree(rng, depth + 1) for _ in range(rng.randint(2, 3))))
    return atom(rng)


# --- spellings -------------------------------------------------------------------------------------

MIRROR = {"=": "=", "<>": "<>", "<": ">", ">": "<", "<=": ">=", ">=": "<="}


def spell_literal(rng: random.Random, lit: Lit) -> str:
    v = lit.value
    if lit.type == "int":
        forms = [str(v), f"'{v}'::integer", f"CAST('{v}' AS int4)", f"({v})::int4", f"'{v}'::int"]
        return rng.choice(forms) if v >= 0 else rng.choice([f"({v})", f"'{v}'::integer", f"({v})::integer"])
    if lit.type == "text":
        quoted = v.replace("'", "''")
        forms = [f"'{quoted}'", "E'" + v.replace("\\", "\\\\") + "'", f"$${v}$$"] if "\\" in v else [
            f"'{quoted}'", "E'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'", f"$${v}$$",
            "U&'" + "".join(ch if ch.isalnum() else f"\\{ord(ch):04x}" for ch in v) + "'"]
        return rng.choice(forms)
    if lit.type == "date":
        return rng.choice([f"DATE '{v}'", f"'{v}'::date", f"CAST('{v}' AS date)"])
    if lit.type == "ts":
        day, hour = v
        return rng.choice([f"TIMESTAMP '{day} {hour:02d}:00'", f"'{day} {hour:02d}:00:00'::timestamp",
                           f"'{day}T{hour:02d}:00:00.000'::timestamp without time zone",
                           f"CAST('{day} {hour:02d}:00:00' AS timestamp)"])
    if lit.type == "numeric":
        text = format(v.quantize(Decimal("0.1")), "f")
        forms = [text, text + "0", f"'{text}'::numeric"]
        if v != 0:
            mantissa = int(v * 10)
            forms.append(f"{mantissa}e-1")
        form = rng.choice(forms)
        return f"({form})" if form.startswith("-") else form
    raise AssertionError(lit)


def paren(rng: random.Random, text: str) -> str:
    return f"({text})" if rng.random() < 0.3 else text


def spell(rng: random.Random, node, truth: bool = True, in_comparison: bool = False) -> str:
    """One spelling of `node`; `truth`: only whether it is true counts here (the predicate's top
    and its AND/OR)."""
    if isinstance(node, Lit):
        if node.type == "numeric" and not in_comparison:
            return format(node.value, "f") if node.value >= 0 else f"({format(node.value, 'f')})"  # scale kept
        return spell_literal(rng, node)
    if isinstance(node, Col):
        return rng.choice([node.name, node.name.upper(), f'"{node.name}"', f"p.{node.name}"])
    if isinstance(node, Arith):
        left, right = spell(rng, node.left, False), spell(rng, node.right, False)
        if node.op != "-" and rng.random() < 0.5:
            left, right = right, left
        return f"({left} {node.op} {right})"
    if isinstance(node, Cmp):
        left, right = spell(rng, node.left, False, True), spell(rng, node.right, False, True)
        op = node.op
        if rng.random() < 0.5:
            left, right, op = right, left, MIRROR[op]
        if op == "<>" and rng.random() < 0.5:
            op = "!="
        return paren(rng, f"{left} {op} {right}")
    if isinstance(node, BoolAtom):
        c = spell(rng, Col(node.column))
        true, false = rng.choice(["true", "TRUE", "'t'::boolean", "'yes'::boolean"]), \
            rng.choice(["false", "FALSE", "'f'::boolean", "'off'::boolean"])
        if node.negated:
            forms = [f"NOT {c}", f"{c} = {false}", f"{false} = {c}", f"{c} <> {true}", f"NOT ({c} = {true})"]
            if truth:
                forms.append(f"{c} IS FALSE")
        else:
            forms = [c, f"{c} = {true}", f"{true} = {c}", f"{c} <> {false}", f"NOT ({c} = {false})", f"NOT NOT {c}"]
            if truth:
                forms.append(f"{c} IS TRUE")
        return paren(rng, rng.choice(forms))
    if isinstance(node, IsNull):
        c = spell(rng, node.term)
        forms = [f"{c} IS NOT NULL", f"NOT ({c} IS NULL)", f"{c} NOTNULL"] if node.negated else \
            [f"{c} IS NULL", f"{c} ISNULL"]
        return paren(rng, rng.choice(forms))
    if isinstance(node, In):
        c = spell(rng, node.term, False, True)
        items = [spell(rng, x, False, True) for x in node.items]
        ints = all(x.type == "int" for x in node.items)
        forms = [f"{c} IN ({', '.join(items)})", f"{c} = ANY (ARRAY[{', '.join(items)}])"]
        if ints:
            forms.append(f"{c} = ANY ('{{{','.join(str(x.value) for x in node.items)}}}'::integer[])")
        return paren(rng, rng.choice(forms))
    if isinstance(node, Between):
        c = spell(rng, node.term, False, True)
        low, high = spell(rng, node.low, False, True), spell(rng, node.high, False, True)
        return paren(rng, rng.choice([f"{c} BETWEEN {low} AND {high}", f"{c} >= {low} AND {c} <= {high}",
                                      f"{low} <= {c} AND {high} >= {c}"]))
    if isinstance(node, Junction):
        items = [spell(rng, x, truth) for x in node.items]
        rng.shuffle(items)
        return "(" + f" {node.op} ".join(f"({x})" for x in items) + ")"
    raise AssertionError(node)


# --- mutations: one thing changed --------------------------------------------------------------

def mutate(rng: random.Random, node):
    """`node` with exactly one thing changed (the result is a different predicate)."""
    if isinstance(node, Junction):
        i = rng.randrange(len(node.items))
        items = list(node.items)
        items[i] = mutate(rng, items[i])
        return Junction(node.op, tuple(items))
    if isinstance(node, Cmp):
        choice = rng.random()
        if choice < 0.4 and isinstance(node.right, Lit):
            return Cmp(node.op, node.left, bump(node.right))
        if choice < 0.7 or not isinstance(node.left, Arith):
            others = [o for o in MIRROR if o not in (node.op, MIRROR[node.op])]   # `n < n` is `n > n`
            return Cmp(rng.choice(others), node.left, node.right)
        a = node.left
        if a.op == "-" and a.left != a.right:
            return Cmp(node.op, Arith("-", a.right, a.left), node.right)
        return Cmp(node.op, Arith("-" if a.op != "-" else "+", a.left, a.right), node.right)
    if isinstance(node, BoolAtom):
        return BoolAtom(node.column, not node.negated)
    if isinstance(node, IsNull):
        return IsNull(node.term, not node.negated)
    if isinstance(node, In):
        items = list(node.items)
        items[-1] = bump(items[-1])
        return In(node.term, tuple(items))
    if isinstance(node, Between):
        return Between(node.term, bump(node.low), node.high)
    raise AssertionError(node)


def bump(lit: Lit) -> Lit:
    v = lit.value
    if lit.type == "int":
        return Lit("int", v + 1)
    if lit.type == "text":
        return Lit("text", v + "z")
    if lit.type == "date":
        return Lit("date", v[:-2] + f"{int(v[-2:]) % 12 + 13:02d}")
    if lit.type == "ts":
        return Lit("ts", (v[0], v[1] + 1))
    if lit.type == "numeric":
        return Lit("numeric", v + Decimal("0.5"))
    raise AssertionError(lit)


def cases(count: int = TREES, seed: int = SEED) -> list[tuple[object, list[str], str]]:
    """(tree, four spellings of it, a spelling of one mutation of it)."""
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        t = tree(rng)
        out.append((t, [spell(rng, t) for _ in range(4)], spell(rng, mutate(rng, t))))
    return out


CASES = cases()


# --- properties, by text -----------------------------------------------------------------------


def test_every_spelling_of_a_predicate_has_one_key():
    failures = []
    for t, spellings, _ in CASES:
        keys = {canonical(s, predicate=True) for s in spellings}
        if len(keys) != 1:
            failures.append(spellings)
    assert not failures, f"{len(failures)} of {len(CASES)} trees have several keys, e.g. {failures[:2]}"


def test_one_change_is_never_the_same_predicate():
    same = [(spellings[0], mutated) for _, spellings, mutated in CASES
            if canonical(spellings[0], predicate=True) == canonical(mutated, predicate=True)]
    assert not same, f"{len(same)} mutations compare equal, e.g. {same[:2]}"


def test_loose_rules_equal_whatever_strict_rules_equal():
    for _, spellings, _ in CASES[:100]:
        a = parse_create_index(f"CREATE INDEX i ON p (a) WHERE {spellings[0]}")
        b = parse_create_index(f"CREATE INDEX i ON p (a) WHERE {spellings[1]}")
        assert same_definition(a, b) and same_definition(a, b, loose=True)


def test_the_generator_covers_every_rule():
    """The properties above mean something only if the spellings really vary."""
    text = " ".join(s for _, spellings, _ in CASES for s in spellings)
    for needle in ("= true", "IS TRUE", "IS FALSE", "NOT NOT", "'t'::boolean", "::integer", "E'", "$$", "U&'",
                   "DATE '", "::date", "TIMESTAMP '", "::timestamp", "e-1", " IN (", "= ANY (ARRAY[", "::integer[]",
                   "BETWEEN", "NOTNULL", " != ", "p.", '"'):
        assert needle in text, needle


@pytest.mark.parametrize("a, b", [
    ("is_deleted", "(is_deleted = true)"),
    ("NOT is_deleted", "(is_deleted = false)"),
    ("from_id = owner_id", "(owner_id = from_id)"),
    ("from_id < owner_id", "owner_id > from_id"),
    ("a + b > 0", "b + a > 0"),
    ("x >= -1", "x >= '-1'::integer"),
    ("\"createdAt\" >= TIMESTAMP '2024-01-01'", "(\"createdAt\" >= '2024-01-01 00:00:00'::timestamp without time zone)"),
    ("status = ANY ('{A,B}'::text[])", "status = ANY (ARRAY['A'::text, 'B'::text])"),
    ("price > 1.50", "price > 1.5"),
    ("n = 3000000000", "n = '3000000000'::bigint"),
])
def test_spellings_the_server_prints_differently(a, b):
    assert canonical(a, predicate=True) == canonical(b, predicate=True)


@pytest.mark.parametrize("a, b", [
    ("x IS TRUE", "x"),                        # as a value (an index key) NULL IS TRUE is false, not NULL
    ("x IS NOT FALSE", "x"),                   # NULL IS NOT FALSE is true
    ("a - b", "b - a"),
    ("a || b", "b || a"),
    ("(a + b) + c", "a + (b + c)"),            # regrouping moves an integer overflow
    ("x * 1.50", "x * 1.5"),                   # a numeric's scale is part of the value
    ("'5'", "5"),
    ("-('5'::bigint)", "-5"),                  # int8 vs int4
    ("'2024-01-01'", "'2024-01-01 00:00:00'::timestamp"),   # untyped: the column decides
    ("'2024-01-01'::timestamptz", "'2024-01-01 00:00:00'::timestamptz"),  # the session's time zone decides
])
def test_what_the_rules_must_not_equate(a, b):
    assert canonical(a) != canonical(b)


def test_truth_tests_hold_only_where_truth_counts():
    assert canonical("x IS TRUE AND (y IS FALSE OR z)", predicate=True) == \
        canonical("x AND (NOT y OR z)", predicate=True)
    assert canonical("NOT (x IS TRUE)", predicate=True) != canonical("NOT x", predicate=True)
    assert canonical("f(x IS TRUE)", predicate=True) != canonical("f(x)", predicate=True)


# --- the server agrees -------------------------------------------------------------------------


def test_the_server_selects_the_same_rows_for_every_spelling(dsn, run_sql):
    """Every pair of spellings the rules call one predicate selects the same rows of a table with
    NULLs in every column; the mutations the rules keep apart are checked to be real SQL."""
    run_sql(dsn, TABLE_DDL)
    import psycopg

    checked = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        for _, spellings, mutated in CASES[:120]:
            first = spellings[0]
            for other in spellings[1:]:
                differ = conn.execute(f"SELECT count(*) FROM p WHERE (({first}) IS TRUE) <> (({other}) IS TRUE)"
                                      ).fetchone()[0]
                assert differ == 0, (first, other)
                checked += 1
            conn.execute(f"SELECT count(*) FROM p WHERE {mutated}").fetchone()
        # and the data is such that the predicates are not trivially constant
        assert conn.execute("SELECT count(*) FROM p WHERE flag IS NULL").fetchone()[0] > 0
    assert checked == 360


def test_plan_is_empty_whichever_way_the_spec_spells_what_the_server_printed(dsn, run_sql, tmp_path):
    """The indexes are made from one spelling; the spec says another; the plan is empty both
    ways round, and a real difference is still one replace."""
    import psycopg

    from reconciler.app.engine import make_plan
    from reconciler.spec import load_spec

    run_sql(dsn, "CREATE TABLE msg (id int, from_id int, owner_id int, is_deleted boolean, price numeric, "
                 "sent date, kind text)")
    pairs = [  # (as the index was made, as the spec says)
        ("is_deleted = true", "is_deleted"),
        ("NOT is_deleted", "is_deleted = false"),
        ("from_id = owner_id", "owner_id = from_id"),
        ("from_id < owner_id AND is_deleted IS TRUE", "is_deleted AND owner_id > from_id"),
        ("price > 1.50", "1.5 < price"),
        ("sent >= DATE '2024-01-01'", "'2024-01-01'::date <= sent"),
        ("kind = E'it\\'s'", "kind = $$it's$$"),
        ("id > -1", "-1 < id"),
    ]
    for i, (made, _) in enumerate(pairs):
        run_sql(dsn, f"CREATE INDEX msg_{i} ON msg (id) WHERE {made}")
    entries = "".join(f"  - {{name: msg_{i}, table: msg, columns: [id], where: {said!r}}}\n"
                      for i, (_, said) in enumerate(pairs))
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n" + entries)
    with psycopg.connect(dsn) as conn:
        plan, _ = make_plan(conn, load_spec([spec]))
    assert [(pc.change.action, pc.change.index, pc.change.reasons) for pc in plan.changes] == []
    spec.write_text("version: 1\nindexes:\n" + entries.replace("owner_id = from_id", "owner_id <> from_id"))
    with psycopg.connect(dsn) as conn:
        plan, _ = make_plan(conn, load_spec([spec]))
    assert [(pc.change.action, pc.change.index) for pc in plan.changes] == [("replace", "msg_2")]
