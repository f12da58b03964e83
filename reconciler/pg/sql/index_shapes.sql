-- Every index of the given tables, one row each, WITHOUT deparsing: the catalog facts of the
-- row, and its "shape": everything pg_get_indexdef prints after the table's name (method,
-- keys, operator classes and their options, collations, ordering, expressions, predicate,
-- INCLUDE, storage options, tablespace), as catalog values, plus a digest of the table's
-- columns (names, types, collations: what the deparsed text of a key or expression depends
-- on). Indexes of one shape print the same words; only one of each is deparsed (`indexes.sql`).
-- Deparsing is most of the server's time on a large catalog: 1,000 tenant schemas with the
-- same 12 indexes are 12 shapes, not 12,000 definitions. Expression trees are stored without
-- parse locations, so equal expressions are equal text.
-- The joins are written in the order to run them and planned that way (catalog.py,
-- plan_joins_as_written): the indexes of the given tables first, then what each row needs.
-- Parameters: oids oid[] (tables). The placeholders in braces are filled as in indexes.sql.
WITH columns AS (
    SELECT a.attrelid,
           md5(string_agg(a.attnum || ' ' || a.attname || ' ' || a.atttypid || ' ' || a.atttypmod || ' '
                          || a.attcollation || ' ' || a.attisdropped, ',' ORDER BY a.attnum)) AS digest
    FROM pg_attribute a
    WHERE a.attrelid = ANY (%(oids)s::oid[]) AND a.attnum > 0
    GROUP BY a.attrelid
), opclass_options AS (
    -- operator class parameters (PostgreSQL 13+: gist_trgm_ops(siglen=32)) live on the index's columns
    SELECT a.attrelid, string_agg(a.attnum || '=' || a.attoptions::text, ',' ORDER BY a.attnum) AS options
    FROM pg_attribute a
    JOIN pg_index i ON i.indexrelid = a.attrelid
    WHERE i.indrelid = ANY (%(oids)s::oid[]) AND a.attoptions IS NOT NULL
    GROUP BY a.attrelid
)
SELECT i.indexrelid AS oid,
       n.nspname AS schema, t.relname AS table, ic.relname AS name,
       t.relkind AS table_kind, ic.relkind = 'I' AS partitioned,
       i.indisvalid AS valid, i.indisready AS ready,
       con.conname AS constraint_name, con.contype AS constraint_type,
       pn.nspname AS parent_schema, pc.relname AS parent_name,
       quote_ident(ic.relname) AS quoted_name, quote_ident(n.nspname) || '.' || quote_ident(t.relname) AS quoted_table,
       columns.digest, ic.relam, ic.reltablespace, ic.reloptions::text AS options, i.indisunique,
       {nulls_not_distinct} AS nulls_not_distinct, i.indnkeyatts, i.indnatts, i.indkey::text AS indkey,
       i.indclass::text AS indclass, i.indcollation::text AS indcollation, i.indoption::text AS indoption,
       i.indexprs::text AS indexprs, i.indpred::text AS indpred, opclass_options.options AS opclass_options,
       {stats}
FROM pg_index i
JOIN pg_class ic ON ic.oid = i.indexrelid
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
LEFT JOIN columns ON columns.attrelid = i.indrelid
LEFT JOIN opclass_options ON opclass_options.attrelid = i.indexrelid
LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x') AND con.conrelid = i.indrelid
LEFT JOIN pg_inherits inh ON inh.inhrelid = i.indexrelid
LEFT JOIN pg_class pc ON pc.oid = inh.inhparent
LEFT JOIN pg_namespace pn ON pn.oid = pc.relnamespace
{stats_join}WHERE i.indrelid = ANY (%(oids)s::oid[])
ORDER BY 2, 3, 4
