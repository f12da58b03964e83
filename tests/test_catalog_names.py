"""Names read from the database cannot move what is read from a definition: indexes, tables and
schemas named with ` USING btree (`, ` WHERE `, ` INCLUDE (`, `)`, quotes and `ON ONLY`, on
PostgreSQL 18 and 15. The catalog reads each index's own keys (also when a hostile name is the
one deparsed for its whole shape), import round-trips, apply then plan is empty, drift is clean,
and health's duplicate and redundant findings name the right indexes. The prefix holding the
names is rebuilt from the row with the server's quoting, which core.ident must agree with."""
from __future__ import annotations

import json

import psycopg
import pytest
import yaml
from psycopg.rows import dict_row

from reconciler.core.ident import quote_ident
from reconciler.pg import catalog
from reconciler.pg.deftext import UnexpectedDefinition, definition_tail, server_quote_ident

from support.cli import run_cli

S = '"s USING btree (a DESC) WHERE ("'          # a schema
T = f'{S}."t INCLUDE (b) ON ONLY x"'            # a table in it
ZS = '"zz ) ""q"""'                             # a schema that sorts after S
Z = f'{ZS}."Z"'                                 # same columns as T: shares T's shapes
QI = '"INCLUDE (c) ""q"" )"'
P = '"p ON ONLY q USING btree ("'               # a partitioned table (its indexes print ON ONLY)
SCENE = f"""
CREATE SCHEMA {S}; CREATE SCHEMA {ZS};
CREATE TABLE {T} (a int, b int, c text);
CREATE TABLE {Z} (a int, b int, c text);
CREATE TABLE {P} (a int, b int) PARTITION BY RANGE (a);
CREATE TABLE "p1 )" PARTITION OF {P} FOR VALUES FROM (0) TO (1000);
INSERT INTO {T} SELECT g, g % 7, 'v' || g FROM generate_series(1, 200) g;
CREATE INDEX "x USING btree (y" ON {T} (a DESC);
CREATE INDEX "dup ) USING btree (b" ON {T} (a DESC);
CREATE INDEX "i USING btree (b) WHERE (a > 0" ON {T} (b) WHERE c IS NOT NULL;
CREATE INDEX {QI} ON {T} (a) INCLUDE (c);
CREATE INDEX " WHERE c USING btree (c" ON {T} (c);
CREATE INDEX "cover WHERE (" ON {T} (c, a);
CREATE INDEX z_a ON {Z} (a DESC);
CREATE INDEX z_b ON {Z} (b) WHERE c IS NOT NULL;
CREATE INDEX "ON ONLY x USING btree (b" ON {P} (b);
"""
# name -> (keys, include, where): what each index is, whatever its name says
WANT = {
    "x USING btree (y": (["a DESC"], (), None),
    "dup ) USING btree (b": (["a DESC"], (), None),
    "i USING btree (b) WHERE (a > 0": (["b"], (), "(c IS NOT NULL)"),
    'INCLUDE (c) "q" )': (["a"], ("c",), None),
    " WHERE c USING btree (c": (["c"], (), None),
    "cover WHERE (": (["c", "a"], (), None),
    "z_a": (["a DESC"], (), None),
    "z_b": (["b"], (), "(c IS NOT NULL)"),
    "ON ONLY x USING btree (b": (["b"], (), None),
}

_S, _T, _Z = "s USING btree (a DESC) WHERE (", "t INCLUDE (b) ON ONLY x", 'zz ) "q"'
SPEC = {"version": 1, "manage": {"tables": ["public.*", f"{_S}.*", f"{_Z}.*"]}, "indexes": [
    {"name": "ON ONLY x USING btree (b", "table": "p ON ONLY q USING btree (", "columns": ["b"]},
    {"name": " WHERE c USING btree (c", "table": _T, "schema": _S, "columns": ["c"]},
    {"name": 'INCLUDE (c) "q" )', "table": _T, "schema": _S, "columns": ["a"], "include": ["c"]},
    {"name": "cover WHERE (", "table": _T, "schema": _S, "columns": ["c", "a"]},
    {"name": "i USING btree (b) WHERE (a > 0", "table": _T, "schema": _S, "columns": ["b"],
     "where": "(c IS NOT NULL)"},
    {"name": "x USING btree (y", "table": _T, "schema": _S, "columns": ["a DESC"]},
    {"name": "z_a", "table": "Z", "schema": _Z, "columns": ["a DESC"]},
    {"name": "z_b", "table": "Z", "schema": _Z, "columns": ["b"], "where": "(c IS NOT NULL)"},
]}


def _key(k) -> str:
    return k.expr + (" DESC" if k.desc else "")


def test_hostile_names_cannot_move_keys_include_or_predicate(dsn, run_sql):
    run_sql(dsn, SCENE)
    with psycopg.connect(dsn) as conn:
        snap = catalog.introspect(conn, None)
    got = {x.name: ([_key(k) for k in x.definition.keys], x.definition.include, x.definition.where)
           for x in snap.indexes if not x.name.startswith("p1")}
    assert got == WANT
    # a name is no part of a shape: the hostile-named index and z_a are one shape, read once
    assert snap.shapes[_oid(snap, "x USING btree (y")] == snap.shapes[_oid(snap, "z_a")]
    # each keeps its own words in its own prefix
    by = {x.name: x for x in snap.indexes}
    assert by["z_a"].indexdef == f"CREATE INDEX z_a ON {Z} USING btree (a DESC)"
    assert by["ON ONLY x USING btree (b"].indexdef.startswith(f'CREATE INDEX "ON ONLY x USING btree (b" ON ONLY public.{P} ')
    # quote_all_identifiers quotes every name (and the method) in pg_get_indexdef and in quote_ident alike
    with psycopg.connect(dsn, options="-c quote_all_identifiers=on") as conn:
        quoted = catalog.introspect(conn, None)
    # (the predicate, pg_get_expr's text, is quoted too: compared as SQL elsewhere, not here)
    assert {x.name: (x.definition.keys, x.definition.include) for x in quoted.indexes} == \
        {x.name: (x.definition.keys, x.definition.include) for x in snap.indexes}
    assert next(x for x in quoted.indexes if x.name == "z_a").indexdef.endswith('USING "btree" ("a" DESC)')


def _oid(snap, name):
    return next(x.oid for x in snap.indexes if x.name == name)


def test_health_import_plan_apply_drift_with_hostile_names(dsn, run_sql, tmp_path):
    run_sql(dsn, SCENE)
    r = run_cli("health", "--all", "-d", dsn, "--format", "json", cwd=tmp_path)
    assert r.returncode in (0, 2), r.stderr
    findings = [f for f in json.loads(r.stdout)["findings"] if f["kind"] in ("duplicate", "redundant")]
    found = {(f["kind"], f["index"]) for f in findings}
    # (a DESC) twice: one is the other's duplicate; (c) is led by (c, a); (a) INCLUDE (c) is not
    # led by (a DESC) (other ordering), the partial (b) has no peer of its predicate, and z_a is
    # on another table
    assert len(found) == 2 and ("redundant", " WHERE c USING btree (c") in found, found
    assert found & {("duplicate", "x USING btree (y"), ("duplicate", "dup ) USING btree (b")}, found
    red = next(f for f in findings if f["kind"] == "redundant")
    assert red["message"].startswith("its keys lead cover WHERE ( (btree (c, a)), which serves"), red["message"]

    # import writes one of a duplicate pair: drop the other first, so the spec is the database
    run_sql(dsn, f'DROP INDEX {S}."dup ) USING btree (b"')
    imported = tmp_path / "imported.yaml"
    run_cli("import", "--database", dsn, "-o", imported, check=0, cwd=tmp_path)
    assert yaml.safe_load(imported.read_text()) == SPEC
    # a spec written by hand (not read back from the same parse) plans no change
    spec = tmp_path / "indexes.yaml"
    spec.write_text(yaml.safe_dump(SPEC, sort_keys=False))
    r = run_cli("plan", "-f", spec, "--database", dsn, "--format", "json", "--detailed-exitcode", check=0, cwd=tmp_path)
    assert json.loads(r.stdout)["changes"] == []
    # from the spec alone: drop them all, apply, and the next plan is empty
    run_sql(dsn, "".join(f"DROP INDEX {quote_ident(s)}.{quote_ident(n)};" for s, n in run_sql(
        dsn, "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
             "JOIN pg_index i ON i.indexrelid = c.oid WHERE NOT EXISTS "
             "(SELECT FROM pg_inherits h WHERE h.inhrelid = c.oid) AND n.nspname NOT IN ('pg_catalog', 'pg_toast')")))
    run_cli("apply", "-f", spec, "--database", dsn, "--auto-approve", check=0, cwd=tmp_path)
    r = run_cli("plan", "-f", spec, "--database", dsn, "--format", "json", "--detailed-exitcode", check=0, cwd=tmp_path)
    assert json.loads(r.stdout)["changes"] == []
    run_cli("drift", "-f", spec, "--database", dsn, check=0, cwd=tmp_path)
    again = tmp_path / "again.yaml"
    run_cli("import", "--database", dsn, "-o", again, check=0, cwd=tmp_path)
    assert again.read_text() == imported.read_text()


ODD = ["plain", "Upper", "with space", 'q"uote', "é", "日本", "a)b", "x USING btree (y", "1lead", "_u", "a$b",
       "select", "user", "table", "between", "int", "filter", "name", "zone", "varchar", "json_table"]


def test_client_quoting_is_the_servers(dsn, pg_major):
    """The prefix of a row read by the catalog uses the server's quote_ident; for rows without it
    (and for DDL) the client quotes. They agree on odd names and on every keyword this server
    knows, but that the client's keyword list is PostgreSQL 18's: it also quotes words an older
    server does not reserve (json_table on 15), which reads the same name there. Never fewer."""
    with psycopg.connect(dsn) as conn:
        words = [r[0] for r in conn.execute("SELECT word FROM pg_get_keywords()").fetchall()]
        reserved = {r[0] for r in conn.execute("SELECT word FROM pg_get_keywords() WHERE catcode <> 'U'")}
        names = ODD + words + [w.upper() for w in words[:20]] + ["a\nb"]
        server = [r[0] for r in conn.execute("SELECT quote_ident(n) FROM unnest(%s::text[]) n", (names,)).fetchall()]
    differ = [(n, s, server_quote_ident(n)) for n, s in zip(names, server) if s != server_quote_ident(n)]
    assert all(s == n and c == f'"{n}"' and n not in reserved for n, s, c in differ), differ
    if pg_major >= 18:
        assert not differ
    # core.ident writes hidden characters as U& escapes (same name, printable): only those differ
    assert [n for n in names if quote_ident(n) != server_quote_ident(n)] == ["a\nb"]


def _row(name, text, **kw):
    return {"oid": 1, "schema": "public", "table": "t", "name": name, "method": "btree", "is_unique": False,
            "nkey": 1, "natts": 1, "indkey": [1], "cols": ["a"], "indexdef": text, "predicate": None,
            "nulls_not_distinct": False, "options": None, "tablespace": None, **kw}


def test_text_not_starting_with_the_rows_prefix_is_a_clear_error():
    good = _row("x USING btree (y", 'CREATE INDEX "x USING btree (y" ON public.t USING btree (a DESC)')
    assert definition_tail(good) == "(a DESC)"
    assert catalog.index_def_from_row(good).keys[0].desc
    # the row says another name (or unique, or another table) than the text: refused, not searched
    for bad in (_row("other", good["indexdef"]), {**good, "is_unique": True}, {**good, "table": "u"},
                {**good, "partitioned": True}, _row("x", "CREATE INDEX x ON public.t USING btree a")):
        with pytest.raises(UnexpectedDefinition, match=r'^index public\.("x USING btree \(y"|other|x): '
                                                       r"pg_get_indexdef\(\) does not start with the expected ") as e:
            catalog.index_def_from_row(bad)
        assert "\n" not in str(e.value)
    with pytest.raises(UnexpectedDefinition, match=r"^index public\.x: no closing parenthesis for the key list"):
        catalog.index_def_from_row(_row("x", "CREATE INDEX x ON public.t USING btree (a"))
