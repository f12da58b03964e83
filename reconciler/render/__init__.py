"""Plan → text (Terraform-like), markdown (pull-request comment), SQL (a runnable script),
JSON (machines): one module per format family. Deterministic output, no database.

The names below load their module on first use (PEP 562): a command imports only the renderers
it prints with (`verify` needs none of the plan's, nor core.plan under them)."""
from __future__ import annotations

import importlib

_WHERE = {"summary_counts": "common", "summary_line": "common", "render_drift": "drift", "change_dict": "json",
          "render_json": "json", "render_markdown": "markdown", "render_sql": "sql", "render_text": "text"}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))
