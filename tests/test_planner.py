"""planner: changes → the exact statements, their order, timeouts and hazards (no database)."""
from __future__ import annotations

import re

import pytest

from reconciler.reconcile.naming import temp_name
from reconciler.core.index import KeyPart, LiveIndex, Partition, TableFacts
from reconciler.core.plan import Change
from reconciler.reconcile.planner import Timeouts, build_plan, plan_change

from support.build import create, drop, idx, replace_change

T = Timeouts(lock_ms=1111, statement_ms=2222, build_ms=3333)


def kinds(pc) -> list[str]:
    return [op.kind for op in pc.operations]


def sqls(pc) -> list[str]:
    return [op.sql for op in pc.operations]


A = idx("orders_customer_idx", "customer_id")
A_DESC = idx("orders_customer_idx", KeyPart("customer_id", desc=True))
PARTS = TableFacts("p", 1000, 65536, (Partition("public", "orders_2024", "public", "orders"),
                                       Partition("public", "orders_2025", "public", "orders")))


def test_create_is_concurrent_and_never_if_not_exists():
    pc = plan_change(create(A), T)
    assert sqls(pc) == ["CREATE INDEX CONCURRENTLY orders_customer_idx ON public.orders (customer_id)"]
    (op,) = pc.operations
    assert op.concurrent and op.kind == "build" and op.target == "orders_customer_idx" and op.table == "public.orders"
    assert [h.code for h in pc.hazards] == ["INDEX_BUILD"]


def test_create_quotes_what_needs_quoting():
    d = idx("Orders_createdAt_idx", KeyPart("createdAt", desc=True, nulls_first=False), table="Orders",
            where='"deletedAt" IS NULL', include=("total", "Select"))
    (op,) = plan_change(create(d), T).operations
    assert op.sql == ('CREATE INDEX CONCURRENTLY "Orders_createdAt_idx" ON public."Orders" ("createdAt" DESC NULLS LAST) '
                      'INCLUDE (total, "Select") WHERE "deletedAt" IS NULL')


@pytest.mark.parametrize("change", [
    pytest.param(create(A), id="create"),
    pytest.param(create(idx("u", "email", unique=True)), id="create-unique"),
    pytest.param(create(A, PARTS), id="create-partitioned"),
    pytest.param(replace_change(A, A_DESC), id="replace"),
    pytest.param(drop(A), id="drop"),
])
def test_no_statement_ever_uses_if_not_exists_or_a_plain_build(change):
    for op in plan_change(change, T).operations:
        assert "IF NOT EXISTS" not in op.sql.upper()
        if op.kind in ("build", "build_partition"):
            assert "CONCURRENTLY" in op.sql and op.concurrent
        if op.kind == "build_parent":  # instant and INVALID: the one non-concurrent build
            assert " ON ONLY " in op.sql and "CONCURRENTLY" not in op.sql


def test_replace_renames_aside_then_builds_then_drops_the_old():
    pc = plan_change(replace_change(A, A_DESC), T)
    aside = temp_name("orders_customer_idx", "old")
    assert sqls(pc) == [
        f"ALTER INDEX public.orders_customer_idx RENAME TO {aside}",
        "CREATE INDEX CONCURRENTLY orders_customer_idx ON public.orders (customer_id DESC)",
        f"DROP INDEX CONCURRENTLY public.{aside}",
    ]
    assert kinds(pc) == ["rename", "build", "drop"]


def test_replace_of_an_index_on_another_table_keeps_the_name_free_first():
    old = idx("orders_customer_idx", "customer_id", table="invoices")
    pc = plan_change(replace_change(old, A), T)
    assert kinds(pc) == ["rename", "build", "drop"]
    assert sqls(pc)[2] == f"DROP INDEX CONCURRENTLY public.{temp_name('orders_customer_idx')}"


def test_rename_is_one_short_statement():
    c = Change("rename", "public", "orders", "orders_customer_idx", ("same definition as 'old_idx'",), A,
               LiveIndex(A.renamed("old_idx")), "old_idx")
    pc = plan_change(c, T)
    assert sqls(pc) == ["ALTER INDEX public.old_idx RENAME TO orders_customer_idx"]
    assert (pc.operations[0].lock_timeout_ms, pc.operations[0].statement_timeout_ms) == (1111, 2222)
    assert pc.hazards == ()


def test_rebuild_is_reindex_concurrently():
    c = Change("rebuild", "public", "orders", A.name, ("INVALID",), A, LiveIndex(A, valid=False))
    pc = plan_change(c, T)
    assert sqls(pc) == ["REINDEX INDEX CONCURRENTLY public.orders_customer_idx"]
    assert pc.operations[0].concurrent and pc.operations[0].statement_timeout_ms == 3333


def test_unique_gets_a_duplicate_check_first():
    d = idx("users_email_key", "email", "Tenant", table="users", unique=True, where='"deletedAt" IS NULL')
    pc = plan_change(create(d), T)
    assert kinds(pc) == ["check_unique", "build"]
    assert sqls(pc)[0] == ('SELECT (email), ("Tenant"), count(*) FROM public.users WHERE (email) IS NOT NULL AND '
                           '("Tenant") IS NOT NULL AND ("deletedAt" IS NULL) GROUP BY 1, 2 HAVING count(*) > 1 LIMIT 5')
    assert "UNIQUE_BUILD_MAY_FAIL" in [h.code for h in pc.hazards]


def test_unique_nulls_not_distinct_counts_nulls_as_duplicates():
    d = idx("users_email_key", "email", table="users", unique=True, nulls_not_distinct=True)
    check = plan_change(create(d), T).operations[0]
    assert check.kind == "check_unique" and "IS NOT NULL" not in check.sql and "WHERE" not in check.sql


def test_non_unique_has_no_duplicate_check():
    assert "check_unique" not in kinds(plan_change(create(A), T))


def test_replace_with_unique_checks_before_building():
    pc = plan_change(replace_change(A, idx(A.name, "customer_id", unique=True)), T)
    assert kinds(pc) == ["rename", "check_unique", "build", "drop"]


def test_expression_index_gets_analyze_after_the_build():
    d = idx("users_lower_email_idx", KeyPart("lower(email)", True), table="users")
    pc = plan_change(create(d), T)
    assert kinds(pc) == ["build", "analyze"]
    assert sqls(pc) == ["CREATE INDEX CONCURRENTLY users_lower_email_idx ON public.users (lower(email))",
                        "ANALYZE public.users"]


def test_comment_comes_after_the_build():
    d = idx("orders_customer_idx", "customer_id", comment="it's for the list page")
    pc = plan_change(create(d), T)
    assert sqls(pc)[-1] == "COMMENT ON INDEX public.orders_customer_idx IS 'it''s for the list page'"


def test_partitioned_table_on_only_then_each_partition_then_attach():
    pc = plan_change(create(A, PARTS), T)
    assert kinds(pc) == ["build_parent", "build_partition", "attach", "build_partition", "attach"]
    s = sqls(pc)
    assert s[0] == "CREATE INDEX orders_customer_idx ON ONLY public.orders (customer_id)"
    assert s[1] == "CREATE INDEX CONCURRENTLY ON public.orders_2024 (customer_id)"
    assert s[3] == "CREATE INDEX CONCURRENTLY ON public.orders_2025 (customer_id)"
    assert s[2].startswith("ALTER INDEX public.orders_customer_idx ATTACH PARTITION ")
    assert [op.table for op in pc.operations] == ["public.orders", "public.orders_2024", "public.orders_2024",
                                                  "public.orders_2025", "public.orders_2025"]
    # the short statements get the short statement timeout, builds the build timeout
    assert [op.statement_timeout_ms for op in pc.operations] == [2222, 3333, 2222, 3333, 2222]
    assert "PARTITIONED_BUILD" in [h.code for h in pc.hazards]
    assert "2 partition(s)" in next(h.message for h in pc.hazards if h.code == "PARTITIONED_BUILD")


def test_sub_partitioned_table_gets_on_only_on_the_middle_level_and_attaches_to_it():
    facts = TableFacts("p", 0, 0, (Partition("public", "orders_eu", "public", "orders", leaf=False),
                                   Partition("public", "orders_eu_2024", "public", "orders_eu")))
    pc = plan_change(create(A, facts), T)
    assert kinds(pc) == ["build_parent", "build_subparent", "attach", "build_partition", "attach"]
    s = sqls(pc)
    assert s[1] == "CREATE INDEX ON ONLY public.orders_eu (customer_id)"
    assert s[2].startswith("ALTER INDEX public.orders_customer_idx ATTACH PARTITION ")
    assert s[4].startswith("ALTER INDEX <index on public.orders_eu> ATTACH PARTITION ")
    assert [op.parent for op in pc.operations][1:] == ["public.orders", "public.orders", "public.orders_eu",
                                                       "public.orders_eu"]


def test_drop_is_concurrent_for_a_plain_index():
    pc = plan_change(drop(A, size_bytes=8192), T)
    assert sqls(pc) == ["DROP INDEX CONCURRENTLY public.orders_customer_idx"]
    assert pc.operations[0].concurrent and pc.operations[0].statement_timeout_ms == 3333
    assert [h.code for h in pc.hazards] == ["INDEX_DROPPED"]
    assert "(8.0 kB)" in pc.hazards[0].message


def test_drop_of_a_partitioned_index_is_a_plain_drop_with_a_hazard():
    pc = plan_change(drop(A, partitioned=True, table_kind="p"), T)
    (op,) = pc.operations
    assert op.sql == "DROP INDEX public.orders_customer_idx" and not op.concurrent
    assert (op.lock_timeout_ms, op.statement_timeout_ms) == (1111, 2222)
    hazard = next(h for h in pc.hazards if h.code == "ACQUIRES_ACCESS_EXCLUSIVE_LOCK")
    assert not hazard.blocking


@pytest.mark.parametrize("scans, blocking", [(None, False), (0, False), (1, True), (123456, True)])
def test_dropping_a_used_index_is_a_blocking_hazard(scans, blocking):
    pc = plan_change(drop(A, idx_scan=scans), T)
    used = [h for h in pc.hazards if h.code == "DROPS_USED_INDEX"]
    assert bool(used) is blocking
    if used:
        assert used[0].blocking and f"{scans:,} scans" in used[0].message


@pytest.mark.parametrize("change", [
    pytest.param(create(A), id="create"),
    pytest.param(create(idx("u", KeyPart("lower(e)", True), unique=True, comment="c")), id="create-unique-expr"),
    pytest.param(create(A, PARTS), id="create-partitioned"),
    pytest.param(replace_change(A, A_DESC), id="replace"),
    pytest.param(drop(A), id="drop"),
    pytest.param(drop(A, partitioned=True), id="drop-partitioned"),
])
def test_timeouts_land_on_every_operation(change):
    quick = {"rename", "rename_children", "build_parent", "attach", "comment"}
    for op in plan_change(change, T).operations:
        assert op.lock_timeout_ms == 1111, op
        if op.kind in quick or (op.kind == "drop" and not op.concurrent):
            assert op.statement_timeout_ms == 2222, op
        else:
            assert op.statement_timeout_ms == 3333, op


def test_default_timeouts():
    """The defaults are the documented ones (`apply --help`: lock wait 3s per statement and try,
    quick statements 60s, a concurrent build unbounded), in the library and in what `plan` and
    `apply` pass to it when no flag is given."""
    from reconciler.cli import cli
    from reconciler.cli.options import _timeouts

    assert (Timeouts().lock_ms, Timeouts().statement_ms, Timeouts().build_ms) == (3000, 60000, 0)
    (op,) = plan_change(create(A)).operations
    assert (op.lock_timeout_ms, op.statement_timeout_ms) == (3000, 0)   # a build: only the lock wait is bounded
    for command in ("plan", "apply"):
        defaults = {p.name: p.default for p in cli.all_commands()[command].params}
        assert _timeouts(defaults["lock_timeout"], defaults["statement_timeout"], defaults["build_timeout"]) \
            == Timeouts(), command


def test_build_plan_builds_before_drops_across_changes():
    b = idx("orders_created_idx", "created_at")
    changes = [
        drop(idx("zz_old_idx", "x")),
        replace_change(b, idx("orders_created_idx", KeyPart("created_at", desc=True))),
        create(idx("aa_new_idx", "y")),
        Change("rename", "public", "orders", "orders_customer_idx", (), A, LiveIndex(A.renamed("old")), "old"),
        Change("rebuild", "public", "orders", "orders_status_idx", (), idx("orders_status_idx", "status"),
               LiveIndex(idx("orders_status_idx", "status"), valid=False)),
        drop(idx("aa_old_idx", "x")),
    ]
    plan = build_plan(changes, timeouts=T, fingerprint="f00")
    assert [(pc.change.action, pc.change.index) for pc in plan.changes] == [
        ("rename", "orders_customer_idx"), ("rebuild", "orders_status_idx"), ("create", "aa_new_idx"),
        ("replace", "orders_created_idx"), ("drop", "aa_old_idx"), ("drop", "zz_old_idx")]
    ops = [op for pc in plan.changes for op in pc.operations]
    last_build = max(i for i, op in enumerate(ops) if op.kind in ("build", "reindex"))
    first_plain_drop = min(i for i, op in enumerate(ops) if op.kind == "drop" and "aa_old_idx" in op.sql)
    assert last_build < first_plain_drop
    assert plan.fingerprint == "f00" and not plan.empty


def test_build_plan_is_deterministic():
    changes = [create(idx(n, "a")) for n in ("b_idx", "a_idx", "c_idx")]
    p1, p2 = build_plan(changes, timeouts=T), build_plan(list(reversed(changes)), timeouts=T)
    assert p1 == p2
    assert [pc.change.index for pc in p1.changes] == ["a_idx", "b_idx", "c_idx"]


def test_empty_plan():
    assert build_plan([]).empty


def test_every_planned_statement_is_one_statement():
    plan = build_plan([create(A), create(idx("u", "e", unique=True, where="a = 'x;y'")), drop(idx("d", "x"))], timeouts=T)
    for pc in plan.changes:
        for op in pc.operations:
            outside_quotes = re.sub(r"'(?:[^']|'')*'", "''", op.sql)
            assert ";" not in outside_quotes, op.sql
