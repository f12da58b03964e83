-- A replica's scans of the primary's indexes, matched by (schema, index name): a physical
-- standby keeps the primary's OIDs, a logical replica does not. Its own statistics count the
-- scans served there. Parameters: schemas text[], names text[]. {last_scan} as in health_indexes.sql.
SELECT m.s AS schema, m.i AS name, c.oid IS NOT NULL AS found,
       coalesce(pg_stat_get_numscans(c.oid), 0) AS scans,
       {last_scan} AS last_scan
FROM unnest(%(schemas)s::text[], %(names)s::text[]) AS m(s, i)
LEFT JOIN pg_namespace n ON n.nspname = m.s
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = m.i AND c.relkind IN ('i', 'I')
