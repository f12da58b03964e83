"""Run `reconciler` the way a user does: a subprocess, stdin not a terminal, no colors, and none
of the caller's PG* / DATABASE_URL variables unless a test passes them."""
from __future__ import annotations

import os
import subprocess
import sys

RECONCILER = [sys.executable, "-m", "reconciler.cli"]


def cli_env(extra: dict | None = None) -> dict:
    """The environment the command runs with: the test's own connection settings left out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "RECONCILER_DEBUG"))}
    env["NO_COLOR"] = "1"
    env.update(extra or {})
    return env


def run_cli(*args, cwd=None, env: dict | None = None, timeout: float = 300,
            check: int | None = None) -> subprocess.CompletedProcess:
    """`reconciler ARGS`; with `check`, assert the exit code (showing the output when it differs)."""
    r = subprocess.run([*RECONCILER, *map(str, args)], capture_output=True, text=True, cwd=cwd, env=cli_env(env),
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check is not None:
        assert r.returncode == check, (f"reconciler {' '.join(map(str, args))} exited {r.returncode}\n"
                                       f"stdout:\n{r.stdout[-4000:]}\nstderr:\n{r.stderr[-4000:]}")
    return r


def popen_cli(*args, **kw) -> subprocess.Popen:
    """`reconciler ARGS` running in the background (for tests that kill or interrupt it)."""
    kw.setdefault("stdin", subprocess.DEVNULL)
    kw.setdefault("text", True)
    kw["env"] = cli_env({"PYTHONUNBUFFERED": "1", **kw.get("env", {})})
    return subprocess.Popen([*RECONCILER, *map(str, args)], **kw)


def run_cli_when(needle: str, then, *args, timeout: float = 120) -> subprocess.CompletedProcess:
    """`reconciler ARGS` in the background; once a line of its stdout contains `needle`, call
    `then()` (release a lock it waits for, ...), then wait for it to end. `then` is called in
    any case, also when the command ends without printing the line. For tests that must act
    while the command waits, however slowly it started on a busy machine."""
    proc = popen_cli(*args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = []
    try:
        for line in proc.stdout:
            head.append(line)
            if needle in line:
                break
    finally:
        then()
    rest, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "".join(head) + rest, err)


def assert_one_error(r: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit 1; stderr is one error line and at most one `hint:` line; no traceback."""
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.splitlines()
    assert 1 <= len(lines) <= 2, r.stderr
    if len(lines) == 2:
        assert lines[1].startswith("hint: "), r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    for n in needles:
        assert n in lines[0], (n, r.stderr)
    return lines[0]
