"""Queries in the spec, without a database: the spec keys and the .sql file form, tags and
--select, the data-modifying classifier, $n counting, EXPLAIN JSON → access paths and verdicts,
the what-if rules, and the verify renderers."""
from __future__ import annotations

import json

import pytest

from reconciler.core.plan import Change, Plan, PlannedChange, QueryEffect
from reconciler.errors import ReconcilerError, SpecError
from reconciler.normalize import classify_statement, placeholder_count
from reconciler.queries import judge, parse_explain
from reconciler.queries.whatif import ChangeSim, QueryState, effects_of
from reconciler.render import render_json, render_markdown, render_text
from reconciler.render.verify import RENDERERS
from reconciler.spec import Selection, load_spec, parse_queries_sql, parse_selection, query_reference_problems

SPEC = """\
version: 1
indexes:
  - name: idx_a
    table: t
    columns: [ws]
    tags: [phase-1]
  - name: idx_b
    table: u
    columns: [x]
    tags: [phase-2, hot]
queries:
  - name: by ws
    sql: SELECT * FROM t WHERE ws = $1
    params: ["w1"]
    uses: [idx_a]
    budget_ms: 5
  - name: no uses
    sql: SELECT 1
"""


def _spec(tmp_path, text=SPEC, extra=None):
    (tmp_path / "indexes.yaml").write_text(text)
    for name, body in (extra or {}).items():
        (tmp_path / name).write_text(body)
    return load_spec([tmp_path / "indexes.yaml"])


def test_queries_and_tags_load_with_their_lines(tmp_path):
    spec = _spec(tmp_path)
    assert [q.name for q in spec.queries] == ["by ws", "no uses"]
    q = spec.queries[0]
    assert (q.params, q.uses, q.budget_ms, q.line) == (("w1",), ("idx_a",), 5.0, 12)
    assert spec.entries[1].tags == ("phase-2", "hot")
    assert query_reference_problems(spec) == []


def test_uses_naming_no_index_is_reported_with_a_suggestion(tmp_path):
    spec = _spec(tmp_path, SPEC.replace("uses: [idx_a]", "uses: [idx_aa]"))
    [(q, msg)] = query_reference_problems(spec)
    assert q.name == "by ws" and "'idx_aa' is not an index of the spec (did you mean 'idx_a'?)" in msg


@pytest.mark.parametrize("snippet, expected", [
    ("    budget_ms: -1\n", "indexes.yaml:19: query 'no uses': budget_ms: Input should be greater than 0"),
    ("    sqll: x\n", "indexes.yaml:19: query 'no uses': sqll: unknown key 'sqll' (did you mean 'sql'?)"),
    ("    params: {a: 1}\n", "indexes.yaml:19: query 'no uses': params"),
])
def test_bad_query_keys_name_file_line_and_key(tmp_path, snippet, expected):
    with pytest.raises(SpecError) as e:
        _spec(tmp_path, SPEC + snippet)
    assert expected in e.value.message


def test_bad_tag_and_duplicate_query_name(tmp_path):
    with pytest.raises(SpecError, match=r"indexes.yaml:6: index 'idx_a': tags: tag 'phase 1': use letters"):
        _spec(tmp_path, SPEC.replace("tags: [phase-1]", "tags: [phase 1]"))
    with pytest.raises(SpecError, match=r"indexes.yaml:17: query 'by ws': name already used at .*indexes.yaml:12"):
        _spec(tmp_path, SPEC.replace("name: no uses", "name: by ws"))


QUERIES_SQL = """\
-- Queries of the billing service.

-- name: monthly quota
-- uses: idx_a
-- params: ["w1", 3]
-- budget_ms: 50
SELECT count(*)
FROM t
WHERE ws = $1 AND n > $2;

-- name: retries
-- a plain comment: not a header
SELECT 1;
"""


def test_queries_file_with_name_headers(tmp_path):
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "queries.sql").write_text(QUERIES_SQL)
    spec = _spec(tmp_path, SPEC + "queries_file: app/queries.sql\n")
    a, b = spec.queries[2:]
    assert (a.name, a.uses, a.params, a.budget_ms, a.line) == ("monthly quota", ("idx_a",), ("w1", 3), 50.0, 7)
    assert a.sql == "SELECT count(*)\nFROM t\nWHERE ws = $1 AND n > $2" and a.file.endswith("app/queries.sql")
    assert (b.name, b.sql, b.line) == ("retries", "SELECT 1", 13)   # comments before the SQL are skipped


@pytest.mark.parametrize("text, expected", [
    ("SELECT 1;\n", "q.sql:1: SQL before the first '-- name:' header"),
    ("-- name: a\n-- budgetms: 5\nSELECT 1\n", "q.sql:2: query 'a': unknown header 'budgetms' (did you mean 'budget_ms'?)"),
    ("-- name: a\n-- params: ws_42\nSELECT $1\n", "q.sql:2: query 'a': params: expected a flow list"),
    ("-- name: a\n-- budget_ms: fast\nSELECT 1\n", "q.sql:2: query 'a': budget_ms: 'fast' is not a number"),
    ("-- name: a\n\n-- name: b\nSELECT 1\n", "q.sql:1: query 'a': no SQL after the header"),
    ("-- nothing here\n", "q.sql:1: no query found"),
])
def test_queries_file_errors_name_file_and_line(text, expected):
    with pytest.raises(SpecError) as e:
        parse_queries_sql(text, "q.sql")
    assert e.value.message.startswith(expected)


def test_missing_queries_file_names_the_spec_line(tmp_path):
    with pytest.raises(SpecError, match=r"indexes.yaml:19: queries_file: cannot read .*nope.sql: No such file"):
        _spec(tmp_path, SPEC + "queries_file: nope.sql\n")


def test_selection_is_a_union_of_tag_name_and_table():
    sel = parse_selection(["tag=hot", "name=idx_c*", "table=public.v"], {"hot", "phase-1"})
    assert sel.index("public", "idx_b", "u", ("hot",))
    assert sel.index("public", "idx_c1", "z")
    assert sel.index("public", "other", "v") and not sel.index("s2", "other", "v")
    assert not sel.index("public", "idx_a", "t", ("phase-1",))
    assert Selection().index("s", "anything", "t") and not Selection().partial
    assert parse_selection(["table=u*"]).index("x", "i", "users")


@pytest.mark.parametrize("bad, message", [
    ("tag=nope", "no index of the spec has tag 'nope' (tags: hot)"),
    ("colour=red", "expected tag=NAME, name=GLOB or table=GLOB"),
    ("name=", "expected tag=NAME"),
])
def test_bad_selectors_are_errors(bad, message):
    with pytest.raises(ReconcilerError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_selection([bad], {"hot"})


@pytest.mark.parametrize("sql, modifies, reason", [
    ('SELECT count(*) FROM "t" WHERE "ws" = $1', False, ""),
    ("SELECT 1 UNION SELECT 2", False, ""),
    ("VALUES (1)", False, ""),
    ("DELETE FROM t WHERE id = $1", True, "it runs DELETE"),
    ("WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) FROM d", True, "it runs DELETE"),
    ("UPDATE t SET a = 1", True, "it runs UPDATE"),
    ("INSERT INTO t VALUES (1)", True, "it runs INSERT"),
    ("SELECT * FROM t FOR UPDATE SKIP LOCKED", True, "it locks rows"),
    ("SELECT * INTO t2 FROM t", True, "SELECT INTO creates a table"),
    ("SELECT pg_terminate_backend(42)", True, "pg_terminate_backend()"),
    ("SELECT nextval('s')", True, "nextval()"),
    ("SELECT 1; DROP TABLE t", True, "2 statements"),
    ("TRUNCATE t", True, "TRUNCATE is not a query"),
    ("CALL p()", True, "CALL is not a query"),
    ("SELEC 1 FROM", True, "sqlglot cannot read it"),
])
def test_data_modifying_detection_is_conservative(sql, modifies, reason):
    info = classify_statement(sql)
    assert info.modifies is modifies and reason in info.reason


@pytest.mark.parametrize("sql, n", [
    ("SELECT 1", 0),
    ("SELECT $1, $2", 2),
    ("SELECT $3", 3),
    ("SELECT '$4', \"$5\", $$ $6 $$, $tag$ $7 $tag$, x$8", 0),
    ("SELECT 1 -- $9\n + $2 /* $10 /* nested $11 */ $12 */", 2),
    ("SELECT E'\\' $3' , $1", 1),
])
def test_placeholder_count_ignores_quotes_and_comments(sql, n):
    assert placeholder_count(sql) == n


def _node(kind, **kw):
    return {"Node Type": kind, **kw}


PLAN = [{"Plan": _node("Aggregate", **{"Total Cost": 48000.5, "Plan Rows": 1, "Plans": [
    _node("Hash Join", Plans=[
        _node("Seq Scan", **{"Relation Name": "t", "Alias": "t", "Parallel Aware": True}),
        _node("Bitmap Heap Scan", **{"Relation Name": "u", "Alias": "x", "Plans": [
            _node("BitmapAnd", Plans=[_node("Bitmap Index Scan", **{"Index Name": "u_a"}),
                                      _node("Bitmap Index Scan", **{"Index Name": "u_b"})])]}),
        _node("Index Only Scan", **{"Relation Name": "v", "Alias": "v", "Index Name": "v_pkey"}),
    ])]}), "Planning Time": 0.5, "Execution Time": 2.0}]


def test_explain_json_to_access_paths():
    e = parse_explain(PLAN)
    assert [a.describe() for a in e.accesses] == [
        "Parallel Seq Scan on t", "Bitmap Heap Scan on u x via u_a + u_b", "Index Only Scan on v using v_pkey"]
    assert e.indexes == {"u_a", "u_b", "v_pkey"} and e.tables == {"t", "u", "v"}
    assert (e.cost, e.rows, e.time_ms) == (48000.5, 1.0, 2.5)


def test_verdict_misses_index_and_budgets():
    e = parse_explain(PLAN)
    ok = judge(name="q", where="f:1", sql="", mode="plan", uses=["u_a"], plan=e)
    assert ok.ok and ok.uses == (("u_a", True),)
    bad = judge(name="q", where="f:1", sql="", mode="plan", uses=["t_ws"], plan=e, budget_cost=100,
                budget_ms=1.0, runs=[e, parse_explain([{**PLAN[0], "Execution Time": 0.1}]), e])
    assert not bad.ok and bad.time_ms == 2.5 and bad.runs_ms == (2.5, 0.6, 2.5)
    assert bad.misses[0].startswith("does not use t_ws (Parallel Seq Scan on t; ")
    assert "over its budget_cost 100.00" in bad.misses[1] and "took 2.500 ms (median of 3)" in bad.misses[2]
    parent = judge(name="q", where="f:1", sql="", mode="plan", uses=["parent_idx"], plan=e,
                   serves=lambda p, s: p == s or (p, s) == ("v_pkey", "parent_idx"))
    assert parent.ok


def _explained(cost, indexes=(), table="t"):
    node = _node("Index Scan", **{"Relation Name": table, "Alias": table, "Index Name": indexes[0]}) if indexes \
        else _node("Seq Scan", **{"Relation Name": table, "Alias": table})
    return parse_explain([{"Plan": {**node, "Total Cost": cost, "Plan Rows": 1}}])


def _state(before, after, uses=("idx",), budget_cost=None, b_names=None, a_names=None):
    return QueryState("q", "f:3", uses, budget_cost, before, after,
                      frozenset(b_names if b_names is not None else before.indexes),
                      frozenset(a_names if a_names is not None else (after.indexes if after else ())))


def test_whatif_create_used_is_an_effect_not_a_regression():
    create = ChangeSim(0, "create", "t", "idx", None, True)
    [eff] = effects_of([create], [_state(_explained(48000), _explained(12, ["idx"]), b_names=())])[0]
    assert eff.summary == "will use it (cost 48,000 → 12.00)" and not eff.regression


def test_whatif_drop_of_a_used_index_is_a_regression():
    drop = ChangeSim(1, "drop", "t", None, "idx", True)
    [eff] = effects_of([drop], [_state(_explained(8, ["idx"]), _explained(48000))])[1]
    assert eff.regression and eff.summary.startswith("will stop using idx (cost 8.00 → 48,000; then: Seq Scan on t)")
    assert "loses idx (listed in its uses)" in eff.summary


def test_whatif_cost_growth_and_budget_cost_crossing():
    drop = ChangeSim(1, "drop", "t", None, "other", True)
    [eff] = effects_of([drop], [_state(_explained(8, ["other"]), _explained(400), uses=(), budget_cost=100)])[1]
    assert eff.regression and "crosses its budget_cost 100" in eff.summary and "estimated cost ×50.0" in eff.summary
    small = effects_of([drop], [_state(_explained(8, ["other"]), _explained(90), uses=())])[1]
    assert small and not small[0].regression  # +82 cost: below the 100 minimum, not a regression


def test_whatif_unsimulated_drop_of_a_used_index_is_a_regression_and_says_why():
    drop = ChangeSim(1, "drop", "t", None, "idx", False, "HypoPG 1.3.1 has no hypopg_hide_index (1.4.0+)")
    [eff] = effects_of([drop], [_state(_explained(8, ["idx"]), None)])[1]
    assert eff.regression and eff.summary == "uses idx now (cost 8.00); its plan without it is unknown"
    untouched = effects_of([drop], [_state(_explained(8, ["x"]), None, uses=())])[1]
    assert untouched == []


def test_plan_renderers_show_effects_and_partial_selection():
    c = Change("drop", "public", "t", "idx", ("not in the spec; prune is on",))
    pc = PlannedChange(c, (), (), (QueryEffect("q", "f:3", "will stop using idx (cost 8 → 48,000)", 8, 48000,
                                               True),), "")
    plan = Plan((pc,), selection=("tag=phase-1",))
    text = render_text(plan)
    assert "note: partial plan (--select tag=phase-1)" in text
    assert "query 'q': will stop using idx (cost 8 → 48,000)" in text
    assert text.rstrip().endswith("(partial: --select tag=phase-1)")
    doc = json.loads(render_json(plan))
    assert doc["partial"] is True and doc["selection"] == ["tag=phase-1"]
    assert doc["changes"][0]["queries"][0]["regression"] is True
    assert ":x: drop `idx`: query **q** will stop using idx" in render_markdown(plan)


def test_verify_renderers():
    e = parse_explain(PLAN)
    v = [judge(name='q "1"', where="f:1", sql="", mode="plan", uses=["u_a", "nope"], plan=e, budget_ms=5,
               runs=[e])]
    text = RENDERERS["text"](v)
    assert "MISS q \"1\" (f:1): plan, cost 48,000, rows 1" in text and "uses nope: NO" in text
    assert text.rstrip().endswith("Verify: 0 of 1 query pass; 1 miss their index or budget.")
    doc = json.loads(RENDERERS["json"](v))
    assert doc["ok"] is False and doc["queries"][0]["uses"] == [{"index": "u_a", "used": True},
                                                                {"index": "nope", "used": False}]
    prom = RENDERERS["prometheus"](v)
    assert 'reconciler_query_ok{query="q \\"1\\""} 0' in prom
    assert 'reconciler_query_uses_index{query="q \\"1\\"",index="nope"} 0' in prom
    assert 'reconciler_query_time_ms{query="q \\"1\\""} 2.5' in prom
    assert "| ❌ | q \"1\" |" in RENDERERS["markdown"](v)


def _pc(action, method="btree"):
    from reconciler.core.index import IndexDef, KeyPart, LiveIndex

    d = IndexDef("public", "t", (KeyPart("a"),), method=method, name="i")
    live = LiveIndex(d, oid=42) if action in ("drop", "replace", "rebuild") else None
    return PlannedChange(Change(action, "public", "t", "i", (), None if action == "drop" else d, live), ())


@pytest.mark.parametrize("action, method, hypo, throwaway, expected", [
    ("create", "btree", None, False, (None, None, "the hypopg extension is not installed in this database")),
    ("create", "btree", ("1.3.1", False), False, ("hypo", None, "")),
    ("create", "gin", ("1.4.0", True), False, (None, None, "HypoPG cannot simulate gin indexes")),
    ("create", "gin", None, True, ("ddl", None, "")),
    ("drop", "btree", ("1.3.1", False), False, (None, None, "HypoPG 1.3.1 has no hypopg_hide_index (1.4.0+); "
                                                 "reconciler never drops an index on a real database")),
    ("drop", "btree", ("1.4.0", True), False, (None, "hide", "")),
    ("replace", "btree", ("1.4.0", True), False, ("hypo", "hide", "")),
    ("replace", "btree", ("1.3.1", False), False, ("hypo", None, "HypoPG 1.3.1 has no hypopg_hide_index")),
    ("drop", "btree", None, True, (None, "ddl", "")),
    ("rebuild", "btree", ("1.3.1", False), False, ("hypo", None, "")),
])
def test_whatif_capabilities_per_change_and_hypopg_version(action, method, hypo, throwaway, expected):
    """HypoPG 1.4 (hide) is not installable here; this is where its path is decided."""
    from reconciler.app.whatif import _capabilities
    from reconciler.pg.explain import Hypopg

    h = Hypopg(hypo[0], "public", hypo[1]) if hypo else None
    add, remove, why = _capabilities(_pc(action, method), h, throwaway)
    assert (add, remove) == expected[:2] and why.startswith(expected[2])


def test_verify_summary_without_queries():
    assert RENDERERS["text"]([], "--select tag=x") == "Verify: no query uses the selected indexes (partial: --select tag=x).\n"
    assert RENDERERS["text"]([]) == "Verify: no query to check.\n"


# --- the functions a plan tree calls (verify --analyze's refusal of side effects) ------------

def test_plan_calls_reads_every_oid_field_and_never_loses_one_to_a_name():
    from reconciler.queries.calls import plan_calls

    tree = ("{PLANNEDSTMT :planTree {SEQSCAN :qual ({FUNCEXPR :funcid 16392 :funcresulttype 16} "
            "{OPEXPR :opno 96 :opfuncid\n65 :opresulttype 16} {ROWCOMPAREEXPR :opnos (o 97 521)} "
            "{AGGREF :aggfnoid 2803 :aggtype 20} {COERCETODOMAIN :resulttype 16500})} "
            # a column alias holding field-like text: outfuncs.c writes its blanks with backslashes
            ":rtable ({RANGETBLENTRY :eref {ALIAS :aliasname x\\ :funcid\\ 1 :colnames (\"a\")} :relid 16385 "
            ":relkind r :rellockmode 1} {RANGETBLENTRY :relid 16390 :relkind r :rellockmode 3})}")
    calls = plan_calls([tree, "{FUNCEXPR :funcid 1598}"])
    assert calls.functions == {16392, 65, 2803, 1598}
    assert calls.operators == {96, 97, 521}
    assert {16, 20, 16500} <= calls.types
    assert calls.written == {16390}
    # an entry whose lock mode is unreadable counts as written (refuse more, never less)
    assert plan_calls(["{RANGETBLENTRY :relid 17000 :relkind r}"]).written == {17000}


def test_side_effect_risks_keeps_volatile_functions_but_the_reviewed_built_ins():
    from reconciler.queries.calls import CalledFunction, describe_risk, side_effect_risks

    def f(schema, name, vol, via="called by the plan"):
        return CalledFunction(1, schema, name, "integer", vol, "plpgsql", via)

    found = [f("pg_catalog", "random", "v"), f("public", "random", "v"), f("pg_catalog", "nextval", "v"),
             f("public", "stable_one", "s"), f("app", "Grab", "v", "behind operator ==>(integer,integer)")]
    assert [x.name for x in side_effect_risks(found)] == ["nextval", "random", "Grab"]
    assert [x.name for x in side_effect_risks(found, writing=True)] == ["random", "Grab"]
    assert describe_risk(side_effect_risks(found)[-1]) == \
        'app."Grab"(integer) (VOLATILE, plpgsql, behind operator ==>(integer,integer))'
    # a name with a line break stays on one line
    assert "\n" not in describe_risk(f("public", "a\nb", "v"))


def test_one_lookup_for_many_queries_is_split_back_by_the_root_each_function_came_from():
    from reconciler.queries.calls import PlanCalls, reached_by, union

    a = PlanCalls(frozenset({10}), frozenset({96}), frozenset())
    b = PlanCalls(frozenset({20}), frozenset(), frozenset(), frozenset({300}))
    assert union([a, b]) == PlanCalls(frozenset({10, 20}), frozenset({96}), frozenset(), frozenset({300}))
    rows = [("f", 10, 10, "public", "f10", "", "v", "plpgsql", "called by the plan"),
            ("o", 96, 10, "public", "f10", "", "v", "plpgsql", "behind operator =(integer,integer)"),
            ("f", 20, 20, "public", "f20", "", "s", "sql", "called by the plan"),
            ("w", 300, 30, "public", "trg", "", "v", "plpgsql", "by trigger t on x")]
    assert [(f.name, f.via) for f in reached_by(rows, a)] == [("f10", "behind operator =(integer,integer)")]
    assert sorted(f.name for f in reached_by(rows, b)) == ["f20", "trg"]
