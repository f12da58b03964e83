"""Specs several tests write: the minimal valid one, one plain index, and writing one to disk."""
from __future__ import annotations

import textwrap

# The smallest useful spec (indented as in a test module: `write_spec` removes the indentation).
MINIMAL = """
    version: 1
    indexes:
      - name: orders_customer_idx
        table: orders
        columns: [customer_id]
"""


def one_index_spec(name: str, table: str, *columns: str, prune: bool = False) -> str:
    """A spec of one plain index."""
    head = "version: 1\n" + ("manage: {prune: true}\n" if prune else "")
    return head + textwrap.dedent(f"""\
        indexes:
          - name: {name}
            table: {table}
            columns: [{", ".join(columns)}]
        """)


def write_spec(tmp_path, text: str, name: str = "indexes.yaml") -> str:
    """Write a spec (the common indentation of a triple-quoted string removed, lines kept: a
    leading newline stays line 1) and return its path."""
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return str(path)
