"""Queries on a real server (PostgreSQL 18 and 15): verify, budgets with real EXPLAIN ANALYZE,
refusals, data-modifying queries, what-if in plan (HypoPG on 15, rolled-back DDL on a
throwaway database), QUERY_REGRESSION in apply, --select.

HypoPG: Debian's postgresql-15-hypopg (1.3.1, no hypopg_hide_index) is installed by .ci/run;
the PostgreSQL 18 wheel has none, so on 18 what-if is tested the throwaway way, and on a real
target without HypoPG the "cannot be simulated" path is what is checked.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import psycopg
import pytest

from reconciler.app.engine import make_plan
from reconciler.app.verify import VerifyOptions, run_verify
from reconciler.app.whatif import simulate
from reconciler.spec import load_spec, parse_selection

from support.cli import run_cli as cli

ROOT = Path(__file__).resolve().parents[1]

SCHEMA = """
CREATE TABLE t (id int PRIMARY KEY, ws text NOT NULL, n int NOT NULL, created timestamptz NOT NULL);
INSERT INTO t SELECT g, 'w' || (g % 500), g % 97, now() - g * interval '1 minute' FROM generate_series(1, 20000) g;
CREATE TABLE u (id int PRIMARY KEY, t_id int NOT NULL, state text NOT NULL);
INSERT INTO u SELECT g, g % 20000, CASE WHEN g % 50 = 0 THEN 'RETRY' ELSE 'DONE' END FROM generate_series(1, 20000) g;
ANALYZE t; ANALYZE u;
"""

SPEC = """\
version: 1
manage: {prune: true}
indexes:
  - name: t_ws
    table: t
    columns: [ws]
    tags: [phase-1]
  - name: u_retry
    table: u
    columns: [t_id]
    where: "state = 'RETRY'"
    tags: [phase-2]
queries:
  - name: by ws
    sql: SELECT count(*) FROM t WHERE ws = $1
    params: ["w42"]
    uses: [t_ws]
    budget_ms: BUDGET
  - name: by ws generic
    sql: SELECT id FROM t WHERE ws = $1 AND n > $2
    uses: [t_ws]
  - name: retries
    sql: SELECT * FROM u WHERE state = 'RETRY' AND t_id < 100
    uses: [u_retry]
"""


@pytest.fixture
def db(dsn, run_sql):
    run_sql(dsn, SCHEMA)
    return dsn


def write_spec(tmp_path, text=SPEC, budget="10000", **extra) -> Path:
    p = tmp_path / "indexes.yaml"
    p.write_text(text.replace("BUDGET", budget))
    for name, body in extra.items():
        (tmp_path / name).write_text(body)
    return p


def hypopg_or_skip(dsn, pg_major):
    """HypoPG in this test database, as a DBA would have installed it on a production server."""
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("CREATE EXTENSION hypopg")
    except psycopg.Error as e:
        reason = f"hypopg not installable on PostgreSQL {pg_major}: {str(e).strip().splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{reason} (CI=true: .ci/run installs postgresql-15-hypopg)", pytrace=False)
        pytest.skip(reason)


def catalog_state(dsn):
    with psycopg.connect(dsn) as c:
        return c.execute("SELECT (SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                         "AND relkind IN ('r', 'i', 'p', 'I')), "
                         "(SELECT count(*) FROM t), (SELECT count(*) FROM u), "
                         "(SELECT count(*) FROM pg_prepared_statements)").fetchone()


def test_verify_passes_with_the_index_and_fails_without_it(db, run_sql, tmp_path):
    spec = write_spec(tmp_path)
    run_sql(db, "CREATE INDEX t_ws ON t (ws); CREATE INDEX u_retry ON u (t_id) WHERE state = 'RETRY'")
    res = cli("verify", "-f", str(spec), "-d", db, "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    by = {q["name"]: q for q in doc["queries"]}
    assert doc["ok"] and by["by ws"]["mode"] == "custom plan (params)" and by["by ws generic"]["mode"] == "generic plan"
    assert by["by ws generic"]["uses"] == [{"index": "t_ws", "used": True}]
    assert any("t_ws" in a["indexes"] for a in by["by ws"]["access"])

    run_sql(db, "DROP INDEX t_ws")
    res = cli("verify", "-f", str(spec), "-d", db)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "MISS by ws (" in res.stdout and "miss: does not use t_ws (Seq Scan on t)" in res.stdout
    assert "ok   retries" in res.stdout
    assert res.stdout.rstrip().endswith("Verify: 1 of 3 queries pass; 2 miss their index or budget.")


def test_budgets_use_real_explain_analyze_timings(db, run_sql, tmp_path):
    run_sql(db, "CREATE INDEX t_ws ON t (ws); CREATE INDEX u_retry ON u (t_id) WHERE state = 'RETRY'")
    impossible = write_spec(tmp_path, budget="0.001")
    res = cli("verify", "-f", str(impossible), "-d", db, "--analyze", "--runs", "3", "--format", "json")
    assert res.returncode == 2, res.stderr
    q = {x["name"]: x for x in json.loads(res.stdout)["queries"]}["by ws"]
    assert len(q["runs_ms"]) == 3 and all(r > 0.001 for r in q["runs_ms"]) and q["time_ms"] == sorted(q["runs_ms"])[1]
    assert q["misses"] == [f"took {q['time_ms']:,.3f} ms (median of 3), over its budget_ms 0.001"]
    assert q["shared_hit"] is not None
    generic = {x["name"]: x for x in json.loads(res.stdout)["queries"]}["by ws generic"]
    assert generic["time_ms"] is None and any("without sample values" in n for n in generic["notes"])

    generous = write_spec(tmp_path, budget="60000")
    res = cli("verify", "-f", str(generous), "-d", db, "--analyze", "--runs", "1")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "time " in res.stdout and "median of 1, budget 60000 ms" in res.stdout


@pytest.mark.parametrize("bad_sql, message", [
    ("SELEC count(*) FROM t", 'PostgreSQL refuses it: syntax error at or near "SELEC" (SQLSTATE 42601)'),
    ("SELECT * FROM missing_table WHERE id = $1", 'relation "missing_table" does not exist (SQLSTATE 42P01)'),
    ("SELECT 1; DROP TABLE t", "cannot insert multiple commands into a prepared statement"),
    ("SELECT * FROM t WHERE ws = $1; DROP TABLE t", "cannot insert multiple commands into a prepared statement"),
])
def test_a_bad_query_is_one_line_exit_1_and_nothing_changes(db, tmp_path, bad_sql, message):
    spec = write_spec(tmp_path, SPEC + f"  - name: bad\n    sql: \"{bad_sql}\"\n")
    before = catalog_state(db)
    for cmd in (["verify"], ["verify", "--analyze"], ["plan"]):
        res = cli(*cmd, "-f", str(spec), "-d", db)
        assert res.returncode == 1, (cmd, res.stdout, res.stderr)
        first = res.stderr.splitlines()[0]
        assert first.startswith(f"error: {spec}:25: query 'bad': ") and message in first, res.stderr
        assert "Traceback" not in res.stderr
    res = cli("validate", "-f", str(spec), "-d", db)
    assert res.returncode == 1 and f"{spec}:25: error: query 'bad': " in res.stderr and message in res.stderr
    assert catalog_state(db) == before


def test_analyze_never_executes_a_data_modifying_query_unless_allowed(db, tmp_path):
    spec = write_spec(tmp_path, """\
version: 1
indexes: []
queries:
  - name: purge
    sql: WITH d AS (DELETE FROM t WHERE n = $1 RETURNING id) SELECT count(*) FROM d
    params: [3]
  - name: bump
    sql: UPDATE u SET state = 'DONE' WHERE id < 100
  - name: sneaky
    sql: SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = -1
""")
    before = catalog_state(db)
    res = cli("verify", "-f", str(spec), "-d", db, "--analyze", "--format", "json")
    assert res.returncode == 0, res.stderr
    notes = {q["name"]: q["notes"] for q in json.loads(res.stdout)["queries"]}
    assert notes["purge"] == ["not measured: data-modifying (it runs DELETE); --allow-writes runs it in a "
                              "transaction that is rolled back"]
    assert "it runs UPDATE" in notes["bump"][0] and "pg_terminate_backend()" in notes["sneaky"][0]
    # the name is a first guard; the plan's functions are the real one, with or without --allow-writes
    res = cli("verify", "-f", str(spec), "-d", db, "--analyze", "--allow-writes", "--runs", "2", "--format", "json")
    assert res.returncode == 1 and "query 'sneaky': not run: it would call pg_catalog.pg_terminate_backend(integer, " \
        "bigint) (VOLATILE, internal)" in res.stderr, res.stderr
    assert catalog_state(db) == before
    res = cli("verify", "-f", str(spec), "-d", db, "--analyze", "--allow-writes", "--allow-volatile", "--runs", "2",
              "--format", "json")
    assert res.returncode == 0, res.stderr
    purge = {q["name"]: q for q in json.loads(res.stdout)["queries"]}["purge"]
    assert len(purge["runs_ms"]) == 2 and "rolled back after each run" in purge["notes"][0]
    assert catalog_state(db) == before   # every DELETE and UPDATE was rolled back


def test_the_read_only_transaction_is_the_real_guard(db):
    """Even when the classifier is fooled, the transaction refuses to write."""
    from reconciler.spec.queries_file import QueryEntry

    q = QueryEntry("fooled", "DELETE FROM t WHERE n = 1", None, (), None, None, "x.sql", 1)
    with psycopg.connect(db, autocommit=True) as conn:
        verdicts = run_verify(conn, [q], VerifyOptions(analyze=True, runs=1), classify=lambda sql: (False, ""))
    assert verdicts[0].time_ms is None
    assert "cannot execute DELETE in a read-only transaction" in verdicts[0].notes[0]
    assert catalog_state(db)[1] == 20000


def test_whatif_prediction_for_a_create_matches_the_real_build(db, pg_major, tmp_path, run_sql):
    """What-if says which index each query will use; after the real build the server's plan
    uses that same index. PostgreSQL 15: HypoPG on the target; 18: rolled-back DDL (the
    throwaway path, which is what --schema-sql runs)."""
    throwaway = pg_major >= 18   # the embedded wheel has no HypoPG
    if not throwaway:
        hypopg_or_skip(db, pg_major)
    spec = load_spec([write_spec(tmp_path)])
    with psycopg.connect(db) as conn:
        plan, _ = make_plan(conn, spec)
        plan = simulate(conn, plan, spec, throwaway=throwaway)
    effects = {(pc.change.index, e.query): e for pc in plan.changes for e in pc.effects}
    assert {pc.change.index for pc in plan.changes} == {"t_ws", "u_retry"}
    assert all(not pc.unsimulated for pc in plan.changes)
    predicted = {q for (idx, q), e in effects.items() if e.summary.startswith("will use it")}
    assert predicted == {"by ws", "by ws generic", "retries"}
    assert effects[("t_ws", "by ws")].after_cost < effects[("t_ws", "by ws")].before_cost
    assert not any(h.code == "QUERY_REGRESSION" for pc in plan.changes for h in pc.hazards)
    assert catalog_state(db)[0] == 4   # nothing was built: two tables, two primary keys

    assert cli("apply", "-f", str(tmp_path / "indexes.yaml"), "-d", db, "--auto-approve").returncode == 0
    with psycopg.connect(db, autocommit=True) as conn:
        verdicts = run_verify(conn, list(spec.queries), VerifyOptions())
    used = {v.name: {i for a in v.accesses for i in a.indexes} for v in verdicts}
    assert used == {"by ws": {"t_ws"}, "by ws generic": {"t_ws"}, "retries": {"u_retry"}}


def test_dropping_a_used_index_is_a_blocking_query_regression(db, pg_major, run_sql, tmp_path):
    run_sql(db, "CREATE INDEX t_ws ON t (ws); CREATE INDEX u_retry ON u (t_id) WHERE state = 'RETRY'")
    if pg_major == 15:
        hypopg_or_skip(db, pg_major)
    # the pull request: t_ws leaves the spec (prune drops it); the query no longer lists it
    pr = SPEC.split("  - name: u_retry")[0].split("  - name: t_ws")[0] + "  - name: u_retry" + \
        SPEC.split("  - name: u_retry")[1]
    pr = pr.replace("    uses: [t_ws]\n", "").replace("manage: {prune: true}", 'manage: {prune: true, tables: ["public.*"]}')
    spec_path = write_spec(tmp_path, pr)
    res = cli("plan", "-f", str(spec_path), "-d", db)
    assert res.returncode == 0, res.stderr
    assert "- drop public.t_ws on t" in res.stdout
    why = "HypoPG 1.3.1 has no hypopg_hide_index (1.4.0+)" if pg_major == 15 else \
        "hiding an index needs HypoPG 1.4.0+ (hypopg_hide_index), not installed in this database"
    assert f"queries: not simulated: {why}; reconciler never drops an index on a real database" in res.stdout
    assert "hazard (blocking) QUERY_REGRESSION: 2 queries would regress: 'by ws' (" in res.stdout
    assert "query 'by ws': uses t_ws now (cost " in res.stdout and "its plan without it is unknown" in res.stdout

    res = cli("apply", "-f", str(spec_path), "-d", db, "--auto-approve")
    assert res.returncode == 1 and "QUERY_REGRESSION" in res.stderr and "--allow-hazard QUERY_REGRESSION" in res.stderr
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_ws'") == [(1,)]

    # on a throwaway database the drop is simulated for real, and rolled back
    spec = load_spec([spec_path])
    with psycopg.connect(db) as conn:
        plan, _ = make_plan(conn, spec)
        plan = simulate(conn, plan, spec, throwaway=True)
    [drop] = [pc for pc in plan.changes if pc.change.action == "drop"]
    summaries = {e.query: e for e in drop.effects}
    assert summaries["by ws"].summary.startswith("will stop using t_ws (cost ") and summaries["by ws"].regression
    assert "then: " in summaries["by ws"].summary and "Seq Scan on t" in summaries["by ws"].summary
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_ws'") == [(1,)]

    res = cli("apply", "-f", str(spec_path), "-d", db, "--auto-approve", "--allow-hazard", "QUERY_REGRESSION",
              "--allow-hazard", "DROPS_USED_INDEX")
    assert res.returncode == 0, res.stdout + res.stderr
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_ws'") == [(0,)]


def test_select_plans_and_applies_only_what_it_selects(db, run_sql, tmp_path):
    spec_path = write_spec(tmp_path)
    run_sql(db, "CREATE INDEX legacy_t_n ON t (n)")   # an unlisted index: prune would drop it
    res = cli("plan", "-f", str(spec_path), "-d", db, "--select", "tag=phase-1", "--format", "json")
    assert res.returncode == 0, res.stderr
    doc = json.loads(res.stdout)
    assert doc["partial"] is True and doc["selection"] == ["tag=phase-1"]
    assert [(c["action"], c["index"]) for c in doc["changes"]] == [("create", "t_ws")]

    res = cli("plan", "-f", str(spec_path), "-d", db, "--select", "tag=phase-2", "--select", "name=legacy_*",
              "--format", "json")
    assert sorted((c["action"], c["index"]) for c in json.loads(res.stdout)["changes"]) == [
        ("create", "u_retry"), ("drop", "legacy_t_n")]
    res = cli("plan", "-f", str(spec_path), "-d", db, "--select", "table=u", "--format", "json")
    assert [c["index"] for c in json.loads(res.stdout)["changes"]] == ["u_retry"]

    res = cli("plan", "-f", str(spec_path), "-d", db, "--select", "tag=phase-9")
    assert res.returncode == 1 and "no index of the spec has tag 'phase-9' (tags: phase-1, phase-2)" in res.stderr

    # the rest of the spec is still validated: a broken unselected entry stops a partial plan
    broken = write_spec(tmp_path, SPEC.replace("where: \"state = 'RETRY'\"", "where: \"state = \""))
    res = cli("plan", "-f", str(broken), "-d", db, "--select", "tag=phase-1")
    assert res.returncode == 1 and "u_retry" in res.stderr
    spec_path = write_spec(tmp_path)

    res = cli("apply", "-f", str(spec_path), "-d", db, "--select", "tag=phase-1", "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    names = {r[0] for r in run_sql(db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert {"t_ws", "legacy_t_n"} <= names and "u_retry" not in names
    res = cli("plan", "-f", str(spec_path), "-d", db, "--select", "tag=phase-1", "--detailed-exitcode")
    assert res.returncode == 0 and "No changes for the selected indexes (partial: --select tag=phase-1)." in res.stdout
    res = cli("drift", "-f", str(spec_path), "-d", db, "--select", "tag=phase-1")
    assert res.returncode == 0, res.stdout
    res = cli("verify", "-f", str(spec_path), "-d", db, "--select", "tag=phase-1", "--format", "json")
    assert [q["name"] for q in json.loads(res.stdout)["queries"]] == ["by ws", "by ws generic"]
    assert json.loads(res.stdout)["ok"] is True

    # a saved partial plan keeps its selection
    out = tmp_path / "p.json"
    assert cli("plan", "-f", str(spec_path), "-d", db, "--select", "tag=phase-2", "--out", str(out)).returncode == 0
    res = cli("apply", "-f", str(spec_path), "--plan", str(out), "-d", db, "--auto-approve")
    assert res.returncode == 0, res.stdout + res.stderr
    names = {r[0] for r in run_sql(db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}
    assert "u_retry" in names and "legacy_t_n" in names


def test_queries_file_next_to_the_application_sql(db, run_sql, tmp_path):
    run_sql(db, "CREATE INDEX t_ws ON t (ws)")
    sql = "-- name: by ws\n-- uses: t_ws\n-- params: [\"w7\"]\nSELECT count(*) FROM t WHERE ws = $1;\n\n" \
          "-- name: broken\nSELECT nope FROM t;\n"
    spec = write_spec(tmp_path, "version: 1\nindexes:\n  - {name: t_ws, table: t, columns: [ws]}\n"
                                "queries_file: queries.sql\n", **{"queries.sql": sql})
    res = cli("verify", "-f", str(spec), "-d", db)
    assert res.returncode == 1
    assert res.stderr.splitlines()[0] == (f"error: {tmp_path / 'queries.sql'}:7: query 'broken': PostgreSQL refuses "
                                          'it: column "nope" does not exist (SQLSTATE 42703)')
    (tmp_path / "queries.sql").write_text(sql.split("-- name: broken")[0])
    res = cli("verify", "-f", str(spec), "-d", db)
    assert res.returncode == 0 and "ok   by ws (" in res.stdout and "uses t_ws: yes" in res.stdout


def test_partitioned_table_index_is_recognized_through_its_partitions(dsn, run_sql, tmp_path):
    run_sql(dsn, """
        CREATE TABLE ev (id int, ws text, at date) PARTITION BY RANGE (at);
        CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO ev SELECT g, 'w' || (g % 1000), date '2024-01-01' + (g % 700) FROM generate_series(1, 20000) g;
        CREATE INDEX ev_ws ON ev (ws); ANALYZE ev;""")
    spec = write_spec(tmp_path, "version: 1\nindexes:\n  - {name: ev_ws, table: ev, columns: [ws]}\nqueries:\n"
                                "  - name: events\n    sql: SELECT * FROM ev WHERE ws = $1\n    params: [w5]\n"
                                "    uses: [ev_ws]\n")
    res = cli("verify", "-f", str(spec), "-d", dsn, "--format", "json")
    assert res.returncode == 0, res.stdout + res.stderr
    [q] = json.loads(res.stdout)["queries"]
    assert q["uses"] == [{"index": "ev_ws", "used": True}]
    assert {a["table"] for a in q["access"]} == {"ev_2024", "ev_2025"}


def test_whatif_on_a_partitioned_table_sees_the_partition_indexes_it_would_build(dsn, run_sql, tmp_path):
    """On a throwaway database the rolled-back CREATE INDEX on the parent makes partition
    indexes that exist only inside the simulation; their plans still count for the parent."""
    run_sql(dsn, """
        CREATE TABLE ev (id int, ws text, at date) PARTITION BY RANGE (at);
        CREATE TABLE ev_2024 PARTITION OF ev FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE ev_2025 PARTITION OF ev FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        INSERT INTO ev SELECT g, 'w' || (g % 1000), date '2024-01-01' + (g % 700) FROM generate_series(1, 20000) g;
        ANALYZE ev;""")
    spec = load_spec([write_spec(tmp_path, "version: 1\nindexes:\n  - {name: ev_ws, table: ev, columns: [ws]}\n"
                                           "queries:\n  - name: events\n    sql: SELECT * FROM ev WHERE ws = $1\n"
                                           "    params: [w5]\n    uses: [ev_ws]\n")])
    with psycopg.connect(dsn) as conn:
        plan, _ = make_plan(conn, spec)
        plan = simulate(conn, plan, spec, throwaway=True)
    [pc] = plan.changes
    [eff] = pc.effects
    assert eff.summary.startswith("will use it (cost ") and not pc.unsimulated
    assert run_sql(dsn, "SELECT count(*) FROM pg_indexes WHERE tablename LIKE 'ev%'") == [(0,)]


def test_generic_plans_leave_no_prepared_statement_and_keep_the_sessions_own(db, run_sql):
    """PREPAREd statements outlive a rollback: verify deallocates its own, by name, and no
    other (a DEALLOCATE ALL would take the session's own too), also after a refusal."""
    from reconciler.spec.queries_file import QueryEntry

    good = QueryEntry("g", "SELECT id FROM t WHERE ws = $1 AND n > $2", None, (), None, None, "x.sql", 1)
    bad = QueryEntry("b", "SELECT nope FROM t WHERE ws = $1", None, (), None, None, "x.sql", 2)
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("PREPARE mine AS SELECT 1")
        assert run_verify(conn, [good, good], VerifyOptions())[0].mode == "generic plan"
        with pytest.raises(Exception, match="column \"nope\" does not exist"):
            run_verify(conn, [good, bad, good], VerifyOptions())
        names = [r[0] for r in conn.execute("SELECT name FROM pg_prepared_statements").fetchall()]
        assert names == ["mine"]


# --- verify --analyze never runs a query whose plan calls a VOLATILE function ----------------

ZAP_SCHEMA = """
CREATE TABLE z (id int PRIMARY KEY, note text);
INSERT INTO z SELECT g, 'n' || g FROM generate_series(1, 50) g;
-- the side effect READ ONLY does not stop: it ends the backend named VICTIM
CREATE FUNCTION zap() RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'VICTIM';
  RETURN true;
END $$;
CREATE FUNCTION zap_eq(int, int) RETURNS boolean LANGUAGE plpgsql AS $$BEGIN RETURN zap() AND $1 = $2; END $$;
CREATE OPERATOR ==> (LEFTARG = int, RIGHTARG = int, FUNCTION = zap_eq);
CREATE VIEW z_view AS SELECT id FROM z WHERE zap();
-- STABLE on its face; the catalog records that its SQL-standard body calls zap()
CREATE FUNCTION looks_stable() RETURNS boolean STABLE BEGIN ATOMIC SELECT zap(); END;
CREATE TABLE guarded (id int, owner text);
INSERT INTO guarded VALUES (1, 'a');
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE POLICY zap_rows ON guarded USING (zap());
CREATE FUNCTION zap_trigger() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN PERFORM zap(); RETURN NEW; END $$;
CREATE TRIGGER z_zap BEFORE UPDATE ON z FOR EACH ROW EXECUTE FUNCTION zap_trigger();
"""

ZAP_QUERIES = {
    "wrapper": ("SELECT zap()", None, 'public.zap() (VOLATILE, plpgsql)'),
    "view": ("SELECT * FROM z_view WHERE id = $1", [1], 'public.zap() (VOLATILE, plpgsql)'),
    "policy": ("SELECT * FROM guarded WHERE id = $1", [1], 'public.zap() (VOLATILE, plpgsql)'),
    "operator": ("SELECT * FROM z WHERE id ==> 1", None,
                 'public.zap_eq(integer, integer) (VOLATILE, plpgsql, behind operator ==>(integer,integer))'),
    "sql body": ("SELECT id FROM z WHERE looks_stable() LIMIT 1", None,
                 'public.zap() (VOLATILE, plpgsql, inside looks_stable())'),
    "limit": ("SELECT id FROM z LIMIT (SELECT count(*) FROM z WHERE zap())", None, 'public.zap() (VOLATILE, plpgsql)'),
    "trigger": ("UPDATE z SET note = note WHERE id = $1", [1],     # as --allow-writes would run it
                'public.zap_trigger() (VOLATILE, plpgsql, by trigger z_zap on z)'),
}


@pytest.fixture
def zap_role(dsn, run_sql):
    """A non-superuser (row-level security applies to it) with a victim backend of its own
    that `zap()` would terminate; dropped afterwards."""
    import hashlib

    role = "rc_zap_" + hashlib.sha1(dsn.encode()).hexdigest()[:10]
    run_sql(dsn, f"DROP ROLE IF EXISTS {role}; CREATE ROLE {role} LOGIN")
    run_sql(dsn, ZAP_SCHEMA + f"GRANT SELECT ON z, z_view, guarded TO {role}; GRANT UPDATE ON z TO {role};")
    try:
        yield psycopg.conninfo.make_conninfo(dsn, user=role)
    finally:
        dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        run_sql(dsn, f'REVOKE ALL ON DATABASE "{dbname}" FROM {role}; DROP OWNED BY {role}; DROP ROLE {role}')


def _alive(conn: psycopg.Connection) -> bool:
    try:
        conn.execute("SELECT 1").fetchone()
        return True
    except psycopg.OperationalError:
        return False


def test_analyze_refuses_a_volatile_function_wherever_the_plan_hides_it(zap_role, tmp_path):
    from reconciler.errors import ReconcilerError
    from reconciler.spec.queries_file import QueryEntry

    app = zap_role
    with psycopg.connect(app, autocommit=True, application_name="VICTIM") as victim, \
            psycopg.connect(app, autocommit=True) as conn:
        for name, (sql, params, function) in ZAP_QUERIES.items():
            q = QueryEntry(name, sql, params, (), None, None, "q.sql", 7)
            with pytest.raises(ReconcilerError) as e:
                # the text classifier fooled (it cannot read `==>` and would not run that one):
                # the plan's functions alone must refuse every case
                run_verify(conn, [q], VerifyOptions(analyze=True, runs=1, allow_writes=True),
                           classify=lambda sql: (False, ""))
            assert str(e.value).startswith(f"q.sql:7: query {name!r}: not run: it would call {function}"), name
            assert _alive(victim), name        # nothing ran: zap() would have ended it
        # a plain query (random() is a harmless VOLATILE built-in) still runs and is measured
        plain = QueryEntry("plain", "SELECT id, random() FROM z WHERE id = $1", [3], (), None, None, "q.sql", 9)
        assert len(run_verify(conn, [plain], VerifyOptions(analyze=True, runs=2))[0].runs_ms) == 2
        assert _alive(victim)
    # the CLI: one line naming file:line and the function, exit 1; --allow-volatile runs it
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes: []\nqueries:\n  - name: via view\n    sql: SELECT * FROM z_view\n")
    with psycopg.connect(app, autocommit=True, application_name="VICTIM") as victim:
        res = cli("verify", "-f", spec, "-d", app, "--analyze", "--runs", "1")
        assert res.returncode == 1 and res.stdout == "", res
        first = res.stderr.splitlines()[0]
        assert first == (f"error: {spec}:4: query 'via view': not run: it would call public.zap() (VOLATILE, "
                         "plpgsql), which can act outside the transaction (a rollback does not undo it)"), res.stderr
        assert "Traceback" not in res.stderr and _alive(victim)
        res = cli("verify", "-f", spec, "-d", app, "--analyze", "--runs", "1", "--allow-volatile")
        assert res.returncode == 0, res.stderr
        assert not _alive(victim)              # the check above could see a run: this one ran zap()
