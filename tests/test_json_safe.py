"""Hidden characters in JSON outputs: every JSON document the tool writes (plan, drift, fleet,
health, verify) escapes C1 controls, bidi overrides and line separators inside its strings, so a
name from the database or a query from the spec cannot hide text in a CI log; the data a JSON
reader gets is unchanged."""
from __future__ import annotations

import json

from test_health import ix, snap

from reconciler.core.display import json_safe
from reconciler.health import Thresholds, assess
from reconciler.queries import Verdict
from reconciler.render.health import render_health_json
from reconciler.render.verify import render_verify_json

def strings(doc) -> set[str]:
    """Every string value in a parsed JSON document."""
    if isinstance(doc, str):
        return {doc}
    items = doc.values() if isinstance(doc, dict) else doc if isinstance(doc, list) else ()
    return set().union(*(strings(x) for x in items)) if items else set()


HIDDEN = "\u202e\u0085\u2028\u200b\U000e0041\x7f"   # bidi override, C1 NEL, line sep, ZWSP, tag, DEL


def test_json_safe_escapes_only_hidden_characters_and_keeps_the_data():
    doc = {"name": f"a{HIDDEN}é😀b", "sql": "SELECT 'x'\nFROM t\t", "n": [1, 2.5, None]}
    for text in (json.dumps(doc, ensure_ascii=False), json.dumps(doc, indent=2, ensure_ascii=False)):
        safe = json_safe(text)
        assert json.loads(safe) == doc
        assert not any(c in safe for c in HIDDEN)
        assert "é😀" in safe                         # visible non-ASCII stays as it is
        assert "\\ud83d" not in safe and "\\udb40\\udc41" in safe   # the tag char as a surrogate pair
        assert safe.count("\n") == text.count("\n")  # the document's own line breaks stay
    assert json_safe('{"a": "x\x7f"}') == '{"a": "x\\u007f"}'   # DEL in otherwise ASCII text
    plain = json.dumps(doc, indent=2)
    assert json_safe(plain) is plain                 # nothing hidden: the same text


def test_health_json_escapes_a_hidden_character_in_an_index_name():
    r = assess(snap(ix('CREATE INDEX "t_\u202ea" ON t (a)'), ix("CREATE INDEX t_b ON t (b)")), Thresholds())
    out = render_health_json(r)
    assert "\u202e" not in out and "\\u202e" in out
    assert "t_\u202ea" in strings(json.loads(out))


def test_verify_json_escapes_a_hidden_character_in_a_query():
    v = Verdict(name="q\u202e1", where="spec.yaml:3", sql="SELECT 1", mode="plan", cost=1.0,
                rows=1.0, accesses=(), uses=())
    out = render_verify_json([v])
    assert "\u202e" not in out and "\\u202e" in out
    assert "q\u202e1" in strings(json.loads(out))
