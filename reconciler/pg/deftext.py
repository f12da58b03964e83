"""Where the words of a pg_get_indexdef() text begin: the prefix that holds the names, rebuilt
from the catalog row and cut off, never searched for.

pg_get_indexdef prints `CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING method (keys)
...`, each name through quote_identifier(). A name read from the database is untrusted: an index
called `x USING btree (y` or a schema called `a WHERE b` holds the very text a search would stop
at. Light (no sqlglot): health reads its shape keys from here without loading normalize, and
the catalog reads the plain ordering words of a key (`server_key_suffix`) without it too.
"""
from __future__ import annotations

from ..core.ident import quote_ident
from ..errors import DatabaseError


class UnexpectedDefinition(DatabaseError):
    """pg_get_indexdef() text that does not start as the catalog row says it must."""


def server_quote_ident(name: str) -> str:
    """The name as the server's quote_ident() (quote_identifier, as pg_get_indexdef uses it)
    prints it, for rows that do not carry the server's own quoting: core.ident's quoting but
    for a name with a hidden character, which the server wraps in plain double quotes where
    core.ident writes a U&"..." escape. (The keyword list is this client's; a row read by
    `read_index_rows` carries the server's quoting, which is used instead.)"""
    q = quote_ident(name)
    return '"' + name.replace('"', '""') + '"' if q.startswith("U&") else q


def definition_heads(r: dict) -> list[str]:
    """`CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING method (` as pg_get_indexdef
    prints it for the row (pg_get_indexdef_worker in ruleutils.c: ONLY for a partitioned index),
    built from the catalog names quoted by the server (`quoted_*` of indexes.sql) or, failing
    those, as the server would quote them. Two for a table in the session's own temporary
    schema (`own_temp`): PostgreSQL 16+ prints that schema as `pg_temp`, older ones by name."""
    heads = [_head(r, r.get("quoted_table") or f"{server_quote_ident(r['schema'])}.{server_quote_ident(r['table'])}")]
    if r.get("own_temp"):
        heads.insert(0, _head(r, f"pg_temp.{server_quote_ident(r['table'])}"))
    return heads


def _head(r: dict, qtable: str) -> str:
    return (f"CREATE {'UNIQUE ' if r['is_unique'] else ''}INDEX {r.get('quoted_name') or server_quote_ident(r['name'])} "
            f"ON {'ONLY ' if r.get('partitioned') else ''}{qtable} "
            f"USING {r.get('quoted_method') or server_quote_ident(r['method'])} (")


# The option words pg_get_indexdef prints after a key when it has no COLLATE and no operator
# class of its own (ruleutils.c, pg_get_indexdef_worker: " DESC", then " NULLS LAST" when a
# DESC key's nulls are not first; " NULLS FIRST" alone for an ASC key), read as
# normalize.key_suffix reads them (tests/test_health.py checks each against it).
_ORDER_WORDS: dict[str, tuple[None, None, bool, bool | None]] = {
    "": (None, None, False, None),
    " DESC": (None, None, True, None),
    " DESC NULLS LAST": (None, None, True, False),
    " NULLS FIRST": (None, None, False, True),
}


def server_key_suffix(suffix: str) -> tuple[str | None, str | None, bool, bool | None]:
    """What follows one key in the server's own pg_get_indexdef words → (collation, opclass,
    desc, nulls_first). The ordering words the server prints for a key without COLLATE or
    operator class are looked up, exactly as written; anything else (a collation, an operator
    class, any other spelling) is read by `normalize.key_suffix` (sqlglot's tokenizer, loaded
    only then): a read of 12,000 plain keys does not pay for the SQL parser."""
    got = _ORDER_WORDS.get(suffix)
    if got is not None:
        return got
    from ..normalize import key_suffix

    return key_suffix(suffix)


def definition_tail(r: dict) -> str:
    """The row's pg_get_indexdef() text from the opening parenthesis of its key list on
    (`(keys) [INCLUDE (...)] [NULLS NOT DISTINCT] [WITH (...)] [TABLESPACE t] [WHERE ...]`): the
    prefix holding the names is checked against `definition_heads` and cut, never searched, so
    an index, table or schema named like ` USING btree (` or ` WHERE ` cannot move what is read.
    Text that does not start with that prefix is an error naming the index and the text."""
    text: str = r["indexdef"]
    qtable = r.get("quoted_table")
    if qtable is not None and not r.get("own_temp"):   # the common case, once per row health reads
        head = _head(r, qtable)
        if text.startswith(head):
            return text[len(head) - 1:]
    heads = definition_heads(r)
    for head in heads:
        if text.startswith(head):
            return text[len(head) - 1:]
    raise UnexpectedDefinition(
        f"index {server_quote_ident(r['schema'])}.{server_quote_ident(r['name'])}: pg_get_indexdef() "
        f"does not start with the expected {heads[-1]!r}: {text!r}")
