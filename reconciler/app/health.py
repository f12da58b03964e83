"""`reconciler health`: spec → scope and thresholds → statistics (primary, replicas, pgstatindex
for what the estimate flags) → findings.

One job: wire those in order; the decisions are `reconciler.health`'s, the reads `pg.stats`'s.
Read-only from end to end: one connection per node, READ ONLY transactions with lock and
statement timeouts.
"""
from __future__ import annotations

import gc
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..health import HealthReport, StatsSnapshot, Thresholds, assess, bloat_candidates
from ..pg import stats
from ..pg.connection import connect, resolve_dsn

if TYPE_CHECKING:   # pydantic's spec models: loaded only when a spec file is read (spec_for)
    from ..spec import Spec


@dataclass(frozen=True)
class HealthOptions:
    files: tuple[str, ...] = ()
    database: str | None = None
    all_tables: bool = False
    replicas: tuple[str, ...] = ()
    exact: bool = False
    lock_timeout_ms: int = 2000
    statement_timeout_ms: int = 60000


def spec_for(files: tuple[str, ...] | list[str], all_tables: bool) -> Spec | None:
    """The spec (its managed tables, thresholds, entries). With --all and no -f, a missing
    ./indexes.yaml is fine: every user table, default thresholds."""
    if not files and all_tables and not Path("indexes.yaml").exists():
        return None
    from ..spec import load_spec

    return load_spec(list(files) or ["indexes.yaml"])


def read_snapshot(opts: HealthOptions, spec: Spec | None, thresholds: Thresholds) -> StatsSnapshot:
    conn = connect(resolve_dsn(opts.database), autocommit=True, read_only=True,
                   lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms)
    try:
        from ..errors import ReconcilerError
        from ..pg.citus import read_citus

        citus = read_citus(conn)
        if citus is not None:
            # on a coordinator idx_scan of a distributed index is always 0: every one would be "unused"
            raise ReconcilerError(f"health does not support Citus ({citus.version}) yet: the coordinator's "
                                  "statistics do not count the scans on the shards (docs/citus.md)")
        if opts.all_tables or spec is None:
            snap = stats.read_stats(conn, None, lock_timeout_ms=opts.lock_timeout_ms,
                                    statement_timeout_ms=opts.statement_timeout_ms)
        else:
            from ..spec import glob_to_like

            snap = stats.read_stats(conn, spec.tables, patterns=[glob_to_like(g) for g in spec.table_globs]
                                    + spec.glob_entry_patterns(),
                                    lock_timeout_ms=opts.lock_timeout_ms,
                                    statement_timeout_ms=opts.statement_timeout_ms)
        if opts.replicas:
            snap = replace(snap, replicas=tuple(
                stats.read_replica(dsn, snap, lambda d: connect(d, autocommit=True, read_only=True),
                                   lock_timeout_ms=opts.lock_timeout_ms, statement_timeout_ms=opts.statement_timeout_ms)
                for dsn in opts.replicas))
        if opts.exact:
            exact, note = stats.read_exact(conn, bloat_candidates(snap, thresholds),
                                           lock_timeout_ms=opts.lock_timeout_ms)
            snap = replace(snap, exact=exact, exact_note=note)
    finally:
        conn.close()
    return snap


@contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a snapshot's rows become values and findings. That
    work allocates a few hundred thousand tuples that all stay alive (and form no cycles), so
    every collection CPython starts meanwhile finds nothing, yet its full passes walk the whole
    growing heap: at 12,000 indexes they cost about as much as the conversion itself. Reference
    counting still frees everything as usual; collection resumes on the way out (unless the
    caller had paused it already).

    On the way out the survivors are moved to the oldest generation (`gc.freeze()` then
    `gc.unfreeze()`: two list splices, and the allocation counts reset). Left where they were,
    the first allocation after the pause would start a young collection that walks every one of
    them (tens of ms at 12,000 indexes) to find the nothing they hold; from the oldest
    generation, a full collection still frees any cycle among them."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            if not gc.get_freeze_count():   # never thaw what another froze (core.lifetime, a fork's parent)
                gc.freeze()
                gc.unfreeze()
            gc.enable()


def run_health(opts: HealthOptions, spec: Spec | None = None, loaded: bool = False) -> HealthReport:
    """`spec`, when the caller already loaded it (`loaded`: a fleet run reads it once)."""
    if not loaded:
        spec = spec_for(opts.files, opts.all_tables)
    thresholds = Thresholds.from_spec(spec.health) if spec is not None else Thresholds()
    from ..core.lifetime import long_lived

    # the `reconciler` process keeps the report to its end: frozen on the way out (core.lifetime);
    # elsewhere (tests, library callers, a fleet's threads) gc_paused alone
    with long_lived(), gc_paused():
        snap = read_snapshot(opts, spec, thresholds)
        report = assess(snap, thresholds, spec, "all" if opts.all_tables or spec is None else "managed")
    if report.scope == "managed" and not snap.tables:
        report = replace(report, notes=report.notes + ("the spec manages no table (no entries, no manage.tables); "
                                                       "`--all` looks at every user table",))
    return report


def health_outcome(opts: HealthOptions, spec: Spec | None, fmt: str):
    """`health` on one database of a fleet, as an `Outcome` (a crossed threshold: exit 2)."""
    import json

    from ..fleet import Outcome, Status

    report = run_health(opts, spec, loaded=True)
    text = render_report(report, fmt)
    findings = len(getattr(report, "findings", ()) or ())
    summary = (f"{findings} finding(s); a threshold is crossed" if report.crossed else
               f"{findings} finding(s); healthy" if findings else "healthy")
    return Outcome(Status.CHANGES if report.crossed else Status.OK, 2 if report.crossed else 0, summary, text,
                   json.loads(text) if fmt == "json" else None)


def write_atomically(path: str, text: str) -> None:
    """Write a report so that a reader (node-exporter's textfile collector, a web server) never
    sees half of it: a temporary file in the same directory, then rename over the target."""
    import os
    import tempfile

    target = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=str(target.parent or Path(".")))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def render_report(report: HealthReport, fmt: str) -> str:
    with gc_paused():   # a dict or a line per index: the same reason as in run_health
        return _render(report, fmt)


def _render(report: HealthReport, fmt: str) -> str:
    from ..render.health import render_health_json, render_health_markdown, render_health_text

    if fmt == "json":
        return render_health_json(report)
    if fmt == "markdown":
        return render_health_markdown(report)
    if fmt == "prometheus":
        from ..render.prometheus import render_health_prometheus

        return render_health_prometheus(report)
    if fmt == "html":
        from ..render.html import render_health_html

        return render_health_html(report)
    return render_health_text(report)
