"""The daily cleanup locks a broadcast's items before its task row, as everything else does.

A broadcast's status webhooks keep coming after it ends (Meta retries them for days), and
their ingest locks the items it updates, then the task row for its delivery counters; so do
settling and DELETE /api/long_tasks/{id} (`tasks.delete_task`). 0013's cleanup function took
its batch's task rows first (FOR UPDATE SKIP LOCKED) and their items through the cascade: the
opposite order, so a late status for a task being cleaned up could deadlock with it (Postgres
aborts one of the two: a webhook answered 5xx, or the cleanup retried).

Here the function picks its batch without locking, locks the items of the batch's broadcasts
in (task, key) order, then the task rows (still SKIP LOCKED: a task some request holds right
now is left for the next run), and deletes. Only broadcasts' items: nothing else writes the
items of a finished task. The price is a lock pass over those items before the cascade
deletes them: a finished broadcast of 300,000 items went in 356-380 ms and 66.3 MB of WAL,
against 137-141 ms and 49.5 MB with 0013's function (embedded Postgres 16, 2 cores), for a
daily job. The downgrade puts 0013's function back.

Revision ID: 0016_cleanup_lock_order
Revises: 0015_task_items_business
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0016_cleanup_lock_order"
down_revision: str | None = "0015_task_items_business"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# CREATE OR REPLACE keeps the function's owner and grants (EXECUTE: the application's role).
ITEMS_FIRST = """
CREATE OR REPLACE FUNCTION longtasks_cleanup_terminal(p_cutoff timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    candidates bigint[];
    batch bigint[];
    deleted integer;
BEGIN
    SELECT array_agg(id) INTO candidates FROM (
        SELECT id FROM long_running_tasks
        WHERE status IN ('completed', 'cancelled', 'failed', 'expired')
            AND coalesce(completed_at, created_at) < p_cutoff
        ORDER BY coalesce(completed_at, created_at)
        LIMIT p_limit
    ) oldest;
    IF candidates IS NULL THEN
        RETURN 0;
    END IF;
    -- Items first, in the order the status ingest locks them, then the task rows.
    PERFORM 1 FROM task_items
    WHERE task_id IN (SELECT task_id FROM broadcasts WHERE task_id = ANY (candidates))
    ORDER BY task_id, item_key
    FOR UPDATE;
    -- SKIP LOCKED: a task row some request holds right now is left for the next run.
    SELECT array_agg(id) INTO batch FROM (
        SELECT id FROM long_running_tasks
        WHERE id = ANY (candidates)
            AND status IN ('completed', 'cancelled', 'failed', 'expired')
        FOR UPDATE SKIP LOCKED
    ) free;
    IF batch IS NULL THEN
        RETURN 0;
    END IF;
    -- A broadcast's own recipient list goes with its task (the broadcast row stays).
    DELETE FROM broadcast_recipients r USING broadcasts b
    WHERE r.broadcast_id = b.id AND b.task_id = ANY (batch);
    DELETE FROM long_running_tasks WHERE id = ANY (batch);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$
"""

TASKS_FIRST = """
-- 0013's
CREATE OR REPLACE FUNCTION longtasks_cleanup_terminal(p_cutoff timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    batch bigint[];
    deleted integer;
BEGIN
    -- SKIP LOCKED: a task row some request holds right now is left for the next run.
    SELECT array_agg(id) INTO batch FROM (
        SELECT id FROM long_running_tasks
        WHERE status IN ('completed', 'cancelled', 'failed', 'expired')
            AND coalesce(completed_at, created_at) < p_cutoff
        ORDER BY coalesce(completed_at, created_at)
        LIMIT p_limit
        FOR UPDATE SKIP LOCKED
    ) oldest;
    IF batch IS NULL THEN
        RETURN 0;
    END IF;
    -- A broadcast's own recipient list goes with its task (the broadcast row stays).
    DELETE FROM broadcast_recipients r USING broadcasts b
    WHERE r.broadcast_id = b.id AND b.task_id = ANY (batch);
    DELETE FROM long_running_tasks WHERE id = ANY (batch);
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$
"""


def upgrade() -> None:
    op.execute(ITEMS_FIRST)


def downgrade() -> None:
    op.execute(TASKS_FIRST)
