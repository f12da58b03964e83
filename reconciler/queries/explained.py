"""One EXPLAIN (FORMAT JSON) document → what a reviewer asks of it: how each table is read
(Seq Scan, Index Scan using X, Bitmap Heap Scan via X and Y ...), which indexes the plan uses,
the estimated cost and rows, and, for EXPLAIN ANALYZE, the measured time and buffers."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# Node types that read through an index (PostgreSQL docs, "Using EXPLAIN").
INDEX_NODES = ("Index Scan", "Index Only Scan", "Bitmap Index Scan")


@dataclass(frozen=True)
class Access:
    """How one table (or alias) is read."""

    table: str
    alias: str
    node: str                        # Seq Scan, Index Scan, Index Only Scan, Bitmap Heap Scan, ...
    indexes: tuple[str, ...] = ()    # index names the node reads through

    def describe(self) -> str:
        on = self.table if self.alias in ("", self.table) else f"{self.table} {self.alias}"
        if not self.indexes:
            return f"{self.node} on {on}"
        how = "via" if self.node.endswith("Bitmap Heap Scan") else "using"
        return f"{self.node} on {on} {how} {' + '.join(self.indexes)}"


@dataclass(frozen=True)
class Explained:
    cost: float
    rows: float
    accesses: tuple[Access, ...]
    time_ms: float | None = None          # planning + execution (EXPLAIN ANALYZE)
    shared_hit: int | None = None
    shared_read: int | None = None

    @property
    def indexes(self) -> frozenset[str]:
        return frozenset(i for a in self.accesses for i in a.indexes)

    @property
    def tables(self) -> frozenset[str]:
        return frozenset(a.table for a in self.accesses if a.table)


def parse_explain(doc: Any) -> Explained:
    """`[{"Plan": {...}, "Planning Time": ..}]` (what psycopg returns for EXPLAIN FORMAT JSON)."""
    if isinstance(doc, list):
        doc = doc[0]
    plan = doc["Plan"]
    accesses: list[Access] = []
    _walk(plan, accesses)
    time_ms = None
    if "Execution Time" in doc:
        time_ms = float(doc["Execution Time"]) + float(doc.get("Planning Time") or 0.0)
    hit = plan.get("Shared Hit Blocks")
    read = plan.get("Shared Read Blocks")
    return Explained(float(plan.get("Total Cost", 0.0)), float(plan.get("Plan Rows", 0.0)), tuple(accesses), time_ms,
                     int(hit) if hit is not None else None, int(read) if read is not None else None)


def _walk(node: dict, out: list[Access]) -> None:
    kind = node.get("Node Type", "")
    relation = node.get("Relation Name")
    if relation is not None:
        indexes: list[str] = []
        if node.get("Index Name"):
            indexes.append(node["Index Name"])
        if kind == "Bitmap Heap Scan":
            _bitmap_indexes(node, indexes)
        if node.get("Parallel Aware"):
            kind = f"Parallel {kind}"
        out.append(Access(relation, node.get("Alias", relation), kind, tuple(indexes)))
    for child in node.get("Plans", ()):
        if node.get("Node Type") == "Bitmap Heap Scan" and child.get("Node Type") in ("Bitmap Index Scan", "BitmapAnd", "BitmapOr"):
            continue
        _walk(child, out)


def _bitmap_indexes(node: dict, out: list[str]) -> None:
    for child in node.get("Plans", ()):
        if child.get("Node Type") == "Bitmap Index Scan" and child.get("Index Name"):
            out.append(child["Index Name"])
        elif child.get("Node Type") in ("BitmapAnd", "BitmapOr"):
            _bitmap_indexes(child, out)
