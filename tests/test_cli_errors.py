"""The `reconciler` command on bad input: exit 1, one line naming file:line (plus an optional
`hint:` line), never a traceback, never a password. Run as a user runs it: a subprocess."""
from __future__ import annotations

import json

import pytest

from reconciler.cli import cli

from support.cli import assert_one_error
from support.cli import run_cli as reconciler
from support.specs import MINIMAL, write_spec

SECRET = "s3cretpw"
CLOSED_PORT_DSN = f"postgresql://u:{SECRET}@127.0.0.1:1/db"


def write(path, text: str):
    """The spec without its leading newline: line numbers in the messages count from its first key."""
    return write_spec(path.parent, text.lstrip("\n"), path.name)

BAD_SPECS = [
    ("yaml-syntax", """
        version: 1
        indexes:
          - name: a
           table: t
        """, 4, "YAML syntax error"),
    ("unknown-key", """
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            uniqe: true
        """, 6, "unknown key 'uniqe' (did you mean 'unique'?)"),
    ("wrong-type", """
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            unique: maybe
        """, 6, "unique: Input should be a valid boolean"),
    ("duplicate-names", """
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
          - name: a
            table: t
            columns: [y]
        """, 6, "name already used at"),
    ("predicate-two-statements", """
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            where: "x = 1; DROP TABLE t"
        """, 6, "contains ';'"),
    ("volatile-current-date", """
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            where: "created >= CURRENT_DATE - INTERVAL '30 days'"
        """, 6, "uses CURRENT_DATE, which is not IMMUTABLE"),
    ("name-64-bytes", f"""
        version: 1
        indexes:
          - name: {"n" * 64}
            table: t
            columns: [x]
        """, 3, "is 64 bytes"),
]


@pytest.mark.parametrize("text, line, needle", [pytest.param(*c[1:], id=c[0]) for c in BAD_SPECS])
def test_validate_bad_spec(tmp_path, text, line, needle):
    f = write(tmp_path / "bad.yaml", text)
    r = reconciler("validate", "-f", f)
    first = assert_one_error(r, f"{f}:{line}:", needle)
    assert r.stdout == "", r.stdout
    assert first.count(f"{f}:") == (2 if "already used at" in needle else 1), first



@pytest.mark.parametrize("text, line, needle", [
    pytest.param(*c[1:], id=c[0]) for c in BAD_SPECS])
def test_plan_refuses_a_bad_spec_before_connecting(tmp_path, text, line, needle):
    """Spec errors come first: the closed port is never reached (the error is about the spec)."""
    f = write(tmp_path / "bad.yaml", text)
    assert_one_error(reconciler("plan", "-f", f, "--database", CLOSED_PORT_DSN), f"{f}:{line}:", needle)


def test_validate_good_spec_offline(tmp_path):
    f = write(tmp_path / "indexes.yaml", MINIMAL)
    r = reconciler("validate", "-f", f)
    assert (r.returncode, r.stderr) == (0, "")
    assert r.stdout == "1 index(es) in 1 file(s): valid.\n"


def test_validate_json_reports_problems(tmp_path):
    f = write(tmp_path / "bad.yaml", BAD_SPECS[5][1])
    r = reconciler("validate", "-f", f, "--format", "json")
    assert r.returncode == 1
    doc = json.loads(r.stdout)
    assert doc["valid"] is False and "CURRENT_DATE" in doc["problems"][0]["message"]


def test_default_spec_file_missing(tmp_path):
    assert_one_error(reconciler("validate", cwd=tmp_path), "indexes.yaml: error: no such file")
    assert_one_error(reconciler("plan", cwd=tmp_path), "error: indexes.yaml: no such file")


@pytest.mark.parametrize("args, needle", [
    pytest.param(["bogus"], "No such command 'bogus'", id="unknown-command"),
    pytest.param(["validate", "--bogus"], "No such option '--bogus'", id="unknown-flag"),
    pytest.param(["plan", "--format", "yaml"], "'yaml' is not one of", id="bad-choice"),
    pytest.param(["plan", "--lock-timeout", "soon", "--database", CLOSED_PORT_DSN], "cannot read duration 'soon'",
                 id="bad-duration"),
])
def test_usage_errors_exit_1(tmp_path, args, needle):
    write(tmp_path / "indexes.yaml", MINIMAL)
    first = assert_one_error(reconciler(*args, cwd=tmp_path))
    assert needle in first, first


@pytest.mark.parametrize("args", [
    pytest.param(["plan", "--database", CLOSED_PORT_DSN], id="plan-url"),
    pytest.param(["plan", "--database", f"host=127.0.0.1 port=1 user=u password={SECRET} dbname=db"], id="plan-keywords"),
    pytest.param(["plan", "--database", f"postgresql://u:{SECRET}@127.0.0.1:1/db?sslmode=bogus"], id="plan-bad-option"),
    pytest.param(["plan", "--database", f"postgresql://u:{SECRET}@[bad"], id="plan-unparsable"),
    pytest.param(["validate", "--database", CLOSED_PORT_DSN], id="validate"),
    pytest.param(["drift", "--database", CLOSED_PORT_DSN], id="drift"),
    pytest.param(["import", "--database", CLOSED_PORT_DSN], id="import"),
])
def test_unreachable_database_one_line_no_password(tmp_path, args):
    write(tmp_path / "indexes.yaml", MINIMAL)
    r = reconciler(*args, cwd=tmp_path)
    assert_one_error(r)
    assert SECRET not in r.stdout + r.stderr


def test_password_from_database_url_is_not_printed(tmp_path):
    write(tmp_path / "indexes.yaml", MINIMAL)
    r = reconciler("plan", cwd=tmp_path, env={"DATABASE_URL": CLOSED_PORT_DSN})
    assert_one_error(r, "cannot connect")
    assert SECRET not in r.stdout + r.stderr


def test_schema_prints_json_schema():
    r = reconciler("schema")
    assert (r.returncode, r.stderr) == (0, "")
    doc = json.loads(r.stdout)
    assert "indexes" in doc["properties"] and "IndexSpec" in doc["$defs"]


COMMANDS = sorted(cli.all_commands())


def _readme_commands() -> dict[str, set[str]]:
    """The README's table of commands: command → the --options its row shows."""
    from pathlib import Path
    import re

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = text.split("## Commands", 1)[1].split("\n\n", 2)[1]
    rows: dict[str, set[str]] = {}
    for line in table.splitlines()[2:]:
        usage = line.split(" | ", 1)[0]
        for code in re.findall(r"`([^`]+)`", usage):
            words = code.split()
            rows.setdefault(words[0], set()).update(re.findall(r"--[a-z][a-z-]*", code))
    return rows


def test_the_command_list_is_what_we_document():
    """Every command is a row of the README's table, every row is a command, and every option a
    row shows is one the command takes."""
    rows = _readme_commands()
    assert set(rows) == set(COMMANDS), (sorted(set(COMMANDS) - set(rows)), sorted(set(rows) - set(COMMANDS)))
    for name, options in rows.items():
        takes = {o for p in cli.all_commands()[name].params for o in getattr(p, "opts", ()) if o.startswith("--")}
        assert options <= takes, (name, sorted(options - takes))


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_help_documents_exit_codes(command):
    r = reconciler(command, "--help")
    assert r.returncode == 0, r.stderr
    text = " ".join(r.stdout.split())
    assert "Exit codes: 0 success / in sync, 1 any error, 2 changes present" in text, r.stdout


def test_top_level_help_documents_exit_codes():
    r = reconciler("--help")
    assert r.returncode == 0 and "Exit codes" in r.stdout
    for c in COMMANDS:
        assert c in r.stdout


# --- against a database: errors the server finds, and nothing changed ----------------------------------

SCHEMA_SQL = """
CREATE TABLE "Orders" (id int PRIMARY KEY, customer_id int, status text, "deletedAt" timestamptz);
CREATE INDEX "Orders_status_idx" ON "Orders" (status);
"""

COUNT = ("SELECT (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
         "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND c.relkind IN ('i', 'I')), "
         "(SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
         "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') AND n.nspname NOT LIKE 'pg_temp%')")


ONLINE_BAD = [
    ("missing-table-case", """
        version: 1
        indexes:
          - name: orders_customer_idx
            table: orders
            columns: [customer_id]
        """, ["table public.orders does not exist", 'did you mean "Orders"?'], 4),
    ("wrong-case-column-in-predicate", """
        version: 1
        indexes:
          - name: orders_live_idx
            table: Orders
            columns: [customer_id]
            where: deletedAt IS NULL
        """, ["where: column 'deletedat' does not exist", 'did you mean "deletedAt"?'], 6),
    ("unknown-opclass", """
        version: 1
        indexes:
          - name: orders_customer_idx
            table: Orders
            columns:
              - column: customer_id
                opclass: no_such_ops
        """, ["PostgreSQL refuses it", "no_such_ops"], 3),
    ("missing-column", """
        version: 1
        indexes:
          - name: orders_customer_idx
            table: Orders
            columns: [customerId]
        """, ["column 'customerId' does not exist", 'did you mean "customer_id"?'], 5),
]


@pytest.mark.parametrize("text, needles, line", [pytest.param(*c[1:], id=c[0]) for c in ONLINE_BAD])
def test_validate_against_database_and_nothing_changes(tmp_path, dsn, run_sql, text, needles, line):
    """validate reports at the offending key (the table, the column list, the predicate), or at
    the entry when the server refuses the definition as a whole."""
    run_sql(dsn, SCHEMA_SQL)
    before = run_sql(dsn, COUNT)
    f = write(tmp_path / "indexes.yaml", text)
    r = reconciler("validate", "-f", f, "--database", dsn)
    assert_one_error(r, f"{f}:{line}: error: ", *needles)
    r = reconciler("plan", "-f", f, "--database", dsn)
    assert_one_error(r, f"{f}:3: ")
    assert run_sql(dsn, COUNT) == before


def test_plan_missing_table_hints_the_case(tmp_path, dsn, run_sql):
    run_sql(dsn, SCHEMA_SQL)
    f = write(tmp_path / "indexes.yaml", ONLINE_BAD[0][1])
    r = reconciler("plan", "-f", f, "--database", dsn)
    assert_one_error(r, f"{f}:3: index 'orders_customer_idx': table: public.orders does not exist")
    assert r.stderr.splitlines()[1] == 'hint: did you mean "Orders"?'


def test_good_spec_validates_against_database_and_plan_changes_nothing(tmp_path, dsn, run_sql):
    run_sql(dsn, SCHEMA_SQL)
    before = run_sql(dsn, COUNT)
    f = write(tmp_path / "indexes.yaml", """
        version: 1
        indexes:
          - name: Orders_customer_idx
            table: Orders
            columns: [customer_id]
            where: '"deletedAt" IS NULL'
        """)
    r = reconciler("validate", "-f", f, "--database", dsn)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
    r = reconciler("plan", "-f", f, "--database", dsn, "--detailed-exitcode")
    assert r.returncode == 2, r.stderr
    assert "+ create public.Orders_customer_idx on Orders" in r.stdout
    assert run_sql(dsn, COUNT) == before


def test_server_checks_of_one_table_each_report_their_own_reason(tmp_path, dsn, run_sql):
    """The server refuses the first index of a table: the next ones on the same table are still
    checked (their own refusal, or none), not refused for a probe table rolled back with it."""
    run_sql(dsn, SCHEMA_SQL)
    before = run_sql(dsn, COUNT)
    f = write(tmp_path / "indexes.yaml", """
        version: 1
        indexes:
          - name: orders_customer_idx
            table: Orders
            columns:
              - column: customer_id
                opclass: no_such_ops
          - name: orders_status_idx
            table: Orders
            columns:
              - column: status
                opclass: int4_ops
          - name: orders_deleted_idx
            table: Orders
            columns: [deletedAt]
        """)
    r = reconciler("validate", "-f", f, "--database", dsn)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 2, r.stderr
    assert lines[0].startswith(f"{f}:3: error: index 'orders_customer_idx': PostgreSQL refuses it: ") and \
        '"no_such_ops" does not exist' in lines[0], r.stderr
    assert lines[1].startswith(f"{f}:8: error: index 'orders_status_idx': PostgreSQL refuses it: ") and \
        'operator class "int4_ops" does not accept data type text' in lines[1], r.stderr
    assert "pg_temp" not in r.stderr
    assert run_sql(dsn, COUNT) == before


def test_validate_honours_database_url(tmp_path, dsn, run_sql):
    """Like every other command, validate checks against $DATABASE_URL when no --database is
    given: a spec plan would refuse is not "valid"."""
    run_sql(dsn, SCHEMA_SQL)
    f = write(tmp_path / "indexes.yaml", ONLINE_BAD[0][1])
    assert reconciler("validate", "-f", f).returncode == 0          # offline: nothing to see
    r = reconciler("validate", "-f", f, env={"DATABASE_URL": dsn})
    assert_one_error(r, f"{f}:4: error: ", "public.orders does not exist")


def test_no_connection_names_what_it_tried(tmp_path):
    """No --database, no $DATABASE_URL, no PG* variables (run_cli leaves the suite's out): the
    error says so and names the socket libpq's default tried, not "cannot connect to @localhost"."""
    write(tmp_path / "indexes.yaml", MINIMAL)
    first = assert_one_error(reconciler("plan", cwd=tmp_path),
                             "cannot connect to libpq's default server (no --database, $DATABASE_URL and PG* "
                             "variables unset): connection to server on socket ")
    assert "@localhost" not in first and ".s.PGSQL." in first


def test_validate_lists_every_problem_of_every_file(tmp_path):
    """Not the first problem only: every problem of every file, each at its offending key (a
    second typo in the same entry, a bad value, keys under manage: and defaults:, a predicate of
    another entry, a second file), in text and in JSON."""
    a = write(tmp_path / "a.yaml", """
        version: 1
        manage:
          prun: true
        defaults:
          schemaa: public
        indexes:
          - name: a_idx
            table: t
            columns: [a]
            uniqe: true
            methd: btree
          - name: b_idx
            table: t
            columns:
              - column: b
                order: sideways
        """)
    b = write(tmp_path / "b.yaml", """
        version: 1
        indexes:
          - name: c_idx
            table: t
            columns: [c]
            where: "c > 1; DROP TABLE t"
          - name: d_idx
            table: t
            colums: [d]
        """)
    r = reconciler("validate", "-f", a, "-f", b)
    assert r.returncode == 1 and r.stdout == "" and "Traceback" not in r.stderr
    assert r.stderr.splitlines() == [
        f"{a}:3: error: manage.prun: unknown key 'prun' (did you mean 'prune'?)",
        f"{a}:5: error: defaults.schemaa: unknown key 'schemaa' (did you mean 'schema'?)",
        f"{a}:10: error: index 'a_idx': uniqe: unknown key 'uniqe' (did you mean 'unique'?)",
        f"{a}:11: error: index 'a_idx': methd: unknown key 'methd' (allowed: name, table, columns, unique, "
        "include, where, using, nulls_not_distinct, tablespace, comment, tags, schema, with)",
        f"{a}:16: error: index 'b_idx': columns[0].order: Input should be 'asc' or 'desc'",
        f"{b}:9: error: index 'd_idx': colums: unknown key 'colums' (did you mean 'columns'?)",
        f"{b}:6: error: index 'c_idx': where: predicate 'c > 1; DROP TABLE t': contains ';': a fragment must be "
        "one expression, not statements",
    ], r.stderr
    r = reconciler("validate", "-f", a, "-f", b, "--format", "json")
    assert r.returncode == 1 and r.stderr == ""
    doc = json.loads(r.stdout)
    assert doc["valid"] is False
    assert [(p["where"], p["index"], p["severity"]) for p in doc["problems"]] == [
        (f"{a}:3", "", "error"), (f"{a}:5", "", "error"), (f"{a}:10", "a_idx", "error"), (f"{a}:11", "a_idx", "error"),
        (f"{a}:16", "b_idx", "error"), (f"{b}:9", "d_idx", "error"), (f"{b}:6", "c_idx", "error")]
    assert doc["problems"][0]["message"] == "manage.prun: unknown key 'prun' (did you mean 'prune'?)"


@pytest.mark.parametrize("section, key, allowed", [
    ("manage", "prunee", "did you mean 'prune'?"),
    ("manage", "xyz", "allowed: prune, ignore, tables"),
    ("defaults", "xyz", "allowed: schema"),
])
def test_unknown_keys_under_manage_and_defaults_name_their_own_keys(tmp_path, section, key, allowed):
    """Not the keys of a column mapping (column, expression, order, ...)."""
    f = write(tmp_path / "indexes.yaml", f"""
        version: 1
        {section}:
          {key}: 1
        indexes: []
        """)
    first = assert_one_error(reconciler("validate", "-f", f), f"{f}:3:", f"{section}.{key}: unknown key", allowed)
    assert "expression" not in first


def test_validate_accepts_columns_qualified_by_their_table(tmp_path, dsn, run_sql):
    """PostgreSQL accepts `table.column` in an index predicate or expression; the server's check
    (on a copy of the table) must read it the same, not refuse it for a missing FROM entry."""
    run_sql(dsn, SCHEMA_SQL)
    f = write(tmp_path / "indexes.yaml", """
        version: 1
        indexes:
          - name: orders_live_idx
            table: Orders
            columns:
              - expression: lower("Orders".status)
            where: '"Orders"."deletedAt" IS NULL'
        """)
    r = reconciler("validate", "-f", f, "--database", dsn)
    assert (r.returncode, r.stderr) == (0, ""), r.stderr
