"""`reconciler.health` from fixture rows: every finding, every guard, every verdict (no database).

The rows are what `pg.stats` hands over; definitions are parsed from CREATE INDEX text the way
the catalog reader builds them. Each test builds the smallest snapshot that shows one rule.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from reconciler.health import (
    BloatInputs,
    ExactBloat,
    ForeignKey,
    IndexRow,
    NodeStats,
    ReplicaScans,
    StatsSnapshot,
    TableRow,
    Thresholds,
    assess,
    bloat_candidates,
    comparison_candidates,
    human_age,
    human_bytes,
    leftover_origin,
)
from reconciler.health import bloat as bloat_math
from reconciler.normalize import parse_create_index
from reconciler.reconcile.naming import temp_name
from reconciler.spec import load_spec, load_spec_text

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=timezone.utc)
OLD = NOW - timedelta(days=90)
MB = 1024 ** 2
ATT = {"a": 1, "b": 2, "c": 3, "d": 4, "e": 5, "id": 6}   # column attnums of every fixture table
_oids = iter(range(1000, 100000))
DEFS: dict[int, tuple] = {}   # oid -> (IndexDef, CREATE INDEX text): what pg.stats reads for candidates


def node(since=OLD, name="primary", role="primary") -> NodeStats:
    return NodeStats(name, role, NOW, since, "database statistics reset", 160000)


def ix(sql: str, *, scans=0, size=10 * MB, table_oid=1, **kw) -> IndexRow:
    """An index row from its CREATE INDEX text (its definition as the catalog reader builds it)."""
    d = parse_create_index(sql)
    keys = tuple(0 if k.is_expression else ATT[k.expr] for k in d.keys)
    inc = tuple(ATT[c] for c in d.include)
    # pg_index's (attnum, opclass, collation, option) per key, stood in for by the parsed names
    signature = tuple((a, k.opclass or "", k.collation or "", (k.desc, k.nulls_first)) for a, k in zip(keys, d.keys))
    fields = dict(oid=next(_oids), table_oid=table_oid, schema=d.schema, table=d.table, name=d.name, method=d.method,
                  size_bytes=size, scans=scans, tuples_read=scans, tuples_fetched=scans, blocks_hit=0, blocks_read=0,
                  unique=d.unique, partial=d.where is not None, key_attnums=keys, include_attnums=inc,
                  key_signature=signature)
    fields.update(kw)
    row = IndexRow(**fields)
    DEFS[row.oid] = (d, sql)
    return row


def table(name="t", oid=1, **kw) -> TableRow:
    return TableRow(oid=oid, schema="public", name=name, **kw)


def snap(*indexes, tables=None, fks=(), replicas=(), since=OLD, **kw) -> StatsSnapshot:
    """Every index's definition is handed over (pg.stats hands only the comparison candidates':
    `test_comparison_candidates_*` checks that those include every pair that matters)."""
    tabs = tables if tables is not None else (table("t", 1), table("u", 2))
    defs = {x.oid: DEFS[x.oid][0] for x in indexes if x.oid in DEFS}
    texts = {x.oid: DEFS[x.oid][1] for x in indexes if x.oid in DEFS}
    return StatsSnapshot("db", node(since), tuple(tabs), tuple(indexes), tuple(fks), tuple(replicas),
                         definitions=defs, indexdefs=texts, **kw)


def kinds(report, kind=None):
    return sorted((f.kind, f.index or f.table) for f in report.findings if kind is None or f.kind == kind)


# ---- unused ---------------------------------------------------------------------------------


def test_unused_with_old_statistics_is_a_warning_with_a_drop():
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), ix("CREATE INDEX t_c ON t (c)", scans=5)))
    assert kinds(r) == [("unused", "t_b")]
    f = r.findings[0]
    assert f.severity == "warning" and r.crossed
    assert f.sql == "DROP INDEX CONCURRENTLY public.t_b;"
    assert f.evidence["scans"] == 0 and f.evidence["stats_age_s"] == 90 * 86400
    assert "no scans in 90d" in f.message


def test_unused_with_fresh_statistics_is_no_verdict_but_a_note():
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), since=NOW - timedelta(hours=2)))
    assert r.findings == () and not r.crossed
    assert any("statistics cover only 2h" in n and "30d" in n for n in r.notes)


def test_the_age_threshold_comes_from_the_spec_thresholds():
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), since=NOW - timedelta(hours=2)),
               Thresholds(unused_min_stats_age=3600))
    assert kinds(r) == [("unused", "t_b")]


def test_unknown_statistics_age_never_calls_anything_unused():
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), since=None))
    assert r.findings == ()
    assert any("age of the statistics is unknown" in n for n in r.notes)


@pytest.mark.parametrize("sql,extra", [
    ("CREATE UNIQUE INDEX t_u ON t (b)", {}),
    ("CREATE UNIQUE INDEX t_pkey ON t (a)", {"primary": True, "constraint": "t_pkey", "constraint_type": "p"}),
    ("CREATE INDEX t_ex ON t USING gist (b)", {"exclusion": True, "constraint": "t_ex", "constraint_type": "x"}),
    ("CREATE UNIQUE INDEX t_ri ON t (c)", {"replica_identity": True}),
], ids=["unique", "primary", "exclusion", "replica-identity"])
def test_constraint_and_identity_indexes_are_never_unused(sql, extra):
    assert assess(snap(ix(sql, **extra))).findings == ()


def test_small_unused_indexes_are_counted_not_reported():
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)", size=64 * 1024)))
    assert r.findings == ()
    assert any("1 unused index(es) smaller than min_unused_size (1.0 MB)" in n for n in r.notes)


def test_scans_on_a_replica_make_an_index_used():
    x = ix("CREATE INDEX t_b ON t (b)")
    rep = ReplicaScans(node(name="replica1", role="replica"), {("public", "t_b"): (42, None)})
    r = assess(snap(x, replicas=[rep]))
    assert r.findings == ()
    assert r.indexes[0].scans_total == 42
    assert r.indexes[0].node_scans == (("primary", 0), ("replica1", 42))


def test_a_young_replica_keeps_the_verdict_back():
    rep = ReplicaScans(node(NOW - timedelta(hours=1), "replica1", "replica"), {("public", "t_b"): (0, None)})
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), replicas=[rep]))
    assert r.findings == ()


def test_unused_on_every_node_is_reported_with_the_nodes():
    rep = ReplicaScans(node(name="replica1", role="replica"), {("public", "t_b"): (0, None)})
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)"), replicas=[rep]))
    assert kinds(r) == [("unused", "t_b")]
    assert r.findings[0].evidence["nodes"] == ["primary", "replica1"]


def test_last_scan_long_ago_is_unused_on_16_plus():
    x = ix("CREATE INDEX t_b ON t (b)", scans=7, last_scan=NOW - timedelta(days=45))
    r = assess(snap(x))
    assert kinds(r) == [("unused", "t_b")]
    assert "last scanned 45d ago" in r.findings[0].message


def test_recent_last_scan_or_unknown_last_scan_is_used():
    assert assess(snap(ix("CREATE INDEX t_b ON t (b)", scans=7, last_scan=NOW - timedelta(days=2)))).findings == ()
    assert assess(snap(ix("CREATE INDEX t_b ON t (b)", scans=7, last_scan=None))).findings == ()
    # scanned on a PostgreSQL 15 replica (no last scan there): cannot prove it idle
    rep = ReplicaScans(node(name="r15", role="replica"), {("public", "t_b"): (3, None)})
    x = ix("CREATE INDEX t_b ON t (b)", scans=7, last_scan=NOW - timedelta(days=45))
    assert assess(snap(x, replicas=[rep])).findings == ()


def test_partitioned_index_is_judged_on_its_partitions_scans_and_sizes():
    parent = ix("CREATE INDEX p_b ON p (b)", partitioned=True, size=0, table_oid=10)
    c1 = ix("CREATE INDEX p1_b ON p1 (b)", parent_oid=parent.oid, table_oid=11, size=2 * MB)
    c2 = ix("CREATE INDEX p2_b ON p2 (b)", parent_oid=parent.oid, table_oid=12, size=2 * MB, scans=0)
    r = assess(snap(parent, c1, c2, tables=[table("p", 10, kind="p"), table("p1", 11), table("p2", 12)]))
    assert kinds(r) == [("unused", "p_b")]
    assert r.findings[0].evidence["size_bytes"] == 4 * MB
    assert r.findings[0].sql == "DROP INDEX public.p_b;"   # no CONCURRENTLY on a partitioned index
    used = c2._replace(scans=3)
    assert assess(snap(parent, c1, used, tables=[table("p", 10, kind="p")])).findings == ()


# ---- foreign keys ---------------------------------------------------------------------------


def fk(cols=("a",), table_oid=1, tname="t", name="t_a_fkey"):
    return ForeignKey(next(_oids), name, table_oid, "public", tname, tuple(ATT[c] for c in cols), tuple(cols),
                      "public", "parent")


def test_the_only_index_covering_a_foreign_key_is_kept():
    r = assess(snap(ix("CREATE INDEX t_a ON t (a)"), fks=[fk()]))
    assert kinds(r) == [("unused_fk_cover", "t_a")]
    assert r.findings[0].severity == "info" and not r.crossed
    assert r.findings[0].evidence["foreign_keys"] == ["t_a_fkey"]


def test_a_second_cover_makes_the_unused_one_removable():
    used = ix("CREATE INDEX t_a_b ON t (a, b)", scans=100)
    r = assess(snap(ix("CREATE INDEX t_a ON t (a)"), used, fks=[fk()]))
    # t_a is a prefix of t_a_b: redundant comes after unused, unused wins (it has no scans)
    assert kinds(r) == [("unused", "t_a")]


def test_foreign_key_without_index_asks_for_an_entry(tmp_path):
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nindexes:\n  - name: t_b\n    table: t\n    columns: [b]\n")
    spec = load_spec([f])
    x = ix("CREATE INDEX t_b ON t (b)", scans=9)
    r = assess(snap(x, fks=[fk(("c", "a"), name="t_ca_fkey")]), spec=spec)
    assert kinds(r) == [("fk_unindexed", "t")]
    e = r.findings[0].edit
    assert e.action == "add" and e.file == str(f) and e.index == "t_c_a_idx"
    entry = yaml.safe_load(e.yaml)[0]
    assert entry == {"name": "t_c_a_idx", "table": "t", "columns": ["c", "a"], "comment": "covers foreign key t_ca_fkey"}
    # the entry is a valid spec entry
    load_spec_text("version: 1\nindexes:\n" + "\n".join("  " + ln for ln in e.yaml.splitlines()) + "\n")
    assert r.findings[0].sql == "CREATE INDEX CONCURRENTLY t_c_a_idx ON public.t (c, a);"


@pytest.mark.parametrize("sql,covered", [
    ("CREATE INDEX i ON t (a, c)", True),            # same columns, other order: the check is `a = $1 AND c = $2`
    ("CREATE INDEX i ON t (c, a, b)", True),         # leading columns
    ("CREATE INDEX i ON t (b, a, c)", False),        # not leading
    ("CREATE INDEX i ON t (a, c) WHERE b > 0", False),
    ("CREATE INDEX i ON t USING gin (a, c)", False),
    ("CREATE INDEX i ON t ((a + 0), c)", False),
], ids=["reordered", "leading", "not-leading", "partial", "gin", "expression"])
def test_what_covers_a_foreign_key(sql, covered):
    r = assess(snap(ix(sql, scans=5), fks=[fk(("a", "c"))]))
    assert (("fk_unindexed", "t") in kinds(r)) is not covered


def test_hash_covers_a_single_column_foreign_key_and_invalid_covers_nothing():
    assert kinds(assess(snap(ix("CREATE INDEX i ON t USING hash (a)", scans=5), fks=[fk()]))) == []
    bad = ix("CREATE INDEX i ON t (a)", scans=5, valid=False)
    assert ("fk_unindexed", "t") in kinds(assess(snap(bad, fks=[fk()])))


def test_foreign_keys_of_tables_out_of_scope_are_not_reported():
    r = assess(snap(fks=[fk(table_oid=99, tname="elsewhere")]))
    assert r.findings == ()


def test_fk_index_name_avoids_taken_names_and_the_63_byte_limit():
    long = "x" * 60
    f = ForeignKey(1, "k", 1, "public", long, (1,), ("a",), "public", "parent")
    r = assess(snap(fks=[f]))
    name = r.findings[0].edit.index
    assert len(name.encode()) <= 63
    taken = ix("CREATE INDEX t_a_idx ON t (b)", scans=3)
    r = assess(snap(taken, fks=[fk()]))
    assert [f.edit.index for f in r.findings if f.kind == "fk_unindexed"] == ["t_a_idx_1"]


# ---- duplicates and redundant prefixes ---------------------------------------------------------


def test_duplicate_same_definition_in_other_words():
    a = ix("CREATE INDEX t_x ON t (a) WHERE (b = 1 AND c = 2)", scans=5)
    b = ix("CREATE INDEX t_y ON t (a) WHERE c = 2 AND b = 1", scans=3)
    r = assess(snap(a, b))
    assert kinds(r) == [("duplicate", "t_y")]
    assert r.findings[0].evidence["same_as"] == "t_x"


def test_storage_options_do_not_make_two_indexes_different():
    a = ix("CREATE INDEX t_x ON t (a)", scans=5)
    b = ix("CREATE INDEX t_y ON t (a) WITH (fillfactor = 70)", scans=1)
    assert kinds(assess(snap(a, b))) == [("duplicate", "t_y")]


@pytest.mark.parametrize("other", [
    "CREATE INDEX t_y ON t (a) WHERE b = 1",
    "CREATE INDEX t_y ON t (a DESC)",
    "CREATE INDEX t_y ON t (a text_pattern_ops)",
    'CREATE INDEX t_y ON t (a COLLATE "C")',
    "CREATE INDEX t_y ON t USING hash (a)",
], ids=["predicate", "order", "opclass", "collation", "method"])
def test_not_duplicates(other):
    r = assess(snap(ix("CREATE INDEX t_x ON t (a)", scans=5), ix(other, scans=5)))
    assert "duplicate" not in [k for k, _ in kinds(r)]


def test_duplicate_keeps_the_constraint_then_the_spec_entry(tmp_path):
    pk = ix("CREATE UNIQUE INDEX t_pkey ON t (a)", primary=True, constraint="t_pkey", constraint_type="p")
    dup = ix("CREATE UNIQUE INDEX t_a_uq ON t (a)", scans=100)
    r = assess(snap(dup, pk))
    assert kinds(r) == [("duplicate", "t_a_uq")]
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nindexes:\n  - name: t_spec\n    table: t\n    columns: [b]\n")
    spec = load_spec([f])
    r = assess(snap(ix("CREATE INDEX t_other ON t (b)", scans=50), ix("CREATE INDEX t_spec ON t (b)", scans=1)),
               spec=spec)
    assert kinds(r) == [("duplicate", "t_other")]
    assert r.findings[0].edit is None and r.findings[0].sql.startswith("DROP INDEX CONCURRENTLY")


def test_duplicate_in_the_spec_gets_the_entry_to_remove(tmp_path):
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nmanage: {prune: true}\nindexes:\n  - name: t_x\n    table: t\n    columns: [a]\n"
                 "  - name: t_y\n    table: t\n    columns: [a]\n")
    r = assess(snap(ix("CREATE INDEX t_x ON t (a)", scans=9), ix("CREATE INDEX t_y ON t (a)", scans=1)),
               spec=load_spec([f]))
    e = r.findings[0].edit
    assert (e.action, e.index, e.file, e.line) == ("remove", "t_y", str(f), 7)
    assert r.findings[0].fix == "then `reconciler apply` drops it"
    assert "remove the entry 't_y' at" in e.describe()


def test_two_constraints_with_one_definition_are_information_only():
    a = ix("CREATE UNIQUE INDEX t_pkey ON t (a)", primary=True, constraint="t_pkey", constraint_type="p")
    b = ix("CREATE UNIQUE INDEX t_a_key ON t (a)", constraint="t_a_key", constraint_type="u")
    r = assess(snap(a, b))
    assert kinds(r) == [("duplicate", "t_a_key")]
    assert r.findings[0].severity == "info" and r.findings[0].edit is None and r.findings[0].sql is None


@pytest.mark.parametrize("short,long_,redundant", [
    ("CREATE INDEX s ON t (a)", "CREATE INDEX l ON t (a, b)", True),
    ("CREATE INDEX s ON t (lower(e))", "CREATE INDEX l ON t (lower(e), id)", True),
    ("CREATE INDEX s ON t (a)", "CREATE UNIQUE INDEX l ON t (a)", True),
    ("CREATE INDEX s ON t (a) INCLUDE (c)", "CREATE INDEX l ON t (a, c)", True),
    ("CREATE INDEX s ON t (a) WHERE b > 0", "CREATE INDEX l ON t (a, c) WHERE b > 0", True),
    ("CREATE UNIQUE INDEX s ON t (a)", "CREATE INDEX l ON t (a, b)", False),
    ("CREATE UNIQUE INDEX s ON t (a)", "CREATE UNIQUE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t (a DESC)", "CREATE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t (a) WHERE b > 0", "CREATE INDEX l ON t (a, c)", False),
    ("CREATE INDEX s ON t (a) INCLUDE (d)", "CREATE INDEX l ON t (a, c)", False),
    ("CREATE INDEX s ON t (b)", "CREATE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t USING hash (a)", "CREATE INDEX l ON t (a, b)", False),
    ('CREATE INDEX s ON t (a COLLATE "C")', "CREATE INDEX l ON t (a, b)", False),
], ids=["prefix", "expression-prefix", "unique-same-keys", "include-in-keys", "same-predicate", "unique-short",
        "unique-both", "order", "predicate-differs", "include-not-stored", "not-leading", "hash", "collation"])
def test_redundant_prefix(short, long_, redundant):
    r = assess(snap(ix(short, scans=10), ix(long_, scans=10)))
    assert (("redundant", "s") in kinds(r)) is redundant
    assert ("redundant", "l") not in kinds(r)


def test_a_prefix_of_an_unused_index_is_not_redundant():
    """The longer index is unused (removed), so the prefix is what serves the lookups."""
    r = assess(snap(ix("CREATE INDEX s ON t (a)", scans=500), ix("CREATE INDEX l ON t (a, b)")))
    assert kinds(r) == [("unused", "l")]


def test_comparison_candidates_are_the_indexes_of_possible_pairs():
    a, b = ix("CREATE INDEX s ON t (a)"), ix("CREATE INDEX l ON t (a, b)")
    c = ix("CREATE INDEX x ON u (a)", table_oid=2)
    d = ix("CREATE INDEX y ON u (b)", table_oid=2)
    other = ix("CREATE INDEX o ON t (c)")
    assert comparison_candidates([a, b, c, d, other]) == {a.oid, b.oid}
    e = ix("CREATE INDEX z ON u ((lower(e)))", table_oid=2)
    f = ix("CREATE INDEX w ON u ((upper(e)), a)", table_oid=2)
    assert comparison_candidates([e, f]) == {e.oid, f.oid}   # expressions: only their text can tell


@pytest.mark.parametrize("short,long_,candidate", [
    ("CREATE INDEX s ON t (a)", "CREATE INDEX l ON t (a DESC, b)", False),
    ("CREATE INDEX s ON t (a text_pattern_ops)", "CREATE INDEX l ON t (a, b)", False),
    ('CREATE INDEX s ON t (a COLLATE "C")', "CREATE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t (a) WHERE b > 0", "CREATE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t USING hash (a)", "CREATE INDEX l ON t (a, b)", False),
    ("CREATE INDEX s ON t (a) WHERE b > 0", "CREATE INDEX l ON t (a, b) WHERE c > 0", True),
    ("CREATE INDEX s ON t (a) INCLUDE (c)", "CREATE UNIQUE INDEX l ON t (a)", True),
])
def test_comparison_candidates_prefilter_exactly(short, long_, candidate):
    """What the arrays rule out is never a duplicate nor redundant (the verdict agrees), so
    skipping their definitions loses nothing."""
    a, b = ix(short, scans=5), ix(long_, scans=5)
    assert (comparison_candidates([a, b]) == {a.oid, b.oid}) is candidate
    if not candidate:
        assert assess(snap(a, b)).findings == ()


@pytest.mark.parametrize("suffix", ["", " DESC", " DESC NULLS LAST", " NULLS FIRST", " ASC", " DESC NULLS FIRST",
                                    " NULLS LAST", "  DESC", " desc", ' COLLATE "C"', " text_pattern_ops DESC",
                                    ' COLLATE "C" text_pattern_ops DESC NULLS LAST', " gist_trgm_ops(siglen = 32)"])
def test_server_key_suffix_reads_as_key_suffix_does(suffix):
    """The catalog's light reader of a key's option words (no sqlglot for the ordering words the
    server prints) gives normalize's answer for every suffix, looked up or not."""
    from reconciler.normalize import key_suffix
    from reconciler.pg.deftext import _ORDER_WORDS, server_key_suffix

    assert server_key_suffix(suffix) == key_suffix(suffix)
    if suffix in ("", " DESC", " DESC NULLS LAST", " NULLS FIRST"):
        assert suffix in _ORDER_WORDS   # what pg_get_indexdef prints for a key without COLLATE or opclass


SAME_OR_NOT = [
    "CREATE INDEX i ON t (a)", "CREATE INDEX i ON t (a DESC)", "CREATE INDEX i ON t (a DESC NULLS LAST)",
    "CREATE INDEX i ON t (a NULLS FIRST)", "CREATE INDEX i ON t (a, b)", "CREATE INDEX i ON t (b)",
    "CREATE INDEX i ON t (a) INCLUDE (c)", "CREATE UNIQUE INDEX i ON t (a)", "CREATE INDEX i ON t USING hash (a)",
    'CREATE INDEX i ON t (a COLLATE "C")', "CREATE INDEX i ON t (a) WITH (fillfactor = 70)",
    "CREATE INDEX i ON t (a text_pattern_ops)", "CREATE INDEX i ON t (a pg_catalog.text_pattern_ops)",
    "CREATE INDEX i ON t (lower(e))", "CREATE INDEX i ON t ((lower(e)))", "CREATE INDEX i ON t ((a))",
    "CREATE INDEX i ON t (a) WHERE (b = 1 AND c = 2)", "CREATE INDEX i ON t (a) WHERE c = 2 AND b = 1",
]


def test_duplicate_comparison_equals_the_core_s_on_every_pair():
    """`_same` decides two plain definitions (column keys, no operator class, no predicate) by
    equality without loading normalize; on every pair it says what normalize.same_definition
    says (storage options and tablespace aside)."""
    from reconciler.health.assess import _same
    from reconciler.normalize import same_definition

    defs = [parse_create_index(sql) for sql in SAME_OR_NOT]
    for a in defs:
        for b in defs:
            want = same_definition(replace(a, options=()), replace(b, options=()))
            assert _same(a, b) is want, (a, b)
    assert _same(defs[-1], defs[-2]) and _same(defs[0], defs[10]) and not _same(defs[0], defs[1])


# ---- invalid --------------------------------------------------------------------------------


@pytest.mark.parametrize("name,origin", [
    ("t_b_ccnew", "_ccnew"), ("t_b_ccnew1", "_ccnew"), ("t_b_ccold", "_ccold"), ("index_16523", "pg_repack"),
    (temp_name("t_b", "new"), "reconciler"), ("t_b_pgschema_new", "pgschema"), ("t_b", "CREATE INDEX CONCURRENTLY"),
])
def test_leftover_origin(name, origin):
    assert origin in leftover_origin(name)


def test_invalid_split_into_being_built_and_abandoned():
    built = ix("CREATE INDEX t_new ON t (b)", valid=False, being_built_by=4242)
    left = ix("CREATE INDEX t_c_ccnew ON t (c)", valid=False)
    r = assess(snap(built, left))
    assert kinds(r) == [("invalid_abandoned", "t_c_ccnew"), ("invalid_building", "t_new")]
    by = {f.kind: f for f in r.findings}
    assert by["invalid_building"].severity == "info" and by["invalid_building"].evidence["pid"] == 4242
    assert by["invalid_abandoned"].severity == "warning"
    assert by["invalid_abandoned"].sql == "DROP INDEX CONCURRENTLY public.t_c_ccnew;"
    assert "_ccnew" in by["invalid_abandoned"].message


def test_invalid_index_in_the_spec_is_apply_s_to_rebuild(tmp_path):
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nindexes:\n  - name: t_b\n    table: t\n    columns: [b]\n")
    r = assess(snap(ix("CREATE INDEX t_b ON t (b)", valid=False)), spec=load_spec([f]))
    assert kinds(r) == [("invalid_abandoned", "t_b")]
    assert "reconciler apply" in r.findings[0].fix and r.findings[0].sql is None


def test_an_invalid_index_is_neither_a_keeper_nor_a_duplicate():
    good = ix("CREATE INDEX t_x ON t (a)", scans=3)
    bad = ix("CREATE INDEX t_y ON t (a)", valid=False)
    assert kinds(assess(snap(good, bad))) == [("invalid_abandoned", "t_y")]


def test_partitioned_invalid_index_is_being_built_when_a_partition_is():
    parent = ix("CREATE INDEX p_b ON p (b)", partitioned=True, valid=False, size=0, table_oid=10)
    child = ix("CREATE INDEX p1_b ON p1 (b)", parent_oid=parent.oid, table_oid=11, valid=False, being_built_by=7)
    r = assess(snap(parent, child, tables=[table("p", 10, kind="p"), table("p1", 11)]))
    assert ("invalid_building", "p_b") in kinds(r)


# ---- bloat ----------------------------------------------------------------------------------


def inputs(relpages, reltuples, width=4.0, **kw):
    return BloatInputs(relpages, reltuples, kw.pop("fillfactor", 90), width, kw.pop("has_nulls", False),
                       kw.pop("missing_stats", False), kw.pop("name_typed", False))


def test_estimate_of_a_packed_index_is_near_zero_and_of_a_doubled_one_near_half():
    # int4 key: MAXALIGN(8 + 4) = 16 bytes + 4-byte line pointer; (8192 - 40) * 0.9 / 20 = 366 per page
    packed = bloat_math.estimate(inputs(275, 100000), 275 * 8192)
    assert packed.ratio < 0.02 and packed.method == "estimate"
    doubled = bloat_math.estimate(inputs(550, 100000), 550 * 8192)
    assert 0.48 < doubled.ratio < 0.52
    assert doubled.wasted_bytes == pytest.approx(275 * 8192, rel=0.02)


def test_estimate_refuses_without_statistics():
    assert bloat_math.estimate(inputs(100, 1000, missing_stats=True), 819200).ratio is None
    assert bloat_math.estimate(inputs(100, -1), 819200).ratio is None
    assert "name" in bloat_math.estimate(inputs(100, 1000, name_typed=True), 819200).note


def test_exact_from_pgstatindex():
    fresh = bloat_math.exact(ExactBloat(100 * 8192, 98, 1, 0, 0, 90.0), 90)
    assert fresh.ratio == 0 and fresh.method == "pgstatindex"
    sparse = bloat_math.exact(ExactBloat(100 * 8192, 90, 1, 5, 3, 30.0), 90)
    assert sparse.ratio == pytest.approx(1 - (1 + 1 + 30) / 100, abs=0.01)
    empty = bloat_math.exact(ExactBloat(2 * 8192, 0, 0, 0, 0, None), 90)
    assert empty.wasted_bytes == 0


def test_bloated_finding_then_exact_overrides_the_estimate():
    x = ix("CREATE INDEX t_b ON t (b)", scans=50, size=2000 * 8192, bloat=inputs(2000, 100000))
    s = snap(x)
    r = assess(s)
    assert kinds(r) == [("bloated", "t_b")]
    f = r.findings[0]
    assert f.evidence["method"] == "estimate" and f.evidence["bloat_ratio"] > 0.8
    assert f.sql == "REINDEX INDEX CONCURRENTLY public.t_b;" and "maintain --index public.t_b" in f.fix
    assert bloat_candidates(s, Thresholds()) == [x.oid]
    # pgstatindex says it is fine after all
    r2 = assess(replace(s, exact={x.oid: ExactBloat(2000 * 8192, 1990, 8, 0, 0, 89.0)}))
    assert r2.findings == ()
    assert r2.indexes[0].bloat.method == "pgstatindex"


def test_bloat_under_the_size_floor_or_ratio_is_not_reported():
    small = ix("CREATE INDEX t_b ON t (b)", scans=5, size=100 * 8192, bloat=inputs(100, 1000))
    assert assess(snap(small)).findings == ()   # 90% wasted, but < 1 MB
    fine = ix("CREATE INDEX t_c ON t (c)", scans=5, size=400 * 8192, bloat=inputs(400, 100000))
    assert assess(snap(fine)).findings == ()


def test_bloated_exclusion_index_cannot_be_rebuilt_concurrently():
    x = ix("CREATE INDEX t_ex ON t (b)", exclusion=True, constraint="t_ex", constraint_type="x", scans=5,
           size=2000 * 8192, bloat=inputs(2000, 100000))
    f = assess(snap(x)).findings[0]
    assert f.kind == "bloated" and "cannot be reindexed concurrently" in f.message and f.sql is None


def test_missing_estimates_are_noted():
    x = ix("CREATE INDEX t_b ON t (b)", scans=5, bloat=inputs(1000, 1000, missing_stats=True))
    r = assess(snap(x))
    assert r.findings == () and any("no bloat estimate" in n for n in r.notes)


# ---- tables ---------------------------------------------------------------------------------


def test_low_hit_ratio_needs_a_sample():
    low = table("t", 1, index_blocks_hit=500, index_blocks_read=1500)
    r = assess(snap(tables=[low]))
    assert kinds(r) == [("low_hit_ratio", "t")]
    assert r.findings[0].evidence["hit_ratio"] == 0.25
    few = table("t", 1, index_blocks_hit=10, index_blocks_read=900)
    assert assess(snap(tables=[few])).findings == ()
    assert assess(snap(tables=[few])).tables[0].hit_ratio is None


def test_seq_scan_share_judged_on_big_tables_with_enough_scans():
    heavy = table("t", 1, live_rows=50000, seq_scans=150, index_scans=50)
    r = assess(snap(tables=[heavy]))
    assert kinds(r) == [("seq_scan_heavy", "t")]
    assert r.findings[0].evidence["seq_scan_ratio"] == 0.75
    assert kinds(assess(snap(tables=[replace(heavy, live_rows=500)]))) == []
    assert kinds(assess(snap(tables=[replace(heavy, seq_scans=30, index_scans=20)]))) == []
    assert kinds(assess(snap(tables=[replace(heavy, seq_scans=1, index_scans=9999)]))) == []
    assert kinds(assess(snap(tables=[heavy]), Thresholds(max_seq_scan_ratio=0.8))) == []


def test_stale_statistics_follow_autovacuum_s_rule():
    t = table("t", 1, live_rows=10000, reltuples=10000, modified_since_analyze=1051)
    assert kinds(assess(snap(tables=[t]))) == [("stale_statistics", "t")]
    assert kinds(assess(snap(tables=[replace(t, modified_since_analyze=1050)]))) == []
    f = assess(snap(tables=[t])).findings[0]
    assert f.sql == "ANALYZE public.t;" and f.evidence["last_analyze"] == "never"


def test_partitioned_parents_have_no_table_verdicts():
    p = table("p", 10, kind="p", modified_since_analyze=10 ** 6)
    assert assess(snap(tables=[p])).findings == ()


# ---- the report -----------------------------------------------------------------------------


def test_ignored_indexes_are_neither_judged_nor_listed(tmp_path):
    f = tmp_path / "indexes.yaml"
    f.write_text("version: 1\nmanage: {ignore: ['legacy_*']}\nindexes: []\n")
    r = assess(snap(ix("CREATE INDEX legacy_b ON t (b)")), spec=load_spec([f]))
    assert r.findings == () and r.indexes == ()


def test_findings_are_sorted_warnings_first_and_counted():
    r = assess(snap(ix("CREATE INDEX t_a ON t (a)"), ix("CREATE INDEX t_b ON t (b)"), fks=[fk()],
                    tables=[table("t", 1, modified_since_analyze=10 ** 6)]))
    assert [f.severity for f in r.findings] == ["warning", "warning", "info"]
    c = r.counts()
    assert c["unused"] == 1 and c["stale_statistics"] == 1 and c["unused_fk_cover"] == 1 and c["bloated"] == 0


def test_thresholds_from_the_spec():
    spec_file, _ = load_spec_text("version: 1\nhealth: {unused_min_stats_age: 7d, min_unused_size: 64kB, "
                                  "max_bloat_ratio: 0.3}\n")
    t = Thresholds.from_spec(spec_file.health)
    assert (t.unused_min_stats_age, t.min_unused_size, t.max_bloat_ratio) == (7 * 86400, 65536, 0.3)
    assert t.min_index_hit_ratio == 0.99 and t.max_seq_scan_ratio == 0.01


def test_human_units():
    assert human_bytes(1536) == "1.5 kB" and human_bytes(10) == "10 bytes" and human_bytes(3 * MB) == "3.0 MB"
    assert human_age(93784) == "1d 2h" and human_age(300) == "5min" and human_age(7200) == "2h" and human_age(5) == "5s"


def test_row_floor_uses_reltuples_after_a_statistics_reset():
    reset = table("t", 1, live_rows=0, reltuples=50000, seq_scans=150, index_scans=0)
    assert kinds(assess(snap(tables=[reset]))) == [("seq_scan_heavy", "t")]


# ---- pg.stats: one parse per shape of definition -------------------------------------------------


def _catalog_row(schema, table, name, keys_sql, cols, indkey, *, unique=False, where=None, options=None,
                 include=(), comment=None):
    """A row as catalog.read_index_rows returns it (the fields index_def_from_row reads)."""
    q = lambda s: s if s.isidentifier() and s.islower() else '"' + s.replace('"', '""') + '"'  # noqa: E731
    text = (f"CREATE {'UNIQUE ' if unique else ''}INDEX {q(name)} ON {q(schema)}.{q(table)} USING btree ({keys_sql})"
            + (f" INCLUDE ({', '.join(include)})" if include else "")
            + (f" WITH ({', '.join(options)})" if options else "") + (f" WHERE {where}" if where else ""))
    return {"oid": hash((schema, table, name)) & 0xFFFFFF, "schema": schema, "table": table, "name": name,
            "method": "btree", "is_unique": unique, "nkey": len(indkey), "natts": len(indkey) + len(include),
            "indkey": list(indkey) + [1] * len(include), "cols": list(cols) + list(include), "indexdef": text,
            "predicate": where, "nulls_not_distinct": False, "options": options, "tablespace": None,
            "comment": comment}


def test_definitions_are_parsed_once_per_shape_and_equal_a_parse_of_each_row():
    from reconciler.pg.catalog import index_def_from_row
    from reconciler.pg.stats import _definition

    rows = []
    for schema in ("public", "tenant_1", "Tenant 2"):
        for t in ("orders", "Orders"):
            rows += [
                _catalog_row(schema, t, f"{t}_a_idx", "account_id", ["account_id"], [2]),
                _catalog_row(schema, t, f"{t}_ac_idx", "account_id, created_at DESC", ["account_id", "created_at"],
                             [2, 5]),
                _catalog_row(schema, t, f"{t}_lower_idx", "lower(email)", ["lower(email)"], [0]),
                _catalog_row(schema, t, f"{t}_active_idx", "created_at", ["created_at"], [5],
                             where="(status = 'active'::text)"),
            ]
    # the same key text, but what else the parse reads differs: each is a shape of its own
    odd = [
        _catalog_row("public", "orders", "u_idx", "account_id", ["account_id"], [2], unique=True),
        _catalog_row("public", "orders", "expr_named_like_a_column", "account_id", ["account_id"], [0]),
        _catalog_row("public", "orders", "done_idx", "created_at", ["created_at"], [5], where="(status = 'done'::text)"),
        _catalog_row("public", "orders", "ff_idx", "account_id", ["account_id"], [2], options=["fillfactor=70"]),
        _catalog_row("public", "orders", "incl_idx", "account_id", ["account_id"], [2], include=("amount",)),
        _catalog_row("public", "orders", "commented_idx", "account_id", ["account_id"], [2], comment="kept"),
        # a name holding the very marker the key list is cut at
        _catalog_row("public", "orders", "x USING btree (y", "account_id", ["account_id"], [2]),
    ]
    parsed = []

    def parse(r):
        parsed.append(r["name"])
        return index_def_from_row(r)

    shapes: dict = {}
    for r in rows + odd:
        got = _definition(r, shapes, parse)
        want = index_def_from_row(r)
        assert got == want and (got.schema, got.table, got.name, got.comment) == \
            (want.schema, want.table, want.name, want.comment), r["name"]
    # 24 rows of 4 shapes: 4 parses; every odd one its own but the marker-named one: its name is
    # cut off with the rest of the prefix, so it is the plain `account_id` shape, read once
    assert len(parsed) == 4 + len(odd) - 1 and "x USING btree (y" not in parsed


def test_gc_paused_restores_the_collector_as_it_found_it():
    import gc

    from reconciler.app.health import gc_paused

    assert gc.isenabled()
    with pytest.raises(RuntimeError):
        with gc_paused():
            assert not gc.isenabled()
            raise RuntimeError
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()   # the caller had paused it: still paused
    finally:
        gc.enable()


def test_gc_paused_leaves_its_survivors_out_of_the_young_generation():
    """What the paused block built is moved to the oldest generation on the way out, so no
    young collection walks it right after; nothing stays frozen, and whatever someone else had
    frozen (before a fork) stays frozen."""
    import gc

    from reconciler.app.health import gc_paused

    with gc_paused():
        kept = [(i, str(i)) for i in range(50_000)]
    assert gc.get_freeze_count() == 0
    assert gc.get_count()[0] < 1000 and not any(o is kept for o in gc.get_objects(0))
    assert any(o is kept for o in gc.get_objects(2))   # a full collection still sees it
    gc.freeze()
    try:
        frozen = gc.get_freeze_count()
        with gc_paused():
            more = [(i,) for i in range(10_000)]
        assert gc.get_freeze_count() == frozen and more
    finally:
        gc.unfreeze()
