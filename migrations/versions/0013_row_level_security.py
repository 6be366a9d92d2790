"""Row-level security: the database as the second wall between businesses.

Every table holding a business's data gets RLS enabled and FORCED, and a `tenant` policy: a
row is visible (and may be written) only when its business is the one the transaction acts
for, `SET LOCAL longtasks.business_id` (set by longtasks.db.tenancy from the verified token in
the API, from the task in an activity). Unset, a transaction sees no business's rows at all:
forgetting the context fails closed. Tables without a business id of their own follow their
parent (a task's items are visible when the task is).

The application connects as a role that owns nothing and cannot bypass RLS (`longtasks
migrate` creates it and its grants: migrations/roles.py). The owner, which runs migrations,
keeps a policy of its own (`maintenance`) so data migrations see every row; the few paths that
must cross businesses are functions owned by it (SECURITY DEFINER), each narrow, each named:

- `longtasks_task_business(task_id)`: which business a task is for (activities act for it);
- `longtasks_cleanup_terminal(cutoff, limit)`: the daily cleanup's batch, across businesses:
  terminal tasks only (the statuses are the function's own, not the caller's to choose);
- `longtasks_task_counts()`: tasks by type and status for /metrics, counts only;
- `longtasks_status_businesses(...)`, `longtasks_sender_businesses(number)`: which business
  a WhatsApp webhook's status (or STOP reply) is for (the ingest has no token), then it acts
  for that business;
- `longtasks_prune_status_inbox(before, limit)`: the cleanup of unknown statuses, every sender's.

`task_ledger` becomes `security_invoker`, so the view reads with the caller's policies.

Revision ID: 0013_row_level_security
Revises: 0012_audit_log
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0013_row_level_security"
down_revision: str | None = "0012_audit_log"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BUSINESS = "(SELECT longtasks_business())"
OWN_ROW = f"business_id = {BUSINESS}"
OWN_SENDER = (
    "sender_id = (SELECT whatsapp_phone_number_id FROM businesses"  # noqa: S608 - constants
    f" WHERE id = {BUSINESS})"
)
# Written out per table (a migration states the schema of its day); tests/security/test_rls.py
# fails for any table of the live schema that is neither here (or in a later migration) nor
# exempt with a reason.
POLICIES = {
    "businesses": f"id = {BUSINESS}",
    "long_running_tasks": OWN_ROW,
    "broadcasts": OWN_ROW,
    "receipts": OWN_ROW,
    "gmail_connections": OWN_ROW,
    "receipt_sync_runs": OWN_ROW,
    "receipt_delete_pages": OWN_ROW,
    "notification_settings": OWN_ROW,
    "revoked_tokens": OWN_ROW,
    "audit_events": OWN_ROW,
    "business_policies": OWN_ROW,
    "business_send_days": OWN_ROW,
    "audiences": OWN_ROW,
    "broadcast_recipients": "EXISTS (SELECT 1 FROM broadcasts b WHERE b.id = broadcast_id)",
    "task_items": "EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id)",
    "notification_deliveries": "EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id)",
    "gmail_sync_messages": "EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id)",
    "task_receipt_selection": "EXISTS (SELECT 1 FROM long_running_tasks t WHERE t.id = task_id)",
    "audience_upload_chunks": "EXISTS (SELECT 1 FROM audiences a WHERE a.id = audience_id)",
    "audience_members": "EXISTS (SELECT 1 FROM audiences a WHERE a.id = audience_id)",
    "audience_errors": "EXISTS (SELECT 1 FROM audiences a WHERE a.id = audience_id)",
    # Per WhatsApp sender (phone number id): the business's own sender only.
    "sender_pacing": OWN_SENDER,
    "sender_contacts": OWN_SENDER,
    "wa_webhook_health": OWN_SENDER,
    "wa_status_inbox": OWN_SENDER.replace("sender_id", "phone_number_id", 1),
    "wa_suppressions": OWN_ROW,
}

FUNCTIONS = """
CREATE FUNCTION longtasks_business() RETURNS bigint
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT NULLIF(current_setting('longtasks.business_id', true), '')::bigint $$;

CREATE FUNCTION longtasks_task_business(p_task_id bigint) RETURNS bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT business_id FROM long_running_tasks WHERE id = p_task_id $$;

CREATE FUNCTION longtasks_cleanup_terminal(p_cutoff timestamptz, p_limit integer)
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
$$;

CREATE FUNCTION longtasks_task_counts()
RETURNS TABLE (task_type text, status text, tasks bigint)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT task_type, status, count(*) FROM long_running_tasks GROUP BY 1, 2 $$;

-- WhatsApp's status webhooks carry no token: which business each status is for. The item's
-- task's (by our key, else by the message id), else the lowest business sending from the
-- status's number (a status not known yet waits in that sender's inbox); NULL: no business.
CREATE FUNCTION longtasks_status_businesses(
    p_task_ids bigint[], p_item_keys text[], p_wamids text[], p_pnids text[]
) RETURNS bigint[]
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
    SELECT coalesce(array_agg(coalesce(
        (SELECT t.business_id FROM task_items ti JOIN long_running_tasks t ON t.id = ti.task_id
         WHERE ti.task_id = s.task_id AND ti.item_key = s.item_key),
        (SELECT t.business_id FROM task_items ti JOIN long_running_tasks t ON t.id = ti.task_id
         WHERE s.task_id IS NULL AND ti.provider_ref = s.wamid LIMIT 1),
        (SELECT min(b.id) FROM businesses b WHERE b.whatsapp_phone_number_id = s.pnid)
    ) ORDER BY s.n), '{}')
    FROM unnest(p_task_ids, p_item_keys, p_wamids, p_pnids)
        WITH ORDINALITY AS s(task_id, item_key, wamid, pnid, n)
$$;

-- A STOP reply names only the number it was sent to: the businesses sending from it.
CREATE FUNCTION longtasks_sender_businesses(p_phone_number_id text) RETURNS SETOF bigint
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$ SELECT id FROM businesses WHERE whatsapp_phone_number_id = p_phone_number_id ORDER BY id $$;

-- The daily cleanup forgets statuses that never became known, whichever sender's.
CREATE FUNCTION longtasks_prune_status_inbox(p_before timestamptz, p_limit integer)
RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp
AS $$
DECLARE
    deleted integer;
BEGIN
    DELETE FROM wa_status_inbox WHERE ctid IN (
        SELECT ctid FROM wa_status_inbox WHERE received_at < p_before LIMIT p_limit
    );
    GET DIAGNOSTICS deleted = ROW_COUNT;
    RETURN deleted;
END
$$;

REVOKE EXECUTE ON FUNCTION longtasks_status_businesses(bigint[], text[], text[], text[])
    FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION longtasks_sender_businesses(text) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION longtasks_prune_status_inbox(timestamptz, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION longtasks_task_business(bigint) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION longtasks_cleanup_terminal(timestamptz, integer) FROM PUBLIC;
REVOKE EXECUTE ON FUNCTION longtasks_task_counts() FROM PUBLIC;
"""


def upgrade() -> None:
    op.execute(FUNCTIONS)
    for table, predicate in POLICIES.items():
        op.execute(f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY")
        op.execute(f"CREATE POLICY tenant ON {table} USING ({predicate}) WITH CHECK ({predicate})")
        # The owner (migrations, and the functions above) sees every row: a data migration
        # must not silently skip other businesses' rows.
        op.execute(
            f"CREATE POLICY maintenance ON {table} TO CURRENT_USER USING (true) WITH CHECK (true)"
        )
    op.execute("ALTER VIEW task_ledger SET (security_invoker = true)")


def downgrade() -> None:
    op.execute("ALTER VIEW task_ledger RESET (security_invoker)")
    for table in POLICIES:
        op.execute(f"DROP POLICY maintenance ON {table}")
        op.execute(f"DROP POLICY tenant ON {table}")
        op.execute(f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY")
        op.execute(f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY")
    op.execute(
        "DROP FUNCTION longtasks_prune_status_inbox(timestamptz, integer); "
        "DROP FUNCTION longtasks_sender_businesses(text); "
        "DROP FUNCTION longtasks_status_businesses(bigint[], text[], text[], text[]); "
        "DROP FUNCTION longtasks_task_counts(); "
        "DROP FUNCTION longtasks_cleanup_terminal(timestamptz, integer); "
        "DROP FUNCTION longtasks_task_business(bigint); "
        "DROP FUNCTION longtasks_business();"
    )
