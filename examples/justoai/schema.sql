-- JustoAI V2 -- schema reconstructed from the "Database Indexing Strategy for
-- JustoAI V2" document, written the way Prisma Migrate would emit it: quoted
-- camelCase identifiers, Prisma-style enums, TIMESTAMP(3), text ids (cuid,
-- generated client-side) as primary keys, foreign keys added at the end.
--
-- Table names: the document uses plural names in "Current Indexes" and
-- singular names in its SQL blocks. One name per table is used here: the
-- singular one wherever the SQL blocks name the table (those are the tables
-- the recommended indexes target), the plural one where the document only
-- ever uses that:
--   reportExecution   (doc also: reportExecutions)
--   creditTransaction (doc also: creditTransactions)
--   process           (doc also: processes)
--   chatSession       (doc also: chatSessions)
--   users, userSessions, workspaces, workspaceMembers, workspaceCredits,
--   creditAllocations, chatMessages: plural, as in the document.
--
-- No secondary index is created here: only primary keys and UNIQUE
-- constraints. Every other index lives in indexes.yaml. (Prisma would emit
-- @unique as CREATE UNIQUE INDEX "..._key"; it is declared as a constraint
-- here so that the only indexes outside the spec are constraint-backed.)
-- Loads with psql -v ON_ERROR_STOP=1 on PostgreSQL 15 and 18.

-- CreateEnum
CREATE TYPE "MemberRole" AS ENUM ('OWNER', 'ADMIN', 'MEMBER', 'VIEWER');
CREATE TYPE "TxType" AS ENUM ('CREDIT', 'DEBIT');
CREATE TYPE "TxStatus" AS ENUM ('PENDING', 'COMPLETED', 'FAILED', 'REVERSED');
CREATE TYPE "ReportStatus" AS ENUM ('PENDING', 'RUNNING', 'COMPLETED', 'FAILED');
CREATE TYPE "BatchStatus" AS ENUM ('PENDING', 'PROCESSING', 'COMPLETED', 'FAILED');
CREATE TYPE "BatchRowStatus" AS ENUM ('PENDING', 'PROCESSING', 'SUCCESS', 'FAILED', 'SKIPPED');
CREATE TYPE "WebhookDeliveryStatus" AS ENUM ('PENDING', 'RETRYING', 'DELIVERED', 'FAILED');
CREATE TYPE "ChatRole" AS ENUM ('USER', 'ASSISTANT', 'SYSTEM');
CREATE TYPE "LogLevel" AS ENUM ('DEBUG', 'INFO', 'WARN', 'ERROR');

-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "email" TEXT NOT NULL,
    "name" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "users_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "users_email_key" UNIQUE ("email")
);

CREATE TABLE "userSessions" (
    "id" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "token" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "userSessions_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "userSessions_token_key" UNIQUE ("token")
);

CREATE TABLE "workspaces" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "slug" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "workspaces_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "workspaces_slug_key" UNIQUE ("slug")
);

CREATE TABLE "workspaceMembers" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "role" "MemberRole" NOT NULL DEFAULT 'MEMBER',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "workspaceMembers_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "workspaceMembers_workspaceId_userId_key" UNIQUE ("workspaceId", "userId")
);

-- "workspaceCredits.workspaceId - PRIMARY KEY (unique)": one row per workspace.
CREATE TABLE "workspaceCredits" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "balance" INTEGER NOT NULL DEFAULT 0,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "workspaceCredits_pkey" PRIMARY KEY ("id"),
    CONSTRAINT "workspaceCredits_workspaceId_key" UNIQUE ("workspaceId")
);

CREATE TABLE "creditAllocations" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "amount" INTEGER NOT NULL,
    "remaining" INTEGER NOT NULL,
    "source" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "creditAllocations_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "creditTransaction" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "type" "TxType" NOT NULL,
    "status" "TxStatus" NOT NULL DEFAULT 'PENDING',
    "amount" INTEGER NOT NULL,
    "description" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "creditTransaction_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "process" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "processNumber" TEXT NOT NULL,
    "court" TEXT,
    "title" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "process_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "reportExecution" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "processId" TEXT,
    "reportType" TEXT NOT NULL,
    "status" "ReportStatus" NOT NULL DEFAULT 'PENDING',
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "completedAt" TIMESTAMP(3),
    CONSTRAINT "reportExecution_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "processBatchUpload" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "fileName" TEXT NOT NULL,
    "status" "BatchStatus" NOT NULL DEFAULT 'PENDING',
    "totalRows" INTEGER NOT NULL DEFAULT 0,
    "processedRows" INTEGER NOT NULL DEFAULT 0,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "processBatchUpload_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "uploadBatchRow" (
    "id" TEXT NOT NULL,
    "batchId" TEXT NOT NULL,
    "rowIndex" INTEGER NOT NULL,
    "processNumber" TEXT NOT NULL,
    "status" "BatchRowStatus" NOT NULL DEFAULT 'PENDING',
    "error" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "uploadBatchRow_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "uploadBatchEvent" (
    "id" TEXT NOT NULL,
    "batchId" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "payload" JSONB,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "uploadBatchEvent_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "webhookDelivery" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "url" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" "WebhookDeliveryStatus" NOT NULL DEFAULT 'PENDING',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "nextRetryAt" TIMESTAMP(3),
    "lastError" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "deliveredAt" TIMESTAMP(3),
    CONSTRAINT "webhookDelivery_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "chatSession" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT NOT NULL,
    "userId" TEXT NOT NULL,
    "title" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,
    CONSTRAINT "chatSession_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "chatMessages" (
    "id" TEXT NOT NULL,
    "sessionId" TEXT NOT NULL,
    "role" "ChatRole" NOT NULL,
    "content" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "chatMessages_pkey" PRIMARY KEY ("id")
);

CREATE TABLE "globalLog" (
    "id" TEXT NOT NULL,
    "workspaceId" TEXT,
    "userId" TEXT,
    "level" "LogLevel" NOT NULL DEFAULT 'INFO',
    "action" TEXT NOT NULL,
    "metadata" JSONB,
    "timestamp" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "globalLog_pkey" PRIMARY KEY ("id")
);

-- Rate-limit counters "if persisted to DB": one row per key and window.
CREATE TABLE "rateLimitStore" (
    "id" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "count" INTEGER NOT NULL DEFAULT 0,
    "resetTime" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT "rateLimitStore_pkey" PRIMARY KEY ("id")
);

-- AddForeignKey
ALTER TABLE "userSessions" ADD CONSTRAINT "userSessions_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "workspaceMembers" ADD CONSTRAINT "workspaceMembers_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "workspaceMembers" ADD CONSTRAINT "workspaceMembers_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "workspaceCredits" ADD CONSTRAINT "workspaceCredits_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "creditAllocations" ADD CONSTRAINT "creditAllocations_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "creditTransaction" ADD CONSTRAINT "creditTransaction_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "process" ADD CONSTRAINT "process_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "reportExecution" ADD CONSTRAINT "reportExecution_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "reportExecution" ADD CONSTRAINT "reportExecution_processId_fkey" FOREIGN KEY ("processId") REFERENCES "process"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "processBatchUpload" ADD CONSTRAINT "processBatchUpload_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "uploadBatchRow" ADD CONSTRAINT "uploadBatchRow_batchId_fkey" FOREIGN KEY ("batchId") REFERENCES "processBatchUpload"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "uploadBatchEvent" ADD CONSTRAINT "uploadBatchEvent_batchId_fkey" FOREIGN KEY ("batchId") REFERENCES "processBatchUpload"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "webhookDelivery" ADD CONSTRAINT "webhookDelivery_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "chatSession" ADD CONSTRAINT "chatSession_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "chatSession" ADD CONSTRAINT "chatSession_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "chatMessages" ADD CONSTRAINT "chatMessages_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "chatSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;
ALTER TABLE "globalLog" ADD CONSTRAINT "globalLog_workspaceId_fkey" FOREIGN KEY ("workspaceId") REFERENCES "workspaces"("id") ON DELETE SET NULL ON UPDATE CASCADE;
ALTER TABLE "globalLog" ADD CONSTRAINT "globalLog_userId_fkey" FOREIGN KEY ("userId") REFERENCES "users"("id") ON DELETE SET NULL ON UPDATE CASCADE;
