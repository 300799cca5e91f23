-- Whether a user is named in any approval tier, directly or through a group: the rule that
-- shows the Approvals pages and asks approvers for a second factor. One definition, which
-- every query that loads the signed-in user calls (`db::users`, `db::web_sessions`,
-- `db::api_tokens`). A plain SQL function marked STABLE: PostgreSQL inlines it as the
-- subqueries it was written as before.
CREATE FUNCTION user_is_approver(user_id uuid) RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT EXISTS (SELECT 1 FROM approval_tier_users tu WHERE tu.user_id = $1)
        OR EXISTS (SELECT 1 FROM approval_tier_groups tg
                   JOIN group_members gm ON gm.group_id = tg.group_id
                   WHERE gm.user_id = $1)
$$;
