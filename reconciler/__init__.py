"""reconciler: declarative index-as-code for PostgreSQL.

One room (subpackage) per stage, each `__init__` saying its job, the README's table listing
them. The pure rooms (core, spec, normalize, reconcile, queries, health, fleet, render) decide
from the values they are handed; pg/ reads the database and run/ changes it (the only
psycopg importers); app/ holds one workflow per command and cli/ only click. The import
contracts in pyproject.toml keep it so (`lint-imports`).
"""
__version__ = "0.1.0"
