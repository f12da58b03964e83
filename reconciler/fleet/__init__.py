"""Fleets: which databases a run covers, and running one job per database.

One job: the targets file (`--targets targets.yaml`: names, connection by environment variable
or libpq service, never a password, labels, SQL that lists more targets), which targets a run
selects (`--target GLOB`, `--label k=v`, `--shard K/N`), a bounded pool that runs one job per
target and hands each result back as it finishes, and the combined result (summary, exit code).

Pure apart from the pool's threads and worker processes: this room never connects (the job it
is handed does), and keeps nothing process-wide: every target's state lives in its own job.
"""
from __future__ import annotations

from .pool import run_pool
from .result import Outcome, Status, TargetResult, combined_exit_code, counts
from .select import Shard, TargetSelection, apply_shard, parse_selection, parse_shard, select_targets
from .targets import Target, TargetsFile, discovered_targets, load_targets, parse_targets

__all__ = ["Outcome", "Shard", "Status", "Target", "TargetResult", "TargetSelection", "TargetsFile", "apply_shard",
           "combined_exit_code", "counts", "discovered_targets", "load_targets", "parse_selection", "parse_shard",
           "parse_targets", "run_pool", "select_targets"]
