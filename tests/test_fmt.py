"""`reconciler fmt`: canonical layout, same meaning, comments kept, idempotent; `--check` for CI."""
from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from reconciler.errors import SpecError
from reconciler.spec import load_spec_text
from reconciler.spec.fmt import format_spec

ROOT = Path(__file__).resolve().parents[1]

MESSY = textwrap.dedent("""
    # top comment
    indexes:
        # first section
        -   table: users   # the table
            columns:
              - {column: tenantId, order: DESC}
              - column: email
                nulls: LAST
              - expression: lower(email)
              - {column: "desc"}
              - {column: "a b", order: desc}
              - {column: name, opclass: text_pattern_ops}
            name: users_a   # name comment
            using: BTREE
            comment: "x"   # trailing

        # Second section
        -   name: b
            columns:
              - column: c   # keep block: commented
            table: t
            include:
              - id
              - x
    manage: {prune: true}
    version: 1
""").lstrip()


def meaning(text: str):
    model, _ = load_spec_text(text)
    return model.model_dump()


def comments(text: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in text.splitlines() if "#" in line]


def test_messy_spec_becomes_canonical():
    out = format_spec(MESSY)
    assert out.splitlines()[:4] == ["# top comment", "version: 1", "manage: {prune: true}", "indexes:"]
    assert "  - name: users_a" in out and "    table: users" in out
    assert "      - tenantId DESC\n      - email NULLS LAST\n      - expression: lower(email)\n" in out
    # not exact as shorthand: a keyword as a name, a space in the name, an opclass
    assert '{column: "desc"}' in out and '{column: "a b", order: desc}' in out
    assert "{column: name, opclass: text_pattern_ops}" in out
    assert "using: btree" in out
    assert "include: [id, x]" in out
    # the entry's keys in reference order, comments moved with their keys
    entry = out.split("  - name: b")[0]
    assert entry.index("name: users_a") < entry.index("table: users") < entry.index("columns:") \
        < entry.index("using:") < entry.index("comment:")
    assert comments(out) == ["top comment", "first section", "name comment", "the table", "trailing",
                             "Second section", "keep block: commented"]


def test_meaning_kept_and_idempotent():
    out = format_spec(MESSY)
    assert meaning(out) == meaning(MESSY)
    assert format_spec(out) == out


def test_repository_spec_is_canonical():
    text = (ROOT / "indexes.yaml").read_text()
    assert format_spec(text) == text


@pytest.mark.parametrize("seed", range(5))
def test_shuffled_keys_come_back_to_one_layout(seed):
    """The repository's spec with every mapping's keys shuffled and long-form columns: fmt gives
    one text whatever the order, with the same meaning."""
    data = yaml.safe_load((ROOT / "indexes.yaml").read_text())
    rnd = random.Random(seed)

    def shuffle(node):
        if isinstance(node, dict):
            items = [(k, shuffle(v)) for k, v in node.items()]
            rnd.shuffle(items)
            return dict(items)
        if isinstance(node, list):
            return [shuffle(x) for x in node]
        if isinstance(node, str) and rnd.random() < 0.3 and " " not in node and node.isidentifier():
            return node
        return node

    for e in data["indexes"]:
        e["columns"] = [{"column": c.split()[0], **({"order": "desc"} if c.endswith("DESC") else {})}
                        if isinstance(c, str) else c for c in e["columns"]]
    text = yaml.safe_dump(shuffle(data), sort_keys=False)
    out = format_spec(text)
    assert meaning(out) == meaning(text)
    plain = format_spec(yaml.safe_dump(data, sort_keys=False))
    assert out == plain


def test_invalid_spec_is_refused_with_file_and_line():
    with pytest.raises(SpecError, match=r"^x.yaml:3: indexes\[0\]\.nme: unknown key"):
        format_spec("version: 1\nindexes:\n  - nme: x\n", "x.yaml")


def run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "reconciler.cli", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_cli_check_then_write_then_check(tmp_path):
    (tmp_path / "indexes.yaml").write_text(MESSY)
    r = run("fmt", "--check", "--diff", cwd=tmp_path)
    assert r.returncode == 2 and "would reformat indexes.yaml" in r.stderr and "+  - name: users_a" in r.stdout
    assert (tmp_path / "indexes.yaml").read_text() == MESSY, "--check writes nothing"
    r = run("fmt", cwd=tmp_path)
    assert r.returncode == 0 and "reformatted indexes.yaml" in r.stderr
    r = run("fmt", "--check", ".", cwd=tmp_path)
    assert (r.returncode, r.stdout, r.stderr) == (0, "", "")


def test_cli_invalid_file_is_not_rewritten(tmp_path):
    bad = "version: 1\nindexes:\n  - {name: x, table: t, columns: [a], unique: maybe}\n"
    (tmp_path / "indexes.yaml").write_text(bad)
    r = run("fmt", cwd=tmp_path)
    assert r.returncode == 1 and r.stderr.startswith("error: indexes.yaml:3: index 'x': unique:")
    assert len(r.stderr.splitlines()) <= 2 and "Traceback" not in r.stderr
    assert (tmp_path / "indexes.yaml").read_text() == bad


def test_import_output_is_already_canonical(tmp_path):
    """What `import` writes needs no `fmt` (one layout for both)."""
    r = run("import", "--from-sql", str(ROOT / "examples" / "justoai" / "literal.sql"), "-o", "i.yaml", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "i.yaml").read_text()
    assert "\n  - name: " in text and format_spec(text) == text


def test_lines_after_a_moved_last_key_stay_between_entries():
    """A section heading (and its blank line) after an entry's last key belongs to the next
    entry, also when that key is a block scalar or a block list and fmt moves keys around."""
    src = textwrap.dedent("""
        version: 1
        indexes:
          - name: a
            tags: [x]
            table: t
            columns: [c]
            comment: >-
              hello
              world

          # next section
          - table: t
            name: b
            columns:
              - c
              - d   # dee

          # third
          - name: c
            table: t
            columns: [c]
    """).lstrip()
    out = format_spec(src)
    assert "      world\n    tags: [x]\n\n  # next section\n  - name: b\n    table: t\n" in out
    assert "      - d   # dee\n\n  # third\n  - name: c\n" in out
    assert format_spec(out) == out and meaning(out) == meaning(src)
