-- Managed tables: the tables the spec names (or every user table), plus the rest of their
-- partition trees (ancestors and descendants), with their partition links.
-- `managed`: named, or below a named table. An ancestor reached only through a named
-- partition is read for its partition facts but is not managed: its indexes are never
-- dropped, replaced or renamed through the partition (a partitioned index is every
-- partition's index).
-- Parameters: all (bool), schemas text[], tables text[], schema_likes text[] and table_likes
-- text[] (pairs of LIKE patterns, matched against schema and table apart), schema_filter text[],
-- sizes (bool): pg_table_size of each table, or NULL. pg_table_size opens every table (a lock
-- and a stat of each of its files): half of this query on a cold backend, and a no-op plan
-- needs no size (the planner prints the sizes of the tables it changes, read afterwards).
-- The partition functions are called only where they can find something: the tree below a
-- partitioned table, the ancestors of a partition (of any other table they return itself).
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
      AND (cardinality(%(schema_filter)s::text[]) = 0 OR n.nspname = ANY (%(schema_filter)s::text[]))
), expanded AS (
    SELECT oid FROM named
    UNION SELECT pt.relid FROM named JOIN pg_class k ON k.oid = named.oid AND k.relkind = 'p',
                               pg_partition_tree(named.oid) pt
    UNION SELECT pa.relid FROM named JOIN pg_class k ON k.oid = named.oid AND k.relispartition,
                               pg_partition_ancestors(named.oid) pa
)
SELECT c.oid, n.nspname, c.relname, c.relkind, c.reltuples::bigint AS reltuples,
       CASE WHEN %(sizes)s THEN pg_table_size(c.oid) END AS table_bytes,
       (SELECT i.inhparent FROM pg_inherits i WHERE i.inhrelid = c.oid AND c.relispartition) AS parent_oid,
       c.oid IN (SELECT oid FROM named) AS named,
       c.oid IN (SELECT oid FROM named)
           OR c.relispartition AND EXISTS (SELECT 1 FROM pg_partition_ancestors(c.oid) a
                                           WHERE a.relid IN (SELECT oid FROM named)) AS managed
FROM expanded e
JOIN pg_class c ON c.oid = e.oid
JOIN pg_namespace n ON n.oid = c.relnamespace
ORDER BY 2, 3
