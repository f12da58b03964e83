"""Every script in benchmarks/ still runs: each at a tiny size, once, against the test session's
server, so a benchmark cannot rot unnoticed when the code it measures changes (health_scale.py
once called an API the security work had removed). The figures printed are not checked: only that
the script ends with exit 0 and prints its result lines."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import WANTED  # the session's servers, in order

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"

# script -> (its tiny-size arguments, DSN kind, what its output must contain). DSN kind "db": a
# fresh database of the test server; "admin": the server's admin DSN (the script makes its own
# databases, named fleet_bench_*, and drops them).
TINY: dict[str, tuple[list[str], str, list[str]]] = {
    "analyze_guard.py": (["--tables", "2", "--rows", "200", "--runs", "1", "--analyze-runs", "1"], "db",
                         ["20 queries, verify --analyze", "checked / unchecked"]),
    "health_scale.py": (["--tables", "3", "--runs", "1"], "db", ["health found", "goal: health <= 1.5x raw"]),
    "plan_scale.py": (["--tables", "3", "--runs", "1", "--no-migra"], "db", ["built 3 tables", "no-op plan says"]),
    "fleet_scale.py": (["--schemas", "2", "--big", "0", "--dbs", "2", "--db-schemas", "2", "--parallel", "2",
                        "--runs", "1"], "admin", ["no-op plan"]),
    "verify_scale.py": (["--tables", "2", "--rows", "200", "--queries", "6", "--runs", "1"], "db",
                        ["6 queries over 2 tables", "ratio", "raw + stack"]),
    "zero_downtime.py": (["--rows", "2000", "--settle", "0.2", "--overhead-reps", "0"], "db",
                         ["goal  (b) longest stall", "total benchmark time"]),
}


def test_every_benchmark_script_is_run_here():
    assert sorted(p.name for p in BENCHMARKS.glob("*.py")) == sorted(TINY)


# One server is enough to catch a script that no longer runs: the first of the session's (18 by
# default, the version the benchmarks are measured on), not each of them.
@pytest.mark.parametrize("pg_server", [pytest.param(WANTED[0], id=f"pg{WANTED[0]}")], indirect=True)
@pytest.mark.parametrize("script", sorted(TINY))
def test_benchmark_runs_at_a_tiny_size(script, pg_server, dsn, tmp_path):
    args, kind, expected = TINY[script]
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    target = dsn if kind == "db" else pg_server.admin_dsn
    p = subprocess.run([sys.executable, str(BENCHMARKS / script), *args, "--dsn", target], capture_output=True,
                       text=True, timeout=600, cwd=tmp_path, env=env)
    assert p.returncode == 0, f"{script} exit {p.returncode}\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}"
    for text in expected:
        assert text in p.stdout, f"{script}: {text!r} not in its output:\n{p.stdout[-3000:]}"
