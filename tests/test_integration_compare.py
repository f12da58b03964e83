"""`make_plan` against a real server: hand-written CREATE INDEX vs the spec a person would write.

For every index attribute: the index is built from SQL, the equivalent YAML entry is written
the way a person writes it (`lower(email)`, `status IN ('A', 'B')`, default opclass omitted),
and the plan must be empty; then ONE attribute of the entry is changed and the plan must be
exactly one `replace` whose single reason names that attribute. Also: renames, INVALID
indexes, constraint-backed indexes, prune, ignore globs, partitioned tables, materialized
views, read-only sessions (text comparison with a warning), and "plan never writes".
No mocks: every test runs on the servers of conftest.py (pg18, pg15).
"""
from __future__ import annotations

import json
import os
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import yaml

from reconciler.app.engine import make_plan
from reconciler.spec import load_spec

from support.cli import run_cli
from support.ddl import partitioned_table
from support.specs import write_spec as write_spec_file

TABLE_DDL = """
CREATE TYPE "Status" AS ENUM ('ACTIVE', 'PENDING', 'CLOSED');
CREATE TABLE "userAccount" (
    id integer NOT NULL,
    email varchar(200),
    "displayName" text,
    status "Status" NOT NULL DEFAULT 'ACTIVE',
    "createdAt" timestamp(3) NOT NULL DEFAULT now(),
    "deletedAt" timestamp(3),
    "orgId" integer,
    payload jsonb,
    search tsvector,
    score integer
);
INSERT INTO "userAccount" (id, email, "displayName", status, "orgId", payload, search, score)
SELECT g, 'user' || g || '@example.com', 'User ' || g, (ARRAY['ACTIVE', 'PENDING', 'CLOSED'])[g % 3 + 1]::"Status",
       g % 7, jsonb_build_object('kind', g % 4), to_tsvector('simple', 'word' || g), g % 10
FROM generate_series(1, 200) AS g;
ANALYZE "userAccount";
"""


# ---------------------------------------------------------------------------------------------
# helpers


def write_spec(tmp_path: Path, doc: dict | str, name: str = "indexes.yaml"):
    """Write a spec (YAML text as a person writes it, or a dict) and load it like the CLI does."""
    text = doc if isinstance(doc, str) else yaml.safe_dump(doc, sort_keys=False)
    return load_spec([write_spec_file(tmp_path, text, name)])


def plan_for(dsn: str, spec, **kw):
    with psycopg.connect(dsn) as conn:
        return make_plan(conn, spec, **kw)


def changes(plan) -> list:
    return [pc.change for pc in plan.changes]


def summary(plan) -> list[tuple]:
    """(action, index, old_name, reasons) of each change: readable in an assertion message."""
    return [(c.action, c.index, c.old_name, c.reasons) for c in changes(plan)]


def db_state(dsn: str) -> dict:
    """Everything a plan must not touch: relations, their definitions and flags, comments."""
    rows = {}
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows["relations"] = conn.execute(
            "SELECT n.nspname, c.relname, c.relkind, c.relpersistence, coalesce(c.reloptions, '{}') "
            "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1, 2").fetchall()
        rows["indexes"] = conn.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid), indisvalid, indisready "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1").fetchall()
        rows["temp"] = conn.execute(
            "SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname LIKE 'pg_temp%' ORDER BY 1, 2").fetchall()
        rows["comments"] = conn.execute(
            "SELECT objoid::regclass::text, description FROM pg_description d JOIN pg_class c ON c.oid = d.objoid "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' ORDER BY 1").fetchall()
    return rows


# ---------------------------------------------------------------------------------------------
# 1. Round trip, one attribute at a time


@dataclass
class Case:
    id: str
    sql: str                       # the index, as a person writes CREATE INDEX (name ix)
    entry: str                     # the YAML entry (name/table added), as a person writes it
    mutations: list = field(default_factory=list)   # [(patch of the entry, word the one reason must hold)]
    min_pg: int = 0
    setup: str = ""                # run before the index (an extension)

    def doc(self, patch: dict | None = None) -> dict:
        e = {"name": "ix", "table": "userAccount", **yaml.safe_load(textwrap.dedent(self.entry))}
        for k, v in (patch or {}).items():
            if v is None:
                e.pop(k, None)
            else:
                e[k] = v
        return {"version": 1, "indexes": [e]}


ON = 'CREATE INDEX ix ON "userAccount"'
CASES = [
    Case("plain_column", f"{ON} (email)", "columns: [email]",
         [({"columns": ["displayName"]}, "columns"),
          ({"columns": ["email DESC"]}, "order of"),
          ({"unique": True}, "unique")]),
    Case("camelcase_columns", f'{ON} ("orgId", "createdAt")', "columns: [orgId, createdAt]",
         [({"columns": ["createdAt", "orgId"]}, "columns"),
          ({"columns": ["orgId"]}, "columns")]),
    Case("desc", f'{ON} ("createdAt" DESC)', "columns: [createdAt DESC]",
         [({"columns": ["createdAt"]}, "order of")]),
    Case("nulls_last_is_default", f'{ON} ("deletedAt" NULLS LAST)', "columns: [deletedAt NULLS LAST]",
         [({"columns": ["deletedAt NULLS FIRST"]}, "order of")]),
    Case("nulls_last_omitted", f'{ON} ("deletedAt" NULLS LAST)', "columns: [deletedAt]",
         [({"columns": ["deletedAt DESC"]}, "order of")]),
    Case("nulls_first", f'{ON} ("deletedAt" NULLS FIRST)', "columns: [deletedAt NULLS FIRST]",
         [({"columns": ["deletedAt"]}, "order of")]),
    Case("desc_nulls_last", f'{ON} ("createdAt" DESC NULLS LAST)', "columns: [createdAt DESC NULLS LAST]",
         [({"columns": ["createdAt DESC"]}, "order of"),
          ({"columns": ["createdAt NULLS LAST"]}, "order of")]),
    Case("desc_nulls_last_long_form", f'{ON} ("orgId", "createdAt" DESC NULLS LAST)',
         """
         columns:
           - orgId
           - {column: createdAt, order: desc, nulls: last}
         """,
         [({"columns": ["orgId", {"column": "createdAt", "order": "desc"}]}, "order of")]),
    Case("opclass_text_pattern_ops", f'{ON} ("displayName" text_pattern_ops)',
         "columns: [{column: displayName, opclass: text_pattern_ops}]",
         [({"columns": ["displayName"]}, "operator class"),
          ({"columns": [{"column": "displayName", "opclass": "varchar_pattern_ops"}]}, "operator class")]),
    Case("opclass_varchar_pattern_ops", f"{ON} (email varchar_pattern_ops)",
         "columns: [{column: email, opclass: varchar_pattern_ops}]",
         [({"columns": ["email"]}, "operator class"),
          ({"columns": [{"column": "email", "opclass": "text_pattern_ops"}]}, "operator class")]),
    Case("opclass_default_spelled_out", f'{ON} ("displayName")',
         "columns: [{column: displayName, opclass: text_ops}]",
         [({"columns": [{"column": "displayName", "opclass": "text_pattern_ops"}]}, "operator class")]),
    Case("collation_c", f'{ON} ("displayName" COLLATE "C")',
         "columns: [{column: displayName, collation: C}]",
         [({"columns": ["displayName"]}, "collation"),
          ({"columns": [{"column": "displayName", "collation": "POSIX"}]}, "collation")]),
    Case("collation_default_spelled_out", f'{ON} ("displayName")',
         "columns: [{column: displayName, collation: default}]",
         [({"columns": [{"column": "displayName", "collation": "C"}]}, "collation")]),
    Case("expression_lower_varchar", f"{ON} (lower(email))",
         "columns: [{expression: lower(email)}]",
         [({"columns": [{"expression": "upper(email)"}]}, "columns"),
          ({"columns": [{"expression": "lower(email)", "order": "desc"}]}, "order of"),
          ({"unique": True}, "unique")]),
    Case("expression_camelcase", f'{ON} (lower("displayName"))',
         """columns: [{expression: 'lower("displayName")'}]""",
         [({"columns": [{"expression": 'upper("displayName")'}]}, "columns")]),
    Case("expression_opclass", f"{ON} (lower(email) text_pattern_ops)",
         "columns: [{expression: lower(email), opclass: text_pattern_ops}]",
         [({"columns": [{"expression": "lower(email)"}]}, "operator class")]),
    Case("expression_jsonb", f"{ON} ((payload ->> 'kind'))",
         """columns: [{expression: "payload->>'kind'"}]""",
         [({"columns": [{"expression": "payload->>'type'"}]}, "columns")]),
    Case("partial_enum_in_list", f"""{ON} ("orgId") WHERE status IN ('ACTIVE', 'PENDING')""",
         """
         columns: [orgId]
         where: "status IN ('ACTIVE', 'PENDING')"
         """,
         [({"where": "status IN ('ACTIVE', 'CLOSED')"}, "predicate"),
          ({"where": None}, "predicate"),
          ({"columns": ["orgId DESC"]}, "order of"),
          ({"unique": True}, "unique")]),
    Case("partial_enum_equals", f"""{ON} (email) WHERE status = 'ACTIVE'""",
         """
         columns: [email]
         where: "status = 'ACTIVE'"
         """,
         [({"where": "status = 'PENDING'"}, "predicate"),
          ({"include": ["score"]}, "include")]),
    Case("partial_deleted_at_is_null", f'{ON} (email) WHERE "deletedAt" IS NULL',
         """
         columns: [email]
         where: '"deletedAt" IS NULL'
         """,
         [({"where": '"deletedAt" IS NOT NULL'}, "predicate"),
          ({"columns": ["displayName"]}, "columns")]),
    Case("partial_timestamp_literal", f"""{ON} ("orgId") WHERE "createdAt" >= '2024-01-01'""",
         """
         columns: [orgId]
         where: "\\"createdAt\\" >= '2024-01-01'"
         """,
         [({"where": "\"createdAt\" >= '2025-01-01'"}, "predicate")]),
    Case("partial_int_in_list", f"{ON} (email) WHERE score IN (1, 2, 3)",
         """
         columns: [email]
         where: score IN (1, 2, 3)
         """,
         [({"where": "score IN (1, 2)"}, "predicate")]),
    Case("unique", 'CREATE UNIQUE INDEX ix ON "userAccount" (email)',
         """
         columns: [email]
         unique: true
         """,
         [({"unique": None}, "unique")]),
    Case("unique_nulls_not_distinct", 'CREATE UNIQUE INDEX ix ON "userAccount" (email) NULLS NOT DISTINCT',
         """
         columns: [email]
         unique: true
         nulls_not_distinct: true
         """,
         [({"nulls_not_distinct": None}, "NULLS NOT DISTINCT")], min_pg=15),
    Case("unique_nulls_not_distinct_added", 'CREATE UNIQUE INDEX ix ON "userAccount" (email)',
         """
         columns: [email]
         unique: true
         """,
         [({"nulls_not_distinct": True}, "NULLS NOT DISTINCT")], min_pg=15),
    Case("hash", f"{ON} USING hash (email)",
         """
         columns: [email]
         using: hash
         """,
         [({"using": None}, "method")]),
    Case("gin_jsonb_default_opclass", f"{ON} USING gin (payload)",
         """
         columns: [payload]
         using: gin
         """,
         [({"columns": [{"column": "payload", "opclass": "jsonb_path_ops"}]}, "operator class")]),
    Case("gin_jsonb_path_ops", f"{ON} USING gin (payload jsonb_path_ops)",
         """
         columns: [{column: payload, opclass: jsonb_path_ops}]
         using: gin
         """,
         [({"columns": ["payload"]}, "operator class")]),
    Case("gin_tsvector", f"{ON} USING gin (search)",
         """
         columns: [search]
         using: gin
         """,
         [({"using": "gist"}, "method")]),
    Case("gist_tsvector", f"{ON} USING gist (search)",
         """
         columns: [search]
         using: gist
         """,
         [({"using": "gin"}, "method")]),
    Case("brin", f'{ON} USING brin ("createdAt")',
         """
         columns: [createdAt]
         using: brin
         """,
         [({"with": {"pages_per_range": 32}}, "storage options"),
          ({"using": None}, "method")]),
    Case("include", f'{ON} (id) INCLUDE (email, "displayName")',
         """
         columns: [id]
         include: [email, displayName]
         """,
         [({"include": ["email"]}, "include"),
          ({"include": ["displayName", "email"]}, "include")]),
    Case("fillfactor", f"{ON} (score) WITH (fillfactor = 70)",
         """
         columns: [score]
         with: {fillfactor: 70}
         """,
         [({"with": {"fillfactor": 80}}, "storage options"),
          ({"with": None}, "storage options")]),
    Case("gin_fastupdate_off", f"{ON} USING gin (search) WITH (fastupdate = off)",
         """
         columns: [search]
         using: gin
         with: {fastupdate: false}
         """,
         [({"with": {"fastupdate": True}}, "storage options"),
          ({"with": None}, "storage options")]),
    Case("expression_collation", f'{ON} (lower(email) COLLATE "C")',
         "columns: [{expression: lower(email), collation: C}]",
         [({"columns": [{"expression": "lower(email)"}]}, "collation")]),
    Case("expression_cast_date", f'{ON} (("createdAt"::date))',
         """columns: [{expression: '"createdAt"::date'}]""",
         [({"columns": [{"expression": '"createdAt"::date', "order": "desc"}]}, "order of")]),
    Case("expression_coalesce", f"""{ON} (coalesce("deletedAt", 'infinity'))""",
         """columns: [{expression: "coalesce(\\"deletedAt\\", 'infinity')"}]""",
         [({"columns": [{"expression": "coalesce(\"deletedAt\", '-infinity')"}]}, "columns")]),
    Case("expression_date_trunc", f"""{ON} (date_trunc('day', "createdAt"))""",
         """columns: [{expression: "date_trunc('day', \\"createdAt\\")"}]""",
         [({"columns": [{"expression": "date_trunc('month', \"createdAt\")"}]}, "columns")]),
    Case("partial_not_in", f"""{ON} (email) WHERE status NOT IN ('CLOSED', 'PENDING')""",
         """
         columns: [email]
         where: "status NOT IN ('CLOSED', 'PENDING')"
         """,
         [({"where": "status NOT IN ('CLOSED')"}, "predicate")]),
    Case("partial_like_varchar", f"""{ON} (email) WHERE email LIKE '%@example.com'""",
         """
         columns: [email]
         where: "email LIKE '%@example.com'"
         """,
         [({"where": "email LIKE '%@example.org'"}, "predicate")]),
    Case("partial_jsonb", f"""{ON} ("orgId") WHERE payload ? 'kind' AND (payload->>'kind') <> '0'""",
         """
         columns: [orgId]
         where: "payload ? 'kind' AND payload->>'kind' <> '0'"
         """,
         [({"where": "payload ? 'kind'"}, "predicate")]),
    Case("gist_opclass_parameters", f"{ON} USING gist (search tsvector_ops (siglen = 100))",
         """
         columns: [{column: search, opclass: "tsvector_ops(siglen=100)"}]
         using: gist
         """,
         [({"columns": [{"column": "search", "opclass": "tsvector_ops(siglen=200)"}]}, "operator class")]),
    Case("spgist_text", f'{ON} USING spgist ("displayName")',
         """
         columns: [displayName]
         using: spgist
         """,
         [({"using": "hash"}, "method")]),
    Case("hash_enum", f"{ON} USING hash (status)",
         """
         columns: [status]
         using: hash
         """,
         [({"columns": ["orgId"]}, "columns")]),
    Case("extension_gin_trgm", f"{ON} USING gin (lower(email) gin_trgm_ops)",
         """
         columns: [{expression: lower(email), opclass: gin_trgm_ops}]
         using: gin
         """,
         [({"columns": [{"expression": "upper(email)", "opclass": "gin_trgm_ops"}]}, "columns")],
         setup="CREATE EXTENSION IF NOT EXISTS pg_trgm"),
    Case("extension_opclass_schema_qualified", f'{ON} USING gist ("displayName" gist_trgm_ops (siglen = 64))',
         """
         columns: [{column: displayName, opclass: "public.gist_trgm_ops(siglen=64)"}]
         using: gist
         """,
         [({"columns": [{"column": "displayName", "opclass": "public.gist_trgm_ops"}]}, "operator class")],
         setup="CREATE EXTENSION IF NOT EXISTS pg_trgm"),
    Case("extension_btree_gist", f'{ON} USING gist ("orgId", "createdAt")',
         """
         columns: [orgId, createdAt]
         using: gist
         """,
         [({"columns": ["createdAt", "orgId"]}, "columns")],
         setup="CREATE EXTENSION IF NOT EXISTS btree_gist"),
    Case("tablespace_pg_default", f"{ON} (score) TABLESPACE pg_default",
         """
         columns: [score]
         tablespace: pg_default
         """,
         [({"tablespace": "fast_ssd"}, "tablespace")]),
    Case("tablespace_pg_default_omitted", f"{ON} (score) TABLESPACE pg_default", "columns: [score]",
         [({"columns": ["score DESC"]}, "order of")]),
]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_round_trip_then_one_attribute_changed(case: Case, dsn, run_sql, pg_major, tmp_path):
    if pg_major < case.min_pg:
        pytest.skip(f"needs PostgreSQL {case.min_pg}+")
    run_sql(dsn, TABLE_DDL)
    if case.setup:
        run_sql(dsn, case.setup)
    run_sql(dsn, case.sql)
    before = db_state(dsn)

    plan, cmp = plan_for(dsn, write_spec(tmp_path, case.doc()))
    assert summary(plan) == [], f"{case.sql} vs the spec: expected no change"
    assert plan.drift == () and plan.warnings == ()

    assert case.mutations, "every case changes at least one attribute"
    for patch, word in case.mutations:
        plan, _ = plan_for(dsn, write_spec(tmp_path, case.doc(patch)))
        got = summary(plan)
        assert [(a, i) for a, i, _, _ in got] == [("replace", "ix")], f"patch {patch}: {got}"
        reasons = got[0][3]
        assert len(reasons) == 1 and word in reasons[0], f"patch {patch}: reasons {reasons} should name {word!r}"
        assert plan.warnings == ()
    assert db_state(dsn) == before, "plan changed the database"


def test_every_case_at_once_on_one_table(dsn, run_sql, pg_major, tmp_path):
    """All the indexes above, side by side on one table, under prune: no change, no drift,
    no rename between look-alikes (several share a definition but for one attribute)."""
    run_sql(dsn, TABLE_DDL)
    entries = []
    seen_sql = set()
    for n, case in enumerate(CASES):
        if pg_major < case.min_pg or case.sql in seen_sql:
            continue
        seen_sql.add(case.sql)
        if case.setup:
            run_sql(dsn, case.setup)
        name = f"ix_{n:02d}_{case.id}"[:63]
        run_sql(dsn, case.sql.replace("INDEX ix ON", f"INDEX {name} ON"))
        e = case.doc()["indexes"][0]
        e["name"] = name
        entries.append(e)
    assert len(entries) >= 25
    spec = write_spec(tmp_path, {"version": 1, "manage": {"prune": True}, "indexes": entries})
    plan, cmp = plan_for(dsn, spec)
    assert summary(plan) == [] and plan.drift == ()
    # the unsure ones really went to the server (casts on varchar, enums, timestamps)
    assert cmp.canonicalized >= 3


def test_what_the_server_refuses_is_an_error_naming_the_entry(dsn, run_sql, tmp_path):
    """An unknown operator class is not "a change": plan stops, naming file:line and index."""
    from reconciler.errors import ReconcilerError

    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, 'CREATE INDEX ix ON "userAccount" (email)')
    before = db_state(dsn)
    spec = write_spec(tmp_path, """
        version: 1
        indexes:
          - name: ix
            table: userAccount
            columns: [{column: email, opclass: no_such_ops}]
        """)
    with pytest.raises(ReconcilerError) as err:
        plan_for(dsn, spec)
    assert "indexes.yaml:4: index 'ix': PostgreSQL refuses it" in err.value.message
    assert "no_such_ops" in err.value.message
    assert db_state(dsn) == before


# ---------------------------------------------------------------------------------------------
# Renames, INVALID, constraints, prune, ignore


EMAIL_ACTIVE_SPEC = """
        version: 1
        manage: {prune: true}
        indexes:
          - name: userAccount_email_active_idx
            table: userAccount
            columns: [{expression: lower(email)}]
            where: "status IN ('ACTIVE', 'PENDING')"
        """


def test_same_definition_other_name_is_one_rename(dsn, run_sql, tmp_path):
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """CREATE INDEX "userAccount_old_idx" ON "userAccount" (lower(email)) WHERE status IN ('ACTIVE', 'PENDING')""")
    spec = write_spec(tmp_path, EMAIL_ACTIVE_SPEC)
    plan, _ = plan_for(dsn, spec)
    got = changes(plan)
    assert [(c.action, c.index, c.old_name) for c in got] == [
        ("rename", "userAccount_email_active_idx", "userAccount_old_idx")], summary(plan)
    assert [op.kind for op in plan.changes[0].operations][0] == "rename"
    assert plan.drift == ()


def test_a_build_names_its_tables_real_size_read_after_the_comparison(dsn, run_sql, tmp_path):
    """The snapshot reads no table size (pg_table_size opens every table, a no-op plan needs
    none); the tables of the changes are measured afterwards, so a build still says how big
    its table is, and the other tables stay unmeasured."""
    run_sql(dsn, TABLE_DDL + 'CREATE TABLE "other" (id int); INSERT INTO "other" SELECT generate_series(1, 5000);')
    spec = write_spec(tmp_path, EMAIL_ACTIVE_SPEC)
    plan, cmp = plan_for(dsn, spec)
    with psycopg.connect(dsn) as conn:
        size = conn.execute("""SELECT pg_table_size('"userAccount"')""").fetchone()[0]
    assert size > 8192
    (change,) = [c for c in plan.changes if c.change.index == "userAccount_email_active_idx"]
    assert change.change.table_facts.bytes == size
    build = [h for h in change.hazards if h.code.name == "INDEX_BUILD"]
    assert build and f"({size / 1024:.1f} kB, ~200 rows)" in build[0].message, build
    assert {t.name: t.bytes for t in cmp.snapshot.tables} == {"userAccount": 0}


def test_rename_not_taken_when_definition_differs(dsn, run_sql, tmp_path):
    """The other name holds a different definition: create the new, drop the old (prune)."""
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """CREATE INDEX "userAccount_old_idx" ON "userAccount" (lower(email)) WHERE status = 'ACTIVE'""")
    spec = write_spec(tmp_path, EMAIL_ACTIVE_SPEC)
    plan, _ = plan_for(dsn, spec)
    assert sorted((c.action, c.index) for c in changes(plan)) == [
        ("create", "userAccount_email_active_idx"), ("drop", "userAccount_old_idx")], summary(plan)


def test_invalid_index_is_rebuilt(dsn, run_sql, tmp_path):
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """UPDATE "userAccount" SET email = 'same@example.com' WHERE id IN (1, 2)""")
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_sql(dsn, 'CREATE UNIQUE INDEX CONCURRENTLY "userAccount_email_key" ON "userAccount" (email)')
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = '\"userAccount_email_key\"'::regclass") \
        == [(False,)]
    spec = write_spec(tmp_path, """
        version: 1
        indexes:
          - name: userAccount_email_key
            table: userAccount
            columns: [email]
            unique: true
        """)
    plan, _ = plan_for(dsn, spec)
    assert [(c.action, c.index) for c in changes(plan)] == [("rebuild", "userAccount_email_key")], summary(plan)
    assert "INVALID" in changes(plan)[0].reasons[0]
    kinds = [op.kind for op in plan.changes[0].operations]
    assert "reindex" in kinds
    # an INVALID index whose definition differs is a replace, not a rebuild
    plan, _ = plan_for(dsn, write_spec(tmp_path, """
        version: 1
        indexes:
          - name: userAccount_email_key
            table: userAccount
            columns: [email, id]
            unique: true
        """))
    assert [(c.action, c.index) for c in changes(plan)] == [("replace", "userAccount_email_key")], summary(plan)


def test_invalid_extra_index_is_reported_invalid(dsn, run_sql, tmp_path):
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """UPDATE "userAccount" SET email = 'same@example.com' WHERE id IN (1, 2)""")
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_sql(dsn, 'CREATE UNIQUE INDEX CONCURRENTLY leftover ON "userAccount" (email)')
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: ix_score, table: userAccount, columns: [score]}
        """)
    run_sql(dsn, 'CREATE INDEX ix_score ON "userAccount" (score)')
    plan, _ = plan_for(dsn, spec)
    assert [(c.action, c.index) for c in changes(plan)] == [("drop", "leftover")], summary(plan)
    assert "INVALID" in changes(plan)[0].reasons[0]


CONSTRAINT_DDL = """
CREATE TABLE orders (
    id bigint GENERATED ALWAYS AS IDENTITY,
    "orderNo" text NOT NULL,
    "customerId" integer,
    total numeric,
    CONSTRAINT orders_pkey PRIMARY KEY (id),
    CONSTRAINT "orders_orderNo_key" UNIQUE ("orderNo")
);
CREATE INDEX "orders_customerId_idx" ON orders ("customerId");
"""


def test_constraint_backed_indexes_never_change_even_with_prune(dsn, run_sql, tmp_path):
    run_sql(dsn, CONSTRAINT_DDL)
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: orders_customerId_idx, table: orders, columns: [customerId]}
        """)
    plan, _ = plan_for(dsn, spec)
    assert summary(plan) == [] and plan.drift == ()


def test_constraint_backed_index_listed_differently_is_drift_not_change(dsn, run_sql, tmp_path):
    run_sql(dsn, CONSTRAINT_DDL)
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: orders_customerId_idx, table: orders, columns: [customerId]}
          - {name: orders_orderNo_key, table: orders, columns: [orderNo, id], unique: true}
          - {name: orders_pkey, table: orders, columns: [id], unique: true}
        """)
    plan, _ = plan_for(dsn, spec)
    assert summary(plan) == []
    assert [(d.kind, d.index) for d in plan.drift] == [("constraint", "orders_orderNo_key")]


def test_extra_index_prune_off_is_drift_only_prune_on_drops(dsn, run_sql, tmp_path):
    run_sql(dsn, CONSTRAINT_DDL)
    run_sql(dsn, "CREATE INDEX orders_total_idx ON orders (total)")
    entry = "  - {name: orders_customerId_idx, table: orders, columns: [customerId]}\n"
    plan, _ = plan_for(dsn, write_spec(tmp_path, "version: 1\nindexes:\n" + entry))
    assert summary(plan) == []
    assert [(d.kind, d.index) for d in plan.drift] == [("extra", "orders_total_idx")]

    plan, _ = plan_for(dsn, write_spec(tmp_path, "version: 1\nmanage: {prune: true}\nindexes:\n" + entry))
    assert [(c.action, c.index) for c in changes(plan)] == [("drop", "orders_total_idx")], summary(plan)
    assert plan.changes[0].operations[0].sql == "DROP INDEX CONCURRENTLY public.orders_total_idx"


def test_ignore_globs_hide_indexes_from_prune_and_drift(dsn, run_sql, tmp_path):
    run_sql(dsn, CONSTRAINT_DDL)
    run_sql(dsn, "CREATE INDEX tmp_orders_total ON orders (total)")
    run_sql(dsn, 'CREATE INDEX "orders_customerId_total_idx" ON orders ("customerId", total)')
    spec = write_spec(tmp_path, """
        version: 1
        manage:
          prune: true
          ignore: ["tmp_*", "*_total_idx"]
        indexes:
          - {name: orders_customerId_idx, table: orders, columns: [customerId]}
        """)
    plan, _ = plan_for(dsn, spec)
    assert summary(plan) == [] and plan.drift == ()
    # without the ignore list both are dropped: the test above is not vacuous
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: orders_customerId_idx, table: orders, columns: [customerId]}
        """)
    plan, _ = plan_for(dsn, spec)
    assert sorted(c.index for c in changes(plan) if c.action == "drop") == [
        "orders_customerId_total_idx", "tmp_orders_total"]


def test_ignored_name_in_spec_is_left_alone(dsn, run_sql, tmp_path):
    run_sql(dsn, CONSTRAINT_DDL)
    run_sql(dsn, "CREATE INDEX tmp_orders_total ON orders (total)")
    spec = write_spec(tmp_path, """
        version: 1
        manage: {ignore: ["tmp_*"]}
        indexes:
          - {name: orders_customerId_idx, table: orders, columns: [customerId]}
          - {name: tmp_orders_total, table: orders, columns: [total DESC]}
        """)
    plan, _ = plan_for(dsn, spec)
    # not touched, but the contradiction (listed and ignored) is reported, never an extra
    assert summary(plan) == []
    assert [(d.kind, d.index) for d in plan.drift] == [("ignored", "tmp_orders_total")]


# ---------------------------------------------------------------------------------------------
# Partitioned tables, materialized views


PARTITIONED_DDL = """
CREATE TABLE events (
    id bigint NOT NULL,
    "tenantId" integer NOT NULL,
    kind text,
    "createdAt" timestamp NOT NULL
) PARTITION BY RANGE ("createdAt");
CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01')
    PARTITION BY LIST ("tenantId");
CREATE TABLE events_2025_t1 PARTITION OF events_2025 FOR VALUES IN (1);
CREATE TABLE events_2025_rest PARTITION OF events_2025 DEFAULT;
ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (id, "createdAt", "tenantId");
CREATE INDEX "events_tenantId_createdAt_idx" ON events ("tenantId", "createdAt" DESC);
CREATE INDEX events_kind_idx ON events (lower(kind)) WHERE kind IS NOT NULL;
"""


def test_partitioned_parent_index_children_implied(dsn, run_sql, tmp_path):
    run_sql(dsn, PARTITIONED_DDL)
    n_children = run_sql(dsn, "SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                              "WHERE c.relkind IN ('i', 'I')")[0][0]
    assert n_children >= 8   # the two indexes (and the pkey) on every partition
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - name: events_tenantId_createdAt_idx
            table: events
            columns: [tenantId, createdAt DESC]
          - name: events_kind_idx
            table: events
            columns: [{expression: lower(kind)}]
            where: kind IS NOT NULL
        """)
    plan, cmp = plan_for(dsn, spec)
    assert summary(plan) == [] and plan.drift == ()
    assert any(x.parent_index for x in cmp.snapshot.indexes), "the partition indexes were read"

    # one attribute changed: one replace of the parent, nothing about the children
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - name: events_tenantId_createdAt_idx
            table: events
            columns: [tenantId, createdAt]
          - name: events_kind_idx
            table: events
            columns: [{expression: lower(kind)}]
            where: kind IS NOT NULL
        """)
    plan, _ = plan_for(dsn, spec)
    got = summary(plan)
    assert [(a, i) for a, i, _, _ in got] == [("replace", "events_tenantId_createdAt_idx")], got
    assert "order of" in got[0][3][0]


ADOPTION_DDL = partitioned_table("accounts", rows=400, value="email varchar(200)", value_sql="'User' || g || '@x'") + """
-- made by hand on one partition; PostgreSQL prints it as lower((email)::text): text rules are unsure
CREATE INDEX accounts_2024_lower_idx ON accounts_2024 (lower(email));
"""


def test_new_partitioned_index_adopts_an_equivalent_partition_index_the_server_must_confirm(dsn, run_sql, tmp_path):
    """The diff asks whether a partition's index equals the new parent index moved onto that
    partition; only the server can say (a cast), and it must be asked for that copy too: the
    index is adopted (attached), never reported as an extra nor dropped under prune."""
    run_sql(dsn, ADOPTION_DDL)
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: accounts_lower_email_idx, table: accounts, columns: [{expression: lower(email)}]}
        """)
    plan, _ = plan_for(dsn, spec)
    assert [(c.action, c.index) for c in changes(plan)] == [("create", "accounts_lower_email_idx")], summary(plan)
    assert [(d.kind, d.index, d.message) for d in plan.drift] == [
        ("extra", "accounts_2024_lower_idx", "will be attached to its partitioned index")]

    run_cli("apply", "-f", spec.files[0], "--database", dsn, "--auto-approve", check=0)
    attached = run_sql(dsn, "SELECT c.relname, p.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                            "JOIN pg_class p ON p.oid = i.inhparent WHERE p.relname = 'accounts_lower_email_idx' "
                            "ORDER BY 1")
    assert ("accounts_2024_lower_idx", "accounts_lower_email_idx") in attached   # adopted, not built again
    assert len(attached) == 2
    again, _ = plan_for(dsn, spec)
    assert again.empty and again.drift == ()


def test_partition_index_not_attached_is_extra(dsn, run_sql, tmp_path):
    """An index made on one partition by hand is not implied by any parent: drift."""
    run_sql(dsn, PARTITIONED_DDL)
    run_sql(dsn, "CREATE INDEX events_2024_kind_idx ON events_2024 (kind)")
    spec = write_spec(tmp_path, """
        version: 1
        indexes:
          - {name: events_tenantId_createdAt_idx, table: events, columns: [tenantId, createdAt DESC]}
          - {name: events_kind_idx, table: events, columns: [{expression: lower(kind)}], where: kind IS NOT NULL}
        """)
    plan, _ = plan_for(dsn, spec)
    assert summary(plan) == []
    assert [(d.kind, d.table, d.index) for d in plan.drift] == [("extra", "events_2024", "events_2024_kind_idx")]


def test_materialized_view_index(dsn, run_sql, tmp_path):
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """
        CREATE MATERIALIZED VIEW "orgStats" AS
            SELECT "orgId", count(*) AS n, max("createdAt") AS "lastAt" FROM "userAccount" GROUP BY "orgId";
        CREATE UNIQUE INDEX "orgStats_orgId_key" ON "orgStats" ("orgId");
        CREATE INDEX "orgStats_lastAt_idx" ON "orgStats" ("lastAt" DESC) WHERE n > 10;
        """)
    doc = """
        version: 1
        manage: {prune: true}
        indexes:
          - {name: orgStats_orgId_key, table: orgStats, columns: [orgId], unique: true}
          - {name: orgStats_lastAt_idx, table: orgStats, columns: [lastAt DESC], where: n > 10}
        """
    plan, cmp = plan_for(dsn, write_spec(tmp_path, doc))
    assert summary(plan) == [] and plan.drift == ()
    assert {t.kind for t in cmp.snapshot.tables} == {"m"}
    plan, _ = plan_for(dsn, write_spec(tmp_path, doc.replace("n > 10", "n > 20")))
    got = summary(plan)
    assert [(a, i) for a, i, _, _ in got] == [("replace", "orgStats_lastAt_idx")], got
    assert "predicate" in got[0][3][0]


# ---------------------------------------------------------------------------------------------
# 2. Read-only sessions


UNSURE_SPEC = """
    version: 1
    manage: {prune: true}
    indexes:
      - name: ix_lower
        table: userAccount
        columns: [{expression: lower(email)}]
      - name: ix_active
        table: userAccount
        columns: [orgId]
        where: "status IN ('ACTIVE', 'PENDING')"
      - name: ix_name
        table: userAccount
        columns: [{expression: 'lower("displayName")', order: desc}]
        where: '"deletedAt" IS NULL AND score BETWEEN 1 AND 5'
    """
UNSURE_SQL = [
    'CREATE INDEX ix_lower ON "userAccount" (lower(email))',
    """CREATE INDEX ix_active ON "userAccount" ("orgId") WHERE status IN ('ACTIVE', 'PENDING')""",
    """CREATE INDEX ix_name ON "userAccount" (lower("displayName") DESC) WHERE score BETWEEN 1 AND 5 AND "deletedAt" IS NULL""",
]


def _read_only_dsn(dsn: str) -> str:
    return psycopg.conninfo.make_conninfo(dsn, options="-c default_transaction_read_only=on")


@pytest.fixture
def read_only_role(dsn, run_sql):
    """A LOGIN role whose sessions are read-only (`ALTER ROLE ... SET`), dropped afterwards."""
    import hashlib

    name = "rc_ro_" + hashlib.sha1(dsn.encode()).hexdigest()[:10]
    try:
        run_sql(dsn, f"DROP ROLE IF EXISTS {name}; CREATE ROLE {name} LOGIN; "
                     f"ALTER ROLE {name} SET default_transaction_read_only = on")
    except psycopg.errors.InsufficientPrivilege:
        # only an external server's admin can lack CREATEROLE; the servers we start never do
        if os.environ.get("CI") == "true":
            pytest.fail("the test server's admin may not create roles (CI=true)", pytrace=False)
        pytest.skip("the test server's admin may not create roles")
    yield name
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    run_sql(dsn, f'REVOKE ALL ON DATABASE "{dbname}" FROM {name}; DROP OWNED BY {name}; DROP ROLE {name}')


@pytest.mark.parametrize("how", ["dsn_options", "database_setting", "role_setting"])
def test_read_only_session_falls_back_to_text_with_warning(how, dsn, run_sql, tmp_path, request):
    run_sql(dsn, TABLE_DDL)
    for s in UNSURE_SQL:
        run_sql(dsn, s)
    # on a writable session the server settles what text comparison cannot
    plan, cmp = plan_for(dsn, write_spec(tmp_path, UNSURE_SPEC))
    assert summary(plan) == [] and plan.warnings == () and cmp.canonicalized >= 2

    if how == "dsn_options":
        ro = _read_only_dsn(dsn)
    elif how == "role_setting":
        role = request.getfixturevalue("read_only_role")
        ro = psycopg.conninfo.make_conninfo(dsn, user=role)
        # without SELECT on the table the server cannot EXPLAIN over it either: text alone, said so
        plan, _ = plan_for(ro, write_spec(tmp_path, UNSURE_SPEC))
        assert summary(plan) == [] and "permission denied" in plan.warnings[0] and "text alone" in plan.warnings[0]
        run_sql(dsn, f'GRANT SELECT ON "userAccount" TO {role}')
    else:
        dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
        run_sql(dsn, f'ALTER DATABASE "{dbname}" SET default_transaction_read_only = on')
        ro = dsn
    with psycopg.connect(ro, autocommit=True) as conn:
        assert conn.execute("SHOW default_transaction_read_only").fetchone()[0] == "on"
        with pytest.raises(psycopg.errors.ReadOnlySqlTransaction):
            conn.execute("CREATE TEMP TABLE probe (a int)")
    before = db_state(dsn)

    plan, cmp = plan_for(ro, write_spec(tmp_path, UNSURE_SPEC))
    assert summary(plan) == [] and plan.drift == ()
    assert cmp.canonicalized == 0
    assert len(plan.warnings) == 1 and "read-only" in plan.warnings[0] and "EXPLAIN" in plan.warnings[0]

    # a real difference is still a replace, with its reason, read-only or not
    plan, _ = plan_for(ro, write_spec(tmp_path, UNSURE_SPEC.replace("'PENDING'", "'CLOSED'")))
    got = summary(plan)
    assert [(a, i) for a, i, _, _ in got] == [("replace", "ix_active")], got
    assert len(got[0][3]) == 1 and "predicate" in got[0][3][0]
    assert plan.warnings

    # what needs no server needs no warning
    plan, _ = plan_for(ro, write_spec(tmp_path, """
        version: 1
        indexes: [{name: ix_plain, table: userAccount, columns: [score]}]
        """))
    assert [(c.action, c.index) for c in changes(plan)] == [("create", "ix_plain")]
    assert db_state(dsn) == before


def test_read_only_session_timestamp_literal(dsn, run_sql, tmp_path):
    """Text alone cannot know that '2024-01-01' against a timestamp column is
    '2024-01-01 00:00:00'::timestamp; a read-only session asks the server through EXPLAIN."""
    run_sql(dsn, TABLE_DDL)
    run_sql(dsn, """CREATE INDEX ix_recent ON "userAccount" ("orgId") WHERE "createdAt" >= '2024-01-01'""")
    spec = write_spec(tmp_path, """
        version: 1
        indexes:
          - {name: ix_recent, table: userAccount, columns: [orgId], where: "\\"createdAt\\" >= '2024-01-01'"}
        """)
    plan, _ = plan_for(dsn, spec)
    assert summary(plan) == []          # with the server: equal
    plan, cmp = plan_for(_read_only_dsn(dsn), spec)
    assert plan.warnings and "EXPLAIN" in plan.warnings[0]
    assert summary(plan) == []          # by text alone this was a false replace
    assert cmp.canonicalized == 0       # no temporary table on a read-only session
    # a real difference of the literal is still a replace
    plan, _ = plan_for(_read_only_dsn(dsn), write_spec(tmp_path, """
        version: 1
        indexes:
          - {name: ix_recent, table: userAccount, columns: [orgId], where: "\\"createdAt\\" >= '2024-01-02'"}
        """))
    assert [(c.action, c.index) for c in changes(plan)] == [("replace", "ix_recent")]


def test_read_only_session_cli_plan(dsn, run_sql, tmp_path):
    """The same through the command: exit 0 with --detailed-exitcode, the warning printed."""
    run_sql(dsn, TABLE_DDL)
    for s in UNSURE_SQL:
        run_sql(dsn, s)
    spec = write_spec_file(tmp_path, UNSURE_SPEC)
    before = db_state(dsn)
    r = run_cli("plan", "-f", spec, "--database", _read_only_dsn(dsn), "--detailed-exitcode", check=0)
    assert "warning:" in r.stdout and "read-only" in r.stdout
    assert "No changes" in r.stdout
    assert db_state(dsn) == before


# ---------------------------------------------------------------------------------------------
# Plan never writes


def test_plan_never_writes(dsn, run_sql, tmp_path):
    run_sql(dsn, TABLE_DDL)
    for s in UNSURE_SQL:
        run_sql(dsn, s)
    run_sql(dsn, """CREATE INDEX ix_recent ON "userAccount" ("orgId") WHERE "createdAt" >= '2024-01-01'""")
    run_sql(dsn, 'CREATE INDEX extra_idx ON "userAccount" (score)')
    run_sql(dsn, """COMMENT ON INDEX extra_idx IS 'kept'""")
    spec = write_spec(tmp_path, """
        version: 1
        manage: {prune: true}
        indexes:
          - name: ix_lower_renamed
            table: userAccount
            columns: [{expression: lower(email)}]
            comment: a comment plan must not write
          - name: ix_name
            table: userAccount
            columns: [{expression: 'lower("displayName")', order: desc}]
            where: '"deletedAt" IS NULL AND score BETWEEN 1 AND 5'
          - name: ix_active
            table: userAccount
            columns: [orgId DESC]
            where: "status IN ('ACTIVE', 'PENDING')"
          - name: ix_new
            table: userAccount
            columns: [{expression: upper(email)}]
            unique: true
          - {name: ix_recent, table: userAccount, columns: [orgId], where: "\\"createdAt\\" >= '2024-01-01'"}
        """)
    before = db_state(dsn)
    with psycopg.connect(dsn) as conn:
        plan, cmp = make_plan(conn, spec)
        # the server was asked (temp tables were made) and nothing of it is left, even in this session
        assert cmp.canonicalized >= 2
        assert conn.execute("SELECT count(*) FROM pg_class WHERE relnamespace = pg_my_temp_schema()"
                            ).fetchone()[0] == 0
        conn.rollback()
    assert sorted((c.action, c.index) for c in changes(plan)) == [
        ("create", "ix_new"), ("drop", "extra_idx"), ("rename", "ix_lower_renamed"), ("replace", "ix_active")]
    assert db_state(dsn) == before


# ---------------------------------------------------------------------------------------------
# Names that need quoting: a camelCase schema, keyword columns, one table name in two schemas


def test_quoted_schema_keyword_columns_and_same_table_name_in_two_schemas(dsn, run_sql, tmp_path):
    run_sql(dsn, """
        CREATE SCHEMA "Billing";
        CREATE TABLE "Billing".invoice ("user" integer, "order" integer, "Total" numeric, note text);
        CREATE TABLE public.invoice ("user" integer, "order" integer, "Total" numeric, note text);
        CREATE INDEX invoice_user_order_idx ON "Billing".invoice ("user", "order" DESC) INCLUDE ("Total");
        CREATE INDEX invoice_user_order_idx ON public.invoice ("user", "order");
        """)
    doc = """
        version: 1
        manage: {prune: true}
        indexes:
          - name: invoice_user_order_idx
            schema: Billing
            table: invoice
            columns: [user, order DESC]
            include: [Total]
          - name: invoice_user_order_idx
            table: invoice
            columns: [user, order]
        """
    plan, _ = plan_for(dsn, write_spec(tmp_path, doc))
    assert summary(plan) == [] and plan.drift == ()
    # the public one changes; the Billing one (same name, same table name) does not
    plan, _ = plan_for(dsn, write_spec(tmp_path, doc.replace("columns: [user, order]\n", "columns: [order, user]\n")))
    got = [(c.action, c.schema, c.index) for c in changes(plan)]
    assert got == [("replace", "public", "invoice_user_order_idx")], summary(plan)
    sql = [op.sql for op in plan.changes[0].operations]
    assert 'CREATE INDEX CONCURRENTLY invoice_user_order_idx ON public.invoice ("order", "user")' in sql, sql


def test_partitioned_index_built_on_only_is_invalid_and_rebuilt(dsn, run_sql, tmp_path):
    """`CREATE INDEX ... ON ONLY parent` leaves the parent index INVALID until every
    partition's index is attached: the plan says rebuild, not replace, not no-op."""
    run_sql(dsn, PARTITIONED_DDL)
    run_sql(dsn, "CREATE INDEX events_id_idx ON ONLY events (id)")
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'events_id_idx'::regclass") == [(False,)]
    spec = write_spec(tmp_path, """
        version: 1
        indexes:
          - {name: events_tenantId_createdAt_idx, table: events, columns: [tenantId, createdAt DESC]}
          - {name: events_kind_idx, table: events, columns: [{expression: lower(kind)}], where: kind IS NOT NULL}
          - {name: events_id_idx, table: events, columns: [id]}
        """)
    plan, _ = plan_for(dsn, spec)
    got = summary(plan)
    assert [(a, i) for a, i, _, _ in got] == [("rebuild", "events_id_idx")], got
    assert "partition" in got[0][3][0]


# ---------------------------------------------------------------------------------------------
# A real hot standby (pg_basebackup -R, its own socket, streaming)


def test_plan_and_drift_on_a_hot_standby_are_read_only_and_say_so(dsn, run_sql, tmp_path, standby):
    """On a streaming replica: plan and drift work, say they are on a standby, compare exactly
    (the predicates whose text is unsure, the timestamp literal, are printed by the server
    through EXPLAIN), and apply is refused before anything is tried."""
    import pgserver

    def cli(*args):
        return run_cli(*args, timeout=120)

    run_sql(dsn, TABLE_DDL)
    for s in UNSURE_SQL:
        run_sql(dsn, s)
    run_sql(dsn, """CREATE INDEX ix_recent ON "userAccount" ("orgId") WHERE "createdAt" >= '2024-01-01'""")
    spec = tmp_path / "indexes.yaml"
    spec.write_text(textwrap.dedent(UNSURE_SPEC) + """  - {name: ix_recent, table: userAccount, columns: [orgId], where: "\\"createdAt\\" >= '2024-01-01'"}\n""")
    replica = standby.dsn(psycopg.conninfo.conninfo_to_dict(dsn)["dbname"])
    pgserver.wait_replicated(dsn, replica)
    assert run_sql(replica, "SELECT pg_is_in_recovery()") == [(True,)]

    r = cli("plan", "-f", str(spec), "--database", replica, "--detailed-exitcode")
    assert r.returncode == 0 and "No changes" in r.stdout, r.stdout + r.stderr
    assert "warning: connected to a hot standby" in r.stdout and "EXPLAIN" in r.stdout, r.stdout
    r = cli("drift", "-f", str(spec), "--database", replica, "--format", "json")
    doc = json.loads(r.stdout)
    assert r.returncode == 0 and doc["in_sync"] and any("hot standby" in w for w in doc["warnings"]), r.stdout

    # a real difference is one replace, with its reason
    spec.write_text(spec.read_text().replace("'2024-01-01'", "'2024-02-01'"))
    r = cli("plan", "-f", str(spec), "--database", replica, "--format", "json", "--detailed-exitcode")
    got = [(c["action"], c["index"]) for c in json.loads(r.stdout)["changes"]]
    assert r.returncode == 2 and got == [("replace", "ix_recent")], r.stdout
    r = cli("drift", "-f", str(spec), "--database", replica)
    assert r.returncode == 2 and "ix_recent" in r.stdout and "warning: connected to a hot standby" in r.stdout

    r = cli("apply", "-f", str(spec), "--database", replica, "--auto-approve")
    assert r.returncode == 1 and "hot standby" in r.stderr.splitlines()[0] and "Traceback" not in r.stderr, r.stderr
    r = cli("apply", "-f", str(spec), "--database", dsn, "--auto-approve")   # the primary
    assert r.returncode == 0, r.stdout + r.stderr
    pgserver.wait_replicated(dsn, replica)
    r = cli("plan", "-f", str(spec), "--database", replica, "--detailed-exitcode")
    assert r.returncode == 0, r.stdout + r.stderr
