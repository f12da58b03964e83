"""`reconciler maintain` on a real server (PostgreSQL 18 and 15), as a user runs it."""
from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import psycopg
import pytest

from reconciler.run.executor import ADVISORY_KEY

RECONCILER = [sys.executable, "-m", "reconciler.cli"]
NO_SPEC_DIR = tempfile.mkdtemp(prefix="reconciler-maintain-cwd-")   # no ./indexes.yaml here
atexit.register(shutil.rmtree, NO_SPEC_DIR, True)   # made at import: gone at exit
MANAGED = 'version: 1\nmanage: {tables: ["public.*"]}\n'


def cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*RECONCILER, *args], capture_output=True, text=True, stdin=subprocess.DEVNULL,
                          timeout=timeout, cwd=NO_SPEC_DIR)


def invalid(run_sql, dsn: str) -> list[str]:
    return [r[0] for r in run_sql(dsn, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                                       "WHERE NOT (i.indisvalid AND i.indisready) ORDER BY 1")]


def size(run_sql, dsn: str, name: str) -> int:
    return run_sql(dsn, f"SELECT pg_relation_size('{name}')")[0][0]


def wait_until(fn, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while not fn():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def bloat(run_sql, dsn: str, rows: int = 150000) -> None:
    """events_v_idx mostly empty pages: the indexed column updated three times, 70 % deleted."""
    run_sql(dsn, f"CREATE TABLE events (id int NOT NULL, v int NOT NULL, note text) WITH (autovacuum_enabled = off); "
                 f"INSERT INTO events SELECT g, g, 'x' FROM generate_series(1, {rows}) g; "
                 "CREATE INDEX events_v_idx ON events (v)")
    for sql in ("UPDATE events SET v = v + 1000000", "UPDATE events SET v = v + 1000000",
                "UPDATE events SET v = v + 1000000", "DELETE FROM events WHERE id % 10 < 7", "VACUUM events",
                "ANALYZE events"):
        run_sql(dsn, sql)


class Writer(threading.Thread):
    """Writes again and again, each write with the lock timeout maintain was given: a write that
    waited on a lock longer than that fails, and is counted."""

    def __init__(self, dsn: str, lock_timeout: str):
        super().__init__(daemon=True)
        self.dsn, self.lock_timeout = dsn, lock_timeout
        self.writes, self.lock_failures, self.errors = 0, 0, []
        self.stop = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            conn.execute(f"SET lock_timeout = '{self.lock_timeout}'")
            n = 0
            while not self.stop.is_set():
                n += 1
                try:
                    conn.execute("INSERT INTO events VALUES (%s, %s, 'w')", (10 ** 7 + n, n))
                    conn.execute("UPDATE events SET v = v + 1 WHERE id = %s", (10 ** 7 + n,))
                    self.writes += 1
                except psycopg.errors.LockNotAvailable:
                    self.lock_failures += 1
                except psycopg.Error as e:
                    self.errors.append(str(e))


def test_maintain_shrinks_a_bloated_index_while_a_writer_runs(dsn, run_sql, tmp_path):
    bloat(run_sql, dsn)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(MANAGED)
    before = size(run_sql, dsn, "events_v_idx")
    w = Writer(dsn, "1s")
    w.start()
    try:
        wait_until(lambda: w.writes > 20, "the writer to get going")
        r = cli("maintain", "-f", str(spec), "-d", dsn, "--auto-approve", "--lock-timeout", "1s")
        during = w.writes
    finally:
        w.stop.set()
        w.join(timeout=30)
    assert r.returncode == 0, r.stdout + r.stderr
    after = size(run_sql, dsn, "events_v_idx")
    assert after < before / 3
    m = re.search(r"reindex public\.events_v_idx on events \(\d+\.\d+s\): ([\d.]+ [kM]B) → ([\d.]+ [kM]B)", r.stdout)
    assert m, r.stdout                                    # the size before and after, printed
    assert "REINDEX INDEX CONCURRENTLY public.events_v_idx" in r.stdout
    assert w.lock_failures == 0 and w.errors == [] and during > 20
    assert invalid(run_sql, dsn) == []
    again = cli("maintain", "-f", str(spec), "-d", dsn, "--auto-approve")
    assert again.returncode == 0 and "Nothing to do" in again.stdout, again.stdout


def test_leftovers_are_dropped_but_not_a_build_in_progress_nor_a_spec_entry(dsn, run_sql, tmp_path):
    # the build runs on another table: a concurrent build holds SHARE UPDATE EXCLUSIVE on its
    # table, which DROP INDEX CONCURRENTLY and ANALYZE need too (they would wait, and retry)
    run_sql(dsn, "CREATE TABLE t (id int PRIMARY KEY, k int); CREATE TABLE u (id int PRIMARY KEY, name text); "
                 "INSERT INTO t SELECT g, g % 10 FROM generate_series(1, 2000) g; "
                 "INSERT INTO u SELECT g, 'n' || g FROM generate_series(1, 2000) g")
    for name in ("t_k_uq", "t_spec_uq"):   # UNIQUE builds that failed on duplicates: INVALID leftovers
        with pytest.raises(psycopg.errors.UniqueViolation):
            run_sql(dsn, f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON t (k)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(MANAGED + "health: {max_stale_ratio: 100}\n"   # statistics are not this test's subject
                    "indexes:\n  - name: t_spec_uq\n    table: t\n    columns: [k]\n    unique: true\n")
    holder = psycopg.connect(dsn, autocommit=True)
    builder = None
    try:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM u")

        def build():
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE INDEX CONCURRENTLY u_name_idx ON u (name)")

        builder = threading.Thread(target=build, daemon=True)
        builder.start()
        wait_until(lambda: run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE index_relid <> 0"),
                   "the build to wait for the old snapshot")
        dry = cli("maintain", "-f", str(spec), "-d", dsn, "--dry-run")
        assert dry.returncode == 0 and "dry run: nothing executed" in dry.stdout
        assert invalid(run_sql, dsn) == ["t_k_uq", "t_spec_uq", "u_name_idx"]
        r = cli("maintain", "-f", str(spec), "-d", dsn, "--auto-approve")
        assert r.returncode == 0, r.stdout + r.stderr
        assert "DROP INDEX CONCURRENTLY public.t_k_uq" in r.stdout
        assert re.search(r"skip +public\.u_name_idx on u: INVALID while backend \d+ builds it", r.stdout), r.stdout
        assert "skip     public.t_spec_uq on t: INVALID, and the spec lists it" in r.stdout
        assert invalid(run_sql, dsn) == ["t_spec_uq", "u_name_idx"]
    finally:
        holder.execute("COMMIT")
        holder.close()
        if builder is not None:
            builder.join(timeout=60)
    assert invalid(run_sql, dsn) == ["t_spec_uq"]   # the build finished, untouched


def test_exclusion_constraint_index_is_skipped_with_the_reason(dsn, run_sql):
    run_sql(dsn, "CREATE TABLE booking (id int, during tstzrange, EXCLUDE USING gist (during WITH &&))")
    name = run_sql(dsn, "SELECT conname FROM pg_constraint WHERE contype = 'x'")[0][0]
    r = cli("maintain", "-d", dsn, "--index", name, "--auto-approve")
    assert r.returncode == 0, r.stdout + r.stderr
    assert f"skip     public.{name} on booking: --index; " in r.stdout
    assert "an exclusion-constraint index cannot be reindexed concurrently" in r.stdout
    assert "Nothing to do" in r.stdout


FAILING = """
CREATE TABLE big (id int, v int, d int);
INSERT INTO big SELECT g, g, g % 3 FROM generate_series(1, 5000) g;
CREATE TABLE flag (on_ boolean); INSERT INTO flag VALUES (false);
-- IMMUTABLE by declaration only: it reads `flag`, so the test can make a rebuild fail on purpose
-- (qualified: PostgreSQL 17+ runs index builds with search_path = pg_catalog, pg_temp)
CREATE FUNCTION boom(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN IF (SELECT on_ FROM public.flag) THEN RAISE EXCEPTION 'boom'; END IF; RETURN x; END $$;
CREATE INDEX big_boom ON big (boom(v));
UPDATE flag SET on_ = true;
"""


def test_a_failed_reindex_removes_its_own_copy_and_nothing_else(dsn, run_sql):
    run_sql(dsn, FAILING)
    # someone else's leftover with the very name REINDEX would give its copy: not ours to drop
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_sql(dsn, "CREATE UNIQUE INDEX CONCURRENTLY big_boom_ccnew ON big (d)")
    r = cli("maintain", "-d", dsn, "--index", "big_boom", "--auto-approve")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "boom" in r.stdout and "Summary: 0 of 1 step(s) done." in r.stdout
    assert re.search(r"cleanup: dropped the INVALID leftover of a failed build \(big_boom_ccnew\d+\)", r.stdout), \
        r.stdout
    assert invalid(run_sql, dsn) == ["big_boom_ccnew"]


SLOW = """
CREATE TABLE slow (id int, v int);
INSERT INTO slow SELECT g, g FROM generate_series(1, 3000) g;
-- IMMUTABLE by declaration only: a build waits while the test holds advisory lock 4545, so the
-- rebuild is still running whenever Ctrl-C comes
CREATE FUNCTION crawl(x int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$
BEGIN PERFORM pg_advisory_xact_lock_shared(4545); RETURN x; END $$;
CREATE INDEX slow_crawl ON slow (crawl(v));
"""


def test_ctrl_c_during_a_reindex_removes_the_copy(dsn, run_sql):
    run_sql(dsn, SLOW)
    gate = psycopg.connect(dsn, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4545)")
    p = subprocess.Popen([*RECONCILER, "maintain", "-d", dsn, "--index", "slow_crawl", "--auto-approve"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=NO_SPEC_DIR)
    try:
        wait_until(lambda: run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE phase LIKE 'building%'"),
                   "the rebuild to be building", timeout=90)
        p.send_signal(signal.SIGINT)
        out, _ = p.communicate(timeout=90)
    finally:
        if p.poll() is None:
            p.kill()
        gate.close()
    assert p.returncode == 1, out
    assert "Interrupted. Summary: 0 of 1 step(s) done." in out
    assert invalid(run_sql, dsn) == []
    assert [r[0] for r in run_sql(dsn, "SELECT relname FROM pg_class WHERE relname LIKE 'slow_crawl%'")] == \
        ["slow_crawl"]


def test_one_apply_or_maintain_at_a_time(dsn, run_sql, tmp_path):
    bloat(run_sql, dsn, rows=20000)
    spec = tmp_path / "indexes.yaml"
    spec.write_text(MANAGED)
    with psycopg.connect(dsn, autocommit=True, application_name="an-apply") as other:
        assert other.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0]
        t0 = time.monotonic()
        r = cli("maintain", "-f", str(spec), "-d", dsn, "--auto-approve")
        assert r.returncode == 1 and "another apply is running on this database: pid" in r.stderr, r.stderr
        assert "(an-apply" in r.stderr and time.monotonic() - t0 < 60
        # a dry run takes no lock: it shows the plan
        dry = cli("maintain", "-f", str(spec), "-d", dsn, "--dry-run")
        assert dry.returncode == 0 and "REINDEX INDEX CONCURRENTLY public.events_v_idx" in dry.stdout


def test_vacuum_every_managed_table_with_json_events(dsn, run_sql, tmp_path):
    run_sql(dsn, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); "
                 "INSERT INTO a SELECT generate_series(1, 100); INSERT INTO b SELECT generate_series(1, 100)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(MANAGED)
    r = cli("maintain", "-f", str(spec), "-d", dsn, "--vacuum", "--auto-approve", "--format", "json")
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [json.loads(ln) for ln in r.stdout.splitlines()]
    plan = lines[0]
    assert plan["event"] == "maintenance_plan"
    assert [(s["kind"], s["table"], s["sql"]) for s in plan["steps"]] == [
        ("vacuum", "a", "VACUUM (ANALYZE) public.a"), ("vacuum", "b", "VACUUM (ANALYZE) public.b")]
    assert any(e["event"] == "statement" and e["sql"] == "VACUUM (ANALYZE) public.b" for e in lines)
    assert lines[-1]["event"] == "info" and lines[-1]["detail"].startswith("Summary: 2 of 2 step(s) done.")
    wait_until(lambda: run_sql(dsn, "SELECT count(*) FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL "
                                    "AND last_analyze IS NOT NULL")[0][0] == 2, "the vacuum statistics")


def test_bad_input_is_one_line_and_changes_nothing(dsn, run_sql, tmp_path):
    run_sql(dsn, "CREATE TABLE t (id int PRIMARY KEY)")
    r = cli("maintain", "-d", dsn, "--index", "nope", "--auto-approve")
    assert r.returncode == 1 and r.stderr.splitlines()[0] == "error: --index nope: no such index", r.stderr
    r = cli("maintain", "-d", dsn, "--index", "a.b.c")
    assert r.returncode == 1 and "expected NAME or SCHEMA.NAME" in r.stderr and "Traceback" not in r.stderr
    r = cli("maintain", "-d", dsn)
    assert r.returncode == 1 and r.stderr.splitlines()[0] == "error: indexes.yaml: no such file"
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nhealth: {max_bloat_ratio: 2}\n")
    r = cli("maintain", "-f", str(spec), "-d", dsn)
    assert r.returncode == 1 and f"{spec}:2: health.max_bloat_ratio" in r.stderr
    r = cli("maintain", "-d", dsn, "--index", "t_pkey")   # no terminal, no --auto-approve: refuses to prompt
    assert r.returncode == 1 and "refusing to prompt" in r.stderr
