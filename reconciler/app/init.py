"""`reconciler init`: a starter indexes.yaml (the live indexes, or none, with comments that
explain every field) and a GitHub workflow that plans every pull request.

One job: the text of the files. It writes nothing itself (the CLI does, and refuses to
overwrite); the indexes come from `importer` so they plan as "no change" right away.
"""
from __future__ import annotations

from typing import Iterable

from ..core.index import IndexDef
from ..spec.dump import dump_spec

SCHEMA_FILE = "indexes.schema.json"
WORKFLOW_PATH = ".github/workflows/indexes.yml"

SPEC_HEADER = """\
# yaml-language-server: $schema={schema_file}
#
# indexes.yaml: every index these tables should have. `reconciler plan` compares it with the
# database and shows what would change; `reconciler apply` makes the change with
# CREATE/DROP INDEX CONCURRENTLY.
# {origin}
#
# Each entry under `indexes:` (only name, table and columns are required):
#   name:      the index name, taken literally (case kept), at most 63 bytes
#   table:     the table or materialized view, taken literally (case kept)
#   schema:    defaults to `defaults.schema` (public)
#   columns:   key columns in order: `name`, `name DESC`, `name DESC NULLS LAST`, or the long form
#              {{column: name, order: desc, nulls: last, opclass: text_pattern_ops, collation: C}}
#              or {{expression: lower(email)}} (SQL: quote "camelCase" names there)
#   unique:    true for a UNIQUE index (nulls_not_distinct: true to treat NULLs as equal)
#   include:   INCLUDE columns of a covering index
#   where:     the predicate of a partial index, in SQL
#   using:     btree (default), hash, gin, gist, brin or spgist
#   with:      storage options, e.g. {{fillfactor: 90}}
#   tablespace, comment: as in CREATE INDEX / COMMENT ON INDEX
#
# manage:
#   prune:  true drops indexes on managed tables that are not listed here (off by default)
#   ignore: index-name globs never touched nor reported, e.g. ["*_pkey"]
#   tables: more managed tables as 'schema.table' globs, even with no entry
#
# `reconciler fmt` keeps this file tidy; `reconciler validate` checks it offline.
"""


def starter_spec(defs: Iterable[IndexDef], origin: str, managed: list[str] | None = None) -> str:
    defs = list(defs)
    text = dump_spec(defs, SPEC_HEADER.format(schema_file=SCHEMA_FILE, origin=origin), managed=managed)
    if not defs:
        # an empty list plans as "no change"; the example shows the shape
        text = text.replace("indexes: []\n", "indexes: []\n"
                            "#  - name: orders_customer_created_idx\n"
                            "#    table: orders\n"
                            "#    columns: [customer_id, created_at DESC]\n")
    return text


def workflow(spec_path: str, schema_sql: str | None, action_ref: str) -> str:
    """A pull-request workflow that posts the plan as one comment, updated on every push."""
    paths = [spec_path] + ([schema_sql] if schema_sql else [])
    target = (f"          schema-sql: {schema_sql}   # a throwaway embedded PostgreSQL: no database access needed\n"
              if schema_sql else
              "          database-url: ${{ secrets.DATABASE_URL }}   # read-only access is enough for plan\n")
    return (
        "# Plan index changes on every pull request that touches the spec; the plan is posted as one\n"
        "# pull-request comment that later pushes update. Made by `reconciler init`.\n"
        "name: indexes\n"
        "on:\n"
        "  pull_request:\n"
        "    paths:\n"
        + "".join(f"      - {p}\n" for p in paths)
        + "permissions:\n"
        "  contents: read\n"
        "  pull-requests: write   # the plan comment\n"
        "jobs:\n"
        "  plan:\n"
        "    runs-on: ubuntu-latest\n"
        "    steps:\n"
        "      - uses: actions/checkout@v4\n"
        f"      - uses: {action_ref}\n"
        "        id: plan\n"
        "        with:\n"
        "          command: plan\n"
        f"          spec: {spec_path}\n"
        + target
    )
