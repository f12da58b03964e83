"""The catalog deparses one index per shape: every index must come out exactly as deparsing it
alone says (definition, name, per-key words, pg_get_indexdef text), on tables built to look
alike but differ where the words would (column types, names at the same position, dropped
columns, collations, operator class options, ordering, partitioned parents, quoted names)."""
from __future__ import annotations

import psycopg
from psycopg.rows import dict_row

from reconciler.pg import catalog

SCHEMA = '''
CREATE SCHEMA s1; CREATE SCHEMA s2; CREATE SCHEMA "Odd ""Schema""";
CREATE TABLE s1.t (a int, b text, c text COLLATE "C", v tsvector, d timestamptz);
CREATE TABLE s2.t (a bigint, b text, c text, v tsvector, d timestamptz);              -- other types and collations
CREATE TABLE "Odd ""Schema"""."T x" (a int, b text, c text COLLATE "C", v tsvector, d timestamptz);
CREATE TABLE s1.u (x int, b text, c text COLLATE "C", v tsvector, d timestamptz);     -- another name at the place of a
CREATE TABLE s2.u (gone int, a int, b text, c text COLLATE "C", v tsvector, d timestamptz);
ALTER TABLE s2.u DROP COLUMN gone;                                                    -- a moved one attnum on
CREATE TABLE s1.p (a int, b text) PARTITION BY RANGE (a);
CREATE TABLE s1.p1 PARTITION OF s1.p FOR VALUES FROM (0) TO (100);
CREATE TABLE s2.p (a int, b text) PARTITION BY RANGE (a);
CREATE TABLE s2.p1 PARTITION OF s2.p FOR VALUES FROM (0) TO (100);
'''

INDEXES = [
    ("a", "CREATE INDEX {name} ON {t} ({a})"),
    ("a_desc", "CREATE INDEX {name} ON {t} ({a} DESC NULLS LAST, b)"),
    ("b_lower", "CREATE UNIQUE INDEX {name} ON {t} (lower(b)) WHERE {a} > 5"),
    ("c", "CREATE INDEX {name} ON {t} (c)"),
    ("c_pattern", "CREATE INDEX {name} ON {t} (c text_pattern_ops) INCLUDE ({a})"),
    ("ab_expr", "CREATE INDEX {name} ON {t} (({a} + 1), (b || 'x')) WITH (fillfactor = 70)"),
    ("v", "CREATE INDEX {name} ON {t} USING gist (v tsvector_ops (siglen = {siglen}))"),
    ("d_brin", "CREATE INDEX {name} ON {t} USING brin (d) WITH (pages_per_range = 16)"),
]
TABLES = [("s1.t", "a", 100), ("s2.t", "a", 100), ('"Odd ""Schema"""."T x"', "a", 200), ("s1.u", "x", 100),
          ("s2.u", "a", 100)]


def _build(run_sql, dsn):
    run_sql(dsn, SCHEMA)
    for k, (table, a, siglen) in enumerate(TABLES):
        for suffix, stmt in INDEXES:
            name = f'"Ix {k} {suffix}"' if k == 2 else f"i{k}_{suffix}"
            run_sql(dsn, stmt.format(name=name, t=table, a=a, siglen=siglen))
    run_sql(dsn, "CREATE INDEX p_b ON s1.p (b); CREATE INDEX p_b ON s2.p (b); "
                 "CREATE INDEX p_only ON ONLY s1.p (a); ALTER TABLE s1.u ADD PRIMARY KEY (x);")


def test_one_deparse_per_shape_gives_every_index_its_own_words(dsn, run_sql):
    _build(run_sql, dsn)
    with psycopg.connect(dsn) as conn:
        snap = catalog.introspect(conn, None)
        with conn.cursor(row_factory=dict_row) as cur:
            rows = catalog.read_index_rows(cur, [t.oid for t in snap.tables], snap.server_version, False)
    alone = {r["oid"]: r for r in rows}
    assert len(snap.indexes) == len(alone) >= 40
    shapes = set(snap.shapes.values())
    assert len(shapes) < len(snap.indexes)              # something was shared ...
    assert snap.shapes                                   # ... through shapes
    for x in snap.indexes:
        r = alone[x.oid]
        d = catalog.index_def_from_row(r)
        assert x.indexdef == r["indexdef"], (x.indexdef, r["indexdef"])
        assert x.definition == d and x.name == d.name == r["name"] and x.schema == r["schema"]
        assert [k.sql for k in x.definition.keys] == [k.sql for k in d.keys]
        assert x.definition.where_sql == d.where_sql
        assert (x.valid, x.constraint, x.parent, x.partitioned, x.table_kind) == \
            (r["valid"], r["constraint_name"], (r["parent_schema"], r["parent_name"]) if r["parent_name"] else None,
             r["partitioned"], r["table_kind"])
    by = {(x.schema, x.name): x for x in snap.indexes}
    # what must not have been shared: types, collations, names at one position, options
    assert snap.shapes[by[("s1", "i0_c")].oid] != snap.shapes[by[("s2", "i1_c")].oid]      # collation C vs default
    assert snap.shapes[by[("s1", "i0_v")].oid] != snap.shapes[by[("Odd \"Schema\"", "Ix 2 v")].oid]  # siglen
    assert snap.shapes[by[("s1", "i0_a")].oid] != snap.shapes[by[("s1", "i3_a")].oid]      # column x, not a
    assert "siglen='200'" in by[("Odd \"Schema\"", "Ix 2 v")].indexdef
    # what must have been: the same table twice over, in another schema with quoted names
    assert snap.shapes[by[("s1", "i0_a_desc")].oid] == snap.shapes[by[("Odd \"Schema\"", "Ix 2 a_desc")].oid]
    assert by[("Odd \"Schema\"", "Ix 2 a_desc")].indexdef.startswith(
        'CREATE INDEX "Ix 2 a_desc" ON "Odd ""Schema"""."T x" USING btree')
