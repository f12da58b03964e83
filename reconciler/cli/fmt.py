"""`fmt`: rewrite spec files in the canonical layout (comments kept); `--check` for CI."""
from __future__ import annotations

import difflib
import sys
from pathlib import Path

import click

from ..core.display import shown
from ..core.ident import has_hidden
from ..errors import SpecError
from ..spec.files import read_input
from .group import cli
from .options import EXIT_CHANGES, EXIT_CODES_HELP, note


def _spec_paths(paths) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths or ["indexes.yaml"]):
        if p.is_dir():
            found = sorted(list(p.glob("*.yaml")) + list(p.glob("*.yml")))
            if not found:
                raise SpecError(f"{p}: no *.yaml files in this directory")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise SpecError(f"{p}: no such file")
    return out


@cli.command(epilog="""
\b
With --check: exit 2 when a file is not in canonical layout (nothing is written),
0 when every file is; 1 on any error (an invalid spec is never rewritten).
""" + EXIT_CODES_HELP)
@click.argument("paths", nargs=-1, type=click.Path())
@click.option("--check", is_flag=True, help="write nothing; exit 2 if any file would change")
@click.option("--diff", "show_diff", is_flag=True, help="print what would change as a unified diff")
def fmt(paths, check, show_diff):
    """Rewrite spec files (default ./indexes.yaml; a directory means its *.yaml) in the canonical
    layout: key order, shorthand columns where exact, flow style for short lists. Comments kept."""
    from ..spec.fmt import format_spec

    changed = []
    for path in _spec_paths(paths):
        text = read_input(str(path), "spec file")   # a regular file of bounded size, UTF-8
        new = format_spec(text, str(path))
        if new == text:
            continue
        changed.append(path)
        if show_diff:
            # the lines of the file as they are, but a terminal must not act on what they hold
            diff = "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True),
                                                f"{path}", f"{path} (formatted)"))
            if has_hidden(diff.replace("\n", "").replace("\t", "")):
                diff = "".join(c if c in "\n\t" else shown(c) for c in diff)
            click.echo(diff, nl=False)
        if check:
            note(f"would reformat {path}")
        else:
            path.write_text(new)
            note(f"reformatted {path}")
    if check and changed:
        sys.exit(EXIT_CHANGES)
