"""`init`: write a starter indexes.yaml (from a live database or a schema file) and a GitHub
workflow that plans pull requests."""
from __future__ import annotations

import json
from pathlib import Path

import click

from ..errors import ReconcilerError
from ..spec.files import write_output
from .group import cli
from .options import EXIT_CODES_HELP, _connection, note

DEFAULT_ACTION = "reconciler/reconciler@v0"


@cli.command(epilog=EXIT_CODES_HELP)
@click.option("-d", "--database", help="import the live indexes of this database (DSN)")
@click.option("--schema-sql", type=click.Path(),
              help="import from this DDL file (loaded into a throwaway embedded PostgreSQL); the workflow "
                   "then plans against it, with no database access")
@click.option("--schema", "schemas", multiple=True, help="only this schema (repeatable)")
@click.option("--dir", "directory", default=".", show_default=True, type=click.Path(file_okay=False),
              help="where to write (the repository root)")
@click.option("--action", "action_ref", default=DEFAULT_ACTION, show_default=True,
              help="the reconciler GitHub Action the workflow uses (owner/repo@ref)")
@click.option("--no-workflow", is_flag=True, help="write the spec only")
@click.option("--force", is_flag=True, help="overwrite files that exist")
def init(database, schema_sql, schemas, directory, action_ref, no_workflow, force):
    """Write indexes.yaml (the current indexes, with comments explaining every field),
    indexes.schema.json (for editors) and .github/workflows/indexes.yml (plan on pull requests).
    Without --database/--schema-sql the spec starts empty."""
    from ..app.importer import live_defs
    from ..app.init import SCHEMA_FILE, WORKFLOW_PATH, starter_spec, workflow
    from ..spec import json_schema

    root = Path(directory)
    targets = [root / "indexes.yaml", root / SCHEMA_FILE] + ([] if no_workflow else [root / WORKFLOW_PATH])
    existing = [str(t) for t in targets if t.exists() or t.is_symlink()]   # a dangling link too
    if existing and not force:
        raise ReconcilerError(f"{existing[0]} exists; nothing written", "pass --force to overwrite")
    if database or schema_sql:
        with _connection(database, schema_sql) as (conn, _):
            defs, managed = live_defs(conn, schemas, ())
        origin = (f"Imported from {schema_sql}." if schema_sql else "Imported from the database.") + \
            " Planned against the same database, it shows no change."
    else:
        defs, managed, origin = [], None, "Add an entry per index."
    spec_text = starter_spec(defs, origin, managed)
    files = {targets[0]: spec_text, targets[1]: json.dumps(json_schema(), indent=2) + "\n"}
    if not no_workflow:
        schema_rel = None
        if schema_sql:
            p = Path(schema_sql).resolve()
            try:
                schema_rel = str(p.relative_to(root.resolve()))
            except ValueError:
                raise ReconcilerError(f"{schema_sql}: not inside {root}; the workflow needs a path in the "
                                      "repository", "pass --no-workflow, or keep the schema file in the "
                                      "repository") from None
        files[targets[2]] = workflow("indexes.yaml", schema_rel, action_ref)
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        write_output(path, text)   # never through a symbolic link planted where a file goes
        note(f"wrote {path}")
    note(f"{len(defs)} index(es) in {targets[0]}; next: `reconciler plan"
         + (f" --schema-sql {schema_sql}`" if schema_sql else "`"))
