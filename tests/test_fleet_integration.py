"""Fleets on a real server: tenant schemas by glob, and many databases from a targets file.

- 50 tenant schemas with drift in 3: exactly those 3 are reported and one apply converges them;
  the server is asked once per entry, not once per schema;
- a schema created after the spec was written is picked up by the next run;
- 4 databases, one unreachable and one locked by another apply: the other two converge, and
  the summary and exit code say what happened to each; a re-run converges the locked one;
- --shard K/N over discovered databases covers every target exactly once;
- passwords never printed; a bad targets file is one line with file:line.
Every command runs in a subprocess, as from a shell.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from reconciler.app.engine import make_plan
from reconciler.run.executor import ADVISORY_KEY
from reconciler.spec import load_spec

SPEC = """\
version: 1
defaults: {schema: "tenant_*"}
manage: {prune: true}
indexes:
  - {name: orders_account_idx, table: orders, columns: [account_id, created_at DESC]}
  - {name: orders_open_idx, table: orders, columns: [created_at], where: "state <> 'done'"}
  - {name: orders_lower_ref_idx, table: orders, columns: [{expression: lower(ref)}]}
  - {name: items_order_idx, table: items, columns: [order_id], include: [qty]}
"""


def tenant_sql(schema: str) -> str:
    return f"""
CREATE SCHEMA {schema};
CREATE TABLE {schema}.orders (id bigint PRIMARY KEY, account_id bigint, created_at timestamptz, state text,
                              ref varchar(20));
CREATE INDEX orders_account_idx ON {schema}.orders (account_id, created_at DESC);
CREATE INDEX orders_open_idx ON {schema}.orders (created_at) WHERE state <> 'done';
CREATE INDEX orders_lower_ref_idx ON {schema}.orders (lower(ref));
CREATE TABLE {schema}.items (id bigint PRIMARY KEY, order_id bigint, qty int);
CREATE INDEX items_order_idx ON {schema}.items (order_id) INCLUDE (qty);
"""


def reconciler(*args: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=timeout, env={**os.environ, **(env or {})})


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def live(dsn: str) -> set[tuple[str, str]]:
    with psycopg.connect(dsn) as conn:
        return set(conn.execute("SELECT schemaname, indexname FROM pg_indexes WHERE schemaname LIKE 'tenant%'"))


def test_fifty_tenant_schemas_with_drift_in_three(dsn, run_sql, tmp_path):
    run_sql(dsn, "".join(tenant_sql(f"tenant_{i:02d}") for i in range(1, 51)))
    run_sql(dsn, "DROP INDEX tenant_07.orders_open_idx; "
                 "DROP INDEX tenant_19.orders_account_idx; "
                 "CREATE INDEX orders_account_idx ON tenant_19.orders (account_id); "
                 "CREATE INDEX orders_state_idx ON tenant_33.orders (state)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SPEC)

    res = reconciler("plan", "-f", str(spec), "-d", dsn, "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    got = sorted((c["schema"], c["action"], c["index"]) for c in doc["changes"])
    assert got == [("tenant_07", "create", "orders_open_idx"), ("tenant_19", "replace", "orders_account_idx"),
                   ("tenant_33", "drop", "orders_state_idx")]
    assert doc["schemas"] == {"total": 50, "in_sync": 47, "with_changes": ["tenant_07", "tenant_19", "tenant_33"]}

    text = reconciler("plan", "-f", str(spec), "-d", dsn).stdout
    assert "47 schemas in sync, 3 with changes." in text
    assert text.index("schema tenant_07: 1 change") < text.index("schema tenant_19: 1 change") < \
        text.index("schema tenant_33: 1 change")

    drift = reconciler("drift", "-f", str(spec), "-d", dsn, "--format", "json")
    assert drift.returncode == 2
    assert sorted(i["schema"] for i in json.loads(drift.stdout)["drift"]) == ["tenant_07", "tenant_19", "tenant_33"]

    # the server is asked for the words of lower(ref) (a varchar: PostgreSQL adds a cast) and of
    # the predicate once per entry, not once per schema
    with psycopg.connect(dsn) as conn:
        _plan, cmp = make_plan(conn, load_spec([spec]))
    assert 1 <= cmp.canonicalized <= 4

    res = reconciler("apply", "-f", str(spec), "-d", dsn, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    res = reconciler("plan", "-f", str(spec), "-d", dsn, "--detailed-exitcode")
    assert res.returncode == 0, res.stdout
    assert ("tenant_33", "orders_state_idx") not in live(dsn) and ("tenant_07", "orders_open_idx") in live(dsn)


def test_a_schema_created_after_the_spec_is_picked_up(dsn, run_sql, tmp_path):
    run_sql(dsn, tenant_sql("tenant_a") + tenant_sql("tenant_b"))
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SPEC)
    assert reconciler("plan", "-f", str(spec), "-d", dsn, "--detailed-exitcode").returncode == 0
    run_sql(dsn, "CREATE SCHEMA tenant_new; CREATE TABLE tenant_new.orders (LIKE tenant_a.orders); "
                 "CREATE TABLE tenant_new.items (LIKE tenant_a.items); CREATE SCHEMA other; "
                 "CREATE TABLE other.orders (LIKE tenant_a.orders)")
    res = reconciler("plan", "-f", str(spec), "-d", dsn, "--format", "json")
    doc = json.loads(res.stdout)
    assert sorted((c["schema"], c["action"]) for c in doc["changes"]) == [("tenant_new", "create")] * 4
    assert reconciler("apply", "-f", str(spec), "-d", dsn, "--auto-approve").returncode == 0
    assert reconciler("plan", "-f", str(spec), "-d", dsn, "--detailed-exitcode").returncode == 0


def test_validate_checks_a_glob_entry_in_every_schema_once(dsn, run_sql, tmp_path):
    run_sql(dsn, tenant_sql("tenant_a") + tenant_sql("tenant_b") + tenant_sql("tenant_c"))
    run_sql(dsn, "ALTER TABLE tenant_b.items RENAME COLUMN qty TO quantity")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SPEC)
    res = reconciler("validate", "-f", str(spec), "-d", dsn)
    assert res.returncode == 1
    assert "include: column 'qty' does not exist in items" in res.stderr and "(in schema tenant_b of 'tenant_*')" \
        in res.stderr and res.stderr.count("\n") == 1, res.stderr


@pytest.fixture
def fleet(pg_server, request):
    """Four databases named after the test, dropped afterwards."""
    base = "f_" + request.node.name.split("[")[0][-20:] + "_" + pg_server.name
    names = [f"{base}_{k}" for k in ("a", "b", "c", "d")]
    dsns = [pg_server.fresh_db(n) for n in names]
    yield dsns
    for n in names:
        pg_server.drop_db(n)


SMALL_SPEC = """\
version: 1
indexes:
  - {name: t_a_idx, table: t, columns: [a]}
  - {name: t_b_idx, table: t, columns: [b DESC]}
"""


def test_four_databases_one_unreachable_one_locked(fleet, run_sql, tmp_path):
    a, b, c, d = fleet
    for x in (a, b, d):
        run_sql(x, "CREATE TABLE t (id int PRIMARY KEY, a int, b int); CREATE INDEX t_a_idx ON t (a)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SMALL_SPEC)
    targets = tmp_path / "targets.yaml"
    targets.write_text("version: 1\ntargets:\n"
                       "  - {name: alpha, dsn_env: FLEET_A, labels: {region: eu}}\n"
                       "  - {name: bravo, dsn_env: FLEET_B, labels: {region: eu}}\n"
                       "  - {name: charlie, dsn_env: FLEET_C, labels: {region: us}}\n"
                       "  - {name: delta, dsn_env: FLEET_D, labels: {region: us}}\n")
    env = {"FLEET_A": a, "FLEET_B": b, "FLEET_C": "host=/nonexistent-reconciler-dir port=1 dbname=x connect_timeout=2",
           "FLEET_D": d}
    holder = psycopg.connect(d, autocommit=True, application_name="other-apply")
    try:
        assert holder.execute("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()[0] is True
        # --wait-for-lock 0: delta fails at once instead of after the default 2min wait for the
        # lock (that wait is tested in test_apply.py); what counts here is the fleet's handling
        res = reconciler("apply", "-f", str(spec), "--targets", str(targets), "--auto-approve", "--parallel", "4",
                         "--wait-for-lock", "0", "--format", "json", env=env)
        assert res.returncode == 1, res.stdout + res.stderr
        docs = json_lines(res.stdout)
        results = {x["target"]: x for x in docs if "status" in x}
        assert {k: v["status"] for k, v in results.items()} == {"alpha": "ok", "bravo": "ok", "charlie": "failed",
                                                              "delta": "failed"}
        assert "cannot connect" in results["charlie"]["summary"]
        assert "another apply is running" in results["delta"]["summary"]
        assert "Summary: 1 of 1 change(s) done." in results["alpha"]["summary"]
        assert any(x.get("target") == "alpha" and x.get("event") == "change_done" for x in docs)
        summary = docs[-1]
        assert summary["exit_code"] == 1 and summary["summary"]["failed"] == 2 and summary["summary"]["ok"] == 2
        assert summary["failed"] == ["charlie", "delta"]
        for x in (a, b):
            assert reconciler("plan", "-f", str(spec), "-d", x, "--detailed-exitcode").returncode == 0
        assert reconciler("plan", "-f", str(spec), "-d", d, "--detailed-exitcode").returncode == 2

        # the text summary says the same
        res = reconciler("plan", "-f", str(spec), "--targets", str(targets), "--detailed-exitcode", env=env)
        assert res.returncode == 1
        table = res.stdout[res.stdout.rindex("target "):]
        assert "alpha" in table and "charlie  FAILED" in table and "delta    changes" in table
        assert "4 targets: 2 ok, 1 with changes, 1 failed. Exit code 1." in table
    finally:
        holder.close()
    # the lock is gone: a re-run converges delta; charlie stays unreachable
    res = reconciler("apply", "-f", str(spec), "--targets", str(targets), "--auto-approve", "--label", "region=us",
                     env=env)
    assert res.returncode == 1
    assert "[delta] " in res.stdout and "== delta: Summary: 1 of 1 change(s) done." in res.stdout
    assert reconciler("plan", "-f", str(spec), "-d", d, "--detailed-exitcode").returncode == 0
    # --fail-fast, one at a time, in name order: after charlie fails, delta is not run
    res = reconciler("drift", "-f", str(spec), "--targets", str(targets), "--fail-fast", "--parallel", "1",
                     "--target", "charlie", "--target", "delta", env=env)
    assert res.returncode == 1 and "delta    not run" in res.stdout and "--fail-fast" in res.stdout


def test_shards_cover_every_discovered_database_once_and_no_password_is_printed(fleet, pg_server, run_sql,
                                                                                 tmp_path):
    for x in fleet:
        run_sql(x, "CREATE TABLE t (id int PRIMARY KEY, a int, b int)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SMALL_SPEC)
    prefix = psycopg.conninfo.conninfo_to_dict(fleet[0])["dbname"][:-2]
    password = "S3cr3t-pw-never-shown"
    admin = psycopg.conninfo.make_conninfo(pg_server.admin_dsn, password=password)
    targets = tmp_path / "targets.yaml"
    targets.write_text(f"""\
version: 1
targets:
  - name: cluster
    dsn_env: FLEET_ADMIN
    discover: SELECT datname AS dbname, 'x' AS tier FROM pg_database WHERE datname LIKE '{prefix}\\_%' ORDER BY 1
  - name: broken
    dsn_env: FLEET_BROKEN
""")
    env = {"FLEET_ADMIN": admin,
           "FLEET_BROKEN": f"postgresql://someone:{password}@/nowhere?host=/nonexistent-reconciler-dir&port=1"}
    seen: list[str] = []
    outputs = ""
    for k in (1, 2, 3):
        res = reconciler("plan", "-f", str(spec), "--targets", str(targets), "--shard", f"{k}/3", "--format", "json",
                         env=env)
        outputs += res.stdout + res.stderr
        seen += [x["target"] for x in json_lines(res.stdout) if "status" in x]
    expected = sorted([f"cluster/{psycopg.conninfo.conninfo_to_dict(x)['dbname']}" for x in fleet] + ["broken"])
    assert sorted(seen) == expected and len(seen) == len(set(seen)) == 5
    res = reconciler("plan", "-f", str(spec), "--targets", str(targets), "--label", "tier=x", env=env)
    outputs += res.stdout + res.stderr
    assert res.returncode == 0 and "4 targets: 0 ok, 4 with changes, 0 failed" in res.stdout
    res = reconciler("drift", "-f", str(spec), "--targets", str(targets), "--target", "broken", env=env)
    outputs += res.stdout + res.stderr
    assert res.returncode == 1 and "cannot connect" in res.stdout
    assert password not in outputs


@pytest.mark.parametrize("text, message", [
    ("version: 1\ntargets:\n  - name: a\n    dsn: postgresql://u:hunter2@h/db\n",
     "targets.yaml:4: targets[0].dsn: a targets file never holds a DSN or a password"),
    ("version: 1\ntargets:\n  - name: a\n    lables: {x: y}\n", "targets.yaml:4: targets[0].lables: unknown key"),
    ("version: 1\ntargets:\n  - name: a\n   - name: b\n", "targets.yaml:4: YAML syntax error"),
])
def test_a_bad_targets_file_is_one_line_with_file_and_line(tmp_path, text, message):
    (tmp_path / "indexes.yaml").write_text(SMALL_SPEC)
    (tmp_path / "targets.yaml").write_text(text)
    res = subprocess.run([sys.executable, "-m", "reconciler.cli", "plan", "-f", "indexes.yaml", "--targets",
                          "targets.yaml"], capture_output=True, text=True, cwd=tmp_path, stdin=subprocess.DEVNULL)
    assert res.returncode == 1 and res.stdout == ""
    first = res.stderr.splitlines()[0]
    assert first.startswith(f"error: {message}"), res.stderr
    assert "Traceback" not in res.stderr and "hunter2" not in res.stderr


def test_fleet_flags_need_a_targets_file(tmp_path):
    (tmp_path / "indexes.yaml").write_text(SMALL_SPEC)
    res = reconciler("plan", "-f", str(tmp_path / "indexes.yaml"), "--shard", "1/2")
    assert res.returncode == 1 and "--shard selects targets of a targets file; it needs --targets FILE" in res.stderr
    (tmp_path / "t.yaml").write_text("version: 1\ntargets:\n  - {name: a, dsn_env: X}\n")
    res = reconciler("plan", "-f", str(tmp_path / "indexes.yaml"), "--targets", str(tmp_path / "t.yaml"), "-d", "x")
    assert res.returncode == 1 and "cannot be combined with --database" in res.stderr
    res = reconciler("apply", "-f", str(tmp_path / "indexes.yaml"), "--targets", str(tmp_path / "t.yaml"))
    assert res.returncode == 1 and "does not prompt" in res.stderr
    res = reconciler("plan", "-f", str(tmp_path / "indexes.yaml"), "--targets", str(tmp_path / "t.yaml"),
                     "--target", "nope")
    assert res.returncode == 1 and "--target 'nope': no target of" in res.stderr


def test_import_collapse_writes_one_glob_entry_and_plans_as_no_change(dsn, run_sql, tmp_path):
    run_sql(dsn, "".join(tenant_sql(f"tenant_{i}") for i in range(1, 6)) + tenant_sql("special"))
    run_sql(dsn, "CREATE INDEX extra_idx ON special.orders (state)")
    out = tmp_path / "indexes.yaml"
    res = reconciler("import", "-d", dsn, "--collapse", "-o", str(out))
    assert res.returncode == 0, res.stderr
    spec = load_spec([out])
    schemas = sorted({e.schema for e in spec.entries})
    assert schemas == ["special", "tenant_*"]
    assert len([e for e in spec.entries if e.schema == "tenant_*"]) == 4
    res = reconciler("plan", "-f", str(out), "-d", dsn, "--detailed-exitcode")
    assert res.returncode == 0, res.stdout + res.stderr


def test_verify_and_health_on_a_fleet(fleet, run_sql, tmp_path):
    a, b, c, d = fleet
    for x in (a, b):
        run_sql(x, "CREATE TABLE t (id int PRIMARY KEY, a int, b int); "
                   "INSERT INTO t SELECT g, g % 100, g FROM generate_series(1, 5000) g; "
                   "CREATE INDEX t_a_idx ON t (a); ANALYZE t")
    run_sql(b, "DROP INDEX t_a_idx")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(SMALL_SPEC.replace("  - {name: t_b_idx, table: t, columns: [b DESC]}\n", "") +
                    "queries:\n  - {name: by a, sql: 'SELECT * FROM t WHERE a = $1', params: [5], uses: [t_a_idx]}\n")
    targets = tmp_path / "targets.yaml"
    targets.write_text("version: 1\ntargets:\n  - {name: a, dsn_env: FLEET_A}\n  - {name: b, dsn_env: FLEET_B}\n")
    env = {"FLEET_A": a, "FLEET_B": b}
    res = reconciler("verify", "-f", str(spec), "--targets", str(targets), "--format", "json", env=env)
    assert res.returncode == 2, res.stdout + res.stderr
    got = {x["target"]: x for x in json_lines(res.stdout) if "status" in x}
    assert got["a"]["status"] == "ok" and got["b"]["status"] == "changes"
    assert got["b"]["result"]["queries"][0]["uses"] == [["t_a_idx", False]] or not got["b"]["result"]["ok"]
    res = reconciler("health", "-f", str(spec), "--targets", str(targets), env=env)
    assert res.returncode in (0, 2) and "2 targets:" in res.stdout, res.stdout + res.stderr
    res = reconciler("validate", "-f", str(spec), "--targets", str(targets), env=env)
    assert res.returncode == 0 and "2 targets: 2 ok" in res.stdout, res.stdout + res.stderr
    res = reconciler("import", "--targets", str(targets), "-o", str(tmp_path / "imported"), env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "t_a_idx" in (tmp_path / "imported" / "a.yaml").read_text()
    assert "t_a_idx" not in (tmp_path / "imported" / "b.yaml").read_text()
    # as plain import -o: an existing file is kept unless --force
    (tmp_path / "imported" / "b.yaml").write_text("mine\n")
    res = reconciler("import", "--targets", str(targets), "-o", str(tmp_path / "imported"), env=env)
    assert res.returncode == 1 and res.stdout == "", res.stdout + res.stderr
    assert res.stderr.splitlines()[0] == (f"error: {tmp_path / 'imported' / 'a.yaml'}: already exists (target 'a'); "
                                          "not overwritten (and 1 more)"), res.stderr
    assert (tmp_path / "imported" / "b.yaml").read_text() == "mine\n"
    res = reconciler("import", "--targets", str(targets), "-o", str(tmp_path / "imported"), "--force", env=env)
    assert res.returncode == 0 and (tmp_path / "imported" / "b.yaml").read_text().startswith("version: 1"), res.stderr




SLOW_DDL = """
CREATE TABLE slow_t (id int);
INSERT INTO slow_t SELECT g FROM generate_series(1, 4000) g;
-- IMMUTABLE by declaration only, so that a build takes seconds: the index has something to interrupt
CREATE FUNCTION slow_key(int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT $1 + 0 FROM pg_sleep(0.002)';
"""


def _children(pid: int) -> set[int]:
    try:
        return {int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except OSError:
        return set()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="worker processes are forked on Linux")
@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_parallel_apply_stops_every_worker_and_leaves_nothing_behind(fleet, run_sql, tmp_path, how):
    """--parallel runs targets in worker processes. Ctrl-C at a terminal reaches the whole process
    group; a cancelled CI job sends SIGTERM to the parent only. Either way every running build is
    cancelled and its INVALID leftover removed (as in a one-database apply), each target says
    so, and no worker process outlives the run."""
    import signal
    import time

    a, b = fleet[:2]
    for x in (a, b):
        run_sql(x, SLOW_DDL)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n"
                    "  - {name: slow_t_key_idx, table: slow_t, columns: [{expression: slow_key(id)}]}\n")
    targets = tmp_path / "targets.yaml"
    targets.write_text("version: 1\ntargets:\n  - {name: alpha, dsn_env: FLEET_A}\n"
                       "  - {name: bravo, dsn_env: FLEET_B}\n")
    p = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", "-f", str(spec), "--targets", str(targets),
                          "--auto-approve", "--parallel", "2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, stdin=subprocess.DEVNULL, start_new_session=True,
                         env={**os.environ, "FLEET_A": a, "FLEET_B": b})
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 60
        while not all(run_sql(x, "SELECT 1 FROM pg_stat_progress_create_index WHERE relid = 'slow_t'::regclass")
                      for x in (a, b)):
            workers |= _children(p.pid)
            assert time.monotonic() < deadline and p.poll() is None, "the builds never both started"
            time.sleep(0.05)
        workers |= _children(p.pid)
        if how == "ctrl-c":
            os.killpg(p.pid, signal.SIGINT)    # the terminal signals the whole foreground group
        else:
            p.send_signal(signal.SIGTERM)
        out, err = p.communicate(timeout=120)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    assert len(workers) == 2, workers              # two worker processes, not threads
    assert p.returncode == 1, (out, err)
    assert "Traceback" not in out + err
    for name in ("alpha", "bravo"):
        assert f"[{name}] Interrupted. Summary: 0 of 1 change(s) done." in out, out
    for x in (a, b):
        assert not run_sql(x, "SELECT 1 FROM pg_stat_activity WHERE query ILIKE 'CREATE INDEX CONCURRENTLY%' "
                              "AND pid <> pg_backend_pid()")
        assert not run_sql(x, "SELECT 1 FROM pg_index WHERE NOT indisvalid")
        assert not run_sql(x, "SELECT 1 FROM pg_indexes WHERE tablename = 'slow_t'")
    time.sleep(0.2)
    assert not [w for w in workers if Path(f"/proc/{w}").exists()
                and Path(f"/proc/{w}/stat").read_text().split()[2] != "Z"], "a worker outlived the run"


def test_maintain_on_a_fleet_keeps_what_a_glob_entry_lists_and_drops_abandoned_leftovers(fleet, run_sql, tmp_path):
    """maintain takes --targets like every command, and a schema-glob entry stands for its
    index in every matching schema: its INVALID copy is apply's to rebuild, not maintain's."""
    a, b = fleet[:2]
    for x in (a, b):
        run_sql(x, "".join(f"CREATE SCHEMA {s}; CREATE TABLE {s}.orders (id int PRIMARY KEY, k int); "
                           f"INSERT INTO {s}.orders SELECT g, g % 10 FROM generate_series(1, 200) g; ANALYZE {s}.orders;"
                           for s in ("tenant_a", "tenant_b")))
        for name in ("orders_k_uq", "orders_junk_uq"):   # UNIQUE builds that failed: INVALID leftovers
            with pytest.raises(psycopg.errors.UniqueViolation):
                run_sql(x, f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON tenant_a.orders (k)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\ndefaults: {schema: \"tenant_*\"}\nhealth: {max_stale_ratio: 100}\n"
                    "indexes:\n  - {name: orders_k_uq, table: orders, columns: [k], unique: true}\n")
    targets = tmp_path / "targets.yaml"
    targets.write_text("version: 1\ntargets:\n  - {name: alpha, dsn_env: FLEET_A}\n"
                       "  - {name: bravo, dsn_env: FLEET_B}\n")
    env = {"FLEET_A": a, "FLEET_B": b}
    res = reconciler("maintain", "-f", str(spec), "--targets", str(targets), env=env)
    assert res.returncode == 1 and "does not prompt" in res.stderr, res.stdout + res.stderr
    res = reconciler("maintain", "-f", str(spec), "--targets", str(targets), "--auto-approve", "--parallel", "2",
                     env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    for name in ("alpha", "bravo"):
        assert f"[{name}]   drop     tenant_a.orders_junk_uq on orders: abandoned INVALID" in res.stdout, res.stdout
        assert f"[{name}]   skip     tenant_a.orders_k_uq on orders: INVALID, and the spec lists it" in res.stdout
        assert f"== {name}: Summary: 1 of 1 step(s) done." in res.stdout, res.stdout
    assert "2 targets: 2 ok, 0 with changes, 0 failed. Exit code 0." in res.stdout
    for x in (a, b):
        assert run_sql(x, "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                          "WHERE NOT i.indisvalid") == [("orders_k_uq",)]
