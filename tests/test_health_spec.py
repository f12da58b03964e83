"""The `health:` mapping of indexes.yaml: thresholds with units, documented in the JSON Schema,
one line per error with file:line, merged across files like `manage.prune`."""
from __future__ import annotations

import pytest

from reconciler.errors import SpecError
from reconciler.spec import Health, json_schema, load_spec, load_spec_text


def test_defaults_are_the_document_s():
    h = Health()
    assert (h.min_index_hit_ratio, h.max_seq_scan_ratio, h.unused_min_stats_age, h.max_bloat_ratio,
            h.min_unused_size) == (0.99, 0.01, 30 * 86400, 0.5, 1024 ** 2)


@pytest.mark.parametrize("text,field,value", [
    ("unused_min_stats_age: 7d", "unused_min_stats_age", 7 * 86400),
    ("unused_min_stats_age: 12h", "unused_min_stats_age", 12 * 3600),
    ("unused_min_stats_age: 90min", "unused_min_stats_age", 5400),
    ("unused_min_stats_age: 3600", "unused_min_stats_age", 3600),
    ("unused_min_stats_age: 2w", "unused_min_stats_age", 14 * 86400),
    ("min_unused_size: 512kB", "min_unused_size", 512 * 1024),
    ("min_unused_size: 10MB", "min_unused_size", 10 * 1024 ** 2),
    ("min_unused_size: 0", "min_unused_size", 0),
    ("min_bloat_size: 1GB", "min_bloat_size", 1024 ** 3),
    ("max_bloat_ratio: 0.3", "max_bloat_ratio", 0.3),
])
def test_units(text, field, value):
    model, _ = load_spec_text(f"version: 1\nhealth:\n  {text}\n")
    assert getattr(model.health, field) == value


@pytest.mark.parametrize("text,needle", [
    ("unused_min_stats_age: 30 days", "indexes.yaml:3: health.unused_min_stats_age: cannot read duration '30 days'"),
    ("unused_min_stats_age: true", "indexes.yaml:3: health.unused_min_stats_age: expected a duration"),
    ("min_unused_size: 1 MiBs", "indexes.yaml:3: health.min_unused_size: cannot read size '1 MiBs'"),
    ("min_unused_size: -5", "indexes.yaml:3: health.min_unused_size: must not be negative"),
    ("min_index_hit_ratio: 1.5", "indexes.yaml:3: health.min_index_hit_ratio: Input should be less than or equal to 1"),
    ("max_seq_scan_ratio: lots", "indexes.yaml:3: health.max_seq_scan_ratio: Input should be a valid number"),
    ("min_unused_siz: 1MB", "indexes.yaml:3: health.min_unused_siz: unknown key 'min_unused_siz' "
                            "(did you mean 'min_unused_size'?)"),
])
def test_bad_thresholds_are_one_line_with_file_line_and_key(text, needle):
    with pytest.raises(SpecError) as info:
        load_spec_text(f"version: 1\n\nhealth:\n  {text}\n".replace("\n\n", "\n"))
    assert str(info.value).startswith(needle), str(info.value)
    assert "\n" not in str(info.value)


def test_every_threshold_is_documented_in_the_json_schema():
    schema = json_schema()
    assert "health" in schema["properties"]
    props = schema["$defs"]["Health"]["properties"]
    assert set(props) == set(Health.model_fields)
    assert all(p.get("description") for p in props.values())
    assert schema["$defs"]["Health"]["additionalProperties"] is False


def test_thresholds_merge_across_files(tmp_path):
    a = tmp_path / "a.yaml"
    b = tmp_path / "b.yaml"
    a.write_text("version: 1\nhealth: {max_bloat_ratio: 0.3}\n")
    b.write_text("version: 1\nhealth:\n  min_unused_size: 10MB\n")
    h = load_spec([a, b]).health
    assert (h.max_bloat_ratio, h.min_unused_size, h.min_index_hit_ratio) == (0.3, 10 * 1024 ** 2, 0.99)
    b.write_text("version: 1\nhealth:\n  max_bloat_ratio: 0.4\n")
    with pytest.raises(SpecError) as info:
        load_spec([a, b])
    assert str(info.value) == (f"{b}:3: health.max_bloat_ratio is 0.4 here but 0.3 at {a}:2; "
                               "the merged spec needs one value")
    b.write_text("version: 1\nhealth:\n  max_bloat_ratio: 0.3\n")
    assert load_spec([a, b]).health.max_bloat_ratio == 0.3


def test_a_large_spec_keeps_its_thresholds_through_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("RECONCILER_NO_CACHE", raising=False)
    body = "".join(f"  - name: i{n}\n    table: t\n    columns: [c{n % 7}]\n" for n in range(3000))
    big = tmp_path / "big.yaml"
    big.write_text("version: 1\nhealth: {unused_min_stats_age: 7d}\nindexes:\n" + body)
    other = tmp_path / "other.yaml"
    other.write_text("version: 1\nhealth: {max_bloat_ratio: 0.25}\n")
    first = load_spec([big, other]).health
    second = load_spec([big, other]).health   # from the cache
    assert first == second
    assert (second.unused_min_stats_age, second.max_bloat_ratio, second.min_unused_size) == (7 * 86400, 0.25, 1024 ** 2)
