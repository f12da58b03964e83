"""`reconciler health` on a real server (PostgreSQL 18 and 15): one database per server holds every
situation the issue names, made the way production makes them, and `health` must find each one
and nothing else.

- unused: an index never scanned, judged against statistics reset seconds ago: not "unused" with
  the default unused_min_stats_age (30d), "unused" with 1s;
- duplicate (same definition, another name), redundant prefix;
- bloated: mass updates and deletes, then VACUUM;
- invalid: a UNIQUE CREATE INDEX CONCURRENTLY that failed, a REINDEX CONCURRENTLY cancelled in
  its wait (a `_ccnew` leftover), and a build in progress (waiting for an old snapshot);
- a foreign key without an index; a low hit ratio (an index read cold); a seq-scan-heavy table.
The report is checked in each format: JSON (the verdicts), text, Prometheus (parsed by
prometheus-client) and HTML (rendered by headless Chromium, boxes measured).
Also here: relations under an ACCESS EXCLUSIVE lock (held or queued) are skipped, never waited for.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pgserver
import psycopg
import pytest
from prometheus_client.parser import text_string_to_metric_families

from support.cli import cli_env, run_cli

SPEC = """\
version: 1
manage:
  tables: ["public.*"]
indexes:
  - name: orders_customer_idx
    table: orders
    columns: [customer_id]
  - name: orders_status_idx
    table: orders
    columns: [status]
  - name: orders_created_idx
    table: orders
    columns: [created_at]
  - name: orders_created_code_idx
    table: orders
    columns: [created_at, code]
"""

SETUP = [
    """CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
       INSERT INTO customers SELECT g, 'c' || g FROM generate_series(1, 2000) g;
       CREATE TABLE orders (id int PRIMARY KEY, customer_id int NOT NULL REFERENCES customers (id),
                            status text NOT NULL, code text NOT NULL, created_at timestamptz NOT NULL);
       INSERT INTO orders SELECT g, 1 + g % 2000, md5(g::text), md5((g * 7)::text),
                                 '2026-01-01'::timestamptz + g * interval '1 minute'
       FROM generate_series(1, 30000) g;
       CREATE INDEX orders_customer_idx ON orders (customer_id);
       CREATE INDEX orders_customer_dup ON orders (customer_id);
       CREATE INDEX orders_status_idx ON orders (status);
       CREATE INDEX orders_created_idx ON orders (created_at);
       CREATE INDEX orders_created_code_idx ON orders (created_at, code);
       CREATE TABLE order_items (id int PRIMARY KEY, order_id int NOT NULL REFERENCES orders (id), qty int);
       INSERT INTO order_items SELECT g, 1 + g % 30000, 1 FROM generate_series(1, 3000) g;
       CREATE TABLE events (id int NOT NULL, v int NOT NULL, payload text);
       INSERT INTO events SELECT g, g, 'x' FROM generate_series(1, 40000) g;
       CREATE INDEX events_v_idx ON events (v);
       CREATE TABLE hits (id int NOT NULL, w text NOT NULL);
       INSERT INTO hits SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 40000) g;
       CREATE INDEX hits_w_idx ON hits (w);
       CREATE TABLE logs (id int NOT NULL, msg text NOT NULL);
       INSERT INTO logs SELECT g, 'm' || g FROM generate_series(1, 20000) g;""",
    # autovacuum must not vacuum or analyze behind the test's back
    """ALTER TABLE customers SET (autovacuum_enabled = off); ALTER TABLE orders SET (autovacuum_enabled = off);
       ALTER TABLE order_items SET (autovacuum_enabled = off); ALTER TABLE events SET (autovacuum_enabled = off);
       ALTER TABLE hits SET (autovacuum_enabled = off); ALTER TABLE logs SET (autovacuum_enabled = off)""",
    # mass updates of the indexed column and a mass delete leave events_v_idx mostly empty pages
    "UPDATE events SET v = v + 100000",
    "UPDATE events SET v = v + 100000",
    "UPDATE events SET v = v + 100000",
    "DELETE FROM events WHERE id % 10 < 7",
    "VACUUM events",
]

# Reads everything but `hits` once, so the measured workload finds those pages in shared buffers.
WARM = """SET enable_seqscan = off; SET enable_bitmapscan = off;
SELECT count(*) FROM orders WHERE customer_id > 0; SELECT count(*) FROM orders WHERE created_at > '2000-01-01';
SELECT count(*) FROM orders WHERE created_at > '2000-01-01' AND code > ''; SELECT count(*) FROM events WHERE v > 0;
SELECT count(*) FROM orders WHERE id > 0; SELECT count(*) FROM customers WHERE id > 0"""

WORKLOAD = ["SET max_parallel_workers_per_gather = 0; SET enable_seqscan = off; SET enable_bitmapscan = off; "
            + " ".join(f"SELECT * FROM orders WHERE customer_id = {1 + n * 7 % 2000};" for n in range(150))
            + " ".join(f"SELECT count(*) FROM orders WHERE created_at >= '2026-01-0{1 + n % 9} 10:00' AND "
                       f"created_at < '2026-01-0{1 + n % 9} 10:05';" for n in range(40))
            + " ".join(f"SELECT * FROM orders WHERE created_at = '2026-01-02 00:{n:02d}' AND code = 'x';"
                       for n in range(40))
            + " ".join(f"SELECT * FROM events WHERE v = {300000 + n * 13};" for n in range(20)),
            # one full read of a cold index: its blocks come from outside shared buffers
            "SET max_parallel_workers_per_gather = 0; SET enable_seqscan = off; SET enable_bitmapscan = off; "
            "SELECT count(*) FROM hits WHERE w > ''",
            "SET max_parallel_workers_per_gather = 0; SET enable_indexscan = off; SET enable_bitmapscan = off; "
            + " ".join(f"SELECT count(*) FROM logs WHERE msg LIKE '%{n}%';" for n in range(150))]

EXPECTED_AGED = {("unused", "orders_status_idx"), ("duplicate", "orders_customer_dup"),
                 ("redundant", "orders_created_idx"), ("invalid_abandoned", "orders_customer_uq"),
                 ("invalid_abandoned", "customers_pkey_ccnew"), ("invalid_building", "customers_name_idx"),
                 ("bloated", "events_v_idx"), ("fk_unindexed", "order_items"), ("low_hit_ratio", "hits"),
                 ("seq_scan_heavy", "logs")}


_NO_SPEC_DIR = tempfile.mkdtemp(prefix="reconciler-health-cwd-")
atexit.register(shutil.rmtree, _NO_SPEC_DIR, True)   # made at import: gone at exit


def cli(*args: str, timeout: float = 120):
    # Run where there is no ./indexes.yaml: the repository root has one (the JustoAI spec),
    # and `health --all` without -f reads ./indexes.yaml when there is one.
    return run_cli(*args, timeout=timeout, cwd=_NO_SPEC_DIR)


def wait_until(fn, what: str, timeout: float = 60.0, every: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def one(run_sql, dsn: str, sql: str):
    rows = run_sql(dsn, sql)
    return rows[0][0] if rows else None


def found(report: dict) -> set[tuple[str, str]]:
    return {(f["kind"], f["index"] or f["table"]) for f in report["findings"]}


QUIET = 12.0   # seconds between the statistics reset and the workload (see `aged`)


@pytest.fixture(scope="module")
def scene(pg_server, tmp_path_factory):
    """The database with every situation, the spec, and the sessions that keep a build in
    progress; torn down after the module's tests.

    Time line: statistics reset at T0, the workload at T1 = T0 + QUIET. A threshold between the
    two ages (`aged`) makes an index never scanned since T0 "unused" while the indexes scanned at
    T1 stay used, also by PostgreSQL 16+'s last-scan rule."""
    run_sql = pgserver.sql
    name = f"t_health_scene_{pg_server.name}"
    dsn = pg_server.fresh_db(name)
    tmp = tmp_path_factory.mktemp(f"health-{pg_server.name}")
    (tmp / "indexes.yaml").write_text(SPEC)
    holder = builder = None
    try:
        for sql in SETUP:
            run_sql(dsn, sql)
        # a UNIQUE CREATE INDEX CONCURRENTLY that fails on duplicate keys leaves its index INVALID
        with pytest.raises(psycopg.errors.UniqueViolation):
            run_sql(dsn, "CREATE UNIQUE INDEX CONCURRENTLY orders_customer_uq ON orders (customer_id)")
        run_sql(dsn, WARM)
        # an old snapshot: REINDEX CONCURRENTLY and CREATE INDEX CONCURRENTLY both wait for it
        holder = psycopg.connect(dsn, autocommit=True)
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM customers")
        with psycopg.connect(dsn, autocommit=True) as c:
            c.execute("SET statement_timeout = '3s'")
            with pytest.raises(psycopg.errors.QueryCanceled):
                c.execute("REINDEX INDEX CONCURRENTLY customers_pkey")   # cancelled: customers_pkey_ccnew stays

        def build():
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("CREATE INDEX CONCURRENTLY customers_name_idx ON customers (name)")

        builder = threading.Thread(target=build, daemon=True)
        builder.start()
        wait_until(lambda: run_sql(dsn, "SELECT 1 FROM pg_stat_progress_create_index WHERE phase LIKE 'waiting%' "
                                        "AND index_relid <> 0"), "the concurrent build to wait for the snapshot")
        run_sql(dsn, "SELECT pg_stat_reset()")
        # sets n_live_tup again after the reset; not customers: its build in progress holds the
        # SHARE UPDATE EXCLUSIVE lock ANALYZE needs (it is small, and reltuples says its size)
        for t in ("orders", "order_items", "events", "hits", "logs"):
            run_sql(dsn, f"SET lock_timeout = '20s'; ANALYZE {t}")
        wait_until(lambda: one(run_sql, dsn, "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_database "
                                             "WHERE datname = current_database()") >= QUIET, "quiet time", every=0.5)
        for sql in WORKLOAD:
            run_sql(dsn, sql)
        wait_until(lambda: one(run_sql, dsn, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'logs'") >= 150
                   and one(run_sql, dsn, "SELECT idx_scan FROM pg_stat_user_indexes WHERE indexrelname = 'hits_w_idx'")
                   and one(run_sql, dsn, "SELECT sum(idx_scan) FROM pg_stat_user_indexes WHERE relname = 'orders'")
                   >= 230, "the workload's statistics to be flushed")
        yield {"dsn": dsn, "dir": tmp, "spec": str(tmp / "indexes.yaml"), "major": pg_server.major}
    finally:
        if holder is not None:
            holder.execute("COMMIT")
            holder.close()
        if builder is not None:
            builder.join(timeout=60)
        pg_server.drop_db(name)


@pytest.fixture(scope="module")
def aged(scene):
    """`health` with unused_min_stats_age just under the statistics' age: an index never scanned
    since the reset is unused; the ones scanned QUIET seconds later are not (not even by their
    last scan), as long as this call reads within QUIET - 2 seconds of the workload."""
    age = one(pgserver.sql, scene["dsn"], "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_database "
                                          "WHERE datname = current_database()")
    aged_spec = scene["dir"] / "aged.yaml"
    aged_spec.write_text(f"version: 1\nhealth: {{unused_min_stats_age: {int(age) - 2}s}}\n")
    r = cli("health", "-f", scene["spec"], "-f", str(aged_spec), "-d", scene["dsn"], "--format", "json")
    assert r.returncode == 2, r.stderr
    return json.loads(r.stdout)


def test_health_finds_each_situation_and_nothing_else(aged):
    assert found(aged) == EXPECTED_AGED
    assert aged["healthy"] is False


def test_fresh_statistics_call_nothing_unused(scene):
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"], "--format", "json")
    assert r.returncode == 2, r.stderr
    report = json.loads(r.stdout)
    assert found(report) == EXPECTED_AGED - {("unused", "orders_status_idx")}
    assert any("not called unused" in n and "30d" in n for n in report["notes"])


def test_each_finding_carries_its_evidence_and_edit(aged, scene):
    by = {(f["kind"], f["index"] or f["table"]): f for f in aged["findings"]}
    unused = by[("unused", "orders_status_idx")]
    assert unused["edit"] == {"action": "remove", "index": "orders_status_idx", "file": scene["spec"], "line": 8,
                              "yaml": None}
    assert unused["evidence"]["scans"] == 0 and unused["evidence"]["size_bytes"] >= 1024 ** 2
    dup = by[("duplicate", "orders_customer_dup")]
    assert dup["evidence"]["same_as"] == "orders_customer_idx"
    assert dup["sql"] == "DROP INDEX CONCURRENTLY public.orders_customer_dup;" and dup["edit"] is None
    red = by[("redundant", "orders_created_idx")]
    assert red["evidence"]["covered_by"] == "orders_created_code_idx" and red["edit"]["line"] == 11
    assert "_ccnew" in by[("invalid_abandoned", "customers_pkey_ccnew")]["evidence"]["origin"]
    assert by[("invalid_building", "customers_name_idx")]["severity"] == "info"
    bloat = by[("bloated", "events_v_idx")]["evidence"]
    assert bloat["method"] == "estimate" and bloat["bloat_ratio"] > 0.5 and bloat["wasted_bytes"] > 1024 ** 2
    fk = by[("fk_unindexed", "order_items")]
    assert fk["edit"]["action"] == "add" and fk["edit"]["file"] == scene["spec"]
    assert "- name: order_items_order_id_idx\n  table: order_items\n  columns: [order_id]\n" in fk["edit"]["yaml"]
    assert by[("low_hit_ratio", "hits")]["evidence"]["hit_ratio"] < 0.5
    assert by[("seq_scan_heavy", "logs")]["evidence"]["seq_scans"] >= 150


PROBE = ("import atexit, gc, json, os, sys\n"
         "out = os.environ.pop('MODULES_OUT')\n"
         "atexit.register(lambda: open(out, 'w').write(json.dumps({'modules': sorted(sys.modules),\n"
         "                                                         'frozen': gc.get_freeze_count()})))\n"
         "from reconciler.cli import main\n"
         "main()\n")


def test_health_without_a_spec_loads_neither_spec_models_nor_sql_parser(scene, tmp_path):
    """`health --all` with no spec file reads no spec: pydantic's models and sqlglot stay
    unloaded (about a third of the process's time on a big catalog, benchmarks/health_scale.py),
    while the duplicate and the redundant prefix are still found by the core's comparison and
    the foreign key's finding still carries the YAML entry to add. And the process freezes
    what it built before it exits (cli.main), so shutdown's collections skip it."""
    out = tmp_path / "modules.json"
    r = subprocess.run([sys.executable, "-c", PROBE, "health", "--all", "-d", scene["dsn"], "--format", "json"],
                       capture_output=True, text=True, cwd=_NO_SPEC_DIR, timeout=120, stdin=subprocess.DEVNULL,
                       env=cli_env({"MODULES_OUT": str(out)}))
    assert r.returncode == 2, r.stderr
    got = found(json.loads(r.stdout))
    # without the spec's entry to keep, the keeper is whichever of the two the workload scanned more
    assert {("redundant", "orders_created_idx"), ("fk_unindexed", "order_items")} <= got
    assert len(got & {("duplicate", "orders_customer_dup"), ("duplicate", "orders_customer_idx")}) == 1
    fk = next(f for f in json.loads(r.stdout)["findings"] if f["kind"] == "fk_unindexed")
    assert "- name: order_items_order_id_idx\n" in fk["edit"]["yaml"]
    probe = json.loads(out.read_text())
    modules = set(probe["modules"])
    heavy = [m for m in modules if m.split(".")[0] in ("pydantic", "sqlglot")
             or m.startswith(("reconciler.normalize", "reconciler.spec.models", "reconciler.spec.load"))]
    assert heavy == [] and "reconciler.pg.catalog" in modules and "reconciler.spec.dump" in modules
    # the command's objects were frozen before exit: interpreter shutdown does not walk them
    assert probe["frozen"] > 10_000


def test_per_index_figures(aged):
    ix = {i["index"]: i for i in aged["indexes"]}
    assert ix["orders_status_idx"]["in_spec"] and ix["orders_status_idx"]["spec_where"].endswith("indexes.yaml:8")
    assert not ix["orders_customer_dup"]["in_spec"]
    # one full scan, plus the planner's probe of the index's end for `w > ''` (counted as a scan)
    assert 1 <= ix["hits_w_idx"]["scans"] <= 3 and 40000 <= ix["hits_w_idx"]["tuples_read"] <= 40003
    assert ix["customers_pkey_ccnew"]["valid"] is False and ix["customers_name_idx"]["valid"] is False
    # a CREATE INDEX CONCURRENTLY that failed in its build leaves an empty relation
    assert [i["index"] for i in aged["indexes"] if i["size_bytes"] <= 0] == ["orders_customer_uq"]
    tables = {t["table"]: t for t in aged["tables"]}
    assert tables["logs"]["seq_scan_ratio"] == 1.0 and tables["hits"]["index_hit_ratio"] < 0.5
    assert all(t["modified_since_analyze"] == 0 for t in aged["tables"])


def test_exact_bloat_measures_the_flagged_index(scene, run_sql):
    run_sql(scene["dsn"], "CREATE EXTENSION IF NOT EXISTS pgstattuple")
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"], "--format", "json", "--exact")
    report = json.loads(r.stdout)
    ev = next(f for f in report["findings"] if f["kind"] == "bloated")["evidence"]
    assert ev["method"] == "pgstatindex" and ev["bloat_ratio"] > 0.5
    others = [i for i in report["indexes"] if i["bloat"] and i["index"] != "events_v_idx"]
    assert all(i["bloat"]["method"] == "estimate" for i in others)   # pgstatindex only where flagged


def test_text_and_markdown(scene):
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"])
    assert r.returncode == 2
    assert "orders_customer_dup" in r.stdout and r.stdout.rstrip().splitlines()[-1].startswith("Thresholds crossed")
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"], "--format", "markdown")
    assert r.stdout.startswith("### reconciler health") and "| warning | bloated | `public.events_v_idx on events` |" in r.stdout


def test_prometheus_output_parses(scene, tmp_path):
    out = tmp_path / "reconciler.prom"
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"], "--format", "prometheus", "-o", str(out))
    assert r.returncode == 2 and r.stdout == "" and f"Wrote the prometheus report to {out}" in r.stderr
    fams = {f.name: f for f in text_string_to_metric_families(out.read_text())}
    findings = {s.labels["kind"]: s.value for s in fams["reconciler_health_findings"].samples}
    assert (findings["unused"], findings["bloated"], findings["invalid_abandoned"], findings["stale_statistics"]) == \
        (0, 1, 2, 0)
    sizes = {s.labels["index"]: s.value for s in fams["reconciler_index_size_bytes"].samples}
    assert sizes["hits_w_idx"] > 1024 ** 2
    assert {s.labels["database"] for s in fams["reconciler_index_size_bytes"].samples} == {
        f"t_health_scene_pg{scene['major']}"}
    valid = {s.labels["index"]: s.value for s in fams["reconciler_index_valid"].samples}
    assert valid["customers_pkey_ccnew"] == 0 and valid["orders_status_idx"] == 1
    assert [s.value for s in fams["reconciler_health_ok"].samples] == [0]


# ---- the HTML report in a real browser ----------------------------------------------------------

MEASURE = """
<script>
(function () {
  var out = {charts: [], overflow: [], svgText: []};
  document.querySelectorAll('figure.chart').forEach(function (f) {
    var svg = f.querySelector('svg'); var r = svg.getBoundingClientRect();
    out.charts.push({id: f.id, w: r.width, h: r.height, marks: svg.querySelectorAll('rect,circle').length});
    var box = svg.getBoundingClientRect();
    svg.querySelectorAll('text').forEach(function (t) {
      var b = t.getBoundingClientRect();
      if (b.left < box.left - 0.5 || b.right > box.right + 0.5 || b.top < box.top - 0.5 || b.bottom > box.bottom + 0.5)
        out.svgText.push(f.id + ': ' + t.textContent);
    });
  });
  document.querySelectorAll('td, th, .card, figcaption, .sub, header p, .badge, li, pre, h1, h2').forEach(function (e) {
    if (e.scrollWidth > e.clientWidth + 1) out.overflow.push(e.tagName + ': ' + e.textContent.slice(0, 80));
  });
  out.pageWidth = document.documentElement.scrollWidth; out.viewWidth = window.innerWidth;
  var pre = document.createElement('pre'); pre.id = 'measured'; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>
"""


def chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


def headless(args: list[str], timeout: float = 90) -> subprocess.CompletedProcess:
    with tempfile.TemporaryDirectory(prefix="reconciler-chromium-") as profile:
        return subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu",
                               "--disable-background-networking", "--no-first-run", "--disable-dev-shm-usage",
                               f"--user-data-dir={profile}", *args], capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("width", [1280, 700])
def test_html_report_renders_in_chromium(scene, tmp_path, width):
    if chromium() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("chromium is not installed (CI=true): apt-get install chromium", pytrace=False)
        pytest.skip("chromium is not installed (apt-get install chromium)")
    page = tmp_path / "health.html"
    r = cli("health", "-f", scene["spec"], "-d", scene["dsn"], "--format", "html", "-o", str(page))
    assert r.returncode == 2, r.stderr
    html = page.read_text()
    assert "<script" not in html   # the report itself needs no JavaScript
    probe = tmp_path / "probe.html"
    probe.write_text(html.replace("</body>", MEASURE + "</body>"))
    dom = headless([f"--window-size={width},1000", "--dump-dom", probe.as_uri()])
    assert dom.returncode == 0, dom.stderr[-2000:]
    start = dom.stdout.index('<pre id="measured">') + len('<pre id="measured">')
    measured = json.loads(dom.stdout[start: dom.stdout.index("</pre>", start)].replace("&quot;", '"')
                          .replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&"))
    charts = {c["id"]: c for c in measured["charts"]}
    assert set(charts) == {"chart-findings", "chart-size-scans", "chart-hit-ratio", "chart-bloat", "chart-seq-scans"}
    for c in charts.values():
        assert c["w"] >= 250 and c["h"] >= 60, c
        assert c["marks"] >= 1, c
    assert charts["chart-size-scans"]["marks"] >= 12   # the plot area and one point per index
    assert measured["svgText"] == [], measured["svgText"]
    assert measured["overflow"] == [], measured["overflow"]
    assert measured["pageWidth"] <= measured["viewWidth"], "the page scrolls sideways"
    shot = tmp_path / "health.png"
    r = headless([f"--window-size={width},2400", f"--screenshot={shot}", page.as_uri()])
    assert r.returncode == 0 and shot.stat().st_size > 20000
    if os.environ.get("RECONCILER_KEEP_SCREENSHOT"):
        shutil.copy(shot, Path(os.environ["RECONCILER_KEEP_SCREENSHOT"]) / f"health-{scene['major']}-{width}.png")


# ---- never queue behind DDL -----------------------------------------------------------------


def test_locked_tables_are_skipped_not_waited_for(dsn, run_sql, tmp_path):
    run_sql(dsn, "CREATE TABLE a (id int PRIMARY KEY); CREATE TABLE b (id int PRIMARY KEY); "
                 "CREATE TABLE c (id int PRIMARY KEY)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text('version: 1\nmanage: {tables: ["public.*"]}\n')
    held = psycopg.connect(dsn, autocommit=True)          # a migration holding ACCESS EXCLUSIVE on a
    reader = psycopg.connect(dsn, autocommit=True)        # a long reader of b ...
    queued = psycopg.connect(dsn, autocommit=True)        # ... and an ALTER TABLE queued behind it
    t = None
    try:
        held.execute("BEGIN")
        held.execute("LOCK TABLE a IN ACCESS EXCLUSIVE MODE")
        reader.execute("BEGIN")
        reader.execute("SELECT * FROM b")
        t = threading.Thread(target=lambda: queued.execute("ALTER TABLE b ADD COLUMN x int"), daemon=True)
        t.start()
        wait_until(lambda: run_sql(dsn, "SELECT 1 FROM pg_locks WHERE NOT granted AND mode = 'AccessExclusiveLock'"),
                   "the ALTER TABLE to queue")
        started = time.monotonic()
        r = cli("health", "-f", str(spec), "-d", dsn, "--format", "json", "--lock-timeout", "1s")
        took = time.monotonic() - started
        assert r.returncode in (0, 2), r.stderr
        report = json.loads(r.stdout)
        assert [t["table"] for t in report["tables"]] == ["c"]
        assert any("skipped 2 relation(s)" in n and "public.a" in n and "public.b" in n for n in report["notes"])
        assert took < 30
    finally:
        held.execute("ROLLBACK")
        reader.execute("ROLLBACK")
        if t is not None:
            t.join(timeout=30)
        for c in (held, reader, queued):
            c.close()


def test_health_reads_only(dsn, run_sql, tmp_path):
    """A read-only database (hot standby, read-only role) is fine: nothing is written."""
    run_sql(dsn, "CREATE TABLE a (id int PRIMARY KEY, v int); CREATE INDEX a_v ON a (v)")
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    run_sql(dsn, f'ALTER DATABASE "{db}" SET default_transaction_read_only = on')
    r = cli("health", "--all", "-d", dsn, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert {i["index"] for i in json.loads(r.stdout)["indexes"]} == {"a_pkey", "a_v"}


def test_bad_input_is_one_line(tmp_path, dsn):
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nhealth:\n  max_bloat_ratio: lots\n")
    r = cli("health", "-f", str(spec), "-d", dsn)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0] == f"error: {spec}:3: health.max_bloat_ratio: Input should be a valid number, " \
                                       "unable to parse string as a number"
    r = cli("health", "--all", "-d", "host=/nonexistent dbname=x")
    assert r.returncode == 1 and r.stderr.startswith("error: cannot connect to x@/nonexistent")
    r = cli("health", "--all", "-d", dsn, "--lock-timeout", "soon")
    assert r.returncode == 1 and "--lock-timeout: cannot read duration 'soon'" in r.stderr


# ---- scans on a real streaming replica --------------------------------------------------------

REPLICA_QUIET = 15.0   # seconds between the statistics reset and the standby's scans


def test_scans_on_a_streaming_replica_count(pg_server, dsn, run_sql, tmp_path):
    """An index the primary never uses but a hot standby does: unused without --replica, used
    with it. The standby is real: pg_basebackup -R from the test server, started as a hot
    standby on its own socket, streaming."""
    run_sql(dsn, "CREATE TABLE r (id int PRIMARY KEY, v text NOT NULL); "
                 "INSERT INTO r SELECT g, md5(g::text) FROM generate_series(1, 30000) g; "
                 "CREATE INDEX r_v ON r (v); ANALYZE r")
    try:
        standby = pgserver.start_standby(pg_server)
    except pgserver.ServerUnavailable as e:
        if os.environ.get("CI") == "true":
            pytest.fail(f"cannot start a standby (CI=true): {e}", pytrace=False)
        pytest.skip(f"cannot start a standby: {e}")
    try:
        db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        standby_dsn = standby.dsn(db)
        assert one(run_sql, standby_dsn, "SELECT pg_is_in_recovery()") is True
        # streaming: a row written on the primary shows up on the standby
        run_sql(dsn, "CREATE TABLE marker (x int); INSERT INTO marker VALUES (1)")
        wait_until(lambda: run_sql(standby_dsn, "SELECT 1 FROM pg_class WHERE relname = 'marker'"), "replication")
        run_sql(dsn, "SELECT pg_stat_reset()")
        age_sql = "SELECT extract(epoch FROM now() - stats_reset) FROM pg_stat_database WHERE datname = current_database()"
        wait_until(lambda: one(run_sql, dsn, age_sql) >= REPLICA_QUIET, "quiet time", every=0.5)
        run_sql(standby_dsn, "SET max_parallel_workers_per_gather = 0; SET enable_seqscan = off; "
                             "SET enable_bitmapscan = off; "
                             + " ".join(f"SELECT * FROM r WHERE v = md5('{n}');" for n in range(1, 21)))
        wait_until(lambda: (one(run_sql, standby_dsn, "SELECT idx_scan FROM pg_stat_user_indexes "
                                                      "WHERE indexrelname = 'r_v'") or 0) >= 20,
                   "the standby's statistics")
        # unused_min_stats_age just under the statistics' age: no scans since the reset is
        # "unused"; on PostgreSQL 16+ the standby's last scan (REPLICA_QUIET seconds younger)
        # keeps r_v used as long as `both` reads within REPLICA_QUIET - 2 seconds of this line,
        # so `both` runs first and the window is wide for a busy machine
        spec = tmp_path / "indexes.yaml"
        spec.write_text('version: 1\nmanage: {tables: ["public.*"]}\n'
                        f"health: {{unused_min_stats_age: {int(one(run_sql, dsn, age_sql)) - 2}s, "
                        "min_unused_size: 64kB}\n")
        both = cli("health", "-f", str(spec), "-d", dsn, "--replica", standby_dsn, "--format", "json")
        report = json.loads(both.stdout)
        assert ("unused", "r_v") not in found(report), report["findings"]
        alone = cli("health", "-f", str(spec), "-d", dsn, "--format", "json")
        assert ("unused", "r_v") in found(json.loads(alone.stdout)), alone.stdout
        r_v = next(i for i in report["indexes"] if i["index"] == "r_v")
        assert r_v["scans_primary"] == 0 and r_v["scans"] >= 20
        assert [n["role"] for n in report["nodes"]] == ["primary", "replica"]
        prom = cli("health", "-f", str(spec), "-d", dsn, "--replica", standby_dsn, "--format", "prometheus")
        fams = {f.name: f for f in text_string_to_metric_families(prom.stdout)}
        per_node = {s.labels["node"]: s.value for s in fams["reconciler_index_scans"].samples
                    if s.labels["index"] == "r_v"}
        assert per_node["primary"] == 0 and per_node[report["nodes"][1]["name"]] >= 20
        # a replica that cannot be reached is an error, not a silent "no scans there"
        bad = cli("health", "-f", str(spec), "-d", dsn, "--replica", "host=/nonexistent dbname=x")
        assert bad.returncode == 1 and bad.stderr.startswith("error: cannot connect to x@/nonexistent")
    finally:
        standby.stop()


# ---- drift --format prometheus, end to end ------------------------------------------------------


def test_drift_prometheus_from_a_real_database(dsn, run_sql, tmp_path):
    """The drift cron job's output, read back by prometheus-client: one index the spec wants and
    the database lacks, one the database has and the spec does not list; then in sync."""
    run_sql(dsn, "CREATE TABLE t (id int PRIMARY KEY, a int, b int); CREATE INDEX t_b_extra ON t (b)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nmanage: {tables: [t]}\nindexes:\n  - name: t_a_idx\n    table: t\n"
                    "    columns: [a]\n")
    r = cli("drift", "-f", str(spec), "-d", dsn, "--format", "prometheus")
    assert r.returncode == 2, r.stderr
    fams = {f.name: f for f in text_string_to_metric_families(r.stdout)}
    assert [s.value for s in fams["reconciler_drift_in_sync"].samples] == [0]
    diffs = {s.labels["kind"]: s.value for s in fams["reconciler_drift_differences"].samples}
    assert diffs["missing"] == 1 and diffs["extra"] == 1, diffs
    db = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    assert {s.labels["database"] for s in fams["reconciler_drift_differences"].samples} == {db}
    run_sql(dsn, "CREATE INDEX t_a_idx ON t (a); DROP INDEX t_b_extra")
    r = cli("drift", "-f", str(spec), "-d", dsn, "--format", "prometheus")
    assert r.returncode == 0, r.stdout + r.stderr
    fams = {f.name: f for f in text_string_to_metric_families(r.stdout)}
    assert [s.value for s in fams["reconciler_drift_in_sync"].samples] == [1]
    assert all(s.value == 0 for s in fams["reconciler_drift_differences"].samples)
