"""Options and helpers every command shares: spec files, the connection, durations, colors."""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager, nullcontext

import click

from ..errors import ReconcilerError

EXIT_OK, EXIT_ERROR, EXIT_CHANGES = 0, 1, 2

EXIT_CODES_HELP = """
\b
Exit codes: 0 success / in sync, 1 any error, 2 changes present
(drift always; plan with --detailed-exitcode).
"""

CONNECTION_HELP = ("DSN; default $DATABASE_URL, else libpq's PG* variables. Give the password through "
                   "$DATABASE_URL, PGPASSWORD or ~/.pgpass, not here: other users can read a command line "
                   "(reconciler hides it as soon as it starts, where the platform allows). Passwords are never "
                   "printed.")


class Output:
    """What -q/-v/--no-color asked for, for this process (one CLI invocation).

    quiet:   results and errors only (no notes, no progress);
    verbose: notes plus details on stderr (spec, target, timings) and, for an unexpected
             error, the traceback."""

    def __init__(self) -> None:
        self.quiet = False
        self.verbose = 0
        self.no_color = False


OUTPUT = Output()


def _set_output(ctx: click.Context, param: click.Parameter, value) -> None:
    if not value:
        return
    if param.name == "quiet":
        OUTPUT.quiet = True
    elif param.name == "verbose":
        OUTPUT.verbose += value
    else:
        OUTPUT.no_color = True
    if OUTPUT.quiet and OUTPUT.verbose:
        raise click.UsageError("-q/--quiet and -v/--verbose cannot be combined", ctx)


_OUTPUT_PARAMS = (
    (("-q", "--quiet"), dict(is_flag=True, help="print results and errors only")),
    (("-v", "--verbose"), dict(count=True, help="also print details (spec, target, timings) on stderr")),
    (("--no-color",), dict(is_flag=True, help="no ANSI colors (also: the NO_COLOR environment variable)")),
)


def output_options(cmd: click.Command) -> click.Command:
    """Add -q/-v/--no-color to a command (or group) unless it already has them. They are not
    passed to the callback: they set `OUTPUT`, which `note`, `detail` and `_color` read."""
    have = {o for p in cmd.params for o in getattr(p, "opts", ())}
    for decls, kw in _OUTPUT_PARAMS:
        if not have & set(decls):
            cmd.params.append(click.Option(decls, expose_value=False, callback=_set_output, **kw))
    return cmd


def _color(stream) -> bool:
    return not OUTPUT.no_color and stream.isatty() and "NO_COLOR" not in os.environ


def _echo_err(message: str) -> None:
    """One line on stderr, made printable and free of secrets: messages quote names from the
    database, spec values and server errors (`core.display.shown`, `core.redact.scrub`)."""
    from ..core.display import shown
    from ..core.redact import scrub

    click.echo(shown(scrub(message)), err=True)


def note(message: str) -> None:
    """A remark for the person at the terminal (stderr): left out with -q."""
    if not OUTPUT.quiet:
        click.echo(message, err=True)


def detail(message: str) -> None:
    """A detail (stderr) shown with -v only."""
    if OUTPUT.verbose:
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


def _write_options(*, dry_run_help: str, build_help: str, wait_default: str, wait_help: str):
    """The options of the commands that change the database (apply, maintain), in one place:
    approval, dry run, the timeouts, retries, the event log format and the wait for another
    run's advisory lock. Each command words what its dry run, builds and wait mean."""
    stack = [
        click.option("--auto-approve", is_flag=True, help="do not ask for confirmation"),
        click.option("--dry-run", is_flag=True, help=dry_run_help),
        click.option("--lock-timeout", default="3s", show_default=True, help="lock wait per statement and try"),
        click.option("--statement-timeout", default="60s", show_default=True, help="limit for quick statements"),
        click.option("--build-timeout", default="0", show_default=True, help=build_help),
        click.option("--retries", default=5, show_default=True, help="retries of a statement after a lock timeout"),
        click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
                     help="event log format"),
        click.option("--wait-for-lock", default=wait_default, show_default=True, help=wait_help),
    ]

    def decorate(f):
        for option in reversed(stack):   # the first in the list is the first in --help
            f = option(f)
        return f
    return decorate


def _select_option(f):
    return click.option("--select", "select", multiple=True, metavar="tag=NAME|name=GLOB|table=GLOB",
                        help="only these spec indexes (repeatable, a union), like Terraform's -target; the rest "
                             "of the spec is still validated")(f)


def _files(files) -> list[str]:
    return list(files) if files else ["indexes.yaml"]



@contextmanager
def _connection(database: str | None, schema_sql: str | None, *, lock_timeout_ms: int | None = None,
                statement_timeout_ms: int | None = None, autocommit: bool = True):
    """A read-only session (plan, drift, validate, import, verify), always in autocommit: every
    transaction is read-only unless it says READ WRITE (see `pg.connection.connect`)."""
    from ..pg.connection import connect, resolve_dsn

    if schema_sql:
        from ..pg.embedded import database as db   # a server of our own: only for --schema-sql

        detail(f"target: a throwaway embedded PostgreSQL loaded from {schema_sql}")
        target = db(database, schema_sql, on_warning=_echo_err)
    else:
        target = nullcontext(resolve_dsn(database))
    with target as dsn:
        conn = connect(dsn, autocommit=True, read_only=True, lock_timeout_ms=lock_timeout_ms,
                       statement_timeout_ms=statement_timeout_ms)
        if not schema_sql:
            from ..pg.connection import describe

            detail(f"target: {describe(dsn)} (PostgreSQL {conn.info.server_version})")
        try:
            yield conn, dsn
        finally:
            conn.close()



def load_spec_files(files):
    from ..core.lifetime import long_lived
    from ..spec import load_spec

    with long_lived():   # the spec lives to the end of the command
        spec = load_spec(_files(files))
    detail(f"spec: {len(spec.entries)} index(es) from {', '.join(spec.files)}")
    return spec


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


