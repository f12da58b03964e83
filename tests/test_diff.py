"""diff: desired vs live → changes and drift. Pure: definitions are built by hand (no database)."""
from __future__ import annotations

from dataclasses import replace

import pytest

from reconciler.reconcile.diff import diff_indexes
from reconciler.reconcile.naming import is_leftover, leftover_of, temp_name
from reconciler.core.index import KeyPart, Partition, TableFacts
from reconciler.normalize import differences, same_definition

from support.build import idx, live



def run(desired, live_indexes, **kw):
    return diff_indexes(list(desired), list(live_indexes), same=same_definition, reasons=differences, **kw)


def summary(changes, drift):
    return ([(c.action, c.schema, c.index, c.old_name) for c in changes],
            [(d.kind, d.index) for d in drift])


A = idx("orders_customer_idx", "customer_id")
A_DESC = idx("orders_customer_idx", KeyPart("customer_id", desc=True))
B = idx("orders_created_idx", "created_at")
PK = idx("orders_pkey", "id", unique=True)

# (id, desired, live, kwargs, expected changes [(action, schema, index, old_name)], expected drift [(kind, index)])
CASES = [
    ("in-sync", [A], [live(A)], {}, [], []),
    ("in-sync-other-spelling", [idx("orders_customer_idx", KeyPart("(customer_id)", True))], [live(A)], {}, [], []),
    ("missing-is-created", [A], [], {}, [("create", "public", "orders_customer_idx", None)], []),
    ("changed-is-replaced", [A_DESC], [live(A)], {}, [("replace", "public", "orders_customer_idx", "orders_customer_idx")], []),
    ("invalid-is-rebuilt", [A], [live(A, valid=False)], {}, [("rebuild", "public", "orders_customer_idx", None)], []),
    ("not-ready-is-rebuilt", [A], [live(A, ready=False, valid=False)], {}, [("rebuild", "public", "orders_customer_idx", None)], []),
    ("extra-without-prune-is-drift-only", [A], [live(A), live(B)], {}, [], [("extra", "orders_created_idx")]),
    ("extra-with-prune-is-dropped", [A], [live(A), live(B)], {"prune": True},
     [("drop", "public", "orders_created_idx", None)], [("extra", "orders_created_idx")]),
    ("constraint-extra-never-dropped", [A], [live(A), live(PK, constraint="orders_pkey", constraint_type="p")],
     {"prune": True}, [], []),
    ("constraint-differs-is-drift", [idx("orders_pkey", "id", "tenant_id", unique=True)],
     [live(PK, constraint="orders_pkey", constraint_type="p")], {"prune": True}, [], [("constraint", "orders_pkey")]),
    ("constraint-same-is-quiet", [PK], [live(PK, constraint="orders_pkey", constraint_type="p")], {"prune": True}, [], []),
    ("ignored-live-is-invisible", [A], [live(A), live(B)], {"prune": True, "ignored": lambda n: n.endswith("_created_idx")},
     [], []),
    # an entry the spec lists but also ignores is not built; it is reported so the contradiction shows
    ("ignored-desired-is-reported-not-built", [A, B], [live(A)], {"ignored": lambda n: n == "orders_created_idx"}, [],
     [("ignored", "orders_created_idx")]),
    ("same-definition-other-name-is-rename", [A], [live(A.renamed("old_name_idx"))], {"prune": True},
     [("rename", "public", "orders_customer_idx", "old_name_idx")], []),
    ("invalid-other-name-is-not-renamed", [A], [live(A.renamed("old_name_idx"), valid=False)], {},
     [("create", "public", "orders_customer_idx", None)], [("extra", "old_name_idx")]),
    ("other-table-is-not-renamed", [A], [live(replace(A, table="invoices").renamed("old_name_idx"))], {},
     [("create", "public", "orders_customer_idx", None)], [("extra", "old_name_idx")]),
    ("partition-child-is-hidden", [], [live(idx("orders_2024_customer_idx", "customer_id", table="orders_2024"),
                                            parent_index="public.orders_customer_idx")], {"prune": True}, [], []),
    ("being-built-extra-is-never-touched", [], [live(B, being_built=True, valid=False)], {"prune": True},
     [], [("being_built", "orders_created_idx")]),
    ("being-built-desired-is-never-touched", [A_DESC], [live(A, being_built=True, valid=False)], {},
     [], [("being_built", "orders_customer_idx")]),
    ("being-built-is-not-a-rename-source", [A], [live(A.renamed("other_idx"), being_built=True)], {},
     [("create", "public", "orders_customer_idx", None)], [("being_built", "other_idx")]),
    ("leftover-temp-name-is-dropped", [A], [live(A), live(A.renamed(temp_name("orders_customer_idx")))], {},
     [("drop", "public", temp_name("orders_customer_idx"), None)], []),
    # an interrupted replace left the old index aside and the spec went back to it: rename it back
    ("leftover-with-the-wanted-definition-is-renamed-back", [A], [live(A.renamed(temp_name("orders_customer_idx")))],
     {}, [("rename", "public", "orders_customer_idx", temp_name("orders_customer_idx"))], []),
    # ... while the spec still wants the new definition: finish the replace (build, drop the old)
    ("leftover-of-a-replace-still-wanted-is-dropped", [A_DESC], [live(A.renamed(temp_name("orders_customer_idx")))],
     {}, [("create", "public", "orders_customer_idx", None),
          ("drop", "public", temp_name("orders_customer_idx"), None)], []),
    ("invalid-leftover-is-not-renamed-back", [A], [live(A.renamed(temp_name("orders_customer_idx")), valid=False)],
     {}, [("create", "public", "orders_customer_idx", None),
          ("drop", "public", temp_name("orders_customer_idx"), None)], []),
    ("leftover-of-another-name-is-not-a-rename-source", [A], [live(A.renamed(temp_name("other_idx")))], {},
     [("create", "public", "orders_customer_idx", None)], [("extra", temp_name("other_idx"))]),
    ("temp-looking-name-of-nothing-is-an-extra", [A], [live(A), live(B.renamed("x_rcold_0123abcd"))], {},
     [], [("extra", "x_rcold_0123abcd")]),
    ("same-name-other-schema-is-separate", [A, replace(A, schema="app")], [live(A)], {},
     [("create", "app", "orders_customer_idx", None)], []),
    ("name-on-another-table-is-replaced", [A], [live(replace(A, table="invoices"))], {},
     [("replace", "public", "orders_customer_idx", "orders_customer_idx")], []),
]


@pytest.mark.parametrize("desired, live_indexes, kw, changes, drift", [pytest.param(*c[1:], id=c[0]) for c in CASES])
def test_diff(desired, live_indexes, kw, changes, drift):
    assert summary(*run(desired, live_indexes, **kw)) == (changes, drift)


def test_replace_carries_the_human_reason_and_both_sides():
    (c,), _ = run([A_DESC], [live(A)])
    assert c.reasons == ("order of customer_id: ASC NULLS LAST → DESC NULLS FIRST",)
    assert c.desired is A_DESC and c.live.definition is A and c.old_name == "orders_customer_idx"


def test_rebuild_and_rename_reasons():
    (rebuild,), _ = run([A], [live(A, valid=False)])
    assert "INVALID" in rebuild.reasons[0]
    (rename,), _ = run([A], [live(A.renamed("old_idx"))])
    assert rename.reasons == ("same definition as 'old_idx'",)


def test_extra_invalid_says_so():
    changes, drift = run([], [live(B, valid=False)], prune=True)
    assert drift[0].message == "not in the spec (INVALID)"
    assert changes[0].reasons == ("not in the spec (INVALID); prune is on",)


def test_rename_prefers_nothing_already_named_in_the_spec():
    """A live index whose name the spec uses elsewhere is not a rename source."""
    other = A.renamed("orders_created_idx")  # live: the spec's B name, but with A's definition
    changes, _ = run([A, B], [live(other)])
    assert sorted((c.action, c.index) for c in changes) == [("create", "orders_customer_idx"),
                                                            ("replace", "orders_created_idx")]


def test_the_equivalence_comes_from_the_caller():
    """diff never decides sameness itself: a caller that says "never the same" gets a replace."""
    changes, _ = diff_indexes([A], [live(A)], same=lambda d, x: False, reasons=lambda o, n: [])
    assert [(c.action, c.reasons) for c in changes] == [("replace", ("definition differs",))]


def test_table_facts_are_carried_on_changes():
    facts = TableFacts("p", 10, 8192, (("public", "orders_2024"),))
    changes, _ = run([A], [], table_facts=lambda s, t: facts)
    assert changes[0].table_facts is facts and changes[0].partitions == (("public", "orders_2024"),)


def test_partition_index_that_a_new_parent_will_adopt_is_not_an_extra():
    facts = {("public", "orders"): TableFacts("p", partitions=(Partition("public", "orders_2024", "public", "orders"),))}
    child = live(idx("orders_2024_customer_id_idx", "customer_id", table="orders_2024"))
    changes, drift = run([A], [child], prune=True, table_facts=lambda s, t: facts.get((s, t), TableFacts()))
    assert summary(changes, drift) == ([("create", "public", "orders_customer_idx", None)],
                                       [("extra", "orders_2024_customer_id_idx")])
    assert drift[0].message == "will be attached to its partitioned index"


def test_stable_order_whatever_the_input_order():
    desired = [idx(f"ix_{n}", "a", table=t, schema=s) for s, t, n in
               [("b", "t1", "z"), ("a", "t2", "y"), ("a", "t1", "x"), ("a", "t1", "w")]]
    extras = [live(idx(f"extra_{n}", "b", table="t1", schema="a")) for n in "qp"]
    first = run(desired, extras, prune=True)
    second = run(list(reversed(desired)), list(reversed(extras)), prune=True)
    assert first == second
    assert [(c.schema, c.table, c.index) for c in first[0]] == [
        ("a", "t1", "extra_p"), ("a", "t1", "extra_q"), ("a", "t1", "ix_w"), ("a", "t1", "ix_x"),
        ("a", "t2", "ix_y"), ("b", "t1", "ix_z")]
    assert [d.index for d in first[1]] == ["extra_p", "extra_q"]


# --- temporary names -----------------------------------------------------------------------------------

def test_temp_name_is_deterministic_and_distinct():
    assert temp_name("orders_customer_idx") == temp_name("orders_customer_idx")
    assert temp_name("orders_customer_idx") != temp_name("orders_created_idx")
    assert temp_name("orders_customer_idx", "old") != temp_name("orders_customer_idx", "new")
    assert temp_name("orders_customer_idx").startswith("orders_customer_idx_rcold_")


@pytest.mark.parametrize("name", ["a" * 63, "a" * 62 + "b", "é" * 31, "x", "Ünïcode_" * 7])
def test_temp_name_fits_in_63_bytes(name):
    t = temp_name(name)
    assert len(t.encode()) <= 63
    t.encode().decode("utf-8")  # no cut-in-half character
    assert is_leftover(t)
    assert leftover_of(t, ["unrelated", name]) == name


def test_long_names_sharing_a_prefix_get_different_temp_names():
    a, b = "p" * 60 + "abc", "p" * 60 + "xyz"
    assert temp_name(a) != temp_name(b)


def test_is_leftover():
    assert not is_leftover("orders_customer_idx")
    assert not is_leftover("orders_rcold_xyz")
    assert is_leftover("orders_rcnew_0123abcd")
    assert leftover_of("orders_rcold_0123abcd", ["orders"]) is None  # the hash must match
