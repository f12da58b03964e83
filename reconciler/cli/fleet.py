"""The options every command takes to run on a fleet (`--targets FILE` and its selectors), and
the one place a fleet run is printed: each target as it finishes, the summary at the end."""
from __future__ import annotations

import click

from ..errors import ReconcilerError

FLEET_FORMATS = ("text", "json", "markdown", "sql")

# The session of a read-only command on each target: the one `options._connection` opens for a
# single database (every transaction read-only unless it says READ WRITE, catalog reads bounded
# by the lock and statement timeouts; see `pg.connection.connect`).
READ_ONLY = {"autocommit": True, "read_only": True}


def fleet_options(f):
    f = click.option("--shard", metavar="K/N", help="with --targets: only shard K of N of the selected targets "
                                                    "(dealt by name; N CI jobs cover every target once)")(f)
    f = click.option("--fail-fast", is_flag=True, help="with --targets: start no other target once one fails")(f)
    f = click.option("--parallel", type=click.IntRange(1, 256), default=4, show_default=True,
                     help="with --targets: how many targets at a time (worker processes on Linux, else "
                          "threads)")(f)
    f = click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
                     help="with --targets: only targets with this label (repeatable: all must hold; KEY!=VALUE "
                          "excludes; the value may be a glob)")(f)
    f = click.option("--target", "target_globs", multiple=True, metavar="GLOB",
                     help="with --targets: only targets whose name matches (repeatable: a union)")(f)
    f = click.option("--targets", "targets_file", type=click.Path(), metavar="FILE",
                     help="run on every database of this targets file (docs/fleet.md), in parallel")(f)
    return f


def fleet_requested(targets_file, target_globs=(), labels=(), shard=None, fail_fast=False, **single) -> bool:
    """True for a fleet run; refuses selectors without --targets and --targets with a database."""
    if not targets_file:
        used = [flag for flag, v in (("--target", target_globs), ("--label", labels), ("--shard", shard),
                                     ("--fail-fast", fail_fast)) if v]
        if used:
            raise ReconcilerError(f"{used[0]} selects targets of a targets file; it needs --targets FILE")
        return False
    clash = [flag for flag, v in single.items() if v]
    if clash:
        raise ReconcilerError(f"--targets runs on the databases of {targets_file}; it cannot be combined with "
                              f"{clash[0]}")
    return True


def event_echo(target, fmt: str, registry):
    """How a fleet job prints its command's event log (apply, maintain) as it happens: each line
    with the target's name (text: `[name] ...`; json: a "target" key), whole lines, through the
    fleet's parent."""
    import json

    def echo(text=""):
        out = []
        for line in str(text).splitlines() or [""]:
            if fmt == "json":
                try:
                    doc = json.loads(line)
                except ValueError:
                    doc = {"event": "text", "detail": line}
                out.append(json.dumps({"target": target.name, **doc}, default=str, ensure_ascii=False))
            else:
                out.append(f"[{target.name}] {line}")
        registry.say("\n".join(out))

    return echo


def run_fleet_command(targets_file, target_globs, labels, shard, parallel, fail_fast, fmt: str, job,
                      prepare=None) -> int:
    """Run `job` on every selected target, print each result as it finishes and the summary;
    returns the combined exit code. `prepare(targets)` may refuse the run before any job."""
    from ..app.fleet import FleetOptions, run_fleet
    from ..fleet import combined_exit_code, parse_selection, parse_shard
    from ..render.fleet import (
        render_summary_json,
        render_summary_text,
        render_target_json,
        render_target_text,
    )

    if fmt not in FLEET_FORMATS:
        raise ReconcilerError(f"--format {fmt} makes one document per database; with --targets use text, json "
                              "(one line per target) or markdown", "or run the command once per target (--target NAME)")
    opts = FleetOptions(targets_file, parse_selection(target_globs, labels), parse_shard(shard), parallel, fail_fast)

    def show(r) -> None:
        click.echo(render_target_json(r) if fmt == "json" else render_target_text(r), nl=False)

    results = run_fleet(opts, job, show, prepare=prepare, on_message=click.echo)
    if opts.shard is not None and not results:
        click.echo(f"shard {opts.shard}: no target (the selection has fewer targets than shards)", err=True)
    click.echo(render_summary_json(results) if fmt == "json" else render_summary_text(results), nl=False)
    return combined_exit_code(results)
