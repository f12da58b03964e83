"""What `reconciler maintain` decides (`health.maintain`), from fixture rows: no database."""
from __future__ import annotations

import pytest

from reconciler.core.kinds import OpKind
from reconciler.health import Thresholds
from reconciler.health.maintain import maintenance_plan
from reconciler.reconcile.planner import Timeouts
from reconciler.spec import load_spec
from test_health import inputs, ix, snap, table

BLOATED = dict(scans=5, size=2000 * 8192, bloat=inputs(2000, 100000))


def kinds(steps):
    return [(s.kind, s.index or s.table) for s in steps]


def test_bloated_index_is_reindexed_concurrently_with_the_timeouts():
    x = ix("CREATE INDEX t_b ON t (b)", **BLOATED)
    steps = maintenance_plan(snap(x), timeouts=Timeouts(lock_ms=700, statement_ms=5000, build_ms=90000))
    assert kinds(steps) == [("reindex", "t_b")]
    op = steps[0].operation
    assert (op.sql, op.kind, op.lock_timeout_ms, op.statement_timeout_ms, op.concurrent, op.table) == (
        "REINDEX INDEX CONCURRENTLY public.t_b", OpKind.REINDEX, 700, 90000, True, "public.t")
    assert steps[0].reason == "bloat 86% (13.5 MB of 15.6 MB, estimated)"


def test_not_bloated_is_left_alone_unless_named():
    x = ix("CREATE INDEX t_b ON t (b)", scans=5, size=400 * 8192, bloat=inputs(400, 100000))
    assert maintenance_plan(snap(x)) == []
    steps = maintenance_plan(snap(x), named=[("public", "t_b")])
    assert kinds(steps) == [("reindex", "t_b")] and steps[0].reason.startswith("--index; bloat")


def test_exclusion_constraint_index_is_skipped_with_the_reason():
    x = ix("CREATE INDEX t_ex ON t (b)", exclusion=True, constraint="t_ex", constraint_type="x", **BLOATED)
    steps = maintenance_plan(snap(x))
    assert kinds(steps) == [("skip", "t_ex")] and steps[0].operation is None
    assert "exclusion-constraint index cannot be reindexed concurrently" in steps[0].reason


def test_abandoned_leftovers_are_dropped_first_never_one_being_built_nor_the_spec_s(tmp_path):
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nmanage: {ignore: ['legacy_*']}\nindexes:\n  - name: t_spec\n    table: t\n"
                 "    columns: [c]\n")
    rows = [ix("CREATE INDEX t_b ON t (b)", **BLOATED),
            ix("CREATE INDEX t_b_ccnew ON t (b)", valid=False),
            ix("CREATE INDEX t_new ON t (a)", valid=False, being_built_by=4321),
            ix("CREATE INDEX t_spec ON t (c)", valid=False),
            ix("CREATE INDEX legacy_x ON t (d)", valid=False)]
    steps = maintenance_plan(snap(*rows), spec=load_spec([f]))
    assert kinds(steps) == [("drop", "t_b_ccnew"), ("reindex", "t_b"), ("skip", "t_new"), ("skip", "t_spec")]
    drop = steps[0].operation
    assert drop.sql == "DROP INDEX CONCURRENTLY public.t_b_ccnew" and drop.kind is OpKind.DROP and drop.concurrent
    assert "_ccnew" in steps[0].reason
    assert "builds it" in steps[2].reason and "reconciler apply" in steps[3].reason


def test_a_partitioned_leftover_is_dropped_without_concurrently():
    parent = ix("CREATE INDEX p_b ON p (b)", partitioned=True, valid=False, size=0, table_oid=10)
    steps = maintenance_plan(snap(parent, tables=[table("p", 10, kind="p")]))
    assert steps[0].operation.sql == "DROP INDEX public.p_b" and not steps[0].operation.concurrent


def test_only_managed_tables_unless_named():
    x = ix("CREATE INDEX u_b ON u (b)", table_oid=2, **BLOATED)
    s = snap(x, tables=[table("t", 1), table("u", 2)])
    assert maintenance_plan(s, managed={1}) == []
    assert kinds(maintenance_plan(s, managed={1}, named=[("public", "u_b")])) == [("reindex", "u_b")]


def test_stale_tables_are_analyzed_and_vacuum_covers_every_managed_table():
    tabs = [table("t", 1, live_rows=1000, modified_since_analyze=5000), table("u", 2, live_rows=1000),
            table("p", 3, kind="p")]
    steps = maintenance_plan(snap(tables=tabs))
    assert kinds(steps) == [("analyze", "t")]
    assert steps[0].operation.sql == "ANALYZE public.t" and steps[0].operation.kind is OpKind.ANALYZE
    steps = maintenance_plan(snap(tables=tabs), vacuum=True)
    assert kinds(steps) == [("vacuum", "t"), ("vacuum", "u")]
    assert steps[0].operation.sql == "VACUUM (ANALYZE) public.t" and steps[0].operation.kind is OpKind.VACUUM


def test_thresholds_decide_what_is_bloated_and_stale():
    x = ix("CREATE INDEX t_b ON t (b)", **BLOATED)
    assert maintenance_plan(snap(x), Thresholds(max_bloat_ratio=0.95)) == []
    t = table("t", 1, live_rows=1000, modified_since_analyze=200)
    assert kinds(maintenance_plan(snap(tables=[t]), Thresholds(max_stale_ratio=0.1))) == [("analyze", "t")]
    assert maintenance_plan(snap(tables=[t]), Thresholds(max_stale_ratio=0.5)) == []


def test_identifiers_are_quoted():
    x = ix('CREATE INDEX "Odd ""Name""" ON t (b)', **BLOATED)
    steps = maintenance_plan(snap(x))
    assert steps[0].operation.sql == 'REINDEX INDEX CONCURRENTLY public."Odd ""Name"""'


def test_a_named_index_the_snapshot_lacks_is_a_skip():
    steps = maintenance_plan(snap(), named=[("public", "gone")])
    assert kinds(steps) == [("skip", "gone")] and steps[0].operation is None


@pytest.mark.parametrize("text,parsed", [
    ("idx", (None, "idx")), ("public.idx", ("public", "idx")), ('"My S"."Odd.Idx"', ("My S", "Odd.Idx")),
    ('"a""b"', (None, 'a"b')), ("CamelCase", (None, "CamelCase")),
])
def test_index_names_on_the_command_line(text, parsed):
    from reconciler.app.maintain import parse_index_name

    assert parse_index_name(text) == parsed


def test_bad_index_name_is_one_line():
    from reconciler.app.maintain import parse_index_name
    from reconciler.errors import ReconcilerError

    with pytest.raises(ReconcilerError) as info:
        parse_index_name("a.b.c")
    assert str(info.value) == "--index 'a.b.c': expected NAME or SCHEMA.NAME"
