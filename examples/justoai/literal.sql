-- The two "Recommended Additional Indexes" SQL blocks of the JustoAI V2
-- "Database Indexing Strategy" document, copied verbatim (unquoted camelCase
-- and CURRENT_DATE included). Kept to show what happens to the literal text;
-- indexes.yaml holds the same indexes as their authors meant them.

-- ### High-Priority (Performance Critical)
-- Quota system: Monthly report counting
CREATE INDEX idx_report_execution_workspace_date
ON reportExecution(workspaceId, createdAt DESC)
WHERE createdAt >= CURRENT_DATE - INTERVAL '1 month';

-- Credit transactions: Fast balance queries
CREATE INDEX idx_credit_transaction_workspace_type
ON creditTransaction(workspaceId, type)
WHERE status = 'COMPLETED';

-- Webhook retries: Fast pending query
CREATE INDEX idx_webhook_delivery_retry
ON webhookDelivery(nextRetryAt, status)
WHERE status = 'RETRYING';

-- Batch processing: Status filtering
CREATE INDEX idx_batch_upload_workspace_status
ON processBatchUpload(workspaceId, status)
WHERE status IN ('PROCESSING', 'PENDING');

-- ### Medium-Priority (Optimization Targets)
-- Process search and filtering
CREATE INDEX idx_process_workspace_number
ON process(workspaceId, processNumber);

-- Chat history search
CREATE INDEX idx_chat_session_workspace_date
ON chatSession(workspaceId, createdAt DESC);

-- Audit logging
CREATE INDEX idx_global_log_workspace_timestamp
ON globalLog(workspaceId, timestamp DESC);

-- Rate limiting (optional, if persisted to DB)
CREATE INDEX idx_rate_limit_key_reset
ON rateLimitStore(key, resetTime)
WHERE count > 0;
