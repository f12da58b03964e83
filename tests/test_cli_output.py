"""-q/-v/--no-color on every command, and shell completion, as a user meets them (subprocesses;
a pseudo-terminal where colors are at stake, since colors are only for terminals)."""
from __future__ import annotations

import os
import pty
import shutil
import subprocess
import sys
import textwrap

import pytest

from reconciler.cli import cli

COMMANDS = sorted(cli.all_commands())


def reconciler(*args, cwd=None, env_extra=None, **kw) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "RECONCILER_DEBUG",
                                                                     "NO_COLOR"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, stdin=subprocess.DEVNULL, **kw)


SPEC = textwrap.dedent("""
    version: 1
    indexes:
      - name: t_a_idx
        table: t
        columns: [a]
""").lstrip()


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_quiet_verbose_no_color(command):
    """Generic on purpose: a command added later gets the options from the group or fails here."""
    r = reconciler(command, "--help")
    assert r.returncode == 0, r.stderr
    for flag in ("-q, --quiet", "-v, --verbose", "--no-color"):
        assert flag in r.stdout, (command, flag)


def test_options_before_and_after_the_command(tmp_path):
    (tmp_path / "indexes.yaml").write_text(SPEC)
    before = reconciler("-q", "validate", cwd=tmp_path)
    after = reconciler("validate", "--quiet", cwd=tmp_path)
    plain = reconciler("validate", cwd=tmp_path)
    assert plain.returncode == before.returncode == after.returncode == 0
    assert "1 index(es) in 1 file(s): valid." in plain.stdout
    assert before.stdout == after.stdout == "" and before.stderr == after.stderr == ""


def test_verbose_prints_details_on_stderr_only(tmp_path):
    (tmp_path / "indexes.yaml").write_text(SPEC)
    r = reconciler("validate", "-v", cwd=tmp_path)
    assert r.returncode == 0
    assert "valid." in r.stdout
    assert "spec: 1 index(es) from indexes.yaml" in r.stderr and "done in" in r.stderr


def test_quiet_and_verbose_together_is_a_usage_error(tmp_path):
    r = reconciler("-q", "validate", "-v", cwd=tmp_path)
    assert r.returncode == 1 and "cannot be combined" in r.stderr and "Traceback" not in r.stderr


def _on_a_terminal(args, cwd) -> str:
    """Run with stdout on a pseudo-terminal (where colors are allowed) and return what it showed."""
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "NO_COLOR"))}
    p = subprocess.Popen([sys.executable, "-m", "reconciler.cli", *map(str, args)], stdout=slave,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, cwd=cwd, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    p.wait(timeout=120)
    os.close(master)
    assert p.returncode == 0, p.stderr.read()
    return b"".join(chunks).decode()


def test_no_color_on_a_terminal(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    colored = _on_a_terminal(["plan", "-d", dsn], tmp_path)
    plain = _on_a_terminal(["plan", "-d", dsn, "--no-color"], tmp_path)
    assert "\x1b[" in colored and "+ create public.t_a_idx" in plain
    assert "\x1b[" not in plain


def test_quiet_apply_prints_the_summary_not_the_statements(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    loud = reconciler("apply", "-d", dsn, "--auto-approve", "--dry-run", cwd=tmp_path)
    assert loud.returncode == 0 and "CREATE INDEX CONCURRENTLY" in loud.stdout
    r = reconciler("apply", "-q", "-d", dsn, "--auto-approve", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "sql:" not in r.stdout and "CREATE INDEX" not in r.stdout
    assert "Summary: 1 of 1 change(s) done." in r.stdout
    assert run_sql(dsn, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_a_idx'") == [(1,)]


def test_quiet_plan_out_keeps_the_plan_and_drops_the_note(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    r = reconciler("plan", "-d", dsn, "--out", "p.json", cwd=tmp_path)
    assert "Saved the plan to p.json" in r.stderr
    r = reconciler("plan", "-q", "-d", dsn, "--out", "p.json", cwd=tmp_path)
    assert r.returncode == 0 and "Plan: 1 to create" in r.stdout and r.stderr == ""


# -- completion ---------------------------------------------------------------------------------

@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_a_script(shell):
    r = reconciler("completion", shell)
    assert r.returncode == 0 and "_RECONCILER_COMPLETE" in r.stdout


def test_completion_in_a_real_bash():
    bash = shutil.which("bash")
    assert bash, "bash is part of every Debian system"
    script = reconciler("completion", "bash").stdout
    probe = textwrap.dedent(f"""
        export PATH={os.path.dirname(sys.executable)}:$PATH
        {script}
        complete_words() {{ COMPREPLY=(); COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _reconciler_completion reconciler;
                            echo "${{COMPREPLY[*]}}"; }}
        complete_words reconciler dr
        complete_words reconciler plan --format ""
        complete_words reconciler completion ""
    """)
    r = subprocess.run([bash, "--norc", "-c", probe], capture_output=True, text=True, timeout=60)
    lines = r.stdout.splitlines()
    assert lines == ["drift", "text json markdown sql", "bash zsh fish"], (r.stdout, r.stderr)


@pytest.mark.parametrize("shell,words,cword", [("zsh", "reconciler dr", "1"), ("fish", "reconciler dr", "dr")])
def test_completion_protocol_for_zsh_and_fish(shell, words, cword):
    """What the zsh and fish scripts ask `reconciler` (zsh and fish are not installed here)."""
    r = reconciler(env_extra={"_RECONCILER_COMPLETE": f"{shell}_complete", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert r.returncode == 0 and "drift" in r.stdout
