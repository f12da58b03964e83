"""`reconciler init`: a starter spec that plans as "no change" against the database it came
from, with the field comments; the editor schema; a workflow whose action inputs exist."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def reconciler(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, stdin=subprocess.DEVNULL)


def check_workflow(text: str) -> dict:
    """The workflow uses the action with inputs action.yml declares."""
    wf = yaml.safe_load(text)
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    step = next(s for s in wf["jobs"]["plan"]["steps"] if "with" in s)
    assert set(step["with"]) <= set(action["inputs"]), set(step["with"]) - set(action["inputs"])
    assert wf["permissions"]["pull-requests"] == "write"
    return step


def test_init_from_a_live_database_plans_no_change(tmp_path, dsn, run_sql):
    run_sql(dsn, 'CREATE TABLE "Orders" (id int PRIMARY KEY, "customerId" int, total numeric, note text); '
                 'CREATE INDEX orders_customer_idx ON "Orders" ("customerId", total DESC) WHERE total > 0; '
                 'CREATE INDEX orders_note_idx ON "Orders" USING hash (note)')
    r = reconciler("init", "-d", dsn, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    spec = (tmp_path / "indexes.yaml").read_text()
    assert spec.startswith("# yaml-language-server: $schema=indexes.schema.json\n")
    for field in ("name:", "table:", "columns:", "unique:", "include:", "where:", "using:", "with:", "prune:"):
        assert f"#   {field}" in spec or f"# {field}" in spec or f"#  {field}" in spec, field
    assert "orders_customer_idx" in spec and "orders_note_idx" in spec
    assert json.loads((tmp_path / "indexes.schema.json").read_text())["title"] == "reconciler indexes.yaml"
    step = check_workflow((tmp_path / ".github" / "workflows" / "indexes.yml").read_text())
    assert step["with"]["database-url"] == "${{ secrets.DATABASE_URL }}"
    plan = reconciler("plan", "-d", dsn, "--detailed-exitcode", cwd=tmp_path)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert reconciler("fmt", "--check", cwd=tmp_path).returncode == 0
    # nothing is overwritten without --force
    again = reconciler("init", "-d", dsn, cwd=tmp_path)
    assert again.returncode == 1 and "exists; nothing written" in again.stderr and "Traceback" not in again.stderr
    assert reconciler("init", "-d", dsn, "--force", cwd=tmp_path).returncode == 0


def test_init_empty_then_the_workflow_for_a_schema_file(tmp_path):
    r = reconciler("init", "--no-workflow", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert not (tmp_path / ".github").exists()
    v = reconciler("validate", cwd=tmp_path)
    assert v.returncode == 0 and "0 index(es)" in v.stdout

    from reconciler.app.init import workflow

    step = check_workflow(workflow("indexes.yaml", "db/schema.sql", "owner/reconciler@v1"))
    assert step["uses"] == "owner/reconciler@v1" and step["with"]["schema-sql"] == "db/schema.sql"
