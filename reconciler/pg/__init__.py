"""The only psycopg importers (with run/): connections, the embedded server, catalog reads,
server canonicalization. SQL kept as package .sql files in pg/sql/."""
from __future__ import annotations




