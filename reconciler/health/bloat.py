"""Btree bloat: a cheap estimate from statistics for every index, and the exact figure from
pgstattuple's pgstatindex() for the few that were flagged. Pure arithmetic over rows.

The estimate follows the method of ioguix/pgsql-bloat-estimation (`btree/btree_bloat.sql`):
how many leaf pages `reltuples` tuples of the average width would fill at the index's
fillfactor, against the pages the index has. Known limits, reported rather than hidden:
- it cannot see btree deduplication (PostgreSQL 13+), so a deduplicated index looks smaller
  than the estimate and its bloat is under-reported (never over-reported);
- alignment padding between columns counts as bloat; TOASTed values make it low;
- it needs pg_stats for every stored column (an un-ANALYZEd table has no estimate), and a
  `name` column's statistics do not match its storage (no estimate either).
"""
from __future__ import annotations

import math

from .model import Bloat, BloatInputs, ExactBloat

PAGE_HEADER = 24        # PageHeaderData
BTREE_OPAQUE = 16       # BTPageOpaqueData, at the end of every btree page
ITEM_ID = 4             # ItemIdData: the line pointer of each tuple
INDEX_TUPLE_HEADER = 8  # IndexTupleData (t_tid + t_info)
NULL_BITMAP = 4         # IndexAttributeBitMapData, present when a tuple has a NULL


def estimate(b: BloatInputs, size_bytes: int, block_size: int = 8192, maxalign: int = 8) -> Bloat:
    """Estimated wasted bytes and ratio of one btree index (`method="estimate"`)."""
    if b.name_typed:
        return Bloat(None, 0, "estimate", "a `name` column: statistics do not match its storage")
    if b.missing_stats or b.reltuples < 0:
        return Bloat(None, 0, "estimate", "no statistics (table never analyzed)")
    if b.relpages <= 1 or size_bytes <= 0:
        return Bloat(0.0, 0, "estimate")
    # index_form_tuple(): data starts at MAXALIGN(header [+ null bitmap]); the tuple is MAXALIGNed
    header = -(-(INDEX_TUPLE_HEADER + (NULL_BITMAP if b.has_nulls else 0)) // maxalign) * maxalign
    item = -(-(header + b.data_width) // maxalign) * maxalign + ITEM_ID
    usable = (block_size - PAGE_HEADER - BTREE_OPAQUE) * b.fillfactor / 100
    per_page = max(1, int(usable // item))
    expected_pages = 1 + math.ceil(b.reltuples / per_page)          # + the metapage
    wasted = max(0, (b.relpages - expected_pages) * block_size)
    ratio = wasted / (b.relpages * block_size)
    return Bloat(round(ratio, 4), int(wasted), "estimate")


def exact(x: ExactBloat, fillfactor: int, block_size: int = 8192) -> Bloat:
    """Wasted bytes and ratio from pgstatindex(): the leaf pages the live data would fill at the
    index's fillfactor (`avg_leaf_density` is what is used now), plus internal pages and the
    metapage, against the index's size. Empty and deleted pages are all waste."""
    if x.index_size <= 0:
        return Bloat(0.0, 0, "pgstatindex")
    density = x.avg_leaf_density if x.avg_leaf_density is not None and not math.isnan(x.avg_leaf_density) else 0.0
    needed_leaf = math.ceil(x.leaf_pages * min(density, fillfactor) / fillfactor) if fillfactor else x.leaf_pages
    needed = (1 + x.internal_pages + max(1, needed_leaf)) * block_size   # the metapage, a root at least
    wasted = max(0, x.index_size - needed)
    return Bloat(round(wasted / x.index_size, 4), int(wasted), "pgstatindex")
