"""Tables several tests load, and what they read back from the database afterwards.

The DDL is built here once, so that two tests that need "a table with a few thousand rows" or
"a table partitioned by year" use the same one.
"""
from __future__ import annotations

import pgserver


def small_table(name: str = "t", rows: int = 5000) -> str:
    """``name (id int PRIMARY KEY, a int, v text)``: `a` has 10 distinct values, `v` is unique."""
    return (f"CREATE TABLE {name} (id int PRIMARY KEY, a int, v text);\n"
            f"INSERT INTO {name} SELECT g, g % 10, 'v' || g FROM generate_series(1, {rows}) g;\n")


def partitioned_table(name: str = "p", years: tuple[int, ...] = (2024, 2025), rows: int = 3000,
                      value: str = "v text", value_sql: str = "'v' || g") -> str:
    """``name (id int, at date NOT NULL, <value>)`` partitioned by year (`name_<year>`), rows
    spread over the years."""
    first = years[0]
    parts = "".join(f"CREATE TABLE {name}_{y} PARTITION OF {name} FOR VALUES FROM ('{y}-01-01') TO ('{y + 1}-01-01');\n"
                    for y in years)
    days = 365 * len(years) - 30
    return (f"CREATE TABLE {name} (id int, at date NOT NULL, {value}) PARTITION BY RANGE (at);\n{parts}"
            f"INSERT INTO {name} SELECT g, date '{first}-01-01' + g % {days}, {value_sql} "
            f"FROM generate_series(1, {rows}) g;\n")


def invalid_indexes(dsn: str) -> list[str]:
    """Every index left INVALID or not ready (a failed or interrupted build), by name."""
    return [r[0] for r in pgserver.sql(dsn, "SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid "
                                            "OR NOT indisready ORDER BY 1")]


def index_names(dsn: str, table: str) -> list[str]:
    """The indexes on `table`, by name."""
    return [r[0] for r in pgserver.sql(dsn, f"SELECT indexname FROM pg_indexes WHERE tablename = '{table}' "
                                            "ORDER BY 1")]


def indexdefs(dsn: str, schema: str = "public") -> list[tuple[str, str, str]]:
    """(table, index, pg_get_indexdef) of every index in `schema`."""
    return [tuple(r) for r in pgserver.sql(dsn, "SELECT tablename, indexname, indexdef FROM pg_indexes "
                                                f"WHERE schemaname = '{schema}' ORDER BY 1, 2")]
