"""The files a user meets first at the top of the repository stay true to the tool.

- `schema/indexes.schema.json` (what editors validate against) is exactly `reconciler schema`;
- `indexes.yaml` (the JustoAI spec) points editors at it and is a valid spec;
- the README's first command is the one the docs promise: no `-f`, from the repository root.
"""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from reconciler.spec import json_schema, load_spec

ROOT = Path(__file__).resolve().parents[1]


def test_committed_json_schema_is_what_the_tool_prints():
    committed = (ROOT / "schema" / "indexes.schema.json").read_text()
    printed = subprocess.run([sys.executable, "-m", "reconciler.cli", "schema"], capture_output=True, text=True,
                             check=True).stdout
    assert committed == printed, "schema/indexes.schema.json is stale: run `reconciler schema > " \
                                 "schema/indexes.schema.json`"
    assert json.loads(committed) == json_schema()


def test_top_level_spec_points_editors_at_the_schema_and_is_valid():
    text = (ROOT / "indexes.yaml").read_text()
    first = text.splitlines()[0]
    m = re.fullmatch(r"# yaml-language-server: \$schema=(\S+)", first)
    assert m, first
    assert (ROOT / m.group(1)).resolve() == (ROOT / "schema" / "indexes.schema.json").resolve()
    spec = load_spec([str(ROOT / "indexes.yaml")])
    assert len(spec.entries) == 30
    # one copy: the example folder keeps schema, data and walkthrough, not a second spec
    assert not (ROOT / "examples" / "justoai" / "indexes.yaml").exists()


def first_command(readme: str) -> str:
    block = re.search(r"```sh\n(.*?)\n```", readme, re.S).group(1)
    return block.split(" && ")[-1].strip()


def test_readme_first_command_needs_no_file_flag():
    cmd = first_command((ROOT / "README.md").read_text())
    assert cmd == "reconciler plan --schema-sql examples/justoai/schema.sql"
    assert (ROOT / "examples" / "justoai" / "schema.sql").exists()
