-- Foreign keys of the given tables (not the clones PostgreSQL keeps on each partition of a
-- partitioned table: those follow their parent constraint), with their column names in order.
-- Parameters: oids oid[].
SELECT con.oid, con.conname AS name, con.conrelid AS table_oid, n.nspname AS schema, t.relname AS table,
       con.conkey::int2[] AS attnums,
       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, ord)
             JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns,
       rn.nspname AS ref_schema, r.relname AS ref_table
FROM pg_constraint con
JOIN pg_class t ON t.oid = con.conrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_class r ON r.oid = con.confrelid
JOIN pg_namespace rn ON rn.oid = r.relnamespace
WHERE con.contype = 'f' AND con.conparentid = 0 AND con.conrelid = ANY (%(oids)s::oid[])
ORDER BY 4, 5, 2
