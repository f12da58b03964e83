"""`reconciler import`: the live indexes (or a file of CREATE INDEX statements) as IndexDefs
ready for `spec.dump`."""
from __future__ import annotations

import difflib
import fnmatch
import glob
import os
import re
from pathlib import Path
from typing import Callable, Iterable

from ..core.display import shown
from ..core.index import IndexDef, LiveIndex
from ..errors import ReconcilerError, SQLFragmentError
from ..normalize import (
    attached_partition_index,
    create_index_statement,
    definition_key,
    parse_create_index,
    split_statements,
    volatile_functions,
)
from ..spec.dump import dump_spec
from ..spec.files import read_input


def importable(x: LiveIndex) -> bool:
    """Constraint-backed indexes belong to their constraint, partition children to their parent."""
    return not x.constraint and not x.parent_index


def live_to_spec(indexes: Iterable[LiveIndex], header: str = "") -> str:
    chosen = sorted((x.definition for x in indexes if importable(x)), key=lambda d: (d.schema, d.table, d.name))
    return dump_spec(chosen, header)


def defs_from_sql(path: str, warn: Callable[[str], None]) -> list[IndexDef]:
    """The CREATE INDEX statements of a SQL file as IndexDefs (partition children left out, as
    `import` does); other statements are counted and reported through `warn`."""

    text = read_input(path, "SQL file")
    defs = []
    skipped = 0
    attached: set[tuple[str, str]] = set()   # partition indexes: implied by their parent, as in import
    for line, stmt in split_statements(text):
        partition_index = attached_partition_index(stmt)
        if partition_index is not None:
            attached.add(partition_index)
            continue
        if not create_index_statement(stmt):
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
                warn(f"{path}:{line}: warning: index {d.name!r}: predicate uses {', '.join(bad)}, which is "
                          "not IMMUTABLE; PostgreSQL will refuse this index")
        defs.append(d)
    if skipped:
        warn(f"{path}: skipped {skipped} statement(s) that are not CREATE INDEX")
    return [d for d in defs if (d.schema, d.name) not in attached]


def live_defs(conn, schemas: Iterable[str], tables: Iterable[str], with_tables: bool = False):
    """The importable live indexes of every user table (of `schemas` when given), sorted, and the
    `manage.tables` globs the import covered (so prune also covers tables left with no index).
    `with_tables`: also the (schema, table) pairs of the tables `tables` chose, which
    `import --collapse` needs (a glob must reach only the schemas it was made from)."""
    from ..pg import catalog

    snap = catalog.introspect(conn, None, schemas)
    defs = sorted((x.definition for x in snap.indexes if importable(x)), key=lambda d: (d.schema, d.table, d.name))
    managed = sorted({f"{s}.{g}" for s in (schemas or {t.schema for t in snap.tables}) for g in (tables or ["*"])})
    if not with_tables:
        return defs, managed
    pairs = [(t.schema, t.name) for t in snap.tables
             if not tables or any(fnmatch.fnmatchcase(t.name, g) for g in tables)]
    return defs, managed, pairs


def import_outcome(conn, target: str, directory: str, schemas: Iterable[str], tables: Iterable[str],
                   collapse_schemas: bool = False):
    """`import` on one database of a fleet: its spec written to DIRECTORY/TARGET.yaml."""
    from ..fleet import Outcome, Status
    from ..spec.files import write_output

    check_schemas(conn, schemas)
    defs, managed, pairs = live_defs(conn, schemas, tables, with_tables=True)
    text, kept, warnings = import_spec(defs, schemas, tables, managed, "the database",
                                       collapse_tables=pairs if collapse_schemas else None)
    path = target_file(directory, target)
    write_output(path, text, "spec")   # never through a planted symlink
    return Outcome(Status.OK, 0, f"wrote {len(kept)} index(es) to {path}", "\n".join(warnings))


def target_file(directory: str | Path, target: str) -> Path:
    """DIRECTORY/TARGET.yaml: '/' becomes '__', any character outside [A-Za-z0-9_.@+-] '_', and a
    leading '.' gets a '_' before it (no hidden file). Not one-to-one: `check_target_files`
    refuses a selection where two targets meet."""
    safe = re.sub(r"[^A-Za-z0-9_.@+-]", "_", target.replace("/", "__"))
    return Path(directory) / (("_" + safe if safe.startswith(".") else safe) + ".yaml")


def check_target_files(directory: str | Path, targets: Iterable[str], force: bool) -> None:
    """Before `import --targets` connects anywhere: every selected target has a file of its own
    (names compared case-folded, as a checkout on macOS or Windows would see them), and without
    `--force` none of those files exists yet, as plain `import -o` refuses."""
    owner: dict[str, str] = {}
    existing: list[tuple[str, Path]] = []
    for name in sorted(targets):
        path = target_file(directory, name)
        key = path.name.casefold()
        if key in owner:
            raise ReconcilerError(
                f"targets {shown(owner[key])!r} and {shown(name)!r} would both be written to "
                f"{shown(target_file(directory, owner[key]))}: their names differ only in characters a file name "
                "cannot keep (or in letter case)", "rename one of them in the targets file, or select one (--target)")
        owner[key] = name
        if not force and (os.path.exists(path) or os.path.islink(path)):
            existing.append((name, path))
    if existing:
        name, path = existing[0]
        more = f" (and {len(existing) - 1} more)" if len(existing) > 1 else ""
        raise ReconcilerError(f"{shown(path)}: already exists (target {shown(name)!r}); not overwritten{more}",
                              "pass --force to replace the files, or -o another directory")


def filter_defs(defs: list[IndexDef], schemas: Iterable[str], tables: Iterable[str]) -> list[IndexDef]:
    if schemas:
        defs = [d for d in defs if d.schema in schemas]
    if tables:
        defs = [d for d in defs if any(fnmatch.fnmatchcase(d.table, g) for g in tables)]
    return defs


def check_schemas(conn, schemas: Iterable[str]) -> None:
    """Every --schema names a schema of the database: a typo must not import `indexes: []`."""
    schemas = list(schemas)
    if not schemas:
        return
    present = {r[0] for r in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname = ANY(%s)",
                                          (schemas,)).fetchall()}
    missing = [s for s in schemas if s not in present]
    if missing:
        user = [r[0] for r in conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema' "
            "ORDER BY 1").fetchall()]
        conn.rollback()
        near = [n for n in user if n.lower() == missing[0].lower()] or difflib.get_close_matches(missing[0], user, n=1)
        hint = f'did you mean "{near[0]}"?' if near else f"schemas here: {', '.join(user) or '(none)'}"
        raise ReconcilerError(f"--schema {missing[0]!r}: no such schema in this database; nothing imported", hint)
    conn.rollback()


def without_duplicates(defs: list[IndexDef]) -> tuple[list[IndexDef], list[tuple[IndexDef, IndexDef]]]:
    """The definitions with each group of identical ones (the comparison `validate` makes)
    reduced to its first, and the (left out, kept) pairs: a spec listing both would not be
    valid, and the database needs only one of them."""
    kept: list[IndexDef] = []
    first: dict = {}
    pairs: list[tuple[IndexDef, IndexDef]] = []
    for d in defs:
        try:
            key = definition_key(d)
        except SQLFragmentError:
            kept.append(d)
            continue
        if key in first:
            pairs.append((d, first[key]))
        else:
            first[key] = d
            kept.append(d)
    return kept, pairs


def import_spec(defs: list[IndexDef], schemas: Iterable[str], tables: Iterable[str], managed: list[str] | None,
                source: str, collapse_tables: list[tuple[str, str]] | None = None
                ) -> tuple[str, list[IndexDef], list[str]]:
    """The spec text of the chosen definitions, those kept, and the warnings to print: an
    identical pair (one left out, named in the file's header), a --schema or --table that
    chose nothing from a SQL file (an error), a --table glob that matched nothing.

    `collapse_tables` (`import --collapse`): the (schema, table) pairs there are; schemas whose
    indexes are the same but for the schema become one entry per index under a schema glob
    (`reconcile.expand.collapse`), and `managed` names the glob instead of each schema."""
    warnings: list[str] = []
    chosen = filter_defs(defs, schemas, tables)
    if defs and schemas and not filter_defs(defs, schemas, ()):
        have = sorted({d.schema for d in defs})
        raise ReconcilerError(f"--schema {', '.join(schemas)}: no index of {source} is in that schema; nothing "
                              "imported", f"schemas there: {', '.join(have)}")
    for g in tables:
        if not any(fnmatch.fnmatchcase(d.table, g) for d in filter_defs(defs, schemas, ())):
            warnings.append(f"warning: --table {g!r} matches no indexed table of {source}")
    kept, pairs = without_duplicates(chosen)
    if collapse_tables is not None:
        from ..reconcile.expand import collapse

        kept, globs = collapse(kept, collapse_tables)
        if managed is not None and globs:
            managed = sorted({next((g + m[len(sch):] for sch, g in globs.items() if m.startswith(sch + ".")), m)
                              for m in managed})
    header = ""
    if pairs:
        # A spec cannot list both (validate: "same definition as"). The copy goes under
        # manage.ignore, by its exact name: the imported spec plans as no change, also with
        # prune, until someone decides which of the two to drop.
        header = ("# Left out by import: identical to another index (a spec cannot list both). Each is under\n"
                  "# manage.ignore, so plan neither reports nor drops it; to drop it, take it out of ignore\n"
                  "# and set manage.prune: true:\n")
        for dup, original in pairs:
            # names from the database, in a comment: printable (`core.display.shown`), one line each
            header += (f"#   {shown(dup.schema)}.{shown(dup.name)}: same definition as "
                       f"{shown(original.schema)}.{shown(original.name)}\n")
            warnings.append(f"warning: {dup.schema}.{dup.name} and {original.schema}.{original.name} are the same "
                            f"index (identical definitions); the spec keeps {original.name} and lists "
                            f"{dup.name} under manage.ignore (it says so at the top)")
    ignore = [glob.escape(dup.name) for dup, _ in pairs]   # a name, not a pattern: * ? [ taken literally
    return dump_spec(kept, header, managed=managed, ignore=ignore), kept, warnings


def refuse_overwrite(path: str, force: bool) -> None:
    """`import -o FILE` replaces FILE only when told to: it is usually the spec itself."""
    if not force and os.path.exists(path) and not os.path.islink(path):   # a link: write_output refuses it
        raise ReconcilerError(f"{path}: already exists; not overwritten",
                              "pass --force to replace it, or -o another file")
