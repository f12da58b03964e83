-- Every index of the given (unlocked) tables: statistics, the catalog facts the verdicts need
-- (from pg_index's arrays: no definition text, that is read only where a comparison needs it),
-- and pg_class's pages, tuples and fillfactor for the btree bloat estimate (its column widths
-- come from health_index_columns.sql and health_column_stats.sql).
-- Parameters: oids oid[]. {last_scan}: pg_stat_get_lastscan() on PostgreSQL 16+, else NULL.
WITH ix AS MATERIALIZED (
    SELECT i.indexrelid AS oid, i.indrelid AS table_oid, n.nspname AS schema, t.relname AS table,
           ic.relname AS name, am.amname AS method, ic.relkind = 'I' AS partitioned,
           i.indisunique, i.indisprimary, i.indisexclusion, i.indisreplident, i.indisvalid, i.indisready,
           i.indnkeyatts, i.indkey::int2[] AS indkey, i.indclass::oid[] AS indclass,
           i.indcollation::oid[] AS indcollation, i.indoption::int2[] AS indoption, i.indpred IS NOT NULL AS partial,
           ic.relpages, ic.reltuples, ic.reloptions
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = ANY (%(oids)s::oid[])
)
SELECT x.oid, x.table_oid, x.schema, x.table, x.name, x.method, x.partitioned,
       x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisexclusion AS is_exclusion,
       x.indisreplident AS is_replident, x.indisvalid AS valid, x.indisready AS ready,
       x.indnkeyatts AS nkey, x.indkey, x.indclass, x.indcollation, x.indoption, x.partial,
       con.conname AS constraint_name, con.contype AS constraint_type,
       inh.inhparent AS parent_oid,
       CASE WHEN x.partitioned THEN 0 ELSE pg_relation_size(x.oid) END AS size_bytes,
       pg_stat_get_numscans(x.oid) AS scans,
       pg_stat_get_tuples_returned(x.oid) AS tuples_read,
       pg_stat_get_tuples_fetched(x.oid) AS tuples_fetched,
       pg_stat_get_blocks_hit(x.oid) AS blocks_hit,
       pg_stat_get_blocks_fetched(x.oid) - pg_stat_get_blocks_hit(x.oid) AS blocks_read,
       {last_scan} AS last_scan,
       x.relpages, x.reltuples::float8 AS reltuples,
       coalesce((SELECT o.option_value::int FROM pg_options_to_table(x.reloptions) o
                 WHERE o.option_name = 'fillfactor'), 90) AS fillfactor
FROM ix x
LEFT JOIN pg_constraint con ON con.conindid = x.oid AND con.contype IN ('p', 'u', 'x') AND con.conrelid = x.table_oid
LEFT JOIN pg_inherits inh ON inh.inhrelid = x.oid
ORDER BY 3, 4, 5
