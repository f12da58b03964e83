"""The values `health` decides from and the verdicts it hands back: the rows `pg.stats` read
(`StatsSnapshot`), the thresholds (`Thresholds`), and the report (`Finding`, `SpecEdit`,
`IndexHealth`, `TableHealth`, `HealthReport`). Immutable; the per-index values (there are
12,000 of each in a big catalog) are NamedTuples, which cost a tenth of a frozen dataclass to
build. No I/O, no clock.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from ..core.index import IndexDef

# Finding kinds: stable lowercase codes (they are Prometheus label values and JSON keys), with
# what each means. `severity` "warning" crosses a threshold (exit 2); "info" is shown only.
FINDING_KINDS: dict[str, str] = {
    "unused": "no scans on any node for as long as the statistics cover (and at least unused_min_stats_age)",
    "unused_fk_cover": "no scans, but the only index covering a foreign key: kept (deletes and key updates "
                       "on the referenced table would scan this table without it)",
    "duplicate": "the same definition as another valid index on the table",
    "redundant": "its key columns are a leading prefix of another valid btree index with the same predicate, "
                 "collations, operator classes and ordering",
    "invalid_building": "INVALID because a backend is building it right now",
    "invalid_abandoned": "INVALID and nobody is building it: the leftover of a failed or cancelled build",
    "bloated": "wasted space over max_bloat_ratio (and at least min_bloat_size)",
    "fk_unindexed": "a foreign key whose columns lead no valid index",
    "low_hit_ratio": "index blocks found in shared buffers below min_index_hit_ratio",
    "seq_scan_heavy": "sequential scans above max_seq_scan_ratio of all scans",
    "stale_statistics": "rows modified since the last ANALYZE over 50 + max_stale_ratio of the rows",
}

# Sample floors: below them a ratio says nothing (one cold read is not a hit ratio).
MIN_HIT_RATIO_BLOCKS = 1000
MIN_SEQ_SCAN_SAMPLE = 100


@dataclass(frozen=True)
class Thresholds:
    """`health:` of the spec, in seconds and bytes."""

    min_index_hit_ratio: float = 0.99
    max_seq_scan_ratio: float = 0.01
    unused_min_stats_age: int = 30 * 86400
    max_bloat_ratio: float = 0.5
    min_unused_size: int = 1024 ** 2
    min_bloat_size: int = 1024 ** 2
    min_table_rows: int = 10000
    max_stale_ratio: float = 0.1

    @classmethod
    def from_spec(cls, health: Any) -> "Thresholds":
        """From `spec.models.Health` (or anything with the same attributes)."""
        return cls(**{k: getattr(health, k) for k in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


class BloatInputs(NamedTuple):
    """What the btree estimate needs, from pg_class and pg_stats (`pg/sql/health_indexes.sql`)."""

    relpages: int
    reltuples: float              # -1: never vacuumed/analyzed (PostgreSQL 14+)
    fillfactor: int               # leaf fillfactor (btree default 90)
    data_width: float             # sum over stored columns of (1 - null_frac) * avg_width
    has_nulls: bool               # some stored column has null_frac > 0: a null bitmap per tuple
    missing_stats: bool           # a stored column has no pg_stats row (never analyzed)
    name_typed: bool              # a `name` column: its stats do not match its storage (is_na)


@dataclass(frozen=True)
class ExactBloat:
    """pgstattuple's pgstatindex() of one btree index: it reads every page."""

    index_size: int
    leaf_pages: int
    internal_pages: int
    empty_pages: int
    deleted_pages: int
    avg_leaf_density: float | None   # percent; None when the index has no leaf pages


class IndexRow(NamedTuple):
    """One index as the statistics and the catalog describe it (on the primary)."""

    oid: int
    table_oid: int
    schema: str
    table: str
    name: str
    method: str
    size_bytes: int
    scans: int
    tuples_read: int
    tuples_fetched: int
    blocks_hit: int
    blocks_read: int
    valid: bool = True
    ready: bool = True
    unique: bool = False
    primary: bool = False
    exclusion: bool = False
    replica_identity: bool = False
    constraint: str | None = None
    constraint_type: str | None = None     # p, u, x
    partial: bool = False
    key_attnums: tuple[int, ...] = ()      # key columns; 0 = an expression
    include_attnums: tuple[int, ...] = ()
    # per key column (attnum, operator class, collation, ordering flags) from pg_index's arrays:
    # two keys that differ here can never compare equal, so only possible pairs are read in full
    key_signature: tuple[tuple, ...] = ()
    partitioned: bool = False              # a partitioned (parent) index: relkind 'I'
    parent_oid: int | None = None          # the partitioned index it is attached to
    last_scan: datetime | None = None      # PostgreSQL 16+: pg_stat_*_indexes.last_idx_scan
    being_built_by: int | None = None      # pid of a backend building it right now
    bloat: BloatInputs | None = None       # btree only

    @property
    def constraint_backed(self) -> bool:
        return self.constraint is not None or self.primary or self.exclusion


@dataclass(frozen=True)
class TableRow:
    """One table's statistics (pg_stat_user_tables + pg_statio_user_tables)."""

    oid: int
    schema: str
    name: str
    kind: str = "r"                       # r, p, m
    live_rows: int = 0
    dead_rows: int = 0
    reltuples: float = 0
    seq_scans: int = 0
    index_scans: int = 0
    seq_tuples_read: int = 0
    modified_since_analyze: int = 0
    last_analyze: datetime | None = None  # latest of manual and auto
    last_vacuum: datetime | None = None
    index_blocks_hit: int = 0
    index_blocks_read: int = 0
    size_bytes: int = 0
    indexes_bytes: int = 0
    parent_oid: int | None = None

    @property
    def rows(self) -> int:
        """Live rows; the planner's estimate (reltuples) when a statistics reset zeroed the count."""
        return max(self.live_rows, int(self.reltuples))


@dataclass(frozen=True)
class ForeignKey:
    oid: int
    name: str
    table_oid: int
    schema: str
    table: str
    attnums: tuple[int, ...]
    columns: tuple[str, ...]
    ref_schema: str
    ref_table: str


@dataclass(frozen=True)
class NodeStats:
    """Where statistics came from and since when. `stats_since` is the youngest reset that
    bounds them: the database's `stats_reset`, or the cluster's (pg_stat_archiver, set when the
    server first started or discarded its statistics after a crash), whichever is later."""

    name: str                       # "primary" or the replica's host/db
    role: str                       # primary | replica
    now: datetime
    stats_since: datetime | None
    since_source: str = ""          # what stats_since is: "database stats_reset" | "cluster statistics reset"
    server_version: int = 0


@dataclass(frozen=True)
class ReplicaScans:
    """A replica's scans of the primary's indexes, matched by (schema, index name)."""

    node: NodeStats
    scans: dict[tuple[str, str], tuple[int, datetime | None]] = field(default_factory=dict)
    missing: tuple[str, ...] = ()   # indexes the replica does not have


@dataclass(frozen=True)
class StatsSnapshot:
    """Everything `health` decides from, read in one READ ONLY transaction per node."""

    database: str
    node: NodeStats
    tables: tuple[TableRow, ...]
    indexes: tuple[IndexRow, ...]
    foreign_keys: tuple[ForeignKey, ...] = ()
    replicas: tuple[ReplicaScans, ...] = ()
    skipped: tuple[str, ...] = ()           # relations skipped: an ACCESS EXCLUSIVE lock is held or queued
    exact: dict[int, ExactBloat] = field(default_factory=dict)   # oid -> pgstatindex
    exact_note: str | None = None           # why --exact could not run, if it could not
    # oid -> definition (and pg_get_indexdef text) of the indexes a comparison needs: read only
    # for `comparison_candidates`
    definitions: dict[int, IndexDef] = field(default_factory=dict)
    indexdefs: dict[int, str] = field(default_factory=dict)
    block_size: int = 8192
    maxalign: int = 8


# ---- the verdicts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecEdit:
    """The change to indexes.yaml that fixes a finding: remove the entry at file:line, or add
    `yaml` (one list item, ready to paste under `indexes:`) to `file`."""

    action: str                 # remove | add
    index: str
    file: str | None = None
    line: int | None = None
    yaml: str | None = None

    def describe(self) -> str:
        if self.action == "remove":
            return f"remove the entry {self.index!r} at {self.file}:{self.line}"
        return f"add to {self.file or 'indexes.yaml'} under indexes:\n{self.yaml}"

    def to_dict(self) -> dict[str, Any]:
        return {"action": self.action, "index": self.index, "file": self.file, "line": self.line, "yaml": self.yaml}


@dataclass(frozen=True)
class Finding:
    kind: str
    severity: str                      # warning | info
    schema: str
    table: str
    index: str | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    edit: SpecEdit | None = None
    sql: str | None = None             # what to run where the spec cannot say it
    fix: str | None = None             # the reconciler command that fixes it

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "severity": self.severity, "schema": self.schema, "table": self.table,
                "index": self.index, "message": self.message, "evidence": self.evidence,
                "edit": self.edit.to_dict() if self.edit else None, "sql": self.sql, "fix": self.fix}


class Bloat(NamedTuple):
    ratio: float | None            # None: no estimate (reason in `note`)
    wasted_bytes: int
    method: str                    # estimate | pgstatindex
    note: str | None = None


class IndexHealth(NamedTuple):
    """The per-index line of the report."""

    row: IndexRow
    in_spec: bool
    spec_where: str | None            # file:line of its entry
    scans_total: int                  # every node
    bloat: Bloat | None
    node_scans: tuple[tuple[str, int], ...] = ()   # (node name, scans) for each node, primary first


@dataclass(frozen=True)
class TableHealth:
    row: TableRow
    hit_ratio: float | None           # None: fewer than MIN_HIT_RATIO_BLOCKS block reads
    seq_scan_ratio: float | None      # None: no scans, or not judged (see seq_scan_note)
    stale: bool


@dataclass(frozen=True)
class HealthReport:
    database: str
    thresholds: Thresholds
    nodes: tuple[NodeStats, ...]
    indexes: tuple[IndexHealth, ...]
    tables: tuple[TableHealth, ...]
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()
    scope: str = "managed"            # managed | all

    @property
    def crossed(self) -> bool:
        """True when any threshold is crossed: `health` exits 2."""
        return any(f.severity == "warning" for f in self.findings)

    def counts(self) -> dict[str, int]:
        out = {k: 0 for k in FINDING_KINDS}
        for f in self.findings:
            out[f.kind] = out.get(f.kind, 0) + 1
        return out
