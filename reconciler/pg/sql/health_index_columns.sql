-- The stored columns (keys and INCLUDE) of the btree indexes of the given tables, and where
-- pg_stats keeps their statistics: a column under its table, an expression under the index
-- itself (ANALYZE of the table computes both). Joined by OIDs only; the statistics are matched
-- in Python, by name: pg_stats has no OIDs, and joining the view here sends the planner into a
-- nested loop over the whole view for every column (140 s for 1,200 indexes).
-- Parameters: oids oid[].
SELECT i.indexrelid AS oid, n.nspname AS schema,
       CASE WHEN k.attnum = 0 THEN ic.relname ELSE t.relname END AS stats_rel,
       a.attname AS column, a.atttypid = 'pg_catalog.name'::regtype AS name_typed
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid AND ic.relkind = 'i'
JOIN pg_am am ON am.oid = ic.relam AND am.amname = 'btree'
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)
JOIN pg_attribute a ON a.attrelid = i.indexrelid AND a.attnum = k.pos
WHERE i.indrelid = ANY (%(oids)s::oid[])
