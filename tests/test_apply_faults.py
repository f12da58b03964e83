"""`reconciler apply` under faults, on a real server: lock contention, the lock queue, a build
that cannot finish, and SIGKILL at random points. No mocks.
"""
from __future__ import annotations

import json
import random
import signal
import subprocess
import threading
import time
from pathlib import Path

import psycopg
import pytest

from reconciler.app.apply import find_on_partition, verifier
from reconciler.app.engine import make_plan
from reconciler.errors import ApplyError
from reconciler.run import events as ev
from reconciler.run.executor import Executor
from reconciler.reconcile.planner import Timeouts
from reconciler.spec import load_spec

from support.cli import popen_cli, run_cli_when
from support.cli import run_cli as cli
from support.ddl import index_names, invalid_indexes, partitioned_table, small_table
from support.specs import one_index_spec

class LatencyProbe(threading.Thread):
    """Runs one statement again and again on its own connection; records how long each took."""

    def __init__(self, dsn: str, sql: str):
        super().__init__(daemon=True)
        self.dsn, self.sql = dsn, sql
        self.latencies: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute("SET statement_timeout = '20s'")  # a queued probe must not hang the test
            while not self.stop.is_set():
                t0 = time.monotonic()
                try:
                    conn.execute(self.sql)
                except psycopg.Error as e:
                    self.errors.append(str(e))
                self.latencies.append(time.monotonic() - t0)
                time.sleep(0.02)

    def finish(self) -> float:
        self.stop.set()
        self.join(timeout=30)
        assert not self.errors, self.errors
        assert self.latencies, "the probe never ran"
        return max(self.latencies)


# ---------------------------------------------------------------------------------------------
# 4. lock contention

TABLE = small_table("t", 5000)
SPEC = one_index_spec("t_v_idx", "t", "v")


@pytest.fixture
def spec_file(tmp_path: Path) -> str:
    path = tmp_path / "indexes.yaml"
    path.write_text(SPEC)
    return str(path)


def test_access_exclusive_holder_makes_apply_fail_cleanly_in_bounded_time(dsn, run_sql, spec_file):
    run_sql(dsn, TABLE)
    holder = psycopg.connect(dsn)  # a transaction stays open: the lock is held until rollback
    try:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        t0 = time.monotonic()
        res = cli("apply", "-f", spec_file, "--database", dsn, "--auto-approve", "--lock-timeout", "200ms",
                  "--retries", "2", timeout=60)
        elapsed = time.monotonic() - t0
        assert res.returncode == 1, res.stdout + res.stderr
        assert "lock timeout" in res.stderr
        assert elapsed < 15, elapsed  # 3 tries of 200ms plus backoff, not "as long as the lock is held"
    finally:
        holder.rollback()
        holder.close()
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey"]


def test_apply_succeeds_with_retries_once_the_lock_is_released(dsn, run_sql, spec_file):
    run_sql(dsn, TABLE)
    holder = psycopg.connect(dsn)
    try:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        # up to 8 retries (~50 s of backoff): the lock is released once apply has retried, however
        # slowly it started on a busy machine
        res = run_cli_when("retry in", holder.rollback, "apply", "-f", spec_file, "--database", dsn,
                           "--auto-approve", "--lock-timeout", "200ms", "--retries", "8")
    finally:
        holder.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "retry in" in res.stdout  # it did meet the lock, and retried
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey", "t_v_idx"]


def test_build_retries_behind_a_conflicting_lock_without_queueing_reads_and_writes(dsn, run_sql, spec_file):
    """A session holds SHARE UPDATE EXCLUSIVE (what VACUUM, ANALYZE or another CIC holds): the
    build's lock wait times out and is retried; meanwhile SELECT and INSERT never wait."""
    run_sql(dsn, TABLE)
    conn = psycopg.connect(dsn, autocommit=True)
    t = Timeouts(lock_ms=500, statement_ms=5000, build_ms=0)
    plan, _ = make_plan(conn, load_spec([spec_file]), timeouts=t)
    events: list[ev.Event] = []
    ex = Executor(conn, emit=events.append, retries=10, backoff_base=0.1, verify=verifier(conn),
                  find_on_partition=find_on_partition(conn))
    reads = LatencyProbe(dsn, "SELECT count(*) FROM t WHERE a = 3")
    writes = LatencyProbe(dsn, "INSERT INTO t SELECT max(id) + 1, 1, 'new' FROM t")
    holder = psycopg.connect(dsn)
    try:
        holder.execute("LOCK TABLE t IN SHARE UPDATE EXCLUSIVE MODE")
        reads.start()
        writes.start()
        release = threading.Timer(1.0, holder.rollback)
        release.start()
        ex.execute(plan)
        release.join()
        worst_read, worst_write = reads.finish(), writes.finish()
    finally:
        reads.stop.set()
        writes.stop.set()
        holder.close()
        conn.close()
    builds = [s for s in ex.sent if s.startswith("CREATE INDEX CONCURRENTLY t_v_idx")]
    assert len(builds) >= 2, ex.sent  # the first try timed out on the lock
    assert any(isinstance(e, ev.Retry) for e in events)
    assert worst_read < 0.5 and worst_write < 0.5, (worst_read, worst_write)  # below the lock timeout
    assert invalid_indexes(dsn) == []
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass") == [(True,)]


PARTITIONED = partitioned_table("p") + """
CREATE INDEX p_v_idx ON p (v);
CREATE INDEX p_at_idx ON p (at);
"""


def test_waiting_access_exclusive_request_queues_others_no_longer_than_the_lock_timeout(dsn, run_sql, tmp_path):
    """A partitioned index cannot be dropped CONCURRENTLY: its DROP asks for ACCESS EXCLUSIVE.
    While a long reader holds the table, that request waits -- and every later SELECT queues
    behind it. The lock timeout must bound that queue; apply gives up, nothing changes."""
    run_sql(dsn, PARTITIONED)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nmanage: {prune: true}\nindexes:\n"
                    "  - {name: p_at_idx, table: p, columns: [at]}\n")
    before = index_names(dsn, "p")
    reader = psycopg.connect(dsn)  # a report query in an open transaction
    probe = LatencyProbe(dsn, "SELECT count(*) FROM p WHERE v = 'v7'")
    try:
        reader.execute("SELECT count(*) FROM p").fetchone()
        probe.start()
        time.sleep(0.3)
        t0 = time.monotonic()
        res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", "--lock-timeout", "300ms",
                  "--retries", "3", timeout=60)
        elapsed = time.monotonic() - t0
        time.sleep(0.2)
        worst = probe.finish()
    finally:
        probe.stop.set()
        reader.rollback()
        reader.close()
    assert res.returncode == 1, res.stdout + res.stderr
    assert "DROP INDEX public.p_v_idx" in res.stdout and "lock timeout" in res.stderr
    assert elapsed < 20
    # the probe did queue behind the DROP (proof that the scenario bites), but never beyond its lock timeout
    assert 0.3 * 0.8 <= worst < 0.3 + 0.5, worst
    assert index_names(dsn, "p") == before
    assert invalid_indexes(dsn) == []


def test_build_failing_on_an_old_snapshot_is_bounded_and_the_next_apply_finishes(dsn, run_sql, spec_file):
    """A CIC waits for every older snapshot; the lock timeout cancels that wait and leaves an
    INVALID index, whose DROP also waits for the session. Both are bounded; the next apply,
    once the session is gone, removes or rebuilds what is left."""
    run_sql(dsn, TABLE)
    conn = psycopg.connect(dsn, autocommit=True)
    t = Timeouts(lock_ms=200, statement_ms=5000, build_ms=0)
    plan, _ = make_plan(conn, load_spec([spec_file]), timeouts=t)
    ex = Executor(conn, retries=2, backoff_base=0.05, verify=verifier(conn), find_on_partition=find_on_partition(conn))
    reader = psycopg.connect(dsn)
    try:
        reader.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
        reader.execute("SELECT count(*) FROM t").fetchone()  # a snapshot, and ACCESS SHARE on t
        failure: list[BaseException] = []

        def run() -> None:
            try:
                ex.execute(plan)
            except BaseException as e:  # noqa: BLE001 - handed to the test thread
                failure.append(e)

        worker = threading.Thread(target=run, daemon=True)
        worker.start()
        worker.join(timeout=15)  # an unbounded wait would hang here until the reader ends
        assert not worker.is_alive(), f"apply still waiting after 15s: {ex.sent[-3:]}"
        assert len(failure) == 1 and isinstance(failure[0], ApplyError), failure
        assert "lock timeout" in failure[0].message
    finally:
        reader.rollback()
        reader.close()
        conn.close()
    res = cli("apply", "-f", spec_file, "--database", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "t") == ["t_pkey", "t_v_idx"]


# ---------------------------------------------------------------------------------------------
# 6. kill -9 at random points

BIG = """
CREATE TABLE big (id bigint, a int, b text, c timestamptz, email text);
INSERT INTO big SELECT g, g % 100, md5(g::text), timestamptz '2024-01-01' + g * interval '1 second',
       'user' || g || '@Example' || (g % 50) || '.com'
FROM generate_series(1, 300000) g;
CREATE FUNCTION email_key(e text) RETURNS text LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN RETURN lower(split_part(e, '@', 2)) || ':' || lower(split_part(e, '@', 1)); END $$;
"""
BIG_ROWS = 300000

# before each round: one index whose predicate the spec changes (a replace), nothing else
BIG_START = "CREATE INDEX big_b_idx ON big (b) WHERE a > 10"

BIG_SPEC = """
version: 1
indexes:
  - name: big_a_idx
    table: big
    columns: [a]
  - name: big_c_idx
    table: big
    columns: ["c DESC"]
  - name: big_b_idx
    table: big
    columns: [b]
    where: "a > 50"
  - name: big_email_key_idx
    table: big
    columns:
      - expression: email_key(email)
"""

KILL_SEED = 20241125
MIN_MID_RUN_KILLS = 5
MAX_ROUNDS = 12


def _reset_big(dsn: str, run_sql) -> None:
    names = [r[0] for r in run_sql(dsn, "SELECT indexrelid::regclass::text FROM pg_index "
                                        "WHERE indrelid = 'big'::regclass")]
    for name in names:
        run_sql(dsn, f"DROP INDEX {name}")
    run_sql(dsn, BIG_START)


def _where_killed(stdout: str) -> str:
    """The last thing the killed apply reported (its events are unbuffered JSON lines)."""
    events = []
    for line in stdout.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    statements = [e for e in events if e.get("event") == "statement"]
    if not statements:
        return "before the first statement"
    if any(e.get("event") == "info" and "Summary" in e.get("detail", "") for e in events):
        return "after the last change"
    return "during: " + statements[-1]["sql"][:70]


def test_sigkill_at_random_points_then_apply_again_converges(dsn, run_sql, tmp_path, pg_major):
    run_sql(dsn, BIG)
    run_sql(dsn, "VACUUM ANALYZE big")
    _reset_big(dsn, run_sql)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(BIG_SPEC)
    rng = random.Random(KILL_SEED + pg_major)
    seen: list[tuple[float, str]] = []
    mid_run = 0
    for round_no in range(MAX_ROUNDS):
        if mid_run >= MIN_MID_RUN_KILLS:
            break
        delay = rng.uniform(0.05, 2.0)
        proc = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--format", "json",
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        # the delay counts from the first event (apply has planned and starts its first change), not
        # from the spawn: on a busy machine starting Python alone can take longer than the delay
        first = proc.stdout.readline()
        time.sleep(delay)
        finished_first = proc.poll() is not None
        proc.send_signal(signal.SIGKILL)
        session = round_no % 2 == 1  # every other round the apply's server sessions die with it
        if session:
            _terminate_apply_sessions(dsn)
        out, _ = proc.communicate(timeout=30)
        out = first + out
        where = "finished before the kill" if finished_first else _where_killed(out)
        if session:
            where += " (+ its sessions)"
        left = invalid_indexes(dsn)
        seen.append((round(delay, 2), where, f"not VALID right after the kill: {left}" if left else ""))
        if where.startswith("during"):
            mid_run += 1

        # The killed session's backend may still be building (and holds the apply lock until it
        # notices): the next apply waits for the lock, then for builds still running.
        res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", "--wait-for-lock", "60s",
                  timeout=180)
        context = f"round {round_no} (seed {KILL_SEED + pg_major}, killed after {delay:.2f}s, {where}, {left})"
        assert res.returncode == 0, f"{context}\n{res.stdout}\n{res.stderr}"
        check = cli("plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode")
        assert check.returncode == 0, f"{context}\n{check.stdout}\n{check.stderr}"
        assert invalid_indexes(dsn) == [], context
        assert index_names(dsn, "big") == ["big_a_idx", "big_b_idx", "big_c_idx", "big_email_key_idx"], \
            context
        assert run_sql(dsn, "SELECT count(*) FROM big") == [(BIG_ROWS,)], context
        _reset_big(dsn, run_sql)
    print(f"kill points (seed {KILL_SEED + pg_major}):", *seen, sep="\n  ")
    assert len(seen) >= 5
    assert mid_run >= 3, f"too few kills landed mid-run to mean anything: {seen}"


# The random delays mostly land in the first builds; the steps of a replace come last. Kill
# right when apply reports each of them (plus a seeded jitter of up to 50ms). With `session`,
# the apply's server session dies too (a dropped connection, pg_terminate_backend): for a build,
# only once it is really building, so that it leaves an INVALID index behind.
KILL_STEPS = [
    ("RENAME TO big_b_idx_rcold_", False),                       # the old index being renamed aside
    ("CREATE INDEX CONCURRENTLY big_b_idx ON", False),           # the new one built under its name
    ("CREATE INDEX CONCURRENTLY big_b_idx ON", True),
    ("CREATE INDEX CONCURRENTLY big_email_key_idx ON", True),    # an expression index
    ("DROP INDEX CONCURRENTLY public.big_b_idx_rcold_", False),  # the old one being dropped
    ("DROP INDEX CONCURRENTLY public.big_b_idx_rcold_", True),
    ("ANALYZE public.big", False),                               # the statistics of the expression
]


def _terminate_apply_sessions(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() "
                  "AND application_name LIKE 'reconciler%%' AND pid <> pg_backend_pid()")


def _wait_until_building(dsn: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    with psycopg.connect(dsn, autocommit=True) as c:
        while time.monotonic() < deadline:
            phase = c.execute("SELECT phase FROM pg_stat_progress_create_index WHERE relid = 'big'::regclass"
                              ).fetchone()
            if phase and phase[0].startswith("building index"):
                return
            time.sleep(0.01)
    raise AssertionError("the build never reached its building phase")


@pytest.mark.parametrize("step,session", KILL_STEPS, ids=lambda v: {True: "session", False: "client"}.get(v, v))
def test_sigkill_at_each_step_of_a_replace_then_apply_again_converges(dsn, run_sql, tmp_path, pg_major, step,
                                                                      session):
    run_sql(dsn, BIG)
    _reset_big(dsn, run_sql)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(BIG_SPEC)
    rng = random.Random(f"{KILL_SEED}-{pg_major}-{step}-{session}")
    proc = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", "--format", "json",
                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    watchdog = threading.Timer(60, proc.kill)
    watchdog.start()
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if step in line and '"event": "statement"' in line:
                if session and step.startswith("CREATE"):
                    _wait_until_building(dsn)
                else:
                    time.sleep(rng.uniform(0, 0.05))
                proc.send_signal(signal.SIGKILL)
                if session:
                    _terminate_apply_sessions(dsn)
                break
        else:
            pytest.fail(f"apply never reached {step!r}:\n{''.join(seen)}")
        proc.communicate(timeout=30)
    finally:
        watchdog.cancel()
        proc.kill()
    if session and step.startswith("CREATE"):
        # the fault did what it should: a build cut short leaves an INVALID index
        deadline = time.monotonic() + 10
        while not invalid_indexes(dsn):
            assert time.monotonic() < deadline, "the cancelled build left no INVALID index"
            time.sleep(0.1)

    res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", "--wait-for-lock", "60s", timeout=180)
    assert res.returncode == 0, res.stdout + res.stderr
    check = cli("plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode")
    assert check.returncode == 0, check.stdout + check.stderr
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "big") == ["big_a_idx", "big_b_idx", "big_c_idx", "big_email_key_idx"]
    assert run_sql(dsn, "SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = 'big_b_idx'::regclass"
                   ) == [("(a > 50)",)]
    assert run_sql(dsn, "SELECT count(*) FROM big") == [(BIG_ROWS,)]


# ---------------------------------------------------------------------------------------------
# a build that another session (not an apply) is running

SLOW = """
CREATE TABLE s (id int, v text);
INSERT INTO s SELECT g, 'v' || g FROM generate_series(1, 150) g;
CREATE FUNCTION slow_key(i int) RETURNS int LANGUAGE plpgsql IMMUTABLE
AS $$ BEGIN PERFORM pg_sleep(0.01); RETURN i; END $$;
"""

SLOW_SPEC = """
version: 1
indexes:
  - name: s_slow_idx
    table: s
    columns:
      - expression: slow_key(id)
"""


@pytest.mark.parametrize("outcome", ["finishes", "is_cancelled"])
def test_apply_waits_for_a_build_another_session_is_running(dsn, run_sql, tmp_path, outcome):
    run_sql(dsn, SLOW)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SLOW_SPEC)
    other = psycopg.connect(dsn, autocommit=True)
    other_pid = other.info.backend_pid
    errors: list[Exception] = []

    def build() -> None:
        try:
            other.execute("CREATE INDEX CONCURRENTLY s_slow_idx ON s (slow_key(id))")
        except psycopg.Error as e:
            errors.append(e)

    builder = threading.Thread(target=build, daemon=True)
    builder.start()
    try:
        deadline = time.monotonic() + 10
        while run_sql(dsn, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = 's'::regclass") != [(1,)]:
            assert time.monotonic() < deadline, "the other build never started"
            time.sleep(0.02)
        if outcome == "is_cancelled":
            threading.Timer(0.5, run_sql, (dsn, f"SELECT pg_cancel_backend({other_pid})")).start()
        res = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", timeout=60)
        # right when apply returns, the index is there and VALID: it waited instead of leaving it
        state = run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 's_slow_idx'::regclass")
        builder.join(timeout=30)
    finally:
        other.close()
    assert res.returncode == 0, res.stdout + res.stderr
    assert "waiting for builds another session is running: s_slow_idx" in res.stdout
    assert state == [(True,)]
    if outcome == "finishes":
        assert not errors and "No changes" in res.stdout  # nothing left to do
    else:
        assert errors and "canceling statement" in str(errors[0])
        assert "REINDEX INDEX CONCURRENTLY public.s_slow_idx" in res.stdout  # the INVALID leftover, rebuilt
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "s") == ["s_slow_idx"]


# ---------------------------------------------------------------------------------------------
# Ctrl-C


SLOW_DDL = """
CREATE TABLE slow_t (id int);
INSERT INTO slow_t SELECT g FROM generate_series(1, 4000) g;
-- IMMUTABLE by declaration only, so that a build takes seconds: the index has something to interrupt
CREATE FUNCTION slow_key(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 0 FROM pg_sleep(0.002)';
"""


def test_ctrl_c_cancels_the_build_removes_the_leftover_and_exits_1(dsn, run_sql, tmp_path):
    run_sql(dsn, SLOW_DDL)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n"
                    "  - {name: slow_t_key_idx, table: slow_t, columns: [{expression: slow_key(id)}]}\n")
    p = popen_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", stdout=subprocess.PIPE,
                  stderr=subprocess.PIPE)
    # wait until the build is really running on the server, then press Ctrl-C
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'slow_t'::regclass"):
            break
        time.sleep(0.05)
    else:
        p.kill()
        pytest.fail("the build never started")
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=60)
    assert p.returncode == 1, (out, err)
    assert "Interrupted" in out and "0 of 1 change(s) done" in out, out
    assert "Traceback" not in out + err
    # the statement was cancelled on the server and its INVALID leftover removed
    assert not run_sql(dsn, "SELECT 1 FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX CONCURRENTLY%' "
                            "AND pid <> pg_backend_pid()")
    assert invalid_indexes(dsn) == []
    assert index_names(dsn, "slow_t") == []
    # and the next apply finishes the job
    assert cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve", timeout=120).returncode == 0
    assert index_names(dsn, "slow_t") == ["slow_t_key_idx"]
