"""Citus refusals decided from catalog facts (docs/citus.md), and the detection query on real
servers (where citus is absent: nothing refused, nothing else read)."""
from __future__ import annotations

import psycopg
import pytest

from reconciler.core.index import IndexDef, KeyPart, TableFacts
from reconciler.core.plan import Change
from reconciler.pg.citus import read_citus
from reconciler.reconcile.citus import CitusFacts, unsafe_changes, worker_refusal

FACTS = CitusFacts("12.1-1", True, {("public", "orders"): ("h", "tenant_id"), ("public", "logs"): ("a", None),
                                     ("public", "events"): ("h", "tenant_id"), ("public", "countries"): ("n", None)})


def _create(table, *cols, unique=False, tablespace=None, kind="r", expr=()):
    keys = tuple(KeyPart(c) for c in cols) + tuple(KeyPart(e, True) for e in expr)
    d = IndexDef("public", table, keys, unique=unique, tablespace=tablespace, name=f"{table}_idx")
    return Change("create", "public", table, d.name, (), d, None, None, TableFacts(kind))


@pytest.mark.parametrize("change, reason", [
    (_create("orders", "created_at"), None),
    (_create("orders", "tenant_id", "id", unique=True), None),
    (_create("orders", "id", unique=True), "must contain the distribution column 'tenant_id'"),
    (_create("orders", "id", unique=True, expr=("lower(tenant_id)",)), "must contain the distribution column"),
    (_create("logs", "id", unique=True), "no UNIQUE index on an append-distributed table"),
    (_create("orders", "created_at", tablespace="fast"), "refuses TABLESPACE"),
    (_create("events", "created_at", kind="p"), "the table is partitioned"),
    (_create("countries", "code", unique=True), None),             # a reference table: as plain PostgreSQL
    (_create("local_table", "x", unique=True, tablespace="fast"), None),
])
def test_what_citus_cannot_do_safely_is_refused(change, reason):
    got = unsafe_changes(FACTS, [change])
    if reason is None:
        assert got == []
    else:
        assert len(got) == 1 and reason in got[0] and f"public.{change.index}" in got[0]


def test_a_drop_on_a_distributed_partitioned_table_is_refused_too():
    c = _create("events", "a", kind="p")
    drop = Change("drop", "public", "events", "events_old", (), None, None, None, TableFacts("p"))
    assert len(unsafe_changes(FACTS, [c, drop])) == 2


def test_no_citus_no_refusal():
    assert unsafe_changes(None, [_create("orders", "id", unique=True)]) == []
    assert worker_refusal(None) is None and worker_refusal(FACTS) is None
    assert "worker node" in worker_refusal(CitusFacts("12.1-1", False))


def test_the_detection_reads_nothing_more_when_citus_is_absent(dsn):
    with psycopg.connect(dsn) as conn:
        assert read_citus(conn) is None
        assert conn.info.transaction_status == psycopg.pq.TransactionStatus.IDLE   # left as it was found
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert read_citus(conn) is None
