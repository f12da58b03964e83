-- Which node this is and since when its statistics count (read by `health` on the primary and
-- on every replica). The youngest of three resets bounds the evidence:
--   db_reset       pg_stat_database.stats_reset (NULL until someone resets this database's stats)
--   cluster_reset  pg_stat_archiver.stats_reset: set when the server first started, and again when
--                  it discarded every statistic after a crash (or someone reset the archiver's)
--   db_created     the mtime of the database's PG_VERSION file, written once by CREATE DATABASE;
--                  only where pg_stat_file is granted (superuser, pg_read_server_files)
SELECT now() AS now,
       current_database() AS database,
       d.stats_reset AS db_reset,
       a.stats_reset AS cluster_reset,
       CASE WHEN has_function_privilege('pg_catalog.pg_stat_file(text, boolean)', 'EXECUTE')
            THEN (pg_stat_file('base/' || d.datid || '/PG_VERSION', true)).modification END AS db_created,
       pg_is_in_recovery() AS in_recovery,
       current_setting('block_size')::int AS block_size,
       -- MAXALIGN: 8 on every 64-bit build (what the bloat estimate aligns tuples to)
       CASE WHEN version() ~ '64-bit|x86_64|aarch64|ppc64|ia64|amd64|s390x|mingw32' THEN 8 ELSE 4 END AS maxalign,
       current_setting('server_version_num')::int AS server_version
FROM pg_stat_database d, pg_stat_archiver a
WHERE d.datname = current_database()
