"""`reconciler apply` on a real server: convergence, the statements it sends, and its refusals.

Every test runs on each test server (pg18, pg15) in a fresh database; the CLI runs as a real
subprocess (stdin is not a terminal), the executor on a real autocommit connection. No mocks.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import re
import threading
import time

import psycopg
import pytest

from reconciler.app.apply import find_on_partition, verifier
from reconciler.reconcile.naming import temp_name
from reconciler.app.engine import make_plan
from reconciler.errors import ApplyError
from reconciler.run.executor import ADVISORY_KEY, Executor
from reconciler.reconcile.planner import Timeouts
from reconciler.spec import load_spec

from support.cli import run_cli_when
from support.cli import run_cli as cli
from support.ddl import indexdefs, invalid_indexes, partitioned_table, small_table
from support.specs import one_index_spec, write_spec


# ---------------------------------------------------------------------------------------------
# helpers


@pytest.fixture
def second_dsn(pg_server, request):
    """A second fresh database on the same server."""
    name = "t_ref_" + hashlib.sha1(request.node.nodeid.encode()).hexdigest()[:16]
    yield pg_server.fresh_db(name)
    pg_server.drop_db(name)


# ---------------------------------------------------------------------------------------------
# 1. convergence: every kind of change, then the live definitions equal hand-written DDL

SCHEMA = """
CREATE TABLE items (id bigint PRIMARY KEY, customer_id int, sku text, email text, status text,
                    total numeric, created_at timestamptz);
INSERT INTO items SELECT g, g % 97, 'sku-' || g, 'User' || g || '@example.com',
       (ARRAY['open', 'done', 'held'])[1 + g % 3], g * 1.5, timestamptz '2024-01-01' + g * interval '1 minute'
FROM generate_series(1, 3000) g;
""" + partitioned_table("events", (2023, 2024, 2025), 3000, "kind text", "'k' || (g % 7)") + """
CREATE MATERIALIZED VIEW totals AS SELECT customer_id, sum(total) AS amount FROM items GROUP BY customer_id;
"""

# What the database has before apply: one index to replace (its predicate changes), one to rename
# (same definition, another name), one to prune.
BEFORE = """
CREATE INDEX items_status_idx ON items (status) WHERE status <> 'done';
CREATE INDEX items_cust ON items (customer_id);
CREATE INDEX items_junk_idx ON items (total);
"""

SPEC = """
version: 1
manage:
  prune: true
indexes:
  - name: items_created_idx
    table: items
    columns: ["created_at DESC"]
  - name: items_status_idx
    table: items
    columns: [status]
    where: "status = 'open'"
  - name: items_customer_idx
    table: items
    columns: [customer_id]
  - name: items_lower_email_idx
    table: items
    columns:
      - expression: lower(email)
  - name: items_sku_key
    table: items
    columns: [sku]
    unique: true
  - name: events_kind_at_idx
    table: events
    columns: [kind, at]
  - name: totals_customer_idx
    table: totals
    columns: [customer_id]
    unique: true
"""

# The same indexes written by hand, as a DBA would (non-concurrently, on a fresh copy).
BY_HAND = """
CREATE INDEX items_created_idx ON items (created_at DESC);
CREATE INDEX items_status_idx ON items (status) WHERE status = 'open';
CREATE INDEX items_customer_idx ON items (customer_id);
CREATE INDEX items_lower_email_idx ON items (lower(email));
CREATE UNIQUE INDEX items_sku_key ON items (sku);
CREATE INDEX events_kind_at_idx ON events (kind, at);
CREATE UNIQUE INDEX totals_customer_idx ON totals (customer_id);
"""


def test_apply_converges_to_hand_written_ddl(dsn, second_dsn, run_sql, tmp_path):
    run_sql(dsn, SCHEMA + BEFORE)
    run_sql(second_dsn, SCHEMA + BY_HAND)
    spec = write_spec(tmp_path, SPEC)

    planned = cli("plan", "-f", spec, "--database", dsn, "--format", "json")
    assert planned.returncode == 0, planned.stderr
    actions = {(c["action"], c["index"]) for c in json.loads(planned.stdout)["changes"]}
    assert actions == {
        ("create", "items_created_idx"), ("replace", "items_status_idx"), ("rename", "items_customer_idx"),
        ("create", "items_lower_email_idx"), ("create", "items_sku_key"), ("create", "events_kind_at_idx"),
        ("create", "totals_customer_idx"), ("drop", "items_junk_idx")}

    applied = cli("apply", "-f", spec, "--database", dsn, "--auto-approve")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "8 of 8 change(s) done" in applied.stdout

    again = cli("plan", "-f", spec, "--database", dsn, "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    assert indexdefs(dsn) == indexdefs(second_dsn)
    assert invalid_indexes(dsn) == []
    # the partition indexes are attached to the parent, as CREATE INDEX on the parent does
    attached = run_sql(dsn, "SELECT count(*) FROM pg_inherits WHERE inhparent = 'events_kind_at_idx'::regclass")
    assert attached == [(3,)]

    # a second apply has nothing to do
    idle = cli("apply", "-f", spec, "--database", dsn, "--auto-approve")
    assert idle.returncode == 0, idle.stderr
    assert "No changes" in idle.stdout


# ---------------------------------------------------------------------------------------------
# 2. the statements the executor sends

DDL = re.compile(r"^(CREATE|DROP|ALTER|ANALYZE|COMMENT|REINDEX)\b")


def _executor(dsn: str, spec_path: str, timeouts: Timeouts, **kw):
    spec = load_spec([spec_path])
    conn = psycopg.connect(dsn, autocommit=True)
    plan, _ = make_plan(conn, spec, timeouts=timeouts)
    ex = Executor(conn, verify=verifier(conn), find_on_partition=find_on_partition(conn), backoff_base=0.05, **kw)
    return conn, spec, plan, ex


def test_executor_sends_concurrent_ddl_with_timeouts_in_safe_order(dsn, run_sql, tmp_path):
    run_sql(dsn, SCHEMA + BEFORE)
    spec_path = write_spec(tmp_path, SPEC)
    t = Timeouts(lock_ms=1234, statement_ms=5678, build_ms=0)
    conn, spec, plan, ex = _executor(dsn, spec_path, t)
    try:
        ex.execute(plan)
        assert all(o.ok for o in ex.outcomes) and len(ex.outcomes) == 8
        assert make_plan(conn, spec, timeouts=t)[0].empty
    finally:
        conn.close()
    sent = ex.sent

    creates = [s for s in sent if s.startswith("CREATE")]
    drops = [s for s in sent if s.startswith("DROP")]
    assert creates and drops
    for s in creates:
        assert "IF NOT EXISTS" not in s.upper(), s
        if " ON ONLY " in s:  # the partitioned parent: CIC is impossible there, the partitions get it
            assert s.startswith("CREATE INDEX events_kind_at_idx ON ONLY public.events"), s
        else:
            assert re.match(r"CREATE (UNIQUE )?INDEX CONCURRENTLY ", s), s
    for s in drops:  # every drop here is of an index on a regular table
        assert s.startswith("DROP INDEX CONCURRENTLY "), s
    partition_builds = [s for s in creates if re.search(r" ON public\.events_20\d\d ", s)]
    assert len(partition_builds) == 3

    # Each DDL statement comes right after its own SET lock_timeout / SET statement_timeout.
    quick = re.compile(r"^(ALTER INDEX|COMMENT|CREATE INDEX \S+ ON ONLY|DROP INDEX (?!CONCURRENTLY))")
    ddl_positions = [i for i, s in enumerate(sent) if DDL.match(s)]
    assert len(ddl_positions) >= 15
    for i in ddl_positions:
        s = sent[i]
        assert i >= 2, s
        assert sent[i - 2] == "SET lock_timeout = '1234ms'", (s, sent[i - 2])
        want = 5678 if quick.match(s) else 0  # builds, concurrent drops and ANALYZE: the build timeout
        assert sent[i - 1] == f"SET statement_timeout = '{want}ms'", (s, sent[i - 1])

    def pos(pattern: str) -> int:
        found = [i for i, s in enumerate(sent) if re.search(pattern, s)]
        assert len(found) == 1, (pattern, found)
        return found[0]

    # replace: rename the old one aside, build the new one, and only then drop the old one
    aside = temp_name("items_status_idx", "old")
    renamed = pos(rf"^ALTER INDEX public\.items_status_idx RENAME TO {aside}$")
    built = pos(r"^CREATE INDEX CONCURRENTLY items_status_idx ON public\.items \(status\) WHERE")
    dropped = pos(rf"^DROP INDEX CONCURRENTLY public\.{aside}$")
    assert renamed < built < dropped
    # the rename is a rename, not a build
    pos(r"^ALTER INDEX public\.items_cust RENAME TO items_customer_idx$")
    assert not any("items_customer_idx ON" in s for s in creates)
    # an expression index is followed by ANALYZE of its table (the planner needs its statistics)
    expr = pos(r"^CREATE INDEX CONCURRENTLY items_lower_email_idx ")
    next_ddl = next(s for s in sent[expr + 1:] if DDL.match(s))
    assert next_ddl == "ANALYZE public.items"
    # a UNIQUE build is preceded by its duplicate check
    unique = pos(r"^CREATE UNIQUE INDEX CONCURRENTLY items_sku_key ")
    check = pos(r"^SELECT \(sku\), count\(\*\) FROM public\.items")
    assert check < unique
    # partitioned: ON ONLY parent, then each partition built and attached
    parent = pos(r"ON ONLY public\.events")
    attaches = [i for i, s in enumerate(sent) if re.match(r"ALTER INDEX public\.events_kind_at_idx ATTACH PARTITION", s)]
    assert len(attaches) == 3 and parent < min(attaches)


# ---------------------------------------------------------------------------------------------
# 3. UNIQUE on data with duplicates: stop before building

DUPES = """
CREATE TABLE users (id int PRIMARY KEY, email text, org int);
INSERT INTO users VALUES (1, 'a@x', 1), (2, 'a@x', 1), (3, 'a@x', 2), (4, 'b@x', 1), (5, 'b@x', 1),
                         (6, 'c@x', 1), (7, NULL, 1), (8, NULL, 1);
"""

UNIQUE_SPEC = """
version: 1
indexes:
  - name: users_email_key
    table: users
    columns: [email]
    unique: true
"""


def test_unique_with_duplicates_stops_before_building(dsn, run_sql, tmp_path):
    run_sql(dsn, DUPES)
    spec = write_spec(tmp_path, UNIQUE_SPEC)
    before = indexdefs(dsn)

    res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--format", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "duplicate keys exist" in res.stderr
    assert "('a@x') ×3" in res.stderr and "('b@x') ×2" in res.stderr
    assert "None" not in res.stderr  # NULLs are not duplicates for a UNIQUE index
    events = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
    statements = [e["sql"] for e in events if e["event"] == "statement"]
    assert statements and statements[0].startswith("SELECT (email), count(*)")
    assert not any(s.startswith("CREATE") for s in statements)  # the build was never sent
    assert any(e["event"] == "change_failed" for e in events)
    assert indexdefs(dsn) == before
    assert invalid_indexes(dsn) == []

    # the executor agrees: the check ran, the build was never sent
    conn, _, plan, ex = _executor(dsn, spec, Timeouts())
    try:
        with pytest.raises(ApplyError, match="duplicate keys exist"):
            ex.execute(plan)
    finally:
        conn.close()
    assert any(s.startswith("SELECT (email), count(*)") for s in ex.sent)
    assert not any(s.startswith("CREATE") for s in ex.sent)

    # once the duplicates are gone the same spec applies (several NULLs are fine)
    run_sql(dsn, "DELETE FROM users WHERE id IN (2, 3, 5)")
    ok = cli("apply", "-f", spec, "--database", dsn, "--auto-approve")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert run_sql(dsn, "SELECT indisunique, indisvalid FROM pg_index WHERE indexrelid = 'users_email_key'::regclass"
                   ) == [(True, True)]


# ---------------------------------------------------------------------------------------------
# 5. one apply at a time

SIMPLE = small_table("t", 2000)
SIMPLE_SPEC = one_index_spec("t_a_idx", "t", "a")


def _index_exists(run_sql, dsn: str, name: str) -> bool:
    return run_sql(dsn, f"SELECT count(*) FROM pg_class WHERE relname = '{name}'") == [(1,)]


def test_second_apply_refused_while_advisory_lock_held(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    holder = psycopg.connect(dsn, autocommit=True, application_name="other-apply")
    try:
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0] is True
        pid = holder.info.backend_pid
        # --wait-for-lock 0: fail at once, saying who holds the lock and what it does
        res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--wait-for-lock", "0")
        assert res.returncode == 1, res.stdout + res.stderr
        assert "another apply is running" in res.stderr and "waited" not in res.stderr
        assert f"pid {pid} (other-apply" in res.stderr and "idle for" in res.stderr
        assert "SELECT pg_try_advisory_lock" in res.stderr, res.stderr
        assert not _index_exists(run_sql, dsn, "t_a_idx")

        # by default apply waits (a bounded time): the holder finishes once this apply says it
        # waits, then it goes ahead
        res = run_cli_when("another apply holds the lock", holder.close,
                           "apply", "-f", spec, "--database", dsn, "--auto-approve")
        assert res.returncode == 0, res.stdout + res.stderr
        assert f"waiting: another apply holds the lock: pid {pid} (other-apply" in res.stdout
        assert "waiting up to 120s for it (--wait-for-lock)" in res.stdout
        assert _index_exists(run_sql, dsn, "t_a_idx")
    finally:
        holder.close()
    # the apply released its own lock when it finished
    with psycopg.connect(dsn, autocommit=True) as c:
        assert c.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0] is True


def test_wait_for_lock_gives_up_after_its_limit(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,))
        t0 = time.monotonic()
        res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--wait-for-lock", "1500ms")
        elapsed = time.monotonic() - t0
    assert res.returncode == 1 and re.search(r"another apply is running on this database \(waited \d+s\)",
                                             res.stderr), res.stderr
    assert elapsed >= 1.5          # it did wait (no upper bound: a busy machine starts Python slowly)
    assert not _index_exists(run_sql, dsn, "t_a_idx")


# ---------------------------------------------------------------------------------------------
# 7. saved plans


def test_saved_plan_applies_when_world_unchanged_and_is_refused_when_stale(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE + "CREATE INDEX t_b_idx ON t (v);")
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    plan_path = str(tmp_path / "p.json")

    made = cli("plan", "-f", spec, "--database", dsn, "--out", plan_path)
    assert made.returncode == 0, made.stderr

    # behind the plan's back: a new index on a managed table
    run_sql(dsn, "CREATE INDEX t_id_b_idx ON t (id, v)")
    res = cli("apply", "-f", spec, "--plan", plan_path, "--database", dsn, "--auto-approve")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "plan is stale" in res.stderr
    assert not _index_exists(run_sql, dsn, "t_a_idx")

    # and an index dropped behind its back
    run_sql(dsn, "DROP INDEX t_id_b_idx; DROP INDEX t_b_idx")
    res = cli("apply", "-f", spec, "--plan", plan_path, "--database", dsn, "--auto-approve")
    assert res.returncode == 1 and "plan is stale" in res.stderr
    assert not _index_exists(run_sql, dsn, "t_a_idx")

    # the world as it was when the plan was made: the plan applies
    run_sql(dsn, "CREATE INDEX t_b_idx ON t (v)")
    res = cli("apply", "-f", spec, "--plan", plan_path, "--database", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _index_exists(run_sql, dsn, "t_a_idx")

    # the same file once more: said for what it is, an error as Terraform's stale saved plan
    res = cli("apply", "-f", spec, "--plan", plan_path, "--database", dsn, "--auto-approve")
    assert res.returncode == 1 and res.stdout == "", res.stdout + res.stderr
    assert res.stderr.splitlines()[0] == ("error: this plan appears to be applied already: the database now matches "
                                          "the state it leads to (1 change(s), none left to make); nothing was run")


def test_saved_plan_with_edited_sql_is_refused(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    plan_path = tmp_path / "p.json"
    assert cli("plan", "-f", spec, "--database", dsn, "--out", str(plan_path)).returncode == 0
    doc = json.loads(plan_path.read_text())
    sql = doc["changes"][0]["sql"]
    assert sql == ["CREATE INDEX CONCURRENTLY t_a_idx ON public.t (a)"]
    doc["changes"][0]["sql"] = ["CREATE INDEX t_a_idx ON public.t (a)"]  # someone "simplified" it
    plan_path.write_text(json.dumps(doc))

    res = cli("apply", "-f", spec, "--plan", str(plan_path), "--database", dsn, "--auto-approve")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "the plan is stale: change 1 (create t_a_idx) differs in its sql" in res.stderr
    assert not _index_exists(run_sql, dsn, "t_a_idx")


# ---------------------------------------------------------------------------------------------
# 8. no prompt without a terminal; dry run


def test_apply_without_auto_approve_and_no_tty_refuses(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    before = indexdefs(dsn)
    res = cli("apply", "-f", spec, "--database", dsn)
    assert res.returncode == 1, res.stdout + res.stderr
    assert "refusing to prompt" in res.stderr
    assert indexdefs(dsn) == before
    # and it let go of the advisory lock
    with psycopg.connect(dsn, autocommit=True) as c:
        assert c.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0] is True


def test_dry_run_changes_nothing(dsn, run_sql, tmp_path):
    run_sql(dsn, SCHEMA + BEFORE)
    spec = write_spec(tmp_path, SPEC)
    before = indexdefs(dsn)
    res = cli("apply", "-f", spec, "--database", dsn, "--dry-run", "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "dry run: nothing executed" in res.stdout
    assert "CREATE INDEX CONCURRENTLY items_created_idx" in res.stdout  # it shows what it would do
    assert indexdefs(dsn) == before
    assert cli("plan", "-f", spec, "--database", dsn, "--detailed-exitcode").returncode == 2


# ---------------------------------------------------------------------------------------------
# 9. blocking hazard: dropping an index that queries use


def test_dropping_a_used_index_needs_allow_hazard(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE + "CREATE INDEX t_b_idx ON t (v); CREATE INDEX t_used_idx ON t (a, id);")
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SET enable_seqscan = off")
        c.execute("SET enable_bitmapscan = off")
        c.execute("SELECT id FROM t WHERE a = 3 ORDER BY a, id").fetchall()
        c.execute("SELECT pg_stat_force_next_flush()")  # PostgreSQL 15+
    deadline = time.monotonic() + 10
    while run_sql(dsn, "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 't_used_idx'")[0][0] == 0:
        assert time.monotonic() < deadline, "the index scan never reached the statistics"
        time.sleep(0.2)
    spec = write_spec(tmp_path, """
version: 1
manage: {prune: true}
indexes:
  - name: t_b_idx
    table: t
    columns: [v]
""")
    res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve")
    assert res.returncode == 1, res.stdout + res.stderr
    assert "blocking hazards: DROPS_USED_INDEX" in res.stderr
    assert "--allow-hazard DROPS_USED_INDEX" in res.stderr
    assert _index_exists(run_sql, dsn, "t_used_idx")

    res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--allow-hazard", "DROPS_USED_INDEX")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not _index_exists(run_sql, dsn, "t_used_idx")
    assert _index_exists(run_sql, dsn, "t_b_idx") and _index_exists(run_sql, dsn, "t_pkey")


def test_dropping_an_unused_index_is_not_blocked(dsn, run_sql, tmp_path):
    run_sql(dsn, SIMPLE + "CREATE INDEX t_unused_idx ON t (a, id);")
    spec = write_spec(tmp_path, "version: 1\nmanage: {prune: true, tables: ['public.t']}\nindexes: []\n")
    res = cli("apply", "-f", spec, "--database", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert not _index_exists(run_sql, dsn, "t_unused_idx")
    assert _index_exists(run_sql, dsn, "t_pkey")  # constraint-backed: never pruned


# ---------------------------------------------------------------------------------------------
# 10. session checks


def test_check_session_passes_on_a_direct_connection(dsn, pg_major):
    with psycopg.connect(dsn, autocommit=True) as conn:
        ex = Executor(conn)
        ex.check_session()
        assert conn.execute("SHOW client_connection_check_interval").fetchone()[0] == "5s"


class PooledClients:
    """Other applications using the pooler: threads running short transactions through it
    until stopped."""

    def __init__(self, dsn: str, n: int = 4):
        self.dsn, self.stop, self.runs = dsn, threading.Event(), 0
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(n)]

    def _run(self) -> None:
        # no prepared statements: PgBouncer 1.18 does not carry them across server sessions
        with psycopg.connect(self.dsn, autocommit=True, prepare_threshold=None) as conn:
            while not self.stop.is_set():
                conn.execute("SELECT count(*) FROM t WHERE a = 1").fetchone()
                self.runs += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        deadline = time.monotonic() + 60
        while self.runs < 20:    # they are really running before the test goes on
            assert time.monotonic() < deadline, "the other clients never ran"
            time.sleep(0.05)
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=30)


@pytest.mark.parametrize("others", [False, True], ids=["alone", "with_other_clients"])
def test_apply_refuses_transaction_pooling_reliably(dsn, run_sql, tmp_path, pgbouncer, others):
    """Through a real PgBouncer in pool_mode = transaction, apply exits 1 with its clear error
    and changes nothing: alone (an idle pool hands back the same server session, which fooled
    the old probe) and with other clients busy (each statement may reach another session).
    Ten times each, in-process too, because a probe that is right by luck is not a probe."""
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    pooled = pgbouncer("transaction").dsn(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    with (PooledClients(pooled) if others else contextlib.nullcontext()):
        res = cli("apply", "-f", spec, "--database", pooled, "--auto-approve")
        refused = 0
        for _ in range(10):
            with psycopg.connect(pooled, autocommit=True) as conn:
                try:
                    Executor(conn, monitor_dsn=pooled).check_session()
                except ApplyError as e:
                    assert "transaction-pooling proxy" in e.message
                    refused += 1
    assert res.returncode == 1, res.stdout + res.stderr
    assert res.stderr.startswith("error: the connection goes through a transaction-pooling proxy"), res.stderr
    assert "pool_mode = session" in res.stderr and "Traceback" not in res.stderr
    assert refused == 10
    assert not _index_exists(run_sql, dsn, "t_a_idx")
    assert invalid_indexes(dsn) == []


def test_apply_works_through_session_pooling_and_plan_through_both(dsn, run_sql, tmp_path, pgbouncer):
    run_sql(dsn, SIMPLE)
    spec = write_spec(tmp_path, SIMPLE_SPEC)
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    session, transaction = pgbouncer("session").dsn(db), pgbouncer("transaction").dsn(db)
    for pooled in (session, transaction):
        res = cli("plan", "-f", spec, "--database", pooled, "--detailed-exitcode")
        assert res.returncode == 2 and "create public.t_a_idx" in res.stdout, res.stdout + res.stderr
    with PooledClients(session):
        res = cli("apply", "-f", spec, "--database", session, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert _index_exists(run_sql, dsn, "t_a_idx") and invalid_indexes(dsn) == []
    for pooled in (session, transaction):
        res = cli("plan", "-f", spec, "--database", pooled, "--detailed-exitcode")
        assert res.returncode == 0 and "No changes" in res.stdout, res.stdout + res.stderr
        res = cli("drift", "-f", spec, "--database", pooled)
        assert res.returncode == 0, res.stdout + res.stderr
