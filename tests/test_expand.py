"""Schema globs expanded against the catalog's tables, without a database."""
from __future__ import annotations

import re

import pytest

from reconciler.core.index import IndexDef, KeyPart
from reconciler.errors import SpecError
from reconciler.reconcile.expand import collapse, expand, glob_like, glob_regex, is_glob


def _d(schema, table, name):
    return IndexDef(schema, table, (KeyPart("a"),), name=name)


TABLES = [("tenant_1", "orders"), ("tenant_2", "orders"), ("tenant_10", "orders"), ("tenant_2", "users"),
          ("public", "orders"), ("tenantx", "orders"), ("tenant_%", "orders")]


def test_a_glob_entry_becomes_one_definition_per_schema_that_has_the_table():
    defs = [_d("tenant_*", "orders", "o_idx"), _d("tenant_*", "users", "u_idx"), _d("public", "orders", "p_idx")]
    x = expand(defs, ["tenant_*", "tenant_*", "public"], ["s:1", "s:2", "s:3"], TABLES)
    got = sorted((d.schema, d.table, d.name) for d in x.desired)
    assert got == [("public", "orders", "p_idx"), ("tenant_%", "orders", "o_idx"), ("tenant_1", "orders", "o_idx"),
                   ("tenant_10", "orders", "o_idx"), ("tenant_2", "orders", "o_idx"), ("tenant_2", "users", "u_idx")]
    assert [defs[o].name for o in x.owners] == [d.name for d in x.desired]
    assert x.unmatched == () and x.matched_schemas(1) == ["tenant_2"]
    # equal to the written definition but for the schema
    assert all(d.keys == defs[0].keys for d in x.desired if d.name == "o_idx")


def test_a_glob_that_matches_no_schema_is_reported_not_an_error():
    x = expand([_d("nobody_*", "orders", "o_idx")], ["nobody_*"], ["s:1"], TABLES)
    assert x.desired == () and x.unmatched == (0,)


def test_a_literal_entry_overrides_the_glob_in_its_schema():
    lit = IndexDef("tenant_2", "orders", (KeyPart("b"),), name="o_idx")
    x = expand([_d("tenant_*", "orders", "o_idx"), lit], ["tenant_*", "tenant_2"], ["s:1", "s:2"], TABLES)
    mine = [d for d in x.desired if d.schema == "tenant_2"]
    assert mine == [lit] and x.overridden == 1


def test_two_globs_giving_one_schema_the_same_name_is_an_error_naming_both():
    defs = [_d("tenant_*", "orders", "o_idx"), _d("tenant_?", "orders", "o_idx")]
    with pytest.raises(SpecError, match=r"^s:2: index 'o_idx': schema 'tenant_\?' matches 'tenant_%', where the "
                                        r"entry at s:1 \(schema 'tenant_\*'\)"):
        expand(defs, ["tenant_*", "tenant_?"], ["s:1", "s:2"], TABLES)


def test_no_glob_no_work():
    defs = [_d("public", "orders", "p_idx")]
    x = expand(defs, ["public"], ["s:1"], TABLES)
    assert x.desired == tuple(defs) and x.owners == (0,)


@pytest.mark.parametrize("glob, yes, no", [
    ("tenant_*", ["tenant_", "tenant_1", "tenant_a_b"], ["tenant", "xtenant_1", "Tenant_1"]),
    ("t?", ["t1", "tt"], ["t", "t12"]),
    ("a.b*", ["a.b", "a.bc"], ["axb"]),
    ("x%_\\*", ["x%_\\", "x%_\\yy"], ["xa_\\", "x%a\\"]),
])
def test_glob_matching_is_what_like_matches(glob, yes, no, run_like=None):
    rx = glob_regex(glob)
    for s in yes:
        assert rx.fullmatch(s), s
    for s in no:
        assert not rx.fullmatch(s), s
    assert is_glob(glob)
    # the LIKE pattern escapes %, _ and backslash, so the server matches what the regex matches
    like = glob_like(glob)
    assert re.fullmatch(_like_to_regex(like), yes[0])
    for s in no:
        assert not re.fullmatch(_like_to_regex(like), s), s


def _like_to_regex(like: str) -> str:
    out, i = "", 0
    while i < len(like):
        c = like[i]
        if c == "\\":
            out += re.escape(like[i + 1])
            i += 2
            continue
        out += ".*" if c == "%" else "." if c == "_" else re.escape(c)
        i += 1
    return out


def _tenant(schema, *names):
    return [IndexDef(schema, "orders", (KeyPart(n[0]),), name=n) for n in names]


def test_import_collapses_identical_tenant_schemas_into_one_glob_entry():
    defs = _tenant("tenant_001", "a_idx", "b_idx") + _tenant("tenant_002", "a_idx", "b_idx") + \
        _tenant("tenant_003", "a_idx", "b_idx") + _tenant("public", "a_idx")
    tables = [(s, "orders") for s in ("tenant_001", "tenant_002", "tenant_003", "public")]
    out, globs = collapse(defs, tables)
    assert globs == {"tenant_001": "tenant_*", "tenant_002": "tenant_*", "tenant_003": "tenant_*"}
    assert sorted((d.schema, d.name) for d in out) == [("public", "a_idx"), ("tenant_*", "a_idx"), ("tenant_*", "b_idx")]
    # and back: expanding the collapsed spec gives exactly the imported indexes
    back = expand(out, [d.schema for d in out], ["x"] * len(out), tables)
    assert sorted((d.schema, d.name, d.keys) for d in back.desired) == sorted((d.schema, d.name, d.keys) for d in defs)


def test_no_collapse_when_a_glob_would_reach_a_schema_that_differs():
    # tenant_002 differs; tenant_001 and tenant_003 are alike but tenant_* would reach tenant_002 too
    defs = _tenant("tenant_001", "a_idx") + _tenant("tenant_002", "z_idx") + _tenant("tenant_003", "a_idx")
    tables = [(s, "orders") for s in ("tenant_001", "tenant_002", "tenant_003")]
    out, globs = collapse(defs, tables)
    assert globs == {} and out == defs
    # a schema with the table but no index at all would get them from the glob: no collapse either
    defs = _tenant("tenant_001", "a_idx") + _tenant("tenant_002", "a_idx")
    assert collapse(defs, [(s, "orders") for s in ("tenant_001", "tenant_002", "tenant_009")])[1] == {}


def test_collapse_cuts_the_glob_after_a_separator_when_that_is_still_exact():
    defs = _tenant("acme_eu_1", "a_idx") + _tenant("acme_eu_2", "a_idx") + _tenant("acme_us_1", "z_idx")
    tables = [(s, "orders") for s in ("acme_eu_1", "acme_eu_2", "acme_us_1")]
    out, globs = collapse(defs, tables)
    assert set(globs.values()) == {"acme_eu_*"}


def test_schemas_alike_are_compared_once_and_the_rest_only_when_they_differ():
    from reconciler.app.engine import _alike_schemas
    from reconciler.core.index import LiveIndex
    from reconciler.pg.catalog import Snapshot, Table

    tables, indexes, shapes = [], [], {}
    oid = 100
    for s in ("t1", "t2", "t3", "t4", "t5"):
        tables.append(Table(oid, s, "orders", "p" if s == "t5" else "r", 0, 0, None, True))
        oid += 1
        for name in ("a_idx", "b_idx") if s != "t3" else ("a_idx",):
            d = IndexDef(s, "orders", (KeyPart(name[0]),), name=name)
            x = LiveIndex(d, oid=oid, valid=s != "t4" or name != "b_idx")
            indexes.append(x)
            shapes[oid] = 0 if name == "a_idx" else 1
            oid += 1
    snap = Snapshot(tuple(tables), tuple(indexes), 180000, shapes=shapes)
    desired = [IndexDef(s, "orders", (KeyPart(n[0]),), name=n) for s in ("t1", "t2", "t3", "t4", "t5")
               for n in ("a_idx", "b_idx")]
    owners = [0, 1] * 5
    groups = sorted(_alike_schemas(snap, desired, owners))
    # t1 and t2 are alike; t3 lacks an index, t4's is INVALID, t5 is partitioned: each alone
    assert groups == [["t1", "t2"], ["t3"], ["t4"], ["t5"]]
    assert _alike_schemas(snap, desired[:2], owners[:2]) is None   # t1 alone has desired ones: nothing alike
