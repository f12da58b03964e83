"""What one target's run came to, and what a fleet's results add up to (counts, exit code).

Exit codes combine as the single-database commands define them, worst first: 1 when any
target failed or was not run, else 2 when any target's command said "changes" (drift, plan
with --detailed-exitcode, a query that misses its index), else 0. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Iterable


class Status(str, Enum):
    """How one target ended (the words of the summary table and of `--format json`)."""

    OK = "ok"              # in sync / done
    CHANGES = "changes"    # the command found something to change or report
    FAILED = "failed"      # an error: unreachable, locked by another apply, refused, ...
    SKIPPED = "skipped"    # not run: --fail-fast after another target failed, or interrupted

    def __str__(self) -> str:
        return self.value


@dataclass(frozen=True)
class Outcome:
    """What a command's run on one database came to (the job's answer; the runner adds the
    target, its labels and the time)."""

    status: Status
    exit_code: int
    summary: str
    output: str = ""
    document: dict[str, Any] | None = None


@dataclass(frozen=True)
class TargetResult:
    target: str
    status: Status
    exit_code: int                      # what the single-database command would have exited with
    summary: str                        # one line: "No changes.", "Plan: 1 to create, ...", the error
    seconds: float = 0.0
    output: str = ""                    # the command's own report for this target (text formats)
    document: dict[str, Any] | None = None   # the command's JSON document for this target
    hint: str | None = None
    labels: tuple[tuple[str, str], ...] = field(default=())

    @property
    def failed(self) -> bool:
        return self.status in (Status.FAILED, Status.SKIPPED)


def combined_exit_code(results: Iterable[TargetResult]) -> int:
    codes = [1 if r.failed else r.exit_code for r in results]
    if any(c == 1 for c in codes):
        return 1
    return 2 if any(c == 2 for c in codes) else 0


def counts(results: Iterable[TargetResult]) -> dict[Status, int]:
    out = {s: 0 for s in Status}
    for r in results:
        out[r.status] += 1
    return out
