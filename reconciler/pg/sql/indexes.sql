-- Every index of the given tables, one row each, with what the definition needs and the
-- catalog facts around it. Per-key texts come from pg_get_indexdef(oid, k, false): the same
-- words as the full definition, so the key list can be cut out of it exactly, after the
-- server-quoted prefix (quoted_name, quoted_table, quoted_method).
-- The joins are written in the order to run them (see index_shapes.sql).
-- Parameters: oids oid[], the tables (or, read by index, the indexes themselves). The stats
-- placeholder: size, scans and comment, or NULLs when the caller does not need them (a no-op
-- plan of 14,000 indexes: 0.38 s -> 0.24 s on the server).
SELECT i.indexrelid AS oid,
       n.nspname AS schema, t.relname AS table, ic.relname AS name,
       t.relkind AS table_kind, ic.relkind = 'I' AS partitioned,
       am.amname AS method, i.indisunique AS is_unique, i.indisvalid AS valid, i.indisready AS ready,
       i.indislive AS live, i.indnkeyatts AS nkey, i.indnatts AS natts, i.indkey::int2[] AS indkey,
       ARRAY(SELECT pg_get_indexdef(i.indexrelid, k, false) FROM generate_series(1, i.indnatts) AS k ORDER BY k) AS cols,
       pg_get_indexdef(i.indexrelid) AS indexdef,
       -- the names as pg_get_indexdef quotes them (quote_identifier, honouring quote_all_identifiers):
       -- the prefix `CREATE [UNIQUE] INDEX name ON [ONLY] schema.table USING method (` is rebuilt
       -- from these and cut off, so a name can never be searched for the text after it
       quote_ident(ic.relname) AS quoted_name, quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS quoted_table,
       quote_ident(am.amname) AS quoted_method,
       -- the session's own temporary schema is printed `pg_temp` by PostgreSQL 16+ (ruleutils'
       -- get_namespace_name_or_temp), by its name before: canonicalize's probes live there
       n.oid = pg_my_temp_schema() AS own_temp,
       pg_get_expr(i.indpred, i.indrelid) AS predicate,
       {nulls_not_distinct} AS nulls_not_distinct,
       ic.reloptions AS options,
       ts.spcname AS tablespace,
       con.conname AS constraint_name, con.contype AS constraint_type,
       pn.nspname || '.' || pc.relname AS parent_index, pn.nspname AS parent_schema, pc.relname AS parent_name,
       {stats}
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
JOIN pg_am am ON am.oid = ic.relam
LEFT JOIN pg_tablespace ts ON ts.oid = ic.reltablespace
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x') AND con.conrelid = i.indrelid
LEFT JOIN pg_inherits inh ON inh.inhrelid = i.indexrelid
LEFT JOIN pg_class pc ON pc.oid = inh.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
{stats_join}WHERE {where}
ORDER BY 2, 3, 4
