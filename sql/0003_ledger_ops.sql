-- 0003_ledger_ops.sql - operations around the decision engine: loading a
-- wallet, compensating late approvals, hold expiry, the ledger invariant
-- check, policy versions with shadow mode, card status changes.
-- Every function here runs inside the caller's transaction.

-- Credit a wallet from the currency's funding account.  Returns the wallet's
-- balance and available after.  p_amount must be positive.
CREATE FUNCTION account_load(p_account bigint, p_amount bigint, p_memo text DEFAULT 'load')
RETURNS TABLE (balance bigint, available bigint, currency text)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    cur text;
BEGIN
    IF p_amount IS NULL OR p_amount <= 0 THEN
        RAISE EXCEPTION 'amount must be a positive number of minor units' USING ERRCODE = '22023';
    END IF;
    SELECT a.currency INTO cur FROM accounts a WHERE a.id = p_account AND a.kind = 'wallet' FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown account %', p_account USING ERRCODE = '22023';
    END IF;
    PERFORM post_pair(NULL, p_memo, p_account, 'A', p_amount, system_account('funding', cur), 'A');
    RETURN QUERY SELECT a.balance, a.available, a.currency::text FROM accounts a WHERE a.id = p_account;
END $$;

-- Release what is still held (or credit back what was debited) for
-- approvals the daemon answered 91 because the database was too late.
-- Idempotent: an authorization already released is skipped.  Returns the
-- number of authorizations released.
CREATE FUNCTION release_late(p_auth_ids bigint[], p_reason text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    a authorizations;
    n int := 0;
    settle bigint;
    rel bigint;
BEGIN
    -- lock the wallets first, in id order, like authorize_batch
    PERFORM 1 FROM accounts WHERE id IN (SELECT account_id FROM authorizations WHERE id = ANY (p_auth_ids))
      ORDER BY id FOR UPDATE;
    FOR a IN SELECT * FROM authorizations WHERE id = ANY (p_auth_ids) ORDER BY id FOR UPDATE LOOP
        CONTINUE WHEN a.status NOT IN ('approved', 'captured') OR a.response_code NOT IN ('00', '10');
        IF a.kind IN ('auth', 'cash', 'standin') THEN
            IF a.hold_amount > 0 THEN
                PERFORM post_pair(a.id, 'late release', a.account_id, 'H', -a.hold_amount, a.account_id, 'A');
            END IF;
            PERFORM spend_giveback(a.card_id, a.created_at, a.hold_amount, 1);
        ELSIF a.kind = 'incremental' THEN
            -- give the increment (less what a reversal already gave) back from
            -- its base hold, never more than the base still holds (a capture
            -- or an expiry may have taken the hold since)
            SELECT least(o.hold_amount, greatest(a.amount_approved - a.amount_reversed, 0)) INTO rel
              FROM authorizations o WHERE o.id = a.original_id FOR UPDATE;
            rel := coalesce(rel, 0);
            UPDATE authorizations SET hold_amount = hold_amount - rel, amount_reversed = amount_reversed + rel
             WHERE id = a.original_id;
            IF rel > 0 THEN
                PERFORM post_pair(a.original_id, 'late release', a.account_id, 'H', -rel, a.account_id, 'A');
            END IF;
            PERFORM spend_giveback(a.card_id, a.created_at, rel, 0);
        ELSIF a.kind IN ('financial', 'refund') THEN
            settle := system_account('settlement', a.currency);
            PERFORM post_pair(a.id, 'late release', a.account_id, 'A',
                              CASE WHEN a.kind = 'refund' THEN -a.amount_approved ELSE a.amount_approved END,
                              settle, 'A');
            IF a.kind = 'financial' THEN
                PERFORM spend_giveback(a.card_id, a.created_at, a.amount_approved, 1);
            END IF;
        ELSE
            CONTINUE;
        END IF;
        UPDATE authorizations SET status = 'late_released', hold_amount = 0, updated_at = now(),
               note = coalesce(p_reason, 'late approval released')
         WHERE id = a.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- Release holds never completed: authorizations whose hold_expires_at has
-- passed (set from ledger_settings hold_expiry_days / cash_hold_expiry_days
-- when approved).  p_limit bounds the work of one call.  Returns how many.
CREATE FUNCTION expire_holds(p_now timestamptz DEFAULT now(), p_limit int DEFAULT 10000)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    a record;
    n int := 0;
BEGIN
    PERFORM 1 FROM accounts WHERE id IN (
        SELECT account_id FROM authorizations WHERE hold_amount > 0 AND hold_expires_at <= p_now
         ORDER BY id LIMIT p_limit)
      ORDER BY id FOR UPDATE;
    FOR a IN SELECT * FROM authorizations WHERE hold_amount > 0 AND hold_expires_at <= p_now
             ORDER BY id LIMIT p_limit FOR UPDATE LOOP
        PERFORM post_pair(a.id, 'hold expiry', a.account_id, 'H', -a.hold_amount, a.account_id, 'A');
        PERFORM spend_giveback(a.card_id, a.created_at, a.hold_amount, 0);
        UPDATE authorizations SET hold_amount = 0, status = 'expired', updated_at = now() WHERE id = a.id;
        n := n + 1;
    END LOOP;
    RETURN n;
END $$;

-- The ledger invariants, one row per violation (none when the ledger is
-- sound): per wallet, entries sum to balance, available entries sum to
-- available, held entries sum to the open holds, available = balance - open
-- holds, available >= 0 unless a flagged forced post (stand-in advice,
-- completion over the hold) explains it; every journal sums to zero.
CREATE FUNCTION check_ledger()
RETURNS TABLE (account_id bigint, problem text, expected bigint, actual bigint)
LANGUAGE sql STABLE AS $$
    WITH e AS (
        SELECT le.account_id, sum(le.amount) AS total,
               sum(le.amount) FILTER (WHERE le.book = 'A') AS avail,
               sum(le.amount) FILTER (WHERE le.book = 'H') AS held
          FROM ledger_entries le GROUP BY le.account_id),
    h AS (
        SELECT au.account_id, sum(au.hold_amount) AS open_holds
          FROM authorizations au WHERE au.hold_amount > 0 GROUP BY au.account_id),
    w AS (
        SELECT a.id, a.balance, a.available, coalesce(e.total, 0) AS total, coalesce(e.avail, 0) AS avail,
               coalesce(e.held, 0) AS held, coalesce(h.open_holds, 0) AS open_holds
          FROM accounts a LEFT JOIN e ON e.account_id = a.id LEFT JOIN h ON h.account_id = a.id
         WHERE a.kind = 'wallet')
    SELECT id, 'balance <> sum(entries)', total, balance FROM w WHERE balance <> total
    UNION ALL
    SELECT id, 'available <> sum(available entries)', avail, available FROM w WHERE available <> avail
    UNION ALL
    SELECT id, 'held entries <> open holds', open_holds, held FROM w WHERE held <> open_holds
    UNION ALL
    SELECT id, 'available <> balance - open holds', balance - open_holds, available FROM w
     WHERE available <> balance - open_holds
    UNION ALL
    SELECT id, 'available below zero without a flagged forced post', 0, available FROM w
     WHERE available < 0
       AND NOT EXISTS (SELECT 1 FROM authorizations au WHERE au.account_id = w.id AND au.overdrew)
    UNION ALL
    SELECT NULL, 'journal ' || journal_id || ' does not sum to zero', 0, sum(amount)
      FROM ledger_entries GROUP BY journal_id HAVING sum(amount) <> 0
$$;

-- The MCC codes of a list that may name groups (mcc_groups); raises on a
-- token that is neither a 4-digit code nor a known group.
CREATE FUNCTION mcc_expand(p_spec text[]) RETURNS text[]
LANGUAGE plpgsql STABLE AS $$
DECLARE
    t text;
    res text[] := '{}';
    g text[];
BEGIN
    IF p_spec IS NULL THEN
        RETURN NULL;
    END IF;
    FOREACH t IN ARRAY p_spec LOOP
        IF t ~ '^[0-9]{4}$' THEN
            res := res || t;
        ELSE
            SELECT array_agg(mcc::text ORDER BY mcc) INTO g FROM mcc_groups WHERE name = t;
            IF g IS NULL THEN
                RAISE EXCEPTION 'bad MCC or unknown MCC group "%"', t USING ERRCODE = '22023';
            END IF;
            res := res || g;
        END IF;
    END LOOP;
    RETURN res;
END $$;

-- Write a new policy version for a scope from a JSON object of settings
-- (the columns of policies: per_txn_max, daily_max, ..., mcc_allow (codes
-- or group names), country_block, currencies, allow_atm, ...).  Keys not
-- given are copied from the scope's current active version; a JSON null
-- clears a setting.  p_shadow: the new version goes into shadow (replacing
-- an older shadow) instead of becoming active.  Returns the version.
CREATE FUNCTION policy_set(p_scope text, p_scope_id bigint, p_settings jsonb, p_shadow boolean DEFAULT false,
                           p_note text DEFAULT NULL)
RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    cur policies;
    nw policies;
    k text;
    known text[] := ARRAY['per_txn_max', 'daily_max', 'weekly_max', 'monthly_max', 'lifetime_max',
                          'daily_count', 'weekly_count', 'monthly_count', 'lifetime_count', 'mcc_allow',
                          'mcc_block', 'country_allow', 'country_block', 'currencies', 'allow_atm',
                          'allow_ecom', 'allow_contactless', 'allow_fallback'];
    ok boolean;
BEGIN
    IF p_scope NOT IN ('company', 'team', 'cardholder', 'card') THEN
        RAISE EXCEPTION 'unknown policy level "%"', p_scope USING ERRCODE = '22023';
    END IF;
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE id = $1)',
                   CASE p_scope WHEN 'company' THEN 'companies' WHEN 'team' THEN 'teams'
                                WHEN 'cardholder' THEN 'cardholders' ELSE 'cards' END)
       INTO ok USING p_scope_id;
    IF NOT ok THEN
        RAISE EXCEPTION 'unknown % %', p_scope, p_scope_id USING ERRCODE = '22023';
    END IF;
    FOR k IN SELECT jsonb_object_keys(p_settings) LOOP
        IF NOT k = ANY (known) THEN
            RAISE EXCEPTION 'unknown policy setting "%"', k USING ERRCODE = '22023';
        END IF;
    END LOOP;
    SELECT * INTO cur FROM policies WHERE scope = p_scope AND scope_id = p_scope_id AND state = 'active'
       FOR UPDATE;
    nw := cur;
    nw.mcc_allow := cur.mcc_allow_spec;
    nw.mcc_block := cur.mcc_block_spec;
    -- overlay the given keys (jsonb_populate_record keeps unspecified fields)
    nw := jsonb_populate_record(nw, p_settings);
    IF nw.per_txn_max < 0 OR nw.daily_max < 0 OR nw.weekly_max < 0 OR nw.monthly_max < 0
       OR nw.lifetime_max < 0 OR nw.daily_count < 0 OR nw.weekly_count < 0 OR nw.monthly_count < 0
       OR nw.lifetime_count < 0 THEN
        RAISE EXCEPTION 'a limit cannot be below zero' USING ERRCODE = '22023';
    END IF;
    nw.mcc_allow_spec := nw.mcc_allow;
    nw.mcc_block_spec := nw.mcc_block;
    nw.mcc_allow := mcc_expand(nw.mcc_allow_spec);
    nw.mcc_block := mcc_expand(nw.mcc_block_spec);
    nw.id := nextval('policies_id_seq');
    nw.scope := p_scope;
    nw.scope_id := p_scope_id;
    nw.created_at := now();
    nw.note := p_note;
    IF p_shadow THEN
        UPDATE policies SET state = 'retired' WHERE scope = p_scope AND scope_id = p_scope_id AND state = 'shadow';
        nw.state := 'shadow';
    ELSE
        UPDATE policies SET state = 'retired' WHERE id = cur.id;
        nw.state := 'active';
    END IF;
    INSERT INTO policies SELECT nw.*;
    RETURN nw.id;
END $$;

-- Make a shadow version active, atomically (the old active one retires).
CREATE FUNCTION policy_promote(p_version bigint) RETURNS void
LANGUAGE plpgsql AS $$
DECLARE
    p policies;
BEGIN
    SELECT * INTO p FROM policies WHERE id = p_version FOR UPDATE;
    IF NOT FOUND OR p.state <> 'shadow' THEN
        RAISE EXCEPTION 'policy version % is not in shadow', p_version USING ERRCODE = '22023';
    END IF;
    UPDATE policies SET state = 'retired' WHERE scope = p.scope AND scope_id = p.scope_id AND state = 'active';
    UPDATE policies SET state = 'active' WHERE id = p_version;
END $$;

-- Change a card's status.  Closed is final; lost and stolen cannot be
-- unfrozen back to active.
CREATE FUNCTION card_set_status(p_card bigint, p_status text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
    old text;
BEGIN
    SELECT status INTO old FROM cards WHERE id = p_card FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown card %', p_card USING ERRCODE = '22023';
    END IF;
    IF old = 'closed' AND p_status <> 'closed' THEN
        RAISE EXCEPTION 'card % is closed', p_card USING ERRCODE = '22023';
    END IF;
    IF p_status = 'active' AND old IN ('lost', 'stolen', 'blocked') THEN
        RAISE EXCEPTION 'card % is %; issue a new card', p_card, old USING ERRCODE = '22023';
    END IF;
    UPDATE cards SET status = p_status WHERE id = p_card;
    RETURN old;
END $$;
