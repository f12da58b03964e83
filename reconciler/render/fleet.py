"""A fleet run's results: one block (text) or one JSON line per target as it finishes, and the
summary at the end (a table, or a last JSON line). Deterministic text; no database."""
from __future__ import annotations

import json
from typing import Iterable

from ..core.display import json_safe, shown
from ..fleet import Status, TargetResult, combined_exit_code, counts

FORMAT_VERSION = 1
_WORDS = {Status.OK: "ok", Status.CHANGES: "changes", Status.FAILED: "FAILED", Status.SKIPPED: "not run"}


def render_target_text(r: TargetResult, show_output: bool = True) -> str:
    """`== name: summary (1.23s)`, then the command's own report when there is something to see."""
    head = f"== {shown(r.target)}: " + (f"{_WORDS[r.status]}: " if r.failed else "") + \
        f"{shown(r.summary)} ({r.seconds:.2f}s)"
    out = [head]
    if r.hint and r.failed:
        out.append(f"   hint: {shown(r.hint)}")
    if show_output and r.output.strip() and r.status != Status.OK:
        out.append(r.output.rstrip("\n"))
    return "\n".join(out) + "\n"


def target_document(r: TargetResult) -> dict:
    doc = {"format_version": FORMAT_VERSION, "target": r.target, "labels": dict(r.labels), "status": str(r.status),
           "exit_code": 1 if r.failed else r.exit_code, "seconds": round(r.seconds, 3), "summary": r.summary}
    if r.hint:
        doc["hint"] = r.hint
    if r.document is not None:
        doc["result"] = r.document
    return doc


def render_target_json(r: TargetResult) -> str:
    return json_safe(json.dumps(target_document(r), ensure_ascii=False, separators=(",", ":"))) + "\n"


def summary_words(results: Iterable[TargetResult]) -> str:
    results = list(results)
    c = counts(results)
    parts = [f"{c[Status.OK]} ok", f"{c[Status.CHANGES]} with changes", f"{c[Status.FAILED]} failed"]
    if c[Status.SKIPPED]:
        parts.append(f"{c[Status.SKIPPED]} not run")
    return f"{len(results):,} target{'s' if len(results) != 1 else ''}: " + ", ".join(parts) + "."


def render_summary_text(results: Iterable[TargetResult]) -> str:
    rows = sorted(results, key=lambda r: r.target)
    if not rows:
        return "No target selected.\n"
    width = min(40, max(len("target"), *(len(shown(r.target)) for r in rows)))
    out = ["", f"{'target':<{width}}  {'status':<8}  {'time':>8}  result"]
    for r in rows:
        out.append(f"{shown(r.target):<{width}}  {_WORDS[r.status]:<8}  {r.seconds:7.2f}s  {shown(r.summary)}")
    out.append(summary_words(rows) + f" Exit code {combined_exit_code(rows)}.")
    return "\n".join(out) + "\n"


def render_summary_json(results: Iterable[TargetResult]) -> str:
    rows = list(results)
    c = counts(rows)
    doc = {"format_version": FORMAT_VERSION, "summary": {"targets": len(rows), **{str(s): n for s, n in c.items()}},
           "exit_code": combined_exit_code(rows),
           "failed": sorted(r.target for r in rows if r.status == Status.FAILED),
           "changes": sorted(r.target for r in rows if r.status == Status.CHANGES)}
    return json_safe(json.dumps(doc, ensure_ascii=False, separators=(",", ":"))) + "\n"
