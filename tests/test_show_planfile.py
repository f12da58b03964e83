"""Terraform's saved-plan workflow: `plan --out FILE`, `show FILE` (any format, no database),
`apply FILE` (that reviewed plan, no prompt; refused when the database moved)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

SPEC = textwrap.dedent("""
    version: 1
    manage: {prune: true}
    indexes:
      - name: t_a_idx
        table: t
        columns: [a]
      - name: t_b_uniq
        table: t
        unique: true
        columns: [b DESC]
""").lstrip()


def reconciler(*args, cwd):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "NO_COLOR"))}
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=120, stdin=subprocess.DEVNULL)


def test_plan_out_show_then_apply_the_file(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int, b int); CREATE INDEX t_old ON t (a, b)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    r = reconciler("plan", "-d", dsn, "--out", "plan.json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr

    text = reconciler("show", "plan.json", cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    head = text.stdout.splitlines()
    assert head[0].startswith("Plan file plan.json, made just now (20")   # and its ISO time
    dbname = run_sql(dsn, "SELECT current_database()")[0][0]
    assert head[1].startswith("  target: " + dbname + "@") and "password" not in head[1]
    assert "  spec: indexes.yaml (digest sha256:" in head[2]
    assert head[3] == "  the spec is unchanged since this plan was made"
    assert "+ create public.t_a_idx on t" in text.stdout and "- drop public.t_old on t" in text.stdout
    assert "hazard UNIQUE_BUILD_MAY_FAIL" in text.stdout
    assert "Plan: 2 to create, 0 to replace, 0 to rename, 0 to rebuild, 1 to drop." in text.stdout

    doc = json.loads(reconciler("show", "plan.json", "--format", "json", cwd=tmp_path).stdout)
    assert doc["summary"]["create"] == 2 and doc["summary"]["drop"] == 1
    assert doc["plan_file"]["path"] == "plan.json" and doc["plan_file"]["spec_files"] == ["indexes.yaml"]
    md = reconciler("show", "plan.json", "--format", "markdown", cwd=tmp_path).stdout
    assert md.startswith("### reconciler plan") and "`t_b_uniq`" in md
    sql = reconciler("show", "plan.json", "--format", "sql", cwd=tmp_path).stdout
    assert "CREATE UNIQUE INDEX CONCURRENTLY t_b_uniq ON public.t (b DESC);" in sql
    assert reconciler("show", "plan.json", "--detailed-exitcode", cwd=tmp_path).returncode == 2

    # the spec edited after the plan was made: show says so (and apply would refuse it)
    (tmp_path / "indexes.yaml").write_text(SPEC + "  - name: t_c_idx\n    table: t\n    columns: [a, b]\n")
    head = reconciler("show", "plan.json", cwd=tmp_path).stdout.splitlines()
    assert head[3].startswith("  the spec changed since this plan was made")
    doc = json.loads(reconciler("show", "plan.json", "--format", "json", cwd=tmp_path).stdout)
    assert doc["plan_file"]["spec_status"].startswith("the spec changed since this plan was made")
    (tmp_path / "indexes.yaml").write_text(SPEC)

    # `apply FILE`: no prompt although stdin is not a terminal
    r = reconciler("apply", "plan.json", "-d", dsn, cwd=tmp_path)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(x for (x,) in run_sql(dsn, "SELECT indexname FROM pg_indexes WHERE tablename = 't'")) == [
        "t_a_idx", "t_b_uniq"]
    again = reconciler("plan", "-d", dsn, "--detailed-exitcode", cwd=tmp_path)
    assert again.returncode == 0, again.stdout


def test_apply_file_refused_when_the_database_moved(tmp_path, dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (a int, b int)")
    (tmp_path / "indexes.yaml").write_text(SPEC)
    assert reconciler("plan", "-d", dsn, "--out", "plan.json", cwd=tmp_path).returncode == 0
    run_sql(dsn, "CREATE INDEX t_a_idx ON t (a)")   # someone built one of them meanwhile
    r = reconciler("apply", "plan.json", "-d", dsn, cwd=tmp_path)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith("error: the plan is stale: 1 of its 2 change(s) are in the database already (create "
                               "t_a_idx), as if it had been partly applied; 1 remain; nothing was run\n"), r.stderr
    assert run_sql(dsn, "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == [(1,)]


def test_show_bad_files_one_line(tmp_path):
    (tmp_path / "x.json").write_text("{}")
    for name, needle in (("missing.json", "no such plan file"), ("x.json", "not a reconciler plan file")):
        r = reconciler("show", name, cwd=tmp_path)
        assert r.returncode == 1 and needle in r.stderr.splitlines()[0] and "Traceback" not in r.stderr


def test_planfile_given_twice_is_a_usage_error(tmp_path):
    r = reconciler("apply", "a.json", "--plan", "b.json", cwd=tmp_path)
    assert r.returncode == 1 and "give the plan file once" in r.stderr


def test_show_prints_the_files_values_on_one_line_each(tmp_path):
    """A plan file is not trusted: a newline in what it records must not start a new line of the
    SQL script `show --format sql` prints (psql would run it)."""
    from reconciler.core.plan import Plan
    from reconciler.reconcile.planfile import plan_to_file

    text = plan_to_file(Plan(changes=(), fingerprint="f"), ["x.yaml\n\\! touch pwned"], "sha256:1",
                        target="db\nDROP TABLE t;", created_at="2026-01-01T00:00:00+00:00")
    (tmp_path / "p.json").write_text(text)
    r = reconciler("show", "p.json", "--format", "sql", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    head = lines[:lines.index("-- reconciler plan: run with psql in autocommit, one statement at a time")]
    assert len(head) == 5 and all(line.startswith("-- ") for line in head), r.stdout
    assert not any(line.lstrip().startswith(("\\!", "DROP")) for line in lines), r.stdout
    assert "db\\nDROP TABLE t;" in r.stdout


def test_a_saved_plan_already_applied_in_whole_or_in_part_is_said_so():
    """Pure: the saved plan's claims against the plan computed now from the same spec."""
    from reconciler.core.kinds import Action, OpKind
    from reconciler.core.plan import Change, Operation, Plan, PlannedChange
    from reconciler.reconcile.planfile import SavedPlan, applied_already, plan_steps, stale_reason

    def change(name: str) -> PlannedChange:
        return PlannedChange(Change(Action.CREATE, "public", "t", name, ("missing",)),
                             (Operation(f"CREATE INDEX CONCURRENTLY {name} ON public.t (a)", OpKind.BUILD),))

    made = Plan((change("a_idx"), change("b_idx"), change("c\nidx")), fingerprint="before")
    saved = SavedPlan("before", "D", ("indexes.yaml",), tuple(plan_steps(made)))
    assert applied_already(saved, made, "D") is None and stale_reason(saved, made, "D") is None
    assert applied_already(saved, Plan((), fingerprint="after"), "D") == (
        "this plan appears to be applied already: the database now matches the state it leads to "
        "(3 change(s), none left to make)")
    part = Plan((change("b_idx"),), fingerprint="after")
    assert applied_already(saved, part, "D") == (
        "the plan is stale: 2 of its 3 change(s) are in the database already (create a_idx, create c\\nidx), "
        "as if it had been partly applied; 1 remain")
    # anything else stays "stale": another spec, a change the saved plan does not have, the same world
    assert applied_already(saved, Plan((), fingerprint="after"), "other spec") is None
    assert applied_already(saved, Plan((change("b_idx"), change("z_idx")), fingerprint="after"), "D") is None
    assert applied_already(saved, Plan((), fingerprint="before"), "D") is None
