#!/usr/bin/env python3
"""Write the reference pages generated from code: docs/hazards.md (the hazard catalogue,
reconciler/core/hazards.py) and docs/events.md (the apply event stream, reconciler/run/events.py).

Run it after changing either module; tests/test_docs.py fails while a page is stale.
"""
from __future__ import annotations

import sys
from pathlib import Path

from reconciler.app.docs import write

if __name__ == "__main__":
    for path in write(Path(__file__).resolve().parents[1] / "docs"):
        print(f"wrote {path}")
    sys.exit(0)
