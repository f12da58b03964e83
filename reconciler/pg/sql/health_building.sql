-- Invalid indexes another backend is building right now. CREATE INDEX CONCURRENTLY shows in
-- pg_stat_progress_create_index once its index exists; REINDEX CONCURRENTLY holds a session-level
-- SHARE UPDATE EXCLUSIVE lock on its new copy (`_ccnew`) through every phase. Query text is never
-- looked at (PgHero's text match races, by its own comment).
SELECT p.index_relid AS oid, p.pid
FROM pg_stat_progress_create_index p
WHERE p.index_relid <> 0 AND p.datname = current_database()
UNION
SELECT l.relation, l.pid
FROM pg_locks l
JOIN pg_index i ON i.indexrelid = l.relation AND NOT (i.indisvalid AND i.indisready)
WHERE l.locktype = 'relation' AND l.mode = 'ShareUpdateExclusiveLock' AND l.pid IS NOT NULL
  AND l.pid <> pg_backend_pid()
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
