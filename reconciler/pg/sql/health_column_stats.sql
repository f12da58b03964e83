-- null_frac and avg_width of the columns of the given relations (tables, and expression indexes),
-- as ANALYZE left them. pg_stats (not pg_statistic) so that a monitoring role without superuser
-- reads what its column privileges allow. Parameters: schemas text[], rels text[].
SELECT s.schemaname AS schema, s.tablename AS rel, s.attname AS column, s.null_frac, s.avg_width
FROM pg_stats s
WHERE NOT s.inherited AND s.schemaname = ANY (%(schemas)s::text[]) AND s.tablename = ANY (%(rels)s::text[])
