"""What a query of the spec is: one statement or several, and whether running it could write.

One job: classify a query's text before anything executes it (`verify --analyze` runs queries;
a plain EXPLAIN never does). Conservative on purpose: whatever sqlglot cannot read is treated
as data-modifying. This is the first guard only; the real one is the READ ONLY transaction the
query runs in (PostgreSQL refuses INSERT/UPDATE/DELETE/MERGE, SELECT FOR UPDATE, nextval() and
DDL there), always rolled back. Functions that act outside the transaction (signalling another
backend, advisory locks, NOTIFY, dblink) are not stopped by READ ONLY, hence the list below.
Pure: no database.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass

import sqlglot
from sqlglot import exp

# Functions whose effects a READ ONLY transaction neither stops nor rolls back (or that
# write where READ ONLY does not look): a query calling one is never executed unless
# --allow-writes says so. Names compared in lower case.
SIDE_EFFECT_FUNCTIONS = frozenset("""
pg_terminate_backend pg_cancel_backend pg_reload_conf pg_rotate_logfile pg_switch_wal pg_create_restore_point
pg_advisory_lock pg_advisory_lock_shared pg_advisory_xact_lock pg_advisory_xact_lock_shared pg_try_advisory_lock
pg_try_advisory_lock_shared pg_try_advisory_xact_lock pg_try_advisory_xact_lock_shared pg_advisory_unlock
pg_advisory_unlock_shared pg_advisory_unlock_all pg_notify set_config setval nextval
dblink dblink_exec dblink_send_query dblink_connect pg_file_write pg_file_unlink pg_file_rename
lo_import lo_export lo_create lo_unlink lo_put lo_from_bytea lo_open pg_stat_reset pg_stat_reset_shared
pg_stat_statements_reset pg_replication_origin_create pg_create_logical_replication_slot
pg_create_physical_replication_slot pg_drop_replication_slot pg_logical_emit_message pg_promote
""".split())

_READING = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
_WRITING = (exp.Insert, exp.Update, exp.Delete, exp.Merge)
_NEVER = (exp.Create, exp.Drop, exp.Alter, exp.Command, exp.TruncateTable, exp.Copy, exp.Set, exp.Transaction,
          exp.Commit, exp.Rollback, exp.Into, exp.Lock)


@dataclass(frozen=True)
class StatementInfo:
    statements: int             # how many statements the text holds (0 when it does not parse)
    modifies: bool              # running it could change data (or sqlglot could not tell)
    reason: str = ""            # why it counts as modifying, for the user


def classify_statement(sql: str) -> StatementInfo:
    """`SELECT ... FROM t` → StatementInfo(1, False); `WITH d AS (DELETE ...) SELECT` → modifies."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)  # "falling back to parsing as a Command" is our business, not stderr's
    try:
        trees = [t for t in sqlglot.parse(sql, read="postgres") if t is not None]
    except (sqlglot.errors.ParseError, sqlglot.errors.TokenError, ValueError):
        return StatementInfo(0, True, "sqlglot cannot read it, so it counts as data-modifying")
    finally:
        logger.setLevel(level)
    if len(trees) != 1:
        return StatementInfo(len(trees), True, f"{len(trees)} statements")
    tree = trees[0]
    for node in tree.walk():
        if isinstance(node, _WRITING):
            return StatementInfo(1, True, f"it runs {type(node).__name__.upper()}")
        if isinstance(node, exp.Lock):
            return StatementInfo(1, True, "it locks rows (FOR UPDATE/SHARE)")
        if isinstance(node, exp.Into):
            return StatementInfo(1, True, "SELECT INTO creates a table")
        if isinstance(node, _NEVER):
            return StatementInfo(1, True, f"{_first_word(sql)} is not a query")
        if isinstance(node, exp.Func):
            name = (node.name if isinstance(node, exp.Anonymous) else node.sql_name()).lower()
            if name in SIDE_EFFECT_FUNCTIONS:
                return StatementInfo(1, True, f"it calls {name}(), which acts outside the transaction")
    if not isinstance(tree, _READING):
        return StatementInfo(1, True, f"{_first_word(sql)} is not a query")
    return StatementInfo(1, False)


def _first_word(sql: str) -> str:
    words = sql.split()
    return words[0].upper() if words else "it"
