"""One SQL fragment (expression, predicate) → a checked sqlglot tree: one expression, no
statement, no comment, no subquery; which functions in it are not IMMUTABLE; which columns it names."""
from __future__ import annotations

from functools import lru_cache

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import ParseError, TokenError
from sqlglot.tokens import TokenType

from ..core.lexical import fragment_problem
from ..errors import SQLFragmentError

DIALECT = Postgres()

# Functions PostgreSQL would refuse in an index (not IMMUTABLE). sqlglot turns some of them
# into dedicated nodes (now() → CurrentTimestamp), the rest stay Anonymous.
_VOLATILE_NODES = {
    exp.CurrentDate: "CURRENT_DATE",
    exp.CurrentTimestamp: "now()/CURRENT_TIMESTAMP",
    exp.CurrentTime: "CURRENT_TIME",
    exp.Rand: "random()",
}
for _name, _label in (("CurrentUser", "CURRENT_USER"), ("CurrentSchema", "CURRENT_SCHEMA"),
                      ("SessionUser", "SESSION_USER"), ("Localtime", "LOCALTIME"),
                      ("Localtimestamp", "LOCALTIMESTAMP"), ("CurrentTimestampLTZ", "CURRENT_TIMESTAMP"),
                      ("Uuid", "gen_random_uuid()")):  # sqlglot reads gen_random_uuid() as Uuid
    if hasattr(exp, _name):
        _VOLATILE_NODES[getattr(exp, _name)] = _label
_VOLATILE_FUNCTIONS = frozenset(
    """now clock_timestamp statement_timestamp transaction_timestamp timeofday random
    random_normal setseed gen_random_uuid uuid_generate_v1 uuid_generate_v4 uuidv4 uuidv7 nextval
    currval lastval current_setting localtime localtimestamp current_date current_time
    current_timestamp current_user session_user current_schema current_role txid_current
    pg_backend_pid inet_client_addr""".split()
)


def _short(text: str) -> str:
    return text if len(text) <= 80 else text[:77] + "..."


def _fail(what: str, text: str, message: str, hint: str | None = None) -> SQLFragmentError:
    return SQLFragmentError(f"{what} {text!r}: {message}", hint)


@lru_cache(maxsize=65536)
def parse_fragment(text: str, what: str = "expression") -> exp.Expression:
    """Parse one SQL expression. Refuse statements, several expressions and comments.

    >>> parse_fragment('"deletedAt" IS NULL').sql("postgres")
    '"deletedAt" IS NULL'
    """
    # PostgreSQL's own lexical rules first: sqlglot's tokenizer reads some strings differently
    # (backslashes), and the fragment is sent to the server, not to sqlglot.
    problem = fragment_problem(text)
    if problem:
        hint = "remove the -- or /* */ comment" if "comment" in problem else None
        raise _fail(what, text, problem, hint)
    try:
        tokens = DIALECT.tokenize(text)
    except TokenError as e:
        raise _fail(what, text, f"cannot be read as SQL ({e})") from None
    if not tokens:
        raise _fail(what, text, "is empty")
    for tok in tokens:
        if tok.comments:
            raise _fail(what, text, "contains an SQL comment; a fragment must be one expression",
                        "remove the -- or /* */ comment")
        if tok.token_type == TokenType.SEMICOLON:
            raise _fail(what, text, "contains ';': a fragment must be one expression, not statements")
    try:
        trees = DIALECT.parser().parse(tokens, text)
    except ParseError as e:
        msg = str(e).splitlines()[0]
        raise _fail(what, text, f"is not a valid SQL expression ({msg})") from None
    except RecursionError:
        raise _fail(what, _short(text), "is nested too deeply to read") from None
    trees = [t for t in trees if t is not None]
    if len(trees) != 1:
        raise _fail(what, text, "must be exactly one SQL expression")
    tree = trees[0]
    if isinstance(tree, (exp.Query, exp.DDL, exp.DML, exp.Command, exp.Set, exp.Use, exp.Alias)) or \
            type(tree).__name__ in {"Create", "Drop", "Insert", "Update", "Delete", "Alter", "Transaction"}:
        raise _fail(what, text, f"is a {type(tree).__name__.upper()} statement, not an expression")
    if tree.find(exp.Query):
        raise _fail(what, text, "contains a subquery; PostgreSQL does not allow subqueries in an index")
    if _depth(tree) > MAX_DEPTH:
        # the comparison rules walk trees recursively: refuse here, with the entry's file:line,
        # what they could not walk later
        raise _fail(what, _short(text), f"is nested more than {MAX_DEPTH} levels deep")
    return tree


MAX_DEPTH = 500


def _depth(tree: exp.Expression) -> int:
    deepest, stack = 0, [(tree, 1)]
    while stack:
        node, d = stack.pop()
        deepest = max(deepest, d)
        stack.extend((child, d + 1) for child in node.iter_expressions())
    return deepest


def volatile_functions(text: str, what: str = "expression") -> list[str]:
    """Names of functions in `text` that are not IMMUTABLE (PostgreSQL refuses them in an index).

    >>> volatile_functions("createdAt >= CURRENT_DATE - INTERVAL '1 month'")
    ['CURRENT_DATE']
    """
    return list(_volatile_functions(text, what))


@lru_cache(maxsize=16384)
def _volatile_functions(text: str, what: str) -> tuple[str, ...]:
    # one walk per distinct text: a tenant spec repeats its expressions on every table
    found: list[str] = []
    for node in parse_fragment(text, what).walk():
        label = _VOLATILE_NODES.get(type(node))
        if label is None and isinstance(node, exp.Anonymous) and str(node.this).lower() in _VOLATILE_FUNCTIONS:
            label = f"{str(node.this).lower()}()"
        if label is None and isinstance(node, exp.Column) and not node.table and \
                not node.this.quoted and node.name.lower() in ("current_date", "localtimestamp", "localtime",
                                                               "current_role", "current_catalog"):
            label = node.name.upper()
        if label and label not in found:
            found.append(label)
    return tuple(found)


def column_references(text: str, what: str = "expression") -> list[tuple[str, bool]]:
    """Every column a fragment names, as (name as PostgreSQL resolves it, was it quoted)."""
    out = []
    for col in parse_fragment(text, what).find_all(exp.Column):
        ident = col.this
        if isinstance(ident, exp.Identifier):
            out.append((ident.this if ident.quoted else ident.this.lower(), bool(ident.quoted)))
    return out
