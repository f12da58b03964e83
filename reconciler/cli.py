"""The `reconciler` command: parse flags, call the library, print, map errors to exit codes.

Exit codes (every command):
  0  success / in sync
  1  any error (bad spec, bad flag, unreachable database, refused change, stale plan)
  2  changes present (`drift` always, `plan` with --detailed-exitcode)
Only this module imports click; every failure a user can cause arrives as a ReconcilerError
and is printed once, as one line plus an optional hint, with no traceback.
"""
from __future__ import annotations

import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import click

from .errors import ReconcilerError

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


def _files(files) -> list[str]:
    return list(files) if files else ["indexes.yaml"]


@contextmanager
def _connection(database: str | None, schema_sql: str | None, *, autocommit: bool = False):
    from .connection import connect, database as db

    with db(database, schema_sql) as dsn:
        conn = connect(dsn, autocommit=autocommit)
        try:
            yield conn, dsn
        finally:
            conn.close()


@click.group(epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="reconciler")
def cli() -> None:
    """Declarative index-as-code for PostgreSQL.

    Write every index you want in indexes.yaml; `plan` compares it with the live catalog and
    `apply` carries it out with CREATE/DROP INDEX CONCURRENTLY.
    """


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "sql"]), default="text",
              show_default=True)
@click.option("--out", type=click.Path(), help="also save the plan to this file, for `apply --plan`")
@click.option("--detailed-exitcode", is_flag=True, help="exit 2 when there are changes, 0 when in sync")
@click.option("--lock-timeout", default="3s", show_default=True, help="per-statement lock wait (e.g. 3s, 500ms)")
@click.option("--statement-timeout", default="60s", show_default=True, help="limit for quick statements")
@click.option("--build-timeout", default="0", show_default=True, help="limit for one concurrent build (0: none)")
def plan(files, database, schema_sql, fmt, out, detailed_exitcode, lock_timeout, statement_timeout, build_timeout):
    """Show what apply would change (read-only)."""
    from .engine import check_spec, make_plan
    from .render import plan_to_file, render_json, render_markdown, render_sql, render_text
    from .spec import load_spec

    spec = load_spec(_files(files))
    desired = check_spec(spec)
    timeouts = _timeouts(lock_timeout, statement_timeout, build_timeout)
    with _connection(database, schema_sql) as (conn, _):
        the_plan, _cmp = make_plan(conn, spec, timeouts=timeouts, desired=desired)
    renderers = {"text": lambda p: render_text(p, _color(sys.stdout)), "json": render_json,
                 "markdown": render_markdown, "sql": render_sql}
    click.echo(renderers[fmt](the_plan), nl=False)
    if out:
        Path(out).write_text(plan_to_file(the_plan, spec.files))
        if fmt == "text":
            click.echo(f"Saved the plan to {out}; run `reconciler apply --plan {out}`.")
    if detailed_exitcode and not the_plan.empty:
        sys.exit(EXIT_CHANGES)


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def drift(files, database, schema_sql, fmt):
    """Report every difference on managed tables (for cron). Exit 2 when anything differs."""
    from .engine import check_spec, make_plan
    from .render import render_drift

    spec = load_spec_files(files)
    desired = check_spec(spec)
    with _connection(database, schema_sql) as (conn, _):
        the_plan, _cmp = make_plan(conn, spec, desired=desired)
    click.echo(render_drift(the_plan, fmt), nl=False)
    if not the_plan.empty or any(d.kind != "ignored" for d in the_plan.drift):
        sys.exit(EXIT_CHANGES)


def load_spec_files(files):
    from .spec import load_spec

    return load_spec(_files(files))


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@_db_options
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def validate(files, database, schema_sql, fmt):
    """Check a spec: offline always; against a database with --database / --schema-sql."""
    from . import validate as v

    spec = load_spec_files(files)
    problems, defs = v.offline(spec)
    if database or schema_sql:
        with _connection(database, schema_sql) as (conn, _):
            problems += v.online(spec, defs, conn)
    errors = [p for p in problems if p.severity == "error"]
    if fmt == "json":
        click.echo(json.dumps({"valid": not errors, "problems": [p.__dict__ for p in problems]}, indent=2))
    else:
        for p in problems:
            click.echo(p.line(), err=p.severity == "error")
        if not errors:
            click.echo(f"{len(spec.entries)} index(es) in {len(spec.files)} file(s): valid"
                       + (f" ({len(problems)} warning(s))" if problems else "") + ".")
    if errors:
        sys.exit(EXIT_ERROR)


@cli.command("import", epilog=EXIT_CODES_HELP)
@_db_options
@click.option("--schema", "schemas", multiple=True, help="only this schema (repeatable)")
@click.option("--table", "tables", multiple=True, help="only tables matching this glob (repeatable)")
@click.option("--from-sql", type=click.Path(), help="read CREATE INDEX statements from a file instead (no database)")
@click.option("-o", "--output", type=click.Path(), help="write here instead of stdout")
def import_(database, schema_sql, schemas, tables, from_sql, output):
    """Write the live indexes (or a file of CREATE INDEX statements) as a spec."""
    import fnmatch

    from .importer import dump_spec, importable

    managed = None
    if from_sql:
        defs = _defs_from_sql(from_sql)
    else:
        from . import catalog

        with _connection(database, schema_sql) as (conn, _):
            snap = catalog.introspect(conn, None, schemas)
        defs = sorted((x.definition for x in snap.indexes if importable(x)),
                      key=lambda d: (d.schema, d.table, d.name))
        managed = sorted({f"{s}.{g}" for s in (schemas or {t.schema for t in snap.tables}) for g in (tables or ["*"])})
    if schemas:
        defs = [d for d in defs if d.schema in schemas]
    if tables:
        defs = [d for d in defs if any(fnmatch.fnmatchcase(d.table, g) for g in tables)]
    text = dump_spec(defs, managed=managed)
    if output:
        Path(output).write_text(text)
        _echo_err(f"Wrote {len(defs)} index(es) to {output}.")
    else:
        click.echo(text, nl=False)


def _defs_from_sql(path: str):
    from .connection import split_statements
    from .errors import SQLFragmentError
    from .normalize import parse_create_index, unquote, volatile_functions
    import re

    try:
        text = Path(path).read_text()
    except OSError as e:
        raise ReconcilerError(f"{path}: cannot read: {e.strerror}") from None
    defs = []
    skipped = 0
    attached: set[tuple[str, str]] = set()   # partition indexes: implied by their parent, as in import
    name = r'(?:"(?:[^"]|"")*"|[\w$]+)(?:\s*\.\s*(?:"(?:[^"]|"")*"|[\w$]+))?'
    for line, stmt in split_statements(text):
        m = re.match(rf"\s*ALTER\s+INDEX\s+(?:IF\s+EXISTS\s+)?{name}\s+ATTACH\s+PARTITION\s+({name})\s*$", stmt, re.I)
        if m:
            parts = [unquote(p) for p in re.findall(r'"(?:[^"]|"")*"|[\w$]+', m.group(1))]
            attached.add((parts[0], parts[1]) if len(parts) == 2 else ("public", parts[0]))
            continue
        if not re.match(r"\s*CREATE\s+(UNIQUE\s+)?INDEX\b", stmt, re.I):
            skipped += 1
            continue
        try:
            d = parse_create_index(stmt)
        except SQLFragmentError as e:
            raise ReconcilerError(f"{path}:{line}: {e.message}") from None
        if not d.name:
            raise ReconcilerError(f"{path}:{line}: CREATE INDEX without a name; the spec needs one")
        if d.where is not None:
            bad = volatile_functions(d.where, "predicate")
            if bad:
                _echo_err(f"{path}:{line}: warning: index {d.name!r}: predicate uses {', '.join(bad)}, which is "
                          "not IMMUTABLE; PostgreSQL will refuse this index")
        defs.append(d)
    if skipped:
        _echo_err(f"{path}: skipped {skipped} statement(s) that are not CREATE INDEX")
    return [d for d in defs if (d.schema, d.name) not in attached]


@cli.command(epilog=EXIT_CODES_HELP)
@_spec_option
@click.option("-d", "--database", help=CONNECTION_HELP)
@click.option("--plan", "plan_file", type=click.Path(), help="apply a plan saved by `plan --out` (refused if stale)")
@click.option("--auto-approve", is_flag=True, help="do not ask for confirmation")
@click.option("--dry-run", is_flag=True, help="print the statements, run nothing")
@click.option("--lock-timeout", default="3s", show_default=True, help="lock wait per statement and try")
@click.option("--statement-timeout", default="60s", show_default=True, help="limit for quick statements")
@click.option("--build-timeout", default="0", show_default=True,
              help="limit for one concurrent build, including waiting for old transactions (0: none)")
@click.option("--retries", default=5, show_default=True, help="retries of a statement after a lock timeout")
@click.option("--allow-hazard", "allowed", multiple=True, help="allow a blocking hazard code (repeatable)")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="event log format")
@click.option("--wait-for-lock", default="0", show_default=True,
              help="how long to wait when another apply runs (0: exit 1 at once)")
def apply(files, database, plan_file, auto_approve, dry_run, lock_timeout, statement_timeout, build_timeout,
          retries, allowed, fmt, wait_for_lock):
    """Carry out the plan with CREATE/DROP INDEX CONCURRENTLY. Exit 0 when the database then
    matches the spec."""
    from .applycmd import run_apply

    ok = run_apply(files=_files(files) if not plan_file or files else [], database=database, plan_file=plan_file,
                   auto_approve=auto_approve, dry_run=dry_run,
                   timeouts=_timeouts(lock_timeout, statement_timeout, build_timeout), retries=retries,
                   allowed=set(allowed), fmt=fmt, wait_for_lock=_duration_ms(wait_for_lock, "--wait-for-lock"),
                   confirm=_confirm, echo=click.echo, color=_color(sys.stdout))
    if not ok:
        sys.exit(EXIT_ERROR)


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        raise ReconcilerError("refusing to prompt: stdin is not a terminal", "pass --auto-approve to apply without a prompt")
    return click.confirm(question, default=False)


@cli.command(epilog=EXIT_CODES_HELP)
def schema():
    """Print the JSON Schema of indexes.yaml (for editors)."""
    from .spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


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
    from .planner import Timeouts

    return Timeouts(_duration_ms(lock, "--lock-timeout"), _duration_ms(statement, "--statement-timeout"),
                    _duration_ms(build, "--build-timeout"))


def main(argv=None) -> None:
    """Entry point: run the group, print one line per error, never a traceback."""
    try:
        rv = cli.main(args=argv, prog_name="reconciler", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.Abort:
        _echo_err("aborted")
        sys.exit(EXIT_ERROR)
    except click.ClickException as e:
        _echo_err(f"error: {e.format_message()}")
        if isinstance(e, click.UsageError) and e.ctx is not None:
            _echo_err(f"hint: see `{e.ctx.command_path} --help`")
        sys.exit(EXIT_ERROR)
    except ReconcilerError as e:
        _echo_err(f"error: {e.message}")
        if e.hint:
            _echo_err(f"hint: {e.hint}")
        sys.exit(EXIT_ERROR)
    except KeyboardInterrupt:
        _echo_err("interrupted")
        sys.exit(EXIT_ERROR)
    except BrokenPipeError:
        sys.exit(EXIT_ERROR)
    except Exception as e:  # psycopg and friends: still one line, never a traceback
        import psycopg

        if isinstance(e, psycopg.errors.LockNotAvailable):
            _echo_err("error: another session holds a lock on a managed table (lock timeout); nothing changed")
            _echo_err("hint: try again later")
            sys.exit(EXIT_ERROR)
        from .catalog import scrub

        _echo_err(f"error: {type(e).__name__}: {scrub(str(e)).strip().splitlines()[0] if str(e).strip() else ''}")
        if os.environ.get("RECONCILER_DEBUG"):
            raise
        sys.exit(EXIT_ERROR)
    sys.exit(rv if isinstance(rv, int) else EXIT_OK)


if __name__ == "__main__":  # pragma: no cover
    main()
