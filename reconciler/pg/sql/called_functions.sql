-- Every function a planned query would call (verify --analyze refuses the VOLATILE ones).
-- Roots: the functions the plan tree names, the functions behind its operators, the functions
-- CHECK constraints of its domains use, the functions of the (enabled, user) triggers and
-- their WHEN clauses on the relations it writes. Then, transitively, what the catalog records a function
-- calls: a SQL-standard body (BEGIN ATOMIC / RETURN) depends on its callees, and an aggregate on
-- its transition, final, combine and (de)serial functions. Bodies written as strings
-- (plpgsql, a quoted SQL body) are opaque: such a function is judged by its own volatility.
WITH RECURSIVE
domains(oid) AS (
    SELECT t.oid FROM pg_type t WHERE t.oid = ANY(%(types)s::oid[]) AND t.typtype = 'd'
    UNION
    SELECT b.oid FROM domains d JOIN pg_type t ON t.oid = d.oid JOIN pg_type b ON b.oid = t.typbasetype
    WHERE b.typtype = 'd'
),
roots(oid, via) AS (
    SELECT f, 'called by the plan' FROM unnest(%(functions)s::oid[]) AS f
    UNION ALL
    SELECT o.oprcode::oid, 'behind operator ' || o.oid::regoperator::text
    FROM pg_operator o WHERE o.oid = ANY(%(operators)s::oid[])
    UNION ALL
    SELECT CASE WHEN dep.refclassid = 'pg_proc'::regclass THEN dep.refobjid ELSE o.oprcode::oid END,
           'in a CHECK of domain ' || c.contypid::regtype::text
    FROM domains d
    JOIN pg_constraint c ON c.contypid = d.oid
    JOIN pg_depend dep ON dep.classid = 'pg_constraint'::regclass AND dep.objid = c.oid
    LEFT JOIN pg_operator o ON dep.refclassid = 'pg_operator'::regclass AND o.oid = dep.refobjid
    WHERE dep.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
    UNION ALL
    SELECT CASE WHEN dep.refclassid = 'pg_proc'::regclass THEN dep.refobjid ELSE o.oprcode::oid END,
           'by trigger ' || quote_ident(t.tgname) || ' on ' || t.tgrelid::regclass::text
    FROM pg_trigger t
    JOIN pg_depend dep ON dep.classid = 'pg_trigger'::regclass AND dep.objid = t.oid
    LEFT JOIN pg_operator o ON dep.refclassid = 'pg_operator'::regclass AND o.oid = dep.refobjid
    WHERE t.tgrelid = ANY(%(written)s::oid[]) AND NOT t.tgisinternal AND t.tgenabled <> 'D'
      AND dep.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
),
called(oid, via, depth) AS (
    SELECT oid, via, 0 FROM roots WHERE oid <> 0
    UNION ALL
    SELECT n.oid, 'inside ' || c.oid::regprocedure::text, c.depth + 1
    FROM called c
    CROSS JOIN LATERAL (
        SELECT CASE WHEN dep.refclassid = 'pg_proc'::regclass THEN dep.refobjid ELSE o.oprcode::oid END
        FROM pg_depend dep
        LEFT JOIN pg_operator o ON dep.refclassid = 'pg_operator'::regclass AND o.oid = dep.refobjid
        WHERE dep.classid = 'pg_proc'::regclass AND dep.objid = c.oid
          AND dep.refclassid IN ('pg_proc'::regclass, 'pg_operator'::regclass)
        UNION ALL
        SELECT x FROM pg_aggregate a
        CROSS JOIN LATERAL unnest(ARRAY[a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn,
                                        a.aggdeserialfn, a.aggmtransfn, a.aggminvtransfn, a.aggmfinalfn]::oid[]) AS x
        WHERE a.aggfnoid = c.oid
    ) AS n(oid)
    WHERE c.depth < 16 AND n.oid <> 0 AND n.oid <> c.oid
)
SELECT DISTINCT ON (p.oid) p.oid::bigint, n.nspname::text, p.proname::text,
       coalesce((SELECT string_agg(format_type(a.t, NULL), ', ' ORDER BY a.n)
                 FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS a(t, n)), ''), p.provolatile::text, l.lanname::text, c.via
FROM called c
JOIN pg_proc p ON p.oid = c.oid
JOIN pg_namespace n ON n.oid = p.pronamespace
JOIN pg_language l ON l.oid = p.prolang
ORDER BY p.oid, c.depth, c.via = 'called by the plan'   -- the more telling path first
