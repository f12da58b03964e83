"""Plan → a SQL script for psql (autocommit, one statement at a time).

The script means what it shows: names in statements are quoted identifiers (a name with a
control character is a Unicode-escaped identifier), literals are written so that they read
the same under either standard_conforming_strings (and the script sets it on, as our own
sessions do, for the spec's fragments), and every comment line is made printable, so no name
or reason can end a comment and start a line psql would run (`\\! shell command`)."""
from __future__ import annotations

import hashlib

from ..core.display import shown
from ..core.ident import qualified, quote_literal
from ..core.kinds import OpKind
from ..core.plan import Plan
from .common import _title, summary_line


def render_sql(plan: Plan) -> str:
    out = ["-- reconciler plan: run with psql in autocommit, one statement at a time",
           "-- (CONCURRENTLY cannot run in a transaction block; partition steps use psql's \\gset).",
           "-- " + summary_line(plan), "SET standard_conforming_strings = on;", ""]
    for pc in plan.changes:
        c = pc.change
        out.append(f"-- {c.action} {_title(c)}")
        for r in c.reasons:
            out.append(f"--   {shown(r)}")
        for op in pc.operations:
            if op.kind is OpKind.CHECK_UNIQUE:
                out.append(f"-- duplicate check (must return no row): {shown(op.sql)};")
                continue
            if op.kind is OpKind.ATTACH:
                parent = qualified(c.schema, c.index) if op.parent == c.desired.qualified_table else \
                    ":" + _psql_var(op.parent)
                out.append(f"ALTER INDEX {parent} ATTACH PARTITION :{_psql_var(op.table)};")
                continue
            if op.kind in (OpKind.BUILD_PARTITION, OpKind.BUILD_SUBPARENT):
                out.append(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms';")
                out.append(f"SET statement_timeout = '{op.statement_timeout_ms or 0}ms';")
                out.append(op.sql + ";")
                # PostgreSQL names the partition's index; look it up for the ATTACH (psql \gset)
                out.append("SELECT format('%I.%I', n.nspname, c.relname) AS " + _psql_var(op.table)
                           + " FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON "
                           f"n.oid = c.relnamespace WHERE i.indrelid = {quote_literal(op.table)}::regclass AND NOT "
                           "c.relispartition ORDER BY c.oid DESC LIMIT 1 \\gset")
                continue
            out.append(f"SET lock_timeout = '{op.lock_timeout_ms or 0}ms';")
            out.append(f"SET statement_timeout = '{op.statement_timeout_ms or 0}ms';")
            out.append(op.sql + ";")
        out.append("")
    return "\n".join(out) + "\n"


def _psql_var(table: str) -> str:
    return "rc_" + hashlib.md5(table.encode()).hexdigest()[:8]
