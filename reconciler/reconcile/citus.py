"""Citus: what reconciler refuses on a database with the `citus` extension (docs/citus.md).

One job: decide, from the Citus facts the catalog read handed over (`CitusFacts`) and the
planned changes, which changes are unsafe on a Citus cluster, as one-line reasons:
- any change on a worker node (shards are hidden from pg_class there; DDL goes through the
  coordinator);
- a change to an index of a distributed partitioned table (CONCURRENTLY is impossible on the
  parent, and the ON ONLY + per-partition + ATTACH flow is untested against Citus);
- a UNIQUE index on a hash-distributed table without its distribution column as a key column,
  or any UNIQUE index on an append-distributed one (Citus refuses them, or with
  citus.allow_unsafe_constraints keeps uniqueness per shard only);
- a TABLESPACE on an index of a distributed table (Citus refuses it).
Pure: rows in, reasons out.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from ..core.plan import Change

DISTRIBUTED = {"h": "hash", "a": "append", "r": "range"}   # pg_dist_partition.partmethod; 'n': reference/local


@dataclass(frozen=True)
class CitusFacts:
    version: str
    coordinator: bool
    # (schema, table) -> (partmethod, distribution column or None)
    tables: dict[tuple[str, str], tuple[str, str | None]] = field(default_factory=dict)

    def distributed(self, schema: str, table: str) -> tuple[str, str | None] | None:
        got = self.tables.get((schema, table))
        return got if got is not None and got[0] in DISTRIBUTED else None


def worker_refusal(facts: CitusFacts | None) -> str | None:
    if facts is None or facts.coordinator:
        return None
    return (f"this database is a Citus {facts.version} worker node: shards are hidden from its catalog and DDL "
            "must go through the coordinator; run reconciler against the coordinator")


def unsafe_changes(facts: CitusFacts | None, changes: Iterable[Change]) -> list[str]:
    """One reason per change Citus cannot carry out safely (docs/citus.md), in change order."""
    if facts is None:
        return []
    out = []
    for c in changes:
        dist = facts.distributed(c.schema, c.table)
        if dist is None:
            continue
        method, column = dist
        what = f"{c.action} {c.schema}.{c.index} on distributed table {c.table}"
        if c.table_facts.kind == "p":
            out.append(f"{what}: the table is partitioned; CREATE INDEX CONCURRENTLY cannot run on a partitioned "
                       "parent and the per-partition flow is not supported on Citus (docs/citus.md)")
            continue
        d = c.desired
        if d is None:
            continue
        if d.unique:
            keys = [k.expr for k in d.keys if not k.is_expression]
            if method == "a":
                out.append(f"{what}: Citus allows no UNIQUE index on an append-distributed table")
            elif method in ("h", "r") and column is not None and column not in keys:
                out.append(f"{what}: a UNIQUE index must contain the distribution column {column!r} as a key "
                           "column (Citus refuses it, or keeps uniqueness per shard only)")
        if d.tablespace:
            out.append(f"{what}: Citus refuses TABLESPACE for an index of a distributed table")
    return out
