-- Every function the planned queries would call (verify --analyze refuses the VOLATILE ones),
-- for many queries at once: each row names the root it was reached from, (kind, key):
--   f  a function the plan tree names            o  an operator (its function)
--   t  a type: a domain's CHECK constraints      w  a written relation: its (enabled, user)
--                                                   triggers and their WHEN clauses
-- Then, transitively, what the catalog records a function calls: a SQL-standard body (BEGIN
-- ATOMIC / RETURN) depends on its callees, an aggregate on its transition, final, combine and
-- (de)serial functions. Bodies written as strings (plpgsql, a quoted SQL body) are opaque: such a
-- function is judged by its own volatility.
WITH RECURSIVE
domains(key, oid) AS (
    SELECT t.oid, t.oid FROM pg_type t WHERE t.oid = ANY(%(types)s::oid[]) AND t.typtype = 'd'
    UNION
    SELECT d.key, b.oid FROM domains d JOIN pg_type t ON t.oid = d.oid JOIN pg_type b ON b.oid = t.typbasetype
    WHERE b.typtype = 'd'
),
-- what a catalog object (constraint, trigger, function) depends on that runs: functions, and
-- operators as their function
edges(classid, objid, oid) AS NOT MATERIALIZED (
    SELECT dep.classid, dep.objid,
           CASE WHEN dep.refclassid = 'pg_proc'::regclass THEN dep.refobjid ELSE o.oprcode::oid END
    FROM pg_depend dep
    LEFT JOIN pg_operator o ON dep.refclassid = 'pg_operator'::regclass AND o.oid = dep.refobjid
    WHERE dep.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
),
roots(kind, key, oid, via) AS (
    SELECT 'f', f, f, 'called by the plan' FROM unnest(%(functions)s::oid[]) AS f
    UNION ALL
    SELECT 'o', o.oid, o.oprcode::oid, 'behind operator ' || o.oid::regoperator::text
    FROM pg_operator o WHERE o.oid = ANY(%(operators)s::oid[])
    UNION ALL
    SELECT 't', d.key, e.oid, 'in a CHECK of domain ' || c.contypid::regtype::text
    FROM domains d
    JOIN pg_constraint c ON c.contypid = d.oid
    JOIN LATERAL (SELECT * FROM edges e WHERE e.classid = 'pg_constraint'::regclass AND e.objid = c.oid) e ON true
    UNION ALL
    SELECT 'w', t.tgrelid, e.oid, 'by trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text
    FROM pg_trigger t
    JOIN LATERAL (SELECT * FROM edges e WHERE e.classid = 'pg_trigger'::regclass AND e.objid = t.oid) e ON true
    WHERE t.tgrelid = ANY(%(written)s::oid[]) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
),
called(kind, key, oid, via, depth) AS (
    SELECT kind, key, oid, via, 0 FROM roots WHERE oid <> 0
    UNION ALL
    SELECT c.kind, c.key, n.oid, 'inside ' || c.oid::regprocedure::text, c.depth + 1
    FROM called c
    CROSS JOIN LATERAL (
        SELECT e.oid FROM edges e WHERE e.classid = 'pg_proc'::regclass AND e.objid = c.oid
        UNION ALL
        SELECT x FROM pg_aggregate a
        CROSS JOIN LATERAL unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                        a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS x
        WHERE a.aggfnoid = c.oid
    ) AS n(oid)
    WHERE c.depth < 16 AND n.oid <> 0 AND n.oid <> c.oid
),
reached AS (
    -- per root, each function once, by its shortest and most telling path
    SELECT DISTINCT ON (kind, key, oid) kind, key, oid, via FROM called
    ORDER BY kind, key, oid, depth, via = 'called by the plan'
)
SELECT r.kind, r.key::bigint, p.oid::bigint, p.nspname, p.proname, p.args, p.provolatile, p.lanname, r.via
FROM reached r
-- LATERAL: one index probe of pg_proc per function reached, never a scan of all of pg_proc
CROSS JOIN LATERAL (
    SELECT p.oid, n.nspname::text, p.proname::text,
           coalesce((SELECT string_agg(format_type(a.t, NULL), ', ' ORDER BY a.n)
                     FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n)), '') AS args,
           p.provolatile::text, l.lanname::text
    FROM pg_proc p
    JOIN pg_namespace n ON n.oid = p.pronamespace
    JOIN pg_language l ON l.oid = p.prolang
    WHERE p.oid = r.oid
    OFFSET 0
) AS p
