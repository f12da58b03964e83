"""Plan → text (Terraform-like), markdown (pull-request comment), SQL (a runnable script),
JSON (machines): one module per format family. Deterministic output, no database."""
from __future__ import annotations

from .common import summary_counts, summary_line
from .drift import render_drift
from .json import change_dict, render_json
from .markdown import render_markdown
from .sql import render_sql
from .text import render_text

__all__ = ["change_dict", "render_drift", "render_json", "render_markdown", "render_sql", "render_text",
           "summary_counts", "summary_line"]


