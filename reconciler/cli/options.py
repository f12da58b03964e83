"""Options and helpers every command shares: spec files, the connection, durations, colors."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager

import click

from ..errors import ReconcilerError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

EXIT_CODES_HELP = """
\b
Exit codes: 0 success / in sync, 1 any error, 2 changes present
(drift always; plan with --detailed-exitcode).
"""

CONNECTION_HELP = "DSN; default $DATABASE_URL, else libpq's PG* variables. Passwords are never printed."


def _color(stream) -> bool:
    return stream.isatty() and "NO_COLOR" not in os.environ


def _echo_err(message: str) -> None:
    click.echo(message, err=True)


def _spec_option(f):
    return click.option("-f", "--file", "files", multiple=True, type=click.Path(), default=None,
                        help="spec file or directory (repeatable); default ./indexes.yaml")(f)


def _db_options(f):
    f = click.option("--schema-sql", type=click.Path(),
                     help="instead of a database: start a throwaway embedded PostgreSQL, load this DDL "
                          "file, and work against it")(f)
    f = click.option("-d", "--database", help=CONNECTION_HELP)(f)
    return f


def _select_option(f):
    return click.option("--select", "select", multiple=True, metavar="tag=NAME|name=GLOB|table=GLOB",
                        help="only these spec indexes (repeatable, a union), like Terraform's -target; the rest "
                             "of the spec is still validated")(f)


def _files(files) -> list[str]:
    return list(files) if files else ["indexes.yaml"]



@contextmanager
def _connection(database: str | None, schema_sql: str | None, *, autocommit: bool = False):
    from ..pg.connection import connect
    from ..pg.embedded import database as db

    with db(database, schema_sql) as dsn:
        conn = connect(dsn, autocommit=autocommit)
        try:
            yield conn, dsn
        finally:
            conn.close()



def load_spec_files(files):
    from ..spec import load_spec

    return load_spec(_files(files))


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ReconcilerError("refusing to prompt: stdin is not a terminal", "pass --auto-approve to apply without a prompt")
    return click.confirm(question, default=False)




def _duration_ms(text: str, flag: str) -> int:
    t = str(text).strip().lower()
    units = [("ms", 1), ("min", 60000), ("s", 1000), ("m", 60000), ("h", 3600000)]
    try:
        for suffix, mult in units:
            if t.endswith(suffix):
                return int(float(t[: -len(suffix)]) * mult)
        return int(float(t) * 1000)
    except ValueError:
        raise ReconcilerError(f"{flag}: cannot read duration {text!r} (examples: 500ms, 3s, 2min, 1h, 0)") from None


def _timeouts(lock, statement, build):
    from ..reconcile.planner import Timeouts

    return Timeouts(_duration_ms(lock, "--lock-timeout"), _duration_ms(statement, "--statement-timeout"),
                    _duration_ms(build, "--build-timeout"))


