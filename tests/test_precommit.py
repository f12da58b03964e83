"""`.pre-commit-hooks.yaml`, run by the real pre-commit (`pre-commit try-repo`) in a temporary
git repository, as a user's `git commit` would: pre-commit installs this project into its own
virtualenv (from PyPI for the dependencies) and runs the hooks offline, no database."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _pre_commit() -> str:
    exe = Path(sys.executable).with_name("pre-commit")
    if exe.exists():
        return str(exe)
    if os.environ.get("CI") == "true":
        pytest.fail("pre-commit is not installed (it is in the test extras)", pytrace=False)
    pytest.skip("pre-commit is not installed (pip install -e '.[test]')")


def git(*args, cwd):
    subprocess.run(["git", "-c", "user.email=test@example.invalid", "-c", "user.name=test", *args], cwd=cwd,
                   check=True, capture_output=True)


@pytest.fixture(scope="module")
def hooks_repo(tmp_path_factory) -> tuple[Path, Path]:
    """A snapshot of this working tree as a one-commit repository, so every try-repo call of
    this module uses one revision and pre-commit installs its environment once."""
    snap = tmp_path_factory.mktemp("hooks-repo")
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.splitlines()
    for f in files:
        src = ROOT / f
        if src.is_file():
            (snap / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, snap / f)
    git("init", "-q", cwd=snap)
    git("add", "-A", cwd=snap)
    git("commit", "-q", "-m", "snapshot", cwd=snap)
    return snap, tmp_path_factory.mktemp("pre-commit-home")


def try_repo(hooks_repo, project: Path, *hook: str) -> subprocess.CompletedProcess:
    snap, home = hooks_repo
    env = {**os.environ, "PRE_COMMIT_HOME": str(home)}
    env.pop("PRE_COMMIT_COLOR", None)
    return subprocess.run([_pre_commit(), "try-repo", str(snap), *hook, "--all-files", "--color", "never"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=900)


def project(tmp_path: Path, spec: str) -> Path:
    git("init", "-q", cwd=tmp_path)
    (tmp_path / "indexes.yaml").write_text(textwrap.dedent(spec).lstrip())
    git("add", "-A", cwd=tmp_path)
    return tmp_path


GOOD = """
    version: 1
    indexes:
      - name: orders_customer_idx
        table: orders
        columns: [customer_id, created_at DESC]
"""


def test_good_spec_passes_both_hooks(hooks_repo, tmp_path):
    r = try_repo(hooks_repo, project(tmp_path, GOOD))
    assert r.returncode == 0, r.stdout + r.stderr
    assert "reconciler validate" in r.stdout and "reconciler fmt" in r.stdout and "Failed" not in r.stdout


def test_validate_hook_fails_with_file_and_line(hooks_repo, tmp_path):
    r = try_repo(hooks_repo, project(tmp_path, GOOD.replace("columns:", "colums:")), "reconciler-validate")
    assert r.returncode == 1
    assert "reconciler validate" in r.stdout and "Failed" in r.stdout
    assert "indexes.yaml:5: error: index 'orders_customer_idx': colums: unknown key 'colums'" in r.stdout


def test_fmt_hook_rewrites_and_fails_once(hooks_repo, tmp_path):
    messy = """
        indexes:
          - table: orders   # keep me
            name: orders_customer_idx
            columns: [{column: customer_id}]
        version: 1
    """
    p = project(tmp_path, messy)
    r = try_repo(hooks_repo, p, "reconciler-fmt")
    assert r.returncode == 1 and "files were modified by this hook" in r.stdout
    text = (p / "indexes.yaml").read_text()
    assert text.startswith("version: 1\nindexes:\n  - name: orders_customer_idx\n    table: orders")
    assert "# keep me" in text and "columns: [customer_id]" in text
    git("add", "-A", cwd=p)
    assert try_repo(hooks_repo, p, "reconciler-fmt").returncode == 0
