"""The test-server fixtures do what conftest.py promises, on every server version."""

import psycopg
import pytest

USER_TABLES = "SELECT count(*) FROM pg_tables WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"


def test_server_major_matches_param(request, pg_server, pg_major):
    wanted = request.node.callspec.params["pg_server"]
    if wanted == "external":
        assert pg_major >= 13  # DROP DATABASE ... WITH (FORCE)
    else:
        assert pg_major == int(wanted)
    assert pg_server.major == pg_major


_seen: dict[str, str] = {}  # "server/turn" -> database name the test got


@pytest.mark.parametrize("turn", ["first", "second"])
def test_each_test_gets_its_own_empty_database(pg_server, dsn, run_sql, turn):
    # Both turns do the same: whichever runs second proves isolation.
    (db,) = run_sql(dsn, "SELECT current_database()")[0]
    assert run_sql(dsn, USER_TABLES) == [(0,)]
    run_sql(dsn, "CREATE TABLE marker (id int); INSERT INTO marker VALUES (1)")
    assert run_sql(dsn, "SELECT id FROM marker") == [(1,)]
    _seen[f"{pg_server.name}/{turn}"] = db
    other = _seen.get(f"{pg_server.name}/{'second' if turn == 'first' else 'first'}")
    assert other != db
    assert len(db.encode()) <= 63


def test_fresh_db_replaces_and_drop_db_removes(pg_server, run_sql):
    name = "t_pgserver_roundtrip"
    dsn = pg_server.fresh_db(name)
    run_sql(dsn, "CREATE TABLE leftover (id int)")
    with psycopg.connect(dsn):  # an open connection must not block either call
        dsn = pg_server.fresh_db(name)
        assert run_sql(dsn, USER_TABLES) == [(0,)]
        pg_server.drop_db(name)
    exists = "SELECT count(*) FROM pg_database WHERE datname = 't_pgserver_roundtrip'"
    assert run_sql(pg_server.admin_dsn, exists) == [(0,)]


def test_create_index_concurrently(dsn, run_sql):
    run_sql(dsn, "CREATE TABLE t (id int, v text); INSERT INTO t SELECT g, g::text FROM generate_series(1, 1000) g")
    run_sql(dsn, "CREATE INDEX CONCURRENTLY t_v_idx ON t (v)")
    assert run_sql(dsn, "SELECT indisvalid FROM pg_index WHERE indexrelid = 't_v_idx'::regclass") == [(True,)]
    # A multi-statement script is one implicit transaction: CONCURRENTLY needs its own call.
    with pytest.raises(psycopg.errors.ActiveSqlTransaction):
        run_sql(dsn, "SELECT 1; CREATE INDEX CONCURRENTLY t_id_idx ON t (id)")


def test_run_sql_returns_rows_of_last_row_returning_statement(dsn, run_sql):
    assert run_sql(dsn, "SELECT 1; SELECT 2, 'x'; CREATE TABLE u (id int)") == [(2, "x")]
    assert run_sql(dsn, "CREATE TABLE w (id int)") == []
