"""`show`: a saved plan file, in any format (reads the file only)."""
from __future__ import annotations

import sys

import click

from .group import cli
from .options import EXIT_CHANGES, EXIT_CODES_HELP, _color


@cli.command(epilog=EXIT_CODES_HELP)
@click.argument("planfile", type=click.Path())
@click.option("--format", "fmt", type=click.Choice(["text", "json", "markdown", "sql"]), default="text",
              show_default=True)
@click.option("--detailed-exitcode", is_flag=True, help="exit 2 when the plan has changes, 0 when empty")
@click.option("-f", "--file", "files", multiple=True, type=click.Path(),
              help="spec file(s) to compare the plan's spec digest with (default: the files the plan names)")
def show(planfile, fmt, detailed_exitcode, files):
    """Show a plan saved by `plan --out` (its age, spec and target, then the plan). No database.

    Says whether the spec changed since the plan was made (then `apply --plan` would refuse it)."""
    from ..app.show import describe_json, header_lines, load_saved_plan, spec_check
    from ..render import render_json, render_markdown, render_sql, render_text

    saved = load_saved_plan(planfile)
    status = spec_check(saved, list(files))
    if fmt == "json":
        click.echo(describe_json(saved, render_json(saved.plan), status), nl=False)
    elif fmt == "text":
        click.echo("\n".join(header_lines(saved, status)) + "\n")
        click.echo(render_text(saved.plan, _color(sys.stdout)), nl=False)
    elif fmt == "markdown":
        click.echo(render_markdown(saved.plan), nl=False)
    else:
        click.echo("\n".join("-- " + h for h in header_lines(saved, status)))
        click.echo(render_sql(saved.plan), nl=False)
    if detailed_exitcode and not saved.plan.empty:
        sys.exit(EXIT_CHANGES)
