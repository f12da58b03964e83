"""Index health: findings from statistics rows it is handed (unused, duplicate, redundant,
invalid, bloated, foreign keys without an index, per-table hit ratio, sequential-scan share and
stale statistics), each with its evidence and the spec edit that fixes it; and what
`reconciler maintain` does about them (`health.maintain`).

Pure: no database (rows come from `pg.stats`), no clock (the server's `now()` comes with the
rows), no click. Duplicates use the core's comparison (`normalize.same_definition`), never text.
"""
from __future__ import annotations

from .assess import (
    assess,
    bloat_candidates,
    bloat_flagged,
    bloat_of,
    comparison_candidates,
    human_age,
    human_bytes,
    leftover_origin,
    stale,
)
from .model import (
    FINDING_KINDS,
    Bloat,
    BloatInputs,
    ExactBloat,
    Finding,
    ForeignKey,
    HealthReport,
    IndexHealth,
    IndexRow,
    NodeStats,
    ReplicaScans,
    SpecEdit,
    StatsSnapshot,
    TableHealth,
    TableRow,
    Thresholds,
)

__all__ = ["FINDING_KINDS", "Bloat", "BloatInputs", "ExactBloat", "Finding", "ForeignKey", "HealthReport",
           "IndexHealth", "IndexRow", "NodeStats", "ReplicaScans", "SpecEdit", "StatsSnapshot", "TableHealth",
           "TableRow", "Thresholds", "assess", "bloat_candidates", "bloat_flagged", "bloat_of",
           "comparison_candidates", "human_age", "human_bytes", "leftover_origin", "stale"]
