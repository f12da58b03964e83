-- Every index of the given (unlocked) tables: statistics, the catalog facts the verdicts need
-- (from pg_index's arrays: no definition text, that is read only where a comparison needs it),
-- and the inputs of the btree bloat estimate (ioguix/pgsql-bloat-estimation's method): the
-- pg_stats rows of every stored column (for an expression, the index's own statistics).
-- Parameters: oids oid[]. {last_scan}: pg_stat_get_lastscan() on PostgreSQL 16+, else NULL.
WITH ix AS MATERIALIZED (
    SELECT i.indexrelid AS oid, i.indrelid AS table_oid, n.nspname AS schema, t.relname AS table,
           ic.relname AS name, am.amname AS method, ic.relkind = 'I' AS partitioned,
           i.indisunique, i.indisprimary, i.indisexclusion, i.indisreplident, i.indisvalid, i.indisready,
           i.indnkeyatts, i.indkey::int2[] AS indkey, i.indpred IS NOT NULL AS partial,
           ic.relpages, ic.reltuples, ic.reloptions
    FROM pg_index i
    JOIN pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_class t ON t.oid = i.indrelid
    JOIN pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = ANY (%(oids)s::oid[])
), cols AS (
    SELECT x.oid, s.null_frac, s.avg_width, a.atttypid = 'pg_catalog.name'::regtype AS name_typed
    FROM ix x
    CROSS JOIN LATERAL unnest(x.indkey) WITH ORDINALITY AS k(attnum, pos)
    JOIN pg_attribute a ON a.attrelid = CASE WHEN k.attnum = 0 THEN x.oid ELSE x.table_oid END
                       AND a.attnum = CASE WHEN k.attnum = 0 THEN k.pos::int2 ELSE k.attnum END
    LEFT JOIN pg_stats s ON s.schemaname = x.schema
                        AND s.tablename = CASE WHEN k.attnum = 0 THEN x.name ELSE x.table END
                        AND s.attname = a.attname AND NOT s.inherited
    WHERE x.method = 'btree' AND NOT x.partitioned
), bloat AS (
    SELECT oid, max(coalesce(null_frac, 0)) > 0 AS has_nulls,
           sum((1 - coalesce(null_frac, 0)) * coalesce(avg_width, 0))::float8 AS data_width,
           bool_or(avg_width IS NULL) AS missing_stats, bool_or(name_typed) AS name_typed
    FROM cols
    GROUP BY oid
)
SELECT x.oid, x.table_oid, x.schema, x.table, x.name, x.method, x.partitioned,
       x.indisunique AS is_unique, x.indisprimary AS is_primary, x.indisexclusion AS is_exclusion,
       x.indisreplident AS is_replident, x.indisvalid AS valid, x.indisready AS ready,
       x.indnkeyatts AS nkey, x.indkey, x.partial,
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
                 WHERE o.option_name = 'fillfactor'), 90) AS fillfactor,
       b.has_nulls, b.data_width, b.missing_stats, b.name_typed
FROM ix x
LEFT JOIN bloat b ON b.oid = x.oid
LEFT JOIN pg_constraint con ON con.conindid = x.oid AND con.contype IN ('p', 'u', 'x') AND con.conrelid = x.table_oid
LEFT JOIN pg_inherits inh ON inh.inhrelid = x.oid
ORDER BY 3, 4, 5
