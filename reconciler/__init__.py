"""reconciler: declarative index-as-code for PostgreSQL.

The pure core: spec → normalize → diff → planner → render. The edges: catalog (reading),
executor (running), cli (flags and exit codes). See README.md and the module docstrings.
"""
__version__ = "0.1.0"
