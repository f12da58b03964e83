"""spec: the shape of indexes.yaml, and every error pointing at file:line (no database)."""
from __future__ import annotations

import json
import re
import textwrap

import pytest

from reconciler.errors import SpecError
from reconciler.spec import ColumnSpec, json_schema, load_spec, load_spec_text, parse_shorthand

from support.specs import MINIMAL


def doc(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


def error_of(text: str, file: str = "indexes.yaml") -> str:
    with pytest.raises(SpecError) as info:
        load_spec_text(doc(text), file)
    return info.value.message


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc(text))
    return path


GOOD = MINIMAL


def test_a_minimal_spec_loads():
    model, _ = load_spec_text(doc(GOOD))
    (ix,) = model.indexes
    assert (ix.name, ix.table, ix.key_columns[0].column) == ("orders_customer_idx", "orders", "customer_id")
    assert ix.using == "btree" and not ix.unique


# --- errors name file:line and the field ---------------------------------------------------------

@pytest.mark.parametrize("text, line, needles", [
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x
          - name: b
        """, 6, ["YAML syntax error", "flow sequence that starts on line 5"], id="unclosed-flow-sequence"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
           table: t
        """, 4, ["YAML syntax error"], id="bad-indentation"),
    pytest.param("""
        version: 1
        indexes:
          - name: "a
            table: t
        """, 3, ["YAML syntax error", "quoted scalar"], id="unclosed-quote-points-at-its-start"),
], )
def test_yaml_syntax_error_names_the_line(text, line, needles):
    msg = error_of(text, "specs/bad.yaml")
    assert msg.startswith(f"specs/bad.yaml:{line}: "), msg
    for n in needles:
        assert n in msg


@pytest.mark.parametrize("text, prefix, needles", [
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            uniqe: true
        """, "indexes.yaml:6: index 'a': uniqe:", ["unknown key 'uniqe'", "did you mean 'unique'?"],
        id="index-key"),
    pytest.param("""
        version: 1
        indexs: []
        """, "indexes.yaml:2: indexs:", ["unknown key 'indexs'", "did you mean 'indexes'?"], id="top-key"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns:
              - colum: x
        """, "indexes.yaml:6: index 'a': columns[0].colum:", ["unknown key 'colum'", "did you mean 'column'?"],
        id="column-key"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            zzzzzz: 1
        """, "indexes.yaml:6: index 'a': zzzzzz:", ["unknown key 'zzzzzz'", "(allowed: name, table,"],
        id="no-near-key-lists-allowed"),
])
def test_unknown_key_names_line_and_suggests(text, prefix, needles):
    msg = error_of(text)
    assert msg.startswith(prefix), msg
    for n in needles:
        assert n in msg, msg


@pytest.mark.parametrize("text, prefix, needle", [
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            unique: maybe
        """, "indexes.yaml:6: index 'a': unique:", "valid boolean", id="bool"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: x
        """, "indexes.yaml:5: index 'a': columns:", "valid list", id="columns-not-a-list"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [5]
        """, "indexes.yaml:5: index 'a': columns[0]:",
        "expected a column name or a mapping with 'column' or 'expression', got int", id="column-int"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns:
              - column: x
                order: up
        """, "indexes.yaml:7: index 'a': columns[0].order:", "'asc' or 'desc'", id="order-literal"),
    pytest.param("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            with: {fillfactor: [90]}
        """, "indexes.yaml:6: index 'a': with.fillfactor:", "got list", id="storage-option-list"),
    pytest.param("""
        version: 2
        indexes: []
        """, "indexes.yaml:1: version:", "Input should be 1", id="version"),
])
def test_wrong_type_names_line_and_field(text, prefix, needle):
    msg = error_of(text)
    assert msg.startswith(prefix), msg
    assert needle in msg, msg
    assert "valid string" not in msg  # the str branch of a union is not what went wrong


def test_missing_required_key():
    msg = error_of("""
        version: 1
        indexes:
          - name: a
            columns: [x]
        """)
    assert msg == "indexes.yaml:3: index 'a': table: required key 'table' is missing"


def test_duplicate_yaml_key_is_an_error_not_a_silent_override():
    msg = error_of("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            table: u
        """)
    assert msg.startswith("indexes.yaml:6: ") and "key 'table' appears twice" in msg, msg


def test_empty_file_and_non_mapping():
    assert error_of("").startswith("indexes.yaml:1: the file is empty")
    assert "expected a mapping" in error_of("- a\n")


def test_name_of_63_bytes_is_fine_and_64_is_refused():
    ok = GOOD.replace("orders_customer_idx", "a" * 63)
    model, _ = load_spec_text(doc(ok))
    assert model.indexes[0].name == "a" * 63
    msg = error_of(GOOD.replace("orders_customer_idx", "a" * 64))
    assert msg.startswith("indexes.yaml:3: ") and "is 64 bytes" in msg and "63" in msg, msg


def test_name_limit_counts_bytes_not_characters():
    name = "é" * 32  # 32 characters, 64 bytes
    msg = error_of(GOOD.replace("orders_customer_idx", name))
    assert "is 64 bytes" in msg


def test_table_name_limit_too():
    msg = error_of(GOOD.replace("table: orders", "table: " + "t" * 64))
    assert "table:" in msg and "is 64 bytes" in msg


# --- column shorthand ----------------------------------------------------------------------------

@pytest.mark.parametrize("text, column, order, nulls", [
    ("createdAt DESC NULLS LAST", "createdAt", "desc", "last"),
    ("createdAt", "createdAt", None, None),
    ("x asc nulls first", "x", "asc", "first"),
    ('"created At" desc', "created At", "desc", None),
    ('"weird""name"', 'weird"name', None, None),
    ('"DESC"', "DESC", None, None),
])
def test_shorthand(text, column, order, nulls):
    assert parse_shorthand(text) == ColumnSpec(column=column, order=order, nulls=nulls)


def test_shorthand_in_a_spec_keeps_case():
    model, _ = load_spec_text(doc("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: ["workspaceId", "createdAt DESC NULLS LAST"]
        """))
    keys = model.indexes[0].key_columns
    assert [(k.column, k.order, k.nulls) for k in keys] == [("workspaceId", None, None), ("createdAt", "desc", "last")]


@pytest.mark.parametrize("text", ["lower(email)", "a + b", "a, b", "coalesce(x, 0) DESC"])
def test_shorthand_with_an_expression_is_refused_with_a_hint(text):
    with pytest.raises(ValueError, match="expression:"):
        parse_shorthand(text)


def test_shorthand_paren_refused_in_spec_with_line():
    msg = error_of("""
        version: 1
        indexes:
          - name: a
            table: users
            columns: ["lower(email)"]
        """)
    assert msg.startswith("indexes.yaml:5: index 'a': columns:"), msg
    assert "'- expression: lower(email)'" in msg


@pytest.mark.parametrize("column", [
    pytest.param("{column: x, expression: lower(x)}", id="both"),
    pytest.param("{order: desc}", id="neither"),
    pytest.param("{column: '  '}", id="empty-column"),
])
def test_exactly_one_of_column_or_expression(column):
    msg = error_of(f"""
        version: 1
        indexes:
          - name: a
            table: t
            columns:
              - {column}
        """)
    assert msg.startswith("indexes.yaml:6: index 'a': columns[0]"), msg
    assert "exactly one of 'column' or 'expression'" in msg or "column: must not be empty" in msg, msg


def test_long_form_column():
    model, _ = load_spec_text(doc("""
        version: 1
        indexes:
          - name: a
            table: t
            columns:
              - expression: lower(email)
                opclass: text_pattern_ops
                collation: C
                order: DESC
        """))
    (c,) = model.indexes[0].key_columns
    assert (c.column, c.expression, c.opclass, c.collation, c.order) == \
        (None, "lower(email)", "text_pattern_ops", "C", "desc")


def test_nulls_not_distinct_needs_unique():
    msg = error_of("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            nulls_not_distinct: true
        """)
    assert msg.startswith("indexes.yaml:3: index 'a'") and "nulls_not_distinct needs unique: true" in msg, msg
    model, _ = load_spec_text(doc("""
        version: 1
        indexes:
          - name: a
            table: t
            columns: [x]
            unique: true
            nulls_not_distinct: true
        """))
    assert model.indexes[0].nulls_not_distinct


@pytest.mark.parametrize("field, value, needle", [
    ("where", "'  '", "empty predicate"),
    ("using", "'b-tree'", "not an access method name"),
])
def test_field_validators(field, value, needle):
    msg = error_of(GOOD + f"        {field}: {value}\n")
    assert f"index 'orders_customer_idx': {field}:" in msg and needle in msg, msg


# --- several files ---------------------------------------------------------------------------------

def test_duplicate_names_across_two_files(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD)
    b = write(tmp_path, "b.yaml", """
        version: 1
        indexes:
          - name: other
            table: t
            columns: [y]
          - name: orders_customer_idx
            table: orders
            columns: [z]
        """)
    with pytest.raises(SpecError) as info:
        load_spec([a, b])
    assert info.value.message == (f"{b}:6: index 'orders_customer_idx': name already used at {a}:3 "
                                  "(index names are unique per schema)")


def test_same_name_in_two_schemas_is_fine(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD)
    b = write(tmp_path, "b.yaml", "version: 1\ndefaults: {schema: app}\n"
                                  "indexes: [{name: orders_customer_idx, table: orders, columns: [customer_id]}]\n")
    spec = load_spec([a, b])
    assert [(e.schema, e.spec.name) for e in spec.entries] == [("public", "orders_customer_idx"),
                                                               ("app", "orders_customer_idx")]


def test_one_file_given_twice_is_read_once(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD)
    spec = load_spec([a, tmp_path / "." / "a.yaml", tmp_path])
    assert [e.spec.name for e in spec.entries] == ["orders_customer_idx"]
    assert spec.files == (str(a),)


def test_prune_conflict_between_files(tmp_path):
    a = write(tmp_path, "a.yaml", "version: 1\nmanage: {prune: true}\nindexes: []\n")
    b = write(tmp_path, "b.yaml", "version: 1\nindexes: []\nmanage:\n  ignore: ['x*']\n  prune: false\n")
    with pytest.raises(SpecError) as info:
        load_spec([a, b])
    assert info.value.message == (f"{b}:5: manage.prune is false here but true in {a}; "
                                  "the merged spec needs one value")


def test_manage_without_prune_does_not_conflict(tmp_path):
    a = write(tmp_path, "a.yaml", "version: 1\nmanage: {prune: true, ignore: ['tmp_*']}\nindexes: []\n")
    b = write(tmp_path, "b.yaml", "version: 1\nmanage: {ignore: ['old_*', 'tmp_*'], tables: ['public.*']}\n")
    spec = load_spec([a, b])
    assert spec.prune is True
    assert spec.ignore == ("tmp_*", "old_*")
    assert spec.table_globs == ("public.*",)
    assert spec.ignored("tmp_x") and spec.ignored("old_y") and not spec.ignored("new_z")


def test_directory_loads_yaml_and_yml_sorted(tmp_path):
    write(tmp_path / "specs", "b.yml", GOOD.replace("orders_customer_idx", "from_b"))
    write(tmp_path / "specs", "a.yaml", GOOD.replace("orders_customer_idx", "from_a"))
    write(tmp_path / "specs", "notes.txt", "not a spec")
    spec = load_spec([tmp_path / "specs"])
    assert [e.spec.name for e in spec.entries] == ["from_a", "from_b"]
    assert [e.where for e in spec.entries] == [f"{tmp_path / 'specs' / 'a.yaml'}:3",
                                               f"{tmp_path / 'specs' / 'b.yml'}:3"]
    assert spec.tables == [("public", "orders")]


def test_empty_directory_and_missing_file(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match="no \\*.yaml files"):
        load_spec([tmp_path / "empty"])
    with pytest.raises(SpecError, match="no such file"):
        load_spec([tmp_path / "nope.yaml"])


def test_error_in_second_file_names_that_file(tmp_path):
    a = write(tmp_path, "a.yaml", GOOD)
    b = write(tmp_path, "b.yaml", "version: 1\nindexes:\n  - name: x\n    tabel: t\n")
    with pytest.raises(SpecError) as info:
        load_spec([a, b])
    assert info.value.message.startswith(f"{b}:4: index 'x': tabel: unknown key 'tabel' (did you mean 'table'?)")


def test_schema_default_and_override(tmp_path):
    a = write(tmp_path, "a.yaml", """
        version: 1
        defaults: {schema: app}
        indexes:
          - {name: a, table: t, columns: [x]}
          - {name: b, table: t, schema: other, columns: [x]}
        """)
    assert [(e.schema, e.spec.name, e.line) for e in load_spec([a]).entries] == [("app", "a", 4), ("other", "b", 5)]


# --- JSON Schema -----------------------------------------------------------------------------------

def test_json_schema_describes_the_file():
    schema = json_schema()
    json.dumps(schema)  # serializable
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["properties"]) == {"version", "defaults", "manage", "health", "indexes", "queries", "queries_file"}
    assert schema["additionalProperties"] is False
    ix = schema["$defs"]["IndexSpec"]
    assert {"name", "table", "columns", "where", "using", "with", "schema", "include"} <= set(ix["properties"])
    assert not any(k.endswith("_") for k in ix["properties"])  # aliases, not Python names
    assert set(ix["required"]) == {"name", "table", "columns"}
    assert ix["additionalProperties"] is False
    col = schema["$defs"]["ColumnSpec"]
    assert {"column", "expression", "order", "nulls", "opclass", "collation"} == set(col["properties"])


def test_every_key_the_loader_accepts_is_in_the_schema():
    """The editor schema and the loader agree: a spec using every key validates."""
    model, _ = load_spec_text(doc("""
        version: 1
        defaults: {schema: public}
        manage: {prune: false, ignore: ['*_pkey'], tables: ['public.*']}
        indexes:
          - name: a
            table: t
            schema: public
            columns: [x, {expression: lower(y), opclass: text_pattern_ops, collation: C, order: asc, nulls: last}]
            unique: true
            include: [z]
            where: x > 0
            using: btree
            nulls_not_distinct: true
            with: {fillfactor: 90}
            tablespace: pg_default
            comment: hello
        """))
    used = set(model.indexes[0].model_dump(by_alias=True))
    assert used <= set(json_schema()["$defs"]["IndexSpec"]["properties"])


def test_error_messages_are_one_line():
    for text in ["version: 1\nindexes:\n  - name: a\n    table: [b\n", GOOD + "        bogus: 1\n", "version: [1\n"]:
        msg = error_of(text)
        assert "\n" not in msg and re.match(r"indexes\.yaml:\d+: ", msg), msg

