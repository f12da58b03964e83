"""render: text / markdown / SQL / JSON goldens, and the plan file round trip (no database).

The goldens in tests/goldens/ are written by `pytest tests/test_render.py --update-goldens`,
never by hand: review the diff of a regenerated golden like any other change.
"""
from __future__ import annotations

import enum
import json
import re
from pathlib import Path

import pytest

from reconciler.errors import StalePlanError
from reconciler.core.index import KeyPart, LiveIndex, Partition, TableFacts
from reconciler.core.plan import Change, Drift
from reconciler.reconcile.planner import Timeouts, build_plan
from reconciler.reconcile.planfile import plan_from_file, plan_to_file
from reconciler.render import (
    render_drift, render_json, render_markdown, render_sql, render_text, summary_line,
)

from support.build import idx

GOLDENS = Path(__file__).parent / "goldens"


def small_plan():
    """One change of each kind, a drift of each kind and a warning: fixed, no database."""
    email = idx("users_lower_email_key", KeyPart("lower(email)", True), table="users", unique=True,
                where='"deletedAt" IS NULL', comment="login | lookup")
    created_old = idx("orders_created_idx", "created_at")
    created_new = idx("orders_created_idx", KeyPart("created_at", desc=True), include=("total",),
                      options=(("fillfactor", "90"),))
    status = idx("orders_status_idx", "status")
    customer = idx("orders_customer_idx", "customer_id")
    legacy = idx("orders_legacy_idx", "legacy_code")
    events = idx("events_ts_idx", "ts", table="events")
    changes = [
        Change("create", "public", "users", email.name, ("not in the database",), email,
               table_facts=TableFacts("r", 120000, 9 * 1024 * 1024)),
        Change("replace", "public", "orders", created_new.name,
               ("order of created_at: ASC NULLS LAST → DESC NULLS FIRST", "include () → (total)",
                "storage options (none) → (fillfactor=90)"), created_new,
               LiveIndex(created_old, oid=1, size_bytes=4096), created_old.name, TableFacts("r", 5000, 819200)),
        Change("rename", "public", "orders", customer.name, ("same definition as 'orders_cust_idx'",), customer,
               LiveIndex(customer.renamed("orders_cust_idx"), oid=2), "orders_cust_idx"),
        Change("rebuild", "public", "orders", status.name, ("index is INVALID (a failed or interrupted build)",),
               status, LiveIndex(status, oid=3, valid=False)),
        Change("drop", "public", "orders", legacy.name, ("not in the spec; prune is on",), None,
               LiveIndex(legacy, oid=4, size_bytes=2 * 1024 * 1024, idx_scan=42)),
        Change("create", "public", "events", events.name, ("not in the database",), events,
               table_facts=TableFacts("p", 10, 16384, (Partition("public", "events_2025", "public", "events"),))),
    ]
    drift = [
        Drift("extra", "public", "orders", "orders_legacy_idx", "not in the spec"),
        Drift("extra", "public", "orders", "orders_note_idx", "not in the spec"),
        Drift("constraint", "public", "users", "users_pkey",
              "backs constraint 'users_pkey' and differs from the spec; constraint-backed indexes are never replaced"),
    ]
    return build_plan(changes, drift, timeouts=Timeouts(3000, 60000, 0), fingerprint="0123456789abcdef",
                      warnings=("compared by text alone (no server canonicalization); casts ignored",))


RENDERERS = {
    "text": lambda p: render_text(p),
    "markdown": render_markdown,
    "sql": render_sql,
    "json": render_json,
    "drift": lambda p: render_drift(p),
    "drift-json": lambda p: render_drift(p, "json"),
    "planfile": lambda p: plan_to_file(p, ["indexes.yaml"], "sha256:" + "0" * 64),
}


@pytest.mark.parametrize("fmt", RENDERERS)
def test_golden(fmt, request):
    path = GOLDENS / f"plan.{fmt}.txt"
    actual = RENDERERS[fmt](small_plan())
    if request.config.getoption("--update-goldens"):
        GOLDENS.mkdir(exist_ok=True)
        path.write_text(actual)
        return
    assert path.exists(), f"{path} is missing: run `pytest tests/test_render.py --update-goldens`"
    assert actual == path.read_text(), f"{path} differs: review, then `pytest tests/test_render.py --update-goldens`"


@pytest.mark.parametrize("fmt", RENDERERS)
def test_output_is_deterministic(fmt):
    assert RENDERERS[fmt](small_plan()) == RENDERERS[fmt](small_plan())


def test_text_shows_every_change_and_the_drift_not_dropped():
    text = render_text(small_plan())
    assert text.splitlines()[0] == "warning: compared by text alone (no server canonicalization); casts ignored"
    assert "> rename public.orders_cust_idx → orders_customer_idx on orders" in text
    assert "- drop public.orders_legacy_idx on orders" in text
    assert "hazard (blocking) DROPS_USED_INDEX" in text
    # the dropped extra is a change, not also "not changed"; the kept one is listed
    not_changed = text.split("Not changed by this plan:")[1]
    assert "orders_note_idx" in not_changed and "orders_legacy_idx" not in not_changed
    assert "users_pkey" in not_changed
    assert text.rstrip().endswith("Plan: 2 to create, 1 to replace, 1 to rename, 1 to rebuild, 1 to drop.")
    assert "\033[" not in text


def test_text_color_only_when_asked():
    assert "\033[32m+ create" in render_text(small_plan(), color=True)


def test_markdown_lists_as_not_changed_only_what_the_plan_leaves_alone():
    md = render_markdown(small_plan())
    not_changed = md.split("Not changed by this plan:")[1]
    assert "orders_note_idx" in not_changed and "users_pkey" in not_changed
    assert "orders_legacy_idx" not in not_changed  # dropped by this plan


def test_markdown_warning_quote_does_not_swallow_the_table():
    lines = render_markdown(small_plan()).splitlines()
    quote = next(i for i, line in enumerate(lines) if line.startswith("> :warning:"))
    assert lines[quote + 1] == "" and lines[quote + 2].startswith("| | action |")


def test_markdown_escapes_pipes_in_a_table_cell():
    plan = build_plan([Change("create", "public", "t", "i", ("a | b",), idx("i", "a", table="t"))])
    row = next(line for line in render_markdown(plan).splitlines() if line.startswith("| `+`"))
    assert "a \\| b" in row
    assert len(re.findall(r"(?<!\\)\|", row)) == 6  # 5 cells: the escaped pipe does not split one


def test_sql_script_sets_timeouts_and_looks_up_partition_indexes_with_gset():
    sql = render_sql(small_plan())
    assert "SET lock_timeout = '3000ms';\nSET statement_timeout = '0ms';\nCREATE INDEX CONCURRENTLY" in sql
    assert "-- duplicate check (must return no row): SELECT" in sql
    # the partition's index is named by PostgreSQL: the script reads its name into a psql variable
    var = re.search(r" AS (rc_[0-9a-f]{8}) FROM pg_index .*'public.events_2025'::regclass.* \\gset\n", sql).group(1)
    assert f"\nALTER INDEX public.events_ts_idx ATTACH PARTITION :{var};" in sql


def test_json_document():
    doc = json.loads(render_json(small_plan()))
    assert doc["format_version"] == 1
    assert doc["summary"] == {"create": 2, "drop": 1, "replace": 1, "rename": 1, "rebuild": 1}
    rename = next(c for c in doc["changes"] if c["action"] == "rename")
    assert rename["old_name"] == "orders_cust_idx"
    drop = next(c for c in doc["changes"] if c["action"] == "drop")
    assert {"code": "DROPS_USED_INDEX", "message": drop["hazards"][-1]["message"], "blocking": True} in drop["hazards"]


def test_empty_plan_everywhere():
    plan = build_plan([])
    doc = json.loads(render_json(plan))
    assert doc["format_version"] == 1 and doc["changes"] == [] and doc["drift"] == [] and doc["warnings"] == []
    assert '"changes": []' in render_json(plan)
    assert render_text(plan) == "No changes. The indexes match the spec.\n"
    assert summary_line(plan) == "No changes. The indexes match the spec."
    assert "No changes" in render_markdown(plan) and "```sql" not in render_markdown(plan)
    assert render_drift(plan) == "No drift: the managed indexes match the spec.\n"
    assert json.loads(render_drift(plan, "json")) == {"format_version": 1, "in_sync": True, "drift": [], "warnings": []}


# --- the plan file -----------------------------------------------------------------------------------

def test_plan_file_round_trip():
    plan = small_plan()
    text = plan_to_file(plan, ["indexes.yaml"])
    changes, sqls, fingerprint = plan_from_file(text)
    original = [pc.change for pc in plan.changes]
    assert changes == original
    # names, SQL texts and comments do not take part in IndexDef equality: compare them too
    for got, want in zip(changes, original):
        for side in ("desired", "live"):
            g, w = getattr(got, side), getattr(want, side)
            if w is None:
                assert g is None
                continue
            gd, wd = (g, w) if side == "desired" else (g.definition, w.definition)
            assert (gd.name, gd.where_sql, gd.comment, [k.sql for k in gd.keys]) == \
                (wd.name, wd.where_sql, wd.comment, [k.sql for k in wd.keys])
    assert sqls == [[op.sql for op in pc.operations] for pc in plan.changes]
    assert fingerprint == "0123456789abcdef"
    # and what was read writes back byte for byte
    again = build_plan(changes, list(plan.drift), timeouts=Timeouts(3000, 60000, 0), fingerprint=fingerprint,
                       warnings=plan.warnings)
    assert plan_to_file(again, ["indexes.yaml"]) == text


@pytest.mark.parametrize("text, needle", [
    pytest.param("not json", "not a reconciler plan file", id="not-json"),
    pytest.param("[]", "not a reconciler plan file", id="not-an-object"),
    pytest.param('{"kind": "terraform-plan", "format_version": 1}', "not a reconciler plan file", id="other-kind"),
    pytest.param('{"kind": "reconciler-plan", "format_version": 2, "changes": []}', "plan format 2 is not supported",
                 id="newer-format"),
    pytest.param('{"kind": "reconciler-plan", "format_version": 1, "changes": [{"change": {}}]}', "damaged plan file",
                 id="damaged"),
    pytest.param('{"kind": "reconciler-plan", "format_version": 1}', "damaged plan file", id="no-changes-key"),
])
def test_plan_file_refuses(text, needle):
    with pytest.raises(StalePlanError) as info:
        plan_from_file(text, "saved.plan")
    assert info.value.message.startswith("saved.plan: ") and needle in info.value.message


# --- render.jsontext: json.dumps(indent=N, ensure_ascii=False), byte for byte ---------------------

class _Color(str, enum.Enum):
    RED = "red"


class _Level(enum.IntEnum):
    HIGH = 3


def _random_doc(rnd, depth=0):
    leaves = [lambda: rnd.choice(["", "a", "é\u202e\x00\n\"\\/", "\U0001f600", "line\u2028sep"]),
              lambda: rnd.randint(-10**20, 10**20), lambda: rnd.uniform(-1e6, 1e6),
              lambda: rnd.choice([0.1, -0.0, 1e300, 5e-324, float("nan"), float("inf"), float("-inf")]),
              lambda: rnd.choice([True, False, None]), lambda: _Color.RED, lambda: _Level.HIGH]
    if depth > 3 or rnd.random() < 0.3:
        return rnd.choice(leaves)()
    if rnd.random() < 0.5:
        return {rnd.choice(["k", "é", "a\"b", "", "ok"]) + str(i): _random_doc(rnd, depth + 1)
                for i in range(rnd.randint(0, 4))}
    items = [_random_doc(rnd, depth + 1) for _ in range(rnd.randint(0, 4))]
    return tuple(items) if rnd.random() < 0.2 else items


def test_dumps_indented_writes_what_json_dumps_writes():
    import random

    from reconciler.render.jsontext import dumps_indented

    rnd = random.Random(11)
    for _ in range(1000):
        doc = _random_doc(rnd)
        for indent in (2, 1):
            assert dumps_indented(doc, indent) == json.dumps(doc, indent=indent, ensure_ascii=False), doc


def test_dumps_indented_leaves_what_it_does_not_write_to_json():
    from reconciler.render.jsontext import dumps_indented

    # json.dumps turns these keys into text: the result is still json.dumps's
    doc = {"a": {1: "x", 2.5: [None], True: {}, None: 0}}
    assert dumps_indented(doc) == json.dumps(doc, indent=2, ensure_ascii=False)
    with pytest.raises(TypeError):
        dumps_indented({"a": [object()]})
    cycle: list = []
    cycle.append(cycle)
    with pytest.raises(ValueError, match="Circular reference"):
        dumps_indented({"a": cycle})
