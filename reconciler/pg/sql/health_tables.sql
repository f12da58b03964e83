-- Tables in scope with their statistics: the tables the spec names (or every user table) plus
-- the rest of their partition trees. A table is `locked` when any session holds or waits for an
-- ACCESS EXCLUSIVE lock on it or on one of its indexes (ALTER TABLE, DROP/REINDEX INDEX, VACUUM
-- FULL): its size would have to wait for that lock (PgHero issue 246), so it is skipped, as
-- pgwatch does; the statistics functions themselves take no lock.
-- Parameters: all (bool), schemas text[], tables text[], schema_likes text[] and table_likes
-- text[] (pairs of LIKE patterns, matched against schema and table apart, as in tables.sql).
WITH named AS (
    SELECT c.oid
    FROM pg_class c
    JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'm')
      AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname !~ '^pg_(toast|temp_)'
      AND (%(all)s OR (n.nspname, c.relname) IN (SELECT s, t FROM unnest(%(schemas)s::text[], %(tables)s::text[]) AS m(s, t))
           OR EXISTS (SELECT 1 FROM unnest(%(schema_likes)s::text[], %(table_likes)s::text[]) AS p(s, t)
                      WHERE n.nspname LIKE p.s ESCAPE E'\\' AND c.relname LIKE p.t ESCAPE E'\\'))
), expanded AS (
    SELECT oid FROM named
    UNION SELECT pt.relid FROM named, pg_partition_tree(named.oid) pt
    UNION SELECT pa.relid FROM named, pg_partition_ancestors(named.oid) pa
), locked AS MATERIALIZED (
    SELECT DISTINCT coalesce(i.indrelid, l.relation) AS relid
    FROM pg_locks l
    LEFT JOIN pg_index i ON i.indexrelid = l.relation
    WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
), scope AS MATERIALIZED (
    SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples, c.relispartition,
           c.oid IN (SELECT relid FROM locked) AS locked
    FROM expanded e
    JOIN pg_class c ON c.oid = e.oid
    JOIN pg_namespace n ON n.oid = c.relnamespace
)
SELECT s.oid, s.nspname AS schema, s.relname AS name, s.relkind AS kind, s.locked,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = s.oid AND s.relispartition) AS parent_oid,
       s.reltuples::float8 AS reltuples,
       CASE WHEN s.locked OR s.relkind = 'p' THEN 0 ELSE pg_table_size(s.oid) END AS size_bytes,
       pg_stat_get_live_tuples(s.oid) AS live_rows,
       pg_stat_get_dead_tuples(s.oid) AS dead_rows,
       pg_stat_get_numscans(s.oid) AS seq_scans,
       pg_stat_get_tuples_returned(s.oid) AS seq_tuples_read,
       pg_stat_get_mod_since_analyze(s.oid) AS modified_since_analyze,
       greatest(pg_stat_get_last_analyze_time(s.oid), pg_stat_get_last_autoanalyze_time(s.oid)) AS last_analyze,
       greatest(pg_stat_get_last_vacuum_time(s.oid), pg_stat_get_last_autovacuum_time(s.oid)) AS last_vacuum
FROM scope s
ORDER BY 2, 3
