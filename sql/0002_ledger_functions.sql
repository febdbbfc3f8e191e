-- 0002_ledger_functions.sql - the decision engine and the ledger's operations.
--
-- authorize_batch(reqs auth_request[]) decides/records an array of requests
-- in order inside the caller's transaction and returns one outcome per
-- request, in input order.  Example (text parameters from libpq work too; the
-- daemon may prefer authorize_batch_json below, which takes a JSON array of
-- objects with the same field names):
--
--   SELECT * FROM authorize_batch(ARRAY[
--     ROW('auth','0100','<64 hex pan hash>','2812','12345678','000001',
--         '123456789012','1122334455',NULL,'TERM0001','MERCHANT0000001','Shop',
--         '5411','DE','978',1250,NULL,NULL,'chip',false,'absent','absent',
--         'absent','ok',17,NULL,NULL,NULL,NULL,NULL,NULL,
--         clock_timestamp() + interval '2 seconds')::auth_request]);
--
-- kind: auth (0100 purchase), cash (0100 ATM cash), financial (0200),
-- balance (inquiry, no hold), refund (credit), incremental (adds to the hold
-- found by field 90 parts or, failing that, by RRN+acquirer), completion
-- (0220/0221 capture of a hold, possibly for another amount), standin
-- (0120/0121: the network approved for us; applied even if it overdraws,
-- flagged), reversal (0400/0420/0421; replacement_amount = field 95 actual
-- amount for a partial reversal).
--
-- Response codes: 00 approved/acknowledged, 10 partial approval, 05 do not
-- honour (closed card, original already reversed), 12 invalid transaction,
-- 13 invalid amount, 14 unknown card, 41 lost, 43 stolen, 51 insufficient
-- funds, 54 expired/expiry mismatch, 55 wrong PIN, 57 not permitted by
-- policy (channel, MCC, country, currency), 61 amount limit, 62 restricted
-- (frozen/blocked), 65 count limit, 75 PIN tries exceeded, 78 card not
-- activated, 82 CVV/iCVV/ARQC/ATC failure, N7 CVV2 mismatch, 91 deadline
-- passed before the decision, 94 duplicate transmission with different
-- content, 96 system error in this request (others in the batch proceed).

CREATE TABLE currencies (
    alpha    char(3) PRIMARY KEY,
    numeric  char(3) NOT NULL UNIQUE,
    exponent int NOT NULL
);
INSERT INTO currencies VALUES
    ('EUR', '978', 2), ('USD', '840', 2), ('GBP', '826', 2), ('CHF', '756', 2),
    ('JPY', '392', 0), ('SEK', '752', 2), ('DKK', '208', 2), ('NOK', '578', 2),
    ('PLN', '985', 2), ('CZK', '203', 2), ('CAD', '124', 2), ('AUD', '036', 2);

CREATE TYPE auth_request AS (
    kind               text,
    mti                text,
    pan_hash           text,
    expiry             text,        -- YYMM from field 14 / track, NULL when absent
    acquirer_id        text,        -- field 32
    stan               text,        -- field 11
    rrn                text,        -- field 37
    xmit_at            text,        -- field 7
    local_at           text,        -- fields 13+12
    terminal_id        text,        -- field 41
    merchant_id        text,        -- field 42
    merchant_name      text,        -- field 43
    mcc                text,        -- field 18
    country            text,        -- field 19 / 43
    txn_currency       text,        -- field 49
    txn_amount         bigint,      -- field 4
    bill_currency      text,        -- field 51
    bill_amount        bigint,      -- field 6
    channel            text,        -- chip contactless magstripe fallback ecom manual
    partial_ok         boolean,
    pin_result         text,        -- ok wrong absent
    cvv_result         text,        -- CVV / iCVV: ok wrong absent
    cvv2_result        text,        -- ok wrong absent
    arqc_result        text,        -- ok bad absent
    atc                int,
    orig_mti           text,        -- field 90 parts
    orig_stan          text,
    orig_xmit_at       text,
    orig_acquirer_id   text,
    replacement_amount bigint,      -- field 95 actual amount (partial reversal)
    advice_code        text,        -- field 39 of a stand-in advice
    deadline           timestamptz
);

CREATE TYPE auth_outcome AS (
    ord             int,
    response_code   text,
    approval_code   text,
    approved_amount bigint,
    available_after bigint,
    balance_after   bigint,
    currency        text,
    rule            text,
    policy_version  bigint,
    auth_id         bigint,
    account_id      bigint
);

-- The alpha code of a currency given as alpha or ISO 4217 numeric.
CREATE FUNCTION currency_alpha(p text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((SELECT alpha FROM currencies WHERE numeric = p), upper(p))
$$;

-- The id of the per-currency system account of a kind (funding, settlement),
-- created on first use.
CREATE FUNCTION system_account(p_kind text, p_currency text) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    v bigint;
BEGIN
    SELECT id INTO v FROM accounts WHERE kind = p_kind AND currency = p_currency;
    IF v IS NULL THEN
        INSERT INTO accounts (kind, name, currency) VALUES (p_kind, p_kind || ' ' || p_currency, p_currency)
        ON CONFLICT DO NOTHING;
        SELECT id INTO v FROM accounts WHERE kind = p_kind AND currency = p_currency;
    END IF;
    RETURN v;
END $$;

-- The tightest of the policies that apply to a card (company, team,
-- cardholder, card level) for one request: the version (highest policy id
-- applied), the limits, and the first control that refuses the request
-- (NULL when none does).  p_shadow: evaluate the shadow versions in place of
-- the active ones where a scope has one.
CREATE FUNCTION policy_check(p_company bigint, p_team bigint, p_holder bigint, p_card bigint,
                             p_mcc text, p_country text, p_currency text, p_channel text,
                             p_cash boolean, p_shadow boolean)
RETURNS TABLE (version bigint, shadow_version bigint, per_txn_max bigint, daily_max bigint,
               weekly_max bigint, monthly_max bigint, lifetime_max bigint, daily_count int,
               weekly_count int, monthly_count int, lifetime_count int, control_rule text)
LANGUAGE sql STABLE AS $$
    SELECT max(p.id), max(p.id) FILTER (WHERE p.state = 'shadow'),
           min(p.per_txn_max), min(p.daily_max), min(p.weekly_max), min(p.monthly_max),
           min(p.lifetime_max), min(p.daily_count), min(p.weekly_count), min(p.monthly_count),
           min(p.lifetime_count),
           CASE
             WHEN p_cash AND bool_or(p.allow_atm = false) THEN 'control.atm_cash'
             WHEN p_channel = 'ecom' AND bool_or(p.allow_ecom = false) THEN 'control.ecommerce'
             WHEN p_channel = 'contactless' AND bool_or(p.allow_contactless = false) THEN 'control.contactless'
             WHEN p_channel = 'fallback' AND bool_or(p.allow_fallback = false) THEN 'control.fallback'
             WHEN bool_or(p.mcc_block @> ARRAY[coalesce(p_mcc, '')]) THEN 'control.mcc_blocked'
             WHEN bool_or(p.mcc_allow IS NOT NULL AND NOT p.mcc_allow @> ARRAY[coalesce(p_mcc, '')])
               THEN 'control.mcc_not_allowed'
             WHEN bool_or(p.country_block @> ARRAY[coalesce(p_country, '')]) THEN 'control.country_blocked'
             WHEN bool_or(p.country_allow IS NOT NULL AND NOT p.country_allow @> ARRAY[coalesce(p_country, '')])
               THEN 'control.country_not_allowed'
             WHEN bool_or(p.currencies IS NOT NULL AND NOT p.currencies @> ARRAY[coalesce(p_currency, '')])
               THEN 'control.currency_not_allowed'
           END
      FROM policies p
     WHERE ((p.scope = 'company' AND p.scope_id = p_company)
         OR (p.scope = 'team' AND p.scope_id = p_team)
         OR (p.scope = 'cardholder' AND p.scope_id = p_holder)
         OR (p.scope = 'card' AND p.scope_id = p_card))
       AND CASE WHEN p_shadow
                THEN p.state = 'shadow'
                     OR (p.state = 'active' AND NOT EXISTS (
                            SELECT 1 FROM policies s
                             WHERE s.state = 'shadow' AND s.scope = p.scope AND s.scope_id = p.scope_id))
                ELSE p.state = 'active' END
$$;

-- The original a reversal, incremental or completion refers to: by the
-- field 90 parts (acquirer, STAN, transmission time) when given, else the
-- newest hold/financial with the same RRN and acquirer on the same card.
CREATE FUNCTION find_original(r auth_request, p_card bigint) RETURNS authorizations
LANGUAGE sql STABLE AS $$
    SELECT a.* FROM authorizations a
     WHERE a.id = (
        SELECT x.id FROM (
            SELECT o.id, 1 AS pref FROM authorizations o
             WHERE r.orig_stan IS NOT NULL
               AND o.acquirer_id = coalesce(r.orig_acquirer_id, r.acquirer_id, '')
               AND o.stan = r.orig_stan AND o.xmit_at = coalesce(r.orig_xmit_at, '')
               AND o.kind IN ('auth', 'cash', 'financial', 'standin', 'refund', 'incremental')
               AND (p_card IS NULL OR o.card_id = p_card)
            UNION ALL
            SELECT o.id, 2 FROM authorizations o
             WHERE r.rrn IS NOT NULL AND r.rrn <> '' AND o.rrn = r.rrn
               AND o.acquirer_id = coalesce(r.acquirer_id, '')
               AND o.kind IN ('auth', 'cash', 'financial', 'standin', 'refund')
               AND (p_card IS NULL OR o.card_id = p_card)
        ) x ORDER BY x.pref, x.id DESC LIMIT 1)
$$;

-- Counter adjustment when money an approval counted is given back (reversal,
-- release): only the periods the original fell in are reduced.
CREATE FUNCTION spend_giveback(p_card bigint, p_when timestamptz, p_amount bigint, p_count int)
RETURNS void LANGUAGE sql AS $$
    UPDATE card_spend s
       SET day_amt = CASE WHEN s.day = (p_when AT TIME ZONE co.timezone)::date
                          THEN greatest(s.day_amt - p_amount, 0) ELSE s.day_amt END,
           day_cnt = CASE WHEN s.day = (p_when AT TIME ZONE co.timezone)::date
                          THEN greatest(s.day_cnt - p_count, 0) ELSE s.day_cnt END,
           week_amt = CASE WHEN s.week = date_trunc('week', p_when AT TIME ZONE co.timezone)::date
                           THEN greatest(s.week_amt - p_amount, 0) ELSE s.week_amt END,
           week_cnt = CASE WHEN s.week = date_trunc('week', p_when AT TIME ZONE co.timezone)::date
                           THEN greatest(s.week_cnt - p_count, 0) ELSE s.week_cnt END,
           month_amt = CASE WHEN s.month = date_trunc('month', p_when AT TIME ZONE co.timezone)::date
                            THEN greatest(s.month_amt - p_amount, 0) ELSE s.month_amt END,
           month_cnt = CASE WHEN s.month = date_trunc('month', p_when AT TIME ZONE co.timezone)::date
                            THEN greatest(s.month_cnt - p_count, 0) ELSE s.month_cnt END,
           life_amt = greatest(s.life_amt - p_amount, 0),
           life_cnt = greatest(s.life_cnt - p_count, 0)
      FROM cards c JOIN accounts a ON a.id = c.account_id JOIN companies co ON co.id = a.company_id
     WHERE s.card_id = p_card AND c.id = p_card
$$;

-- Post one journal of two entries and move the wallet's balance columns.
-- p_account is a wallet; p_book_from/p_book_to are its books, or the other
-- side is the system account p_other (book 'A').  Returns nothing; the
-- caller holds the wallet's row lock.
CREATE FUNCTION post_pair(p_auth bigint, p_memo text,
                          p_acct1 bigint, p_book1 char, p_amt1 bigint,
                          p_acct2 bigint, p_book2 char)
RETURNS void LANGUAGE plpgsql AS $$
DECLARE
    j bigint := nextval('journal_id_seq');
BEGIN
    INSERT INTO ledger_entries (journal_id, account_id, book, amount, auth_id, memo)
    VALUES (j, p_acct1, p_book1, p_amt1, p_auth, p_memo),
           (j, p_acct2, p_book2, -p_amt1, p_auth, p_memo);
    -- wallet balance columns follow their entries; system accounts do not
    UPDATE accounts a
       SET balance = a.balance + v.amt, available = a.available + v.av
      FROM (SELECT x.acct, sum(x.amt) AS amt, sum(x.amt) FILTER (WHERE x.book = 'A') AS av
              FROM (VALUES (p_acct1, p_book1, p_amt1), (p_acct2, p_book2, -p_amt1)) x(acct, book, amt)
             GROUP BY x.acct) v
     WHERE a.id = v.acct AND a.kind = 'wallet';
END $$;

-- Reversal, completion: the rarer messages that work on an existing hold.
-- Runs after authorize_batch flushed its pending writes; works directly on
-- the tables and returns the outcome (auth_id preallocated by the caller).
CREATE FUNCTION ledger_apply_rare(r auth_request, p_card_id bigint, p_account bigint, p_auth bigint,
                                  p_amount bigint, p_currency text)
RETURNS auth_outcome LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    o authorizations;
    out auth_outcome;
    cur text;
    settle bigint;
    current_amt bigint;
    release bigint;
    extra bigint;
    uncapture bigint := 0;      -- credited back out of a captured amount
    newamt bigint;
    code text := '00';
    rl text;
    st text := 'recorded';
    orig_id bigint;
    approved bigint := 0;
    overdrew boolean := false;
BEGIN
    o := find_original(r, p_card_id);
    IF o.id IS NOT NULL THEN
        orig_id := o.id;
        IF p_account IS NULL THEN
            p_account := o.account_id;
        END IF;
        PERFORM 1 FROM accounts WHERE id = o.account_id FOR UPDATE;
    END IF;
    SELECT currency INTO cur FROM accounts WHERE id = p_account;
    IF r.kind = 'reversal' THEN
        IF o.id IS NULL THEN
            -- remembered: the original, when it arrives, is declined
            st := 'unmatched';
            rl := 'reversal.unmatched_remembered';
        ELSIF o.status IN ('declined', 'late_released', 'expired') THEN
            rl := 'reversal.original_not_approved';
        ELSE
            IF o.kind = 'incremental' THEN
                -- reversing an increment releases it from its base hold
                current_amt := o.amount_approved - o.amount_reversed;
                newamt := greatest(coalesce(r.replacement_amount, 0), 0);
                release := greatest(current_amt - newamt, 0);
                UPDATE authorizations SET amount_reversed = amount_reversed + release, updated_at = now()
                 WHERE id = o.id;
                SELECT * INTO o FROM authorizations WHERE id = o.original_id;
                release := least(release, o.hold_amount);
                extra := 0;
            ELSE
                current_amt := o.amount_approved - o.amount_reversed;
                IF o.kind IN ('auth', 'cash', 'standin') THEN
                    -- what this hold still takes from the wallet: the open hold
                    -- plus what a completion captured (net of earlier credits),
                    -- which may be less or more than what was approved
                    current_amt := o.hold_amount + o.amount_captured;
                END IF;
                newamt := greatest(coalesce(r.replacement_amount, 0), 0);
                release := greatest(current_amt - newamt, 0);
                extra := 0;
                IF o.kind IN ('auth', 'cash', 'standin') THEN
                    IF release > o.hold_amount THEN
                        extra := release - o.hold_amount;  -- already captured: credit back
                        release := o.hold_amount;
                        uncapture := extra;
                    END IF;
                ELSE
                    extra := release;                      -- financial or refund: settled money
                    release := 0;
                END IF;
            END IF;
            IF release > 0 THEN
                PERFORM post_pair(o.id, 'reversal release', o.account_id, 'H', -release, o.account_id, 'A');
            END IF;
            IF extra > 0 THEN
                settle := system_account('settlement', cur);
                IF o.kind = 'refund' THEN
                    PERFORM post_pair(o.id, 'refund reversal', o.account_id, 'A', -extra, settle, 'A');
                ELSE
                    PERFORM post_pair(o.id, 'reversal credit', o.account_id, 'A', extra, settle, 'A');
                END IF;
            END IF;
            IF release + extra = 0 THEN
                rl := 'reversal.nothing_left';
            ELSE
                UPDATE authorizations
                   SET hold_amount = hold_amount - release,
                       amount_reversed = amount_reversed + release + extra,
                       amount_captured = amount_captured - uncapture,
                       status = CASE WHEN hold_amount - release = 0 AND amount_captured - uncapture = 0
                                     THEN 'reversed' ELSE status END,
                       updated_at = now()
                 WHERE id = o.id;
                IF o.kind <> 'refund' THEN
                    PERFORM spend_giveback(o.card_id, o.created_at, release + extra,
                                           CASE WHEN newamt = 0 AND o.id = orig_id THEN 1 ELSE 0 END);
                END IF;
                rl := CASE WHEN newamt > 0 THEN 'reversal.partial' ELSE 'reversal.full' END;
            END IF;
            approved := release + extra;
            st := 'applied';
        END IF;
    ELSIF r.kind = 'completion' THEN
        settle := system_account('settlement', cur);
        IF o.id IS NOT NULL AND o.kind IN ('auth', 'cash', 'standin') AND o.hold_amount > 0 THEN
            release := o.hold_amount;
            PERFORM post_pair(o.id, 'completion release', o.account_id, 'H', -release, o.account_id, 'A');
            PERFORM post_pair(o.id, 'completion capture', o.account_id, 'A', -p_amount, settle, 'A');
            UPDATE authorizations SET hold_amount = 0, amount_captured = amount_captured + p_amount,
                   status = 'captured', updated_at = now() WHERE id = o.id;
            PERFORM spend_giveback(o.card_id, o.created_at, release - p_amount, 0);
            rl := CASE WHEN p_amount = release THEN 'completion.captured' ELSE 'completion.captured_other_amount' END;
        ELSE
            -- no open hold: the network says the money moved, so post it
            PERFORM post_pair(coalesce(o.id, p_auth), 'completion without hold', p_account, 'A', -p_amount, settle, 'A');
            IF o.id IS NOT NULL THEN
                UPDATE authorizations SET amount_captured = amount_captured + p_amount, updated_at = now()
                 WHERE id = o.id;
            END IF;
            rl := CASE WHEN o.id IS NULL THEN 'completion.no_original' ELSE 'completion.hold_gone' END;
        END IF;
        approved := p_amount;
        st := 'applied';
    ELSE
        code := '12';
        rl := 'format.kind';
        st := 'declined';
    END IF;

    SELECT balance, available INTO out.balance_after, out.available_after FROM accounts WHERE id = p_account;
    overdrew := out.available_after < 0 AND r.kind = 'completion';
    IF r.kind = 'reversal' AND o.kind = 'refund' AND out.available_after < 0 THEN
        overdrew := true;
    END IF;
    INSERT INTO authorizations (id, kind, mti, key_kind, card_id, account_id, pan_hash, acquirer_id, stan, rrn,
        xmit_at, local_at, terminal_id, merchant_id, merchant_name, mcc, country, channel, txn_currency,
        txn_amount, bill_currency, bill_amount, amount_requested, amount_approved, status, response_code,
        approval_code, rule, original_id, orig_mti, orig_stan, orig_xmit_at, orig_acquirer_id, overdrew,
        available_after, balance_after, currency)
    VALUES (p_auth, r.kind, r.mti, r.kind, p_card_id, p_account, r.pan_hash, coalesce(r.acquirer_id, ''),
        coalesce(r.stan, ''), coalesce(r.rrn, ''), coalesce(r.xmit_at, ''), r.local_at, r.terminal_id,
        r.merchant_id, r.merchant_name, r.mcc, r.country, r.channel, r.txn_currency, r.txn_amount,
        r.bill_currency, r.bill_amount, coalesce(p_amount, 0), approved, st, code,
        CASE WHEN code = '00' THEN lpad((p_auth % 1000000)::text, 6, '0') END, rl, orig_id,
        r.orig_mti, r.orig_stan, r.orig_xmit_at, coalesce(r.orig_acquirer_id, r.acquirer_id),
        overdrew, out.available_after, out.balance_after, cur);
    out.response_code := code;
    out.approval_code := CASE WHEN code = '00' THEN lpad((p_auth % 1000000)::text, 6, '0') END;
    out.approved_amount := approved;
    out.currency := cur;
    out.rule := rl;
    out.auth_id := p_auth;
    out.account_id := p_account;
    RETURN out;
END $$;


-- The batch decision engine.  Shape (DESIGN.md "Decisions live in
-- PostgreSQL"): lock the distinct wallets of the batch ORDER BY id FOR
-- UPDATE (a fixed order: no deadlocks between batches), resolve every
-- request in one query (card, company, period counters, stored answer of a
-- duplicate, effective policy, a reversal that arrived before it), decide
-- each request in order against in-memory balances and counters, and write
-- with bulk statements.  Incrementals, completions and reversals need the
-- rows written so far: pending writes are flushed before them and they are
-- applied directly, after which the in-memory state of their wallet and card
-- is re-read.  A completion or reversal whose processing raises an error is
-- answered 96 and the others go on.  The caller commits.
CREATE FUNCTION authorize_batch(reqs auth_request[])
RETURNS SETOF auth_outcome LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    rec record;
    o auth_outcome;
    n int := coalesce(array_length(reqs, 1), 0);
    -- wallets in memory (index = position in a_id)
    a_id bigint[]; a_bal bigint[]; a_av bigint[]; a_cur text[]; a_dirty boolean[];
    -- cards in memory
    k_id bigint[] := '{}'; k_day date[] := '{}'; k_day_amt bigint[] := '{}'; k_day_cnt int[] := '{}';
    k_week date[] := '{}'; k_week_amt bigint[] := '{}'; k_week_cnt int[] := '{}';
    k_month date[] := '{}'; k_month_amt bigint[] := '{}'; k_month_cnt int[] := '{}';
    k_life_amt bigint[] := '{}'; k_life_cnt int[] := '{}'; k_spend_dirty boolean[] := '{}';
    k_pin int[] := '{}'; k_atc int[] := '{}'; k_card_dirty boolean[] := '{}';
    -- pending authorization rows (request fields come from reqs[pos])
    p_pos int[] := '{}'; p_id bigint[] := '{}'; p_card bigint[] := '{}'; p_acct bigint[] := '{}';
    p_req bigint[] := '{}'; p_appr bigint[] := '{}'; p_hold bigint[] := '{}'; p_status text[] := '{}';
    p_code text[] := '{}'; p_rule text[] := '{}'; p_pv bigint[] := '{}'; p_orig bigint[] := '{}';
    p_over boolean[] := '{}'; p_av bigint[] := '{}'; p_bal bigint[] := '{}'; p_cur text[] := '{}';
    p_exp timestamptz[] := '{}';
    -- pending ledger entries and shadow decisions
    e_j bigint[] := '{}'; e_acct bigint[] := '{}'; e_book text[] := '{}'; e_amt bigint[] := '{}';
    e_auth bigint[] := '{}'; e_memo text[] := '{}';
    sd_auth bigint[] := '{}'; sd_ver bigint[] := '{}'; sd_lc text[] := '{}'; sd_lr text[] := '{}';
    sd_sc text[] := '{}'; sd_sr text[] := '{}';
    -- outcomes by position, for in-batch repeats
    out_o auth_outcome[] := '{}';
    out_sig text[] := '{}';
    -- reversals remembered in this batch before their original (acq|stan|xmit)
    ur_key text[] := '{}';
    -- per request
    ai int; ki int; amt bigint; cur text; code text; rl text; approved bigint; st text; hold bigint;
    over boolean; orig_id bigint; expires timestamptz; j bigint; settle bigint; settle_cur text;
    hold_days int; cash_days int; has_shadow boolean; npass int; pass int;
    sp record; v_ctl text; v_ptm bigint; v_dm bigint; v_wm bigint; v_mm bigint; v_lm bigint;
    v_dc int; v_wc int; v_mc int; v_lc int; cinc int; l_code text; l_rule text; l_appr bigint;
    s_code text; s_rule text; s_ver bigint; pre_code text; pre_rule text;
    today date; ymm text; orig authorizations; rd_bal bigint; rd_av bigint; rd_s card_spend; ctime timestamptz := now(); req auth_request;
BEGIN
    IF n = 0 THEN
        RETURN;
    END IF;
    SELECT value::int INTO hold_days FROM ledger_settings WHERE name = 'hold_expiry_days';
    SELECT value::int INTO cash_days FROM ledger_settings WHERE name = 'cash_hold_expiry_days';
    has_shadow := EXISTS (SELECT 1 FROM policies WHERE state = 'shadow');

    -- 1. lock the wallets, in id order
    SELECT array_agg(l.id ORDER BY l.id), array_agg(l.balance ORDER BY l.id),
           array_agg(l.available ORDER BY l.id), array_agg(l.currency::text ORDER BY l.id),
           array_agg(false)
      INTO a_id, a_bal, a_av, a_cur, a_dirty
      FROM (SELECT a.id, a.balance, a.available, a.currency FROM accounts a
             WHERE a.id IN (SELECT c.account_id FROM unnest(reqs) r JOIN cards c ON c.pan_hash = r.pan_hash)
             ORDER BY a.id FOR UPDATE) l;
    a_id := coalesce(a_id, '{}'); a_bal := coalesce(a_bal, '{}'); a_av := coalesce(a_av, '{}');
    a_cur := coalesce(a_cur, '{}'); a_dirty := coalesce(a_dirty, '{}');

    -- 2. resolve every request in one query; the extra position n+1 (all NULL) flushes
    FOR rec IN
        SELECT g.i AS pos, q.* FROM generate_series(1, n + 1) g(i) LEFT JOIN (
        SELECT r.ordinality::int AS ord, r.kind, r.pan_hash, r.expiry, r.acquirer_id, r.stan, r.xmit_at,
               r.txn_amount, r.bill_amount, r.channel, r.partial_ok, r.pin_result, r.cvv_result,
               r.cvv2_result, r.arqc_result, r.atc, r.advice_code, r.deadline,
               min(r.ordinality) OVER (PARTITION BY coalesce(r.acquirer_id, ''), coalesce(r.stan, ''),
                   coalesce(r.xmit_at, ''), coalesce(r.rrn, ''),
                   CASE WHEN r.kind = 'cash' THEN 'auth' ELSE r.kind END)::int AS first_ord,
               c.id AS card_id, c.account_id AS card_account, c.cardholder_id, c.status AS card_status,
               c.expiry AS card_expiry, c.pin_tries, c.pin_try_limit, c.last_atc,
               ch.team_id, co.id AS company_id, co.timezone,
               s.day, s.day_amt, s.day_cnt, s.week, s.week_amt, s.week_cnt,
               s.month, s.month_amt, s.month_cnt, s.life_amt, s.life_cnt,
               d.id AS dup_id, d.response_code AS dup_code, d.approval_code AS dup_appr,
               d.amount_approved AS dup_approved, d.available_after AS dup_av, d.balance_after AS dup_bal,
               d.currency AS dup_cur, d.rule AS dup_rule, d.policy_version AS dup_pv,
               d.account_id AS dup_account, d.pan_hash AS dup_pan, d.txn_amount AS dup_amount,
               er.id AS early_id,
               pc.version AS pol_version, pc.per_txn_max, pc.daily_max, pc.weekly_max, pc.monthly_max,
               pc.lifetime_max, pc.daily_count, pc.weekly_count, pc.monthly_count, pc.lifetime_count,
               pc.control_rule,
               currency_alpha(CASE WHEN r.bill_amount IS NOT NULL THEN r.bill_currency ELSE r.txn_currency END)
                   AS eff_currency,
               nextval('authorizations_id_seq') AS new_id
          FROM unnest(reqs) WITH ORDINALITY r
          LEFT JOIN cards c ON c.pan_hash = r.pan_hash
          LEFT JOIN cardholders ch ON ch.id = c.cardholder_id
          LEFT JOIN accounts ac ON ac.id = c.account_id
          LEFT JOIN companies co ON co.id = ac.company_id
          LEFT JOIN card_spend s ON s.card_id = c.id
          -- the stored message this one repeats: the idempotency key, or for
          -- a repeat advice (xx21), which carries a new field 7, the key
          -- without the transmission time (same acquirer, STAN, RRN, kind)
          LEFT JOIN LATERAL (
                SELECT x.* FROM authorizations x
                 WHERE x.acquirer_id = coalesce(r.acquirer_id, '') AND x.stan = coalesce(r.stan, '')
                   AND x.xmit_at = coalesce(r.xmit_at, '') AND x.rrn = coalesce(r.rrn, '')
                   AND x.key_kind = CASE WHEN r.kind = 'cash' THEN 'auth' ELSE r.kind END
                UNION ALL
                SELECT y.* FROM authorizations y
                 WHERE right(r.mti, 1) = '1' AND coalesce(r.rrn, '') <> ''
                   AND y.acquirer_id = coalesce(r.acquirer_id, '') AND y.stan = coalesce(r.stan, '')
                   AND y.rrn = r.rrn AND y.key_kind = CASE WHEN r.kind = 'cash' THEN 'auth' ELSE r.kind END
                LIMIT 1) d ON true
          LEFT JOIN LATERAL (SELECT u.id FROM authorizations u
                              WHERE u.status = 'unmatched' AND r.kind IN ('auth', 'cash', 'financial')
                                AND u.orig_acquirer_id = coalesce(r.acquirer_id, '')
                                AND u.orig_stan = r.stan AND u.orig_xmit_at = r.xmit_at
                              LIMIT 1) er ON true
          LEFT JOIN LATERAL policy_check(co.id, ch.team_id, c.cardholder_id, c.id, r.mcc, r.country,
                                         currency_alpha(r.txn_currency), r.channel, r.kind = 'cash',
                                         false) pc ON true
        ) q ON q.ord = g.i
        ORDER BY g.i
    LOOP
        -- flush pending writes before a message that reads them, and at the end
        IF rec.pos > n OR rec.kind IN ('incremental', 'completion', 'reversal') THEN
            IF array_length(p_pos, 1) > 0 THEN
                INSERT INTO authorizations (id, kind, mti, key_kind, card_id, account_id, pan_hash,
                    acquirer_id, stan, rrn, xmit_at, local_at, terminal_id, merchant_id, merchant_name,
                    mcc, country, channel, txn_currency, txn_amount, bill_currency, bill_amount,
                    amount_requested, amount_approved, hold_amount, status, response_code, approval_code,
                    rule, policy_version, original_id, overdrew, available_after, balance_after, currency,
                    hold_expires_at)
                SELECT v.id, (x.q).kind, (x.q).mti, CASE WHEN (x.q).kind = 'cash' THEN 'auth' ELSE (x.q).kind END,
                       v.card, v.acct, (x.q).pan_hash, coalesce((x.q).acquirer_id, ''), coalesce((x.q).stan, ''),
                       coalesce((x.q).rrn, ''), coalesce((x.q).xmit_at, ''), (x.q).local_at, (x.q).terminal_id,
                       (x.q).merchant_id, (x.q).merchant_name, (x.q).mcc, (x.q).country, (x.q).channel,
                       (x.q).txn_currency, (x.q).txn_amount, (x.q).bill_currency, (x.q).bill_amount,
                       v.req, v.appr, v.hold, v.status, v.code,
                       CASE WHEN v.code IN ('00', '10') THEN lpad((v.id % 1000000)::text, 6, '0') END,
                       v.rule, v.pv, v.orig, v.over, v.av, v.bal, v.cur, v.exp
                  FROM unnest(p_pos, p_id, p_card, p_acct, p_req, p_appr, p_hold, p_status, p_code, p_rule,
                              p_pv, p_orig, p_over, p_av, p_bal, p_cur, p_exp)
                       AS v(pos, id, card, acct, req, appr, hold, status, code, rule, pv, orig, over, av, bal,
                            cur, exp)
                 CROSS JOIN LATERAL (SELECT reqs[v.pos] AS q) x;
                p_pos := '{}'; p_id := '{}'; p_card := '{}'; p_acct := '{}'; p_req := '{}'; p_appr := '{}';
                p_hold := '{}'; p_status := '{}'; p_code := '{}'; p_rule := '{}'; p_pv := '{}';
                p_orig := '{}'; p_over := '{}'; p_av := '{}'; p_bal := '{}'; p_cur := '{}'; p_exp := '{}';
            END IF;
            IF array_length(e_j, 1) > 0 THEN
                INSERT INTO ledger_entries (journal_id, account_id, book, amount, auth_id, memo)
                SELECT * FROM unnest(e_j, e_acct, e_book, e_amt, e_auth, e_memo);
                e_j := '{}'; e_acct := '{}'; e_book := '{}'; e_amt := '{}'; e_auth := '{}'; e_memo := '{}';
            END IF;
            IF true = ANY (a_dirty) THEN
                UPDATE accounts a SET balance = v.b, available = v.av
                  FROM unnest(a_id, a_bal, a_av, a_dirty) v(id, b, av, d)
                 WHERE a.id = v.id AND v.d;
                a_dirty := array_fill(false, ARRAY[array_length(a_id, 1)]);
            END IF;
            IF true = ANY (k_spend_dirty) THEN
                INSERT INTO card_spend AS s (card_id, day, day_amt, day_cnt, week, week_amt, week_cnt,
                                             month, month_amt, month_cnt, life_amt, life_cnt)
                SELECT v.id, v.d, v.da, v.dc, v.w, v.wa, v.wc, v.m, v.ma, v.mc, v.la, v.lc
                  FROM unnest(k_id, k_day, k_day_amt, k_day_cnt, k_week, k_week_amt, k_week_cnt, k_month,
                              k_month_amt, k_month_cnt, k_life_amt, k_life_cnt, k_spend_dirty)
                       AS v(id, d, da, dc, w, wa, wc, m, ma, mc, la, lc, dirty)
                 WHERE v.dirty
                ON CONFLICT (card_id) DO UPDATE
                   SET day = EXCLUDED.day, day_amt = EXCLUDED.day_amt, day_cnt = EXCLUDED.day_cnt,
                       week = EXCLUDED.week, week_amt = EXCLUDED.week_amt, week_cnt = EXCLUDED.week_cnt,
                       month = EXCLUDED.month, month_amt = EXCLUDED.month_amt,
                       month_cnt = EXCLUDED.month_cnt, life_amt = EXCLUDED.life_amt,
                       life_cnt = EXCLUDED.life_cnt;
                k_spend_dirty := array_fill(false, ARRAY[array_length(k_id, 1)]);
            END IF;
            IF true = ANY (k_card_dirty) THEN
                UPDATE cards c SET pin_tries = v.p, last_atc = v.a
                  FROM unnest(k_id, k_pin, k_atc, k_card_dirty) v(id, p, a, d)
                 WHERE c.id = v.id AND v.d;
                k_card_dirty := array_fill(false, ARRAY[array_length(k_id, 1)]);
            END IF;
            IF array_length(sd_auth, 1) > 0 THEN
                INSERT INTO shadow_decisions (auth_id, shadow_version, live_code, live_rule, shadow_code,
                                              shadow_rule)
                SELECT * FROM unnest(sd_auth, sd_ver, sd_lc, sd_lr, sd_sc, sd_sr);
                sd_auth := '{}'; sd_ver := '{}'; sd_lc := '{}'; sd_lr := '{}'; sd_sc := '{}'; sd_sr := '{}';
            END IF;
            EXIT WHEN rec.pos > n;
        END IF;

        o := ROW(rec.pos, NULL, NULL, 0, NULL, NULL, NULL, NULL, rec.pol_version, NULL, rec.card_account);

        -- a repeat inside this batch: the first answer (94 when the content differs)
        IF rec.first_ord < rec.pos THEN
            o := out_o[rec.first_ord];
            o.ord := rec.pos;
            IF out_sig[rec.first_ord] IS DISTINCT FROM coalesce(rec.pan_hash, '') || ':' || coalesce(rec.txn_amount, -1) THEN
                o := ROW(rec.pos, '94', NULL, 0, NULL, NULL, NULL, 'duplicate.mismatch', NULL, NULL, NULL);
            END IF;
            out_o := out_o || o; out_sig := out_sig || out_sig[rec.first_ord];
            RETURN NEXT o;
            CONTINUE;
        END IF;
        -- a repeat of a stored message: its stored answer, nothing changes
        IF rec.dup_id IS NOT NULL THEN
            o := ROW(rec.pos, rec.dup_code, rec.dup_appr, rec.dup_approved, rec.dup_av, rec.dup_bal,
                     rec.dup_cur, rec.dup_rule, rec.dup_pv, rec.dup_id, rec.dup_account);
            IF rec.dup_pan IS DISTINCT FROM rec.pan_hash OR rec.dup_amount IS DISTINCT FROM rec.txn_amount THEN
                o := ROW(rec.pos, '94', NULL, 0, NULL, NULL, NULL, 'duplicate.mismatch', NULL, NULL, NULL);
            END IF;
            out_o := out_o || o;
            out_sig := out_sig || (coalesce(rec.pan_hash, '') || ':' || coalesce(rec.txn_amount, -1));
            RETURN NEXT o;
            CONTINUE;
        END IF;

        ai := NULL; ki := NULL; cur := NULL;
        IF rec.card_id IS NOT NULL THEN
            ai := array_position(a_id, rec.card_account);
            cur := a_cur[ai];
            ki := array_position(k_id, rec.card_id);
            IF ki IS NULL THEN
                today := (ctime AT TIME ZONE rec.timezone)::date;
                k_id := k_id || rec.card_id;
                ki := array_length(k_id, 1);
                k_day[ki] := today;
                k_day_amt[ki] := CASE WHEN rec.day = today THEN rec.day_amt ELSE 0 END;
                k_day_cnt[ki] := CASE WHEN rec.day = today THEN rec.day_cnt ELSE 0 END;
                k_week[ki] := date_trunc('week', today)::date;
                k_week_amt[ki] := CASE WHEN rec.week = k_week[ki] THEN rec.week_amt ELSE 0 END;
                k_week_cnt[ki] := CASE WHEN rec.week = k_week[ki] THEN rec.week_cnt ELSE 0 END;
                k_month[ki] := date_trunc('month', today)::date;
                k_month_amt[ki] := CASE WHEN rec.month = k_month[ki] THEN rec.month_amt ELSE 0 END;
                k_month_cnt[ki] := CASE WHEN rec.month = k_month[ki] THEN rec.month_cnt ELSE 0 END;
                k_life_amt[ki] := coalesce(rec.life_amt, 0);
                k_life_cnt[ki] := coalesce(rec.life_cnt, 0);
                k_spend_dirty[ki] := false;
                k_pin[ki] := rec.pin_tries;
                k_atc[ki] := rec.last_atc;
                k_card_dirty[ki] := false;
            END IF;
        END IF;
        amt := coalesce(CASE WHEN rec.bill_amount IS NOT NULL THEN rec.bill_amount ELSE rec.txn_amount END, 0);
        code := NULL; rl := NULL; approved := 0; st := 'declined'; hold := 0; over := false;
        orig_id := NULL; expires := NULL; s_ver := NULL;

        IF rec.kind IS NULL OR rec.kind NOT IN ('auth', 'cash', 'financial', 'balance', 'refund', 'incremental',
                                                 'completion', 'standin', 'reversal') THEN
            code := '12'; rl := 'format.kind';
        ELSIF rec.kind NOT IN ('completion', 'standin', 'reversal') AND clock_timestamp() > rec.deadline THEN
            code := '91'; rl := 'deadline.passed';
        ELSIF rec.kind NOT IN ('balance', 'reversal') AND amt <= 0 THEN
            code := '13'; rl := 'format.amount';
        ELSIF rec.card_id IS NULL THEN
            code := '14'; rl := 'card.unknown';
        ELSIF rec.card_account IS DISTINCT FROM a_id[ai] THEN
            code := '96'; rl := 'system.account_not_locked';
        END IF;

        -- completion and reversal: applied directly on the flushed tables
        IF code IS NULL AND rec.kind IN ('completion', 'reversal') THEN
            BEGIN
                o := ledger_apply_rare(reqs[rec.pos], rec.card_id, rec.card_account, rec.new_id, amt, cur);
                o.ord := rec.pos;
                o.policy_version := rec.pol_version;
                IF o.rule = 'reversal.unmatched_remembered' THEN
                    req := reqs[rec.pos];
                    ur_key := ur_key || (coalesce(req.orig_acquirer_id, req.acquirer_id, '') || '|' ||
                                         coalesce(req.orig_stan, '') || '|' || coalesce(req.orig_xmit_at, ''));
                END IF;
            EXCEPTION WHEN OTHERS THEN
                o := ROW(rec.pos, '96', NULL, 0, NULL, NULL, cur, 'system.error', rec.pol_version, NULL,
                         rec.card_account);
            END;
            -- re-read what the rare path changed
            SELECT balance, available INTO rd_bal, rd_av FROM accounts WHERE id = a_id[ai];
            a_bal[ai] := rd_bal; a_av[ai] := rd_av;
            UPDATE authorizations SET policy_version = rec.pol_version WHERE id = o.auth_id;
            SELECT * INTO rd_s FROM card_spend s WHERE s.card_id = rec.card_id;
            IF FOUND THEN
                k_day_amt[ki] := CASE WHEN rd_s.day = k_day[ki] THEN rd_s.day_amt ELSE 0 END;
                k_day_cnt[ki] := CASE WHEN rd_s.day = k_day[ki] THEN rd_s.day_cnt ELSE 0 END;
                k_week_amt[ki] := CASE WHEN rd_s.week = k_week[ki] THEN rd_s.week_amt ELSE 0 END;
                k_week_cnt[ki] := CASE WHEN rd_s.week = k_week[ki] THEN rd_s.week_cnt ELSE 0 END;
                k_month_amt[ki] := CASE WHEN rd_s.month = k_month[ki] THEN rd_s.month_amt ELSE 0 END;
                k_month_cnt[ki] := CASE WHEN rd_s.month = k_month[ki] THEN rd_s.month_cnt ELSE 0 END;
                k_life_amt[ki] := rd_s.life_amt; k_life_cnt[ki] := rd_s.life_cnt;
            END IF;
            out_o := out_o || o; out_sig := out_sig || (coalesce(rec.pan_hash, '') || ':' || coalesce(rec.txn_amount, -1));
            RETURN NEXT o;
            CONTINUE;
        END IF;

        IF code IS NULL AND rec.kind = 'standin' THEN
            -- the network already answered; record it, apply it even if it overdraws
            IF coalesce(rec.advice_code, '00') NOT IN ('00', '10') THEN
                code := '00'; rl := 'standin.declined_by_network'; st := 'recorded';
            ELSE
                code := '00'; rl := 'standin.advice'; approved := amt; st := 'approved';
            END IF;
        ELSIF code IS NULL AND rec.kind = 'refund' THEN
            code := '00'; rl := 'refund.credit'; approved := amt; st := 'approved';
        END IF;

        -- reversal seen before this original
        IF code IS NULL AND (rec.early_id IS NOT NULL OR
                             (array_length(ur_key, 1) > 0 AND
                              (coalesce(rec.acquirer_id, '') || '|' || coalesce(rec.stan, '') || '|' ||
                               coalesce(rec.xmit_at, '')) = ANY (ur_key))) THEN
            code := '05'; rl := 'reversal.before_original';
            UPDATE authorizations SET status = 'matched', original_id = rec.new_id, updated_at = now()
             WHERE status = 'unmatched' AND orig_acquirer_id = coalesce(rec.acquirer_id, '')
               AND orig_stan = rec.stan AND orig_xmit_at = rec.xmit_at;
        END IF;

        -- card status, expiry
        IF code IS NULL THEN
            CASE rec.card_status
                WHEN 'active' THEN NULL;
                WHEN 'inactive' THEN code := '78'; rl := 'card.inactive';
                WHEN 'frozen' THEN code := '62'; rl := 'card.frozen';
                WHEN 'blocked' THEN code := '62'; rl := 'card.blocked';
                WHEN 'lost' THEN code := '41'; rl := 'card.lost';
                WHEN 'stolen' THEN code := '43'; rl := 'card.stolen';
                ELSE code := '05'; rl := 'card.closed';
            END CASE;
        END IF;
        IF code IS NULL THEN
            ymm := to_char(ctime AT TIME ZONE rec.timezone, 'YYMM');
            IF rec.card_expiry < ymm THEN
                code := '54'; rl := 'expiry.expired';
            ELSIF rec.expiry IS NOT NULL AND rec.expiry <> rec.card_expiry THEN
                code := '54'; rl := 'expiry.mismatch';
            END IF;
        END IF;
        -- crypto results computed in C
        IF code IS NULL AND rec.pin_result = 'wrong' THEN
            k_pin[ki] := k_pin[ki] + 1; k_card_dirty[ki] := true;
            IF k_pin[ki] >= rec.pin_try_limit THEN
                code := '75'; rl := 'pin.tries_exceeded';
            ELSE
                code := '55'; rl := 'pin.wrong';
            END IF;
        ELSIF code IS NULL AND rec.pin_result = 'ok' THEN
            IF k_pin[ki] >= rec.pin_try_limit THEN
                code := '75'; rl := 'pin.tries_exceeded';
            ELSIF k_pin[ki] > 0 THEN
                k_pin[ki] := 0; k_card_dirty[ki] := true;
            END IF;
        END IF;
        IF code IS NULL THEN
            IF rec.cvv_result = 'wrong' THEN
                code := '82'; rl := 'cvv.wrong';
            ELSIF rec.cvv2_result = 'wrong' THEN
                code := 'N7'; rl := 'cvv2.wrong';
            ELSIF rec.arqc_result = 'bad' THEN
                code := '82'; rl := 'emv.arqc';
            ELSIF rec.atc IS NOT NULL AND k_atc[ki] IS NOT NULL AND rec.atc <= k_atc[ki] THEN
                code := '82'; rl := 'emv.atc_replay';
            END IF;
        END IF;
        IF rec.arqc_result = 'ok' AND rec.atc IS NOT NULL AND ki IS NOT NULL
           AND (k_atc[ki] IS NULL OR rec.atc > k_atc[ki]) THEN
            k_atc[ki] := rec.atc; k_card_dirty[ki] := true;
        END IF;

        IF code IS NULL AND rec.kind = 'balance' THEN
            code := '00'; rl := 'balance.inquiry'; st := 'inquiry';
        END IF;

        -- incremental: find the hold it adds to (pending rows were flushed above)
        IF code IS NULL AND rec.kind = 'incremental' THEN
            orig := find_original(reqs[rec.pos], rec.card_id);
            IF orig.id IS NULL OR orig.kind NOT IN ('auth', 'cash', 'standin') OR orig.hold_amount <= 0 THEN
                code := '12'; rl := 'incremental.no_open_hold';
            ELSE
                orig_id := orig.id;
            END IF;
        END IF;

        -- policy (live, and the shadow version when one applies) and balance
        -- (requests declined earlier are recorded in shadow with the same answer)
        IF ai IS NOT NULL AND rec.kind IN ('auth', 'cash', 'financial', 'incremental') THEN
            IF code IS NULL AND rec.eff_currency IS DISTINCT FROM cur THEN
                code := '57'; rl := 'control.currency_unconvertible';
            END IF;
            npass := 1;
            IF has_shadow THEN
                req := reqs[rec.pos];
                SELECT * INTO sp FROM policy_check(rec.company_id, rec.team_id, rec.cardholder_id, rec.card_id,
                                                   req.mcc, req.country, currency_alpha(req.txn_currency),
                                                   req.channel, req.kind = 'cash', true);
                IF sp.shadow_version IS NOT NULL THEN
                    npass := 2; s_ver := sp.shadow_version;
                END IF;
            END IF;
            cinc := CASE WHEN rec.kind = 'incremental' THEN 0 ELSE 1 END;
            pre_code := code; pre_rule := rl;
            FOR pass IN 1 .. npass LOOP
                IF pass = 1 THEN
                    v_ctl := rec.control_rule; v_ptm := rec.per_txn_max; v_dm := rec.daily_max;
                    v_wm := rec.weekly_max; v_mm := rec.monthly_max; v_lm := rec.lifetime_max;
                    v_dc := rec.daily_count; v_wc := rec.weekly_count; v_mc := rec.monthly_count;
                    v_lc := rec.lifetime_count;
                ELSE
                    v_ctl := sp.control_rule; v_ptm := sp.per_txn_max; v_dm := sp.daily_max;
                    v_wm := sp.weekly_max; v_mm := sp.monthly_max; v_lm := sp.lifetime_max;
                    v_dc := sp.daily_count; v_wc := sp.weekly_count; v_mc := sp.monthly_count;
                    v_lc := sp.lifetime_count;
                END IF;
                l_appr := 0;
                IF pre_code IS NOT NULL THEN
                    l_code := pre_code; l_rule := pre_rule;
                ELSIF v_ctl IS NOT NULL THEN
                    l_code := '57'; l_rule := v_ctl;
                ELSIF amt > v_ptm THEN
                    l_code := '61'; l_rule := 'limit.per_transaction';
                ELSIF k_day_amt[ki] + amt > v_dm THEN
                    l_code := '61'; l_rule := 'limit.daily_amount';
                ELSIF k_week_amt[ki] + amt > v_wm THEN
                    l_code := '61'; l_rule := 'limit.weekly_amount';
                ELSIF k_month_amt[ki] + amt > v_mm THEN
                    l_code := '61'; l_rule := 'limit.monthly_amount';
                ELSIF k_life_amt[ki] + amt > v_lm THEN
                    l_code := '61'; l_rule := 'limit.lifetime_amount';
                ELSIF k_day_cnt[ki] + cinc > v_dc THEN
                    l_code := '65'; l_rule := 'limit.daily_count';
                ELSIF k_week_cnt[ki] + cinc > v_wc THEN
                    l_code := '65'; l_rule := 'limit.weekly_count';
                ELSIF k_month_cnt[ki] + cinc > v_mc THEN
                    l_code := '65'; l_rule := 'limit.monthly_count';
                ELSIF k_life_cnt[ki] + cinc > v_lc THEN
                    l_code := '65'; l_rule := 'limit.lifetime_count';
                ELSIF a_av[ai] < amt THEN
                    IF coalesce(rec.partial_ok, false) AND a_av[ai] > 0 AND rec.kind <> 'incremental' THEN
                        l_code := '10'; l_rule := 'balance.partial'; l_appr := a_av[ai];
                    ELSE
                        l_code := '51'; l_rule := 'balance.insufficient';
                    END IF;
                ELSE
                    l_code := '00'; l_rule := 'approved'; l_appr := amt;
                END IF;
                IF pass = 1 THEN
                    code := l_code; rl := l_rule; approved := l_appr;
                    IF l_appr > 0 THEN st := 'approved'; END IF;
                ELSE
                    s_code := l_code; s_rule := l_rule;
                END IF;
            END LOOP;
            IF s_ver IS NOT NULL THEN
                sd_auth := sd_auth || rec.new_id; sd_ver := sd_ver || s_ver; sd_lc := sd_lc || code;
                sd_lr := sd_lr || rl; sd_sc := sd_sc || s_code; sd_sr := sd_sr || s_rule;
            END IF;
        END IF;

        -- apply an approval: in-memory balances and counters, pending entries
        IF approved > 0 THEN
            j := nextval('journal_id_seq');
            IF rec.kind IN ('auth', 'cash', 'standin', 'incremental') THEN
                e_j := e_j || j || j; e_acct := e_acct || a_id[ai] || a_id[ai];
                e_book := e_book || 'A'::text || 'H'::text; e_amt := e_amt || (-approved) || approved;
                e_auth := e_auth || coalesce(orig_id, rec.new_id) || coalesce(orig_id, rec.new_id);
                e_memo := e_memo || ('hold ' || rec.kind) || ('hold ' || rec.kind);
                a_av[ai] := a_av[ai] - approved;
                IF rec.kind = 'incremental' THEN
                    UPDATE authorizations
                       SET hold_amount = hold_amount + approved, amount_approved = amount_approved + approved,
                           amount_requested = amount_requested + amt,
                           hold_expires_at = greatest(hold_expires_at, ctime + make_interval(days => hold_days)),
                           updated_at = now()
                     WHERE id = orig_id;
                ELSE
                    hold := approved;
                    expires := ctime + make_interval(days => CASE WHEN rec.kind = 'cash' THEN cash_days ELSE hold_days END);
                END IF;
            ELSE
                IF settle_cur IS DISTINCT FROM cur THEN
                    settle := system_account('settlement', cur); settle_cur := cur;
                END IF;
                IF rec.kind = 'refund' THEN
                    approved := -approved;   -- a credit to the wallet
                END IF;
                e_j := e_j || j || j; e_acct := e_acct || a_id[ai] || settle;
                e_book := e_book || 'A'::text || 'A'::text; e_amt := e_amt || (-approved) || approved;
                e_auth := e_auth || rec.new_id || rec.new_id;
                e_memo := e_memo || rec.kind || rec.kind;
                a_av[ai] := a_av[ai] - approved;
                a_bal[ai] := a_bal[ai] - approved;
                approved := abs(approved);
            END IF;
            a_dirty[ai] := true;
            IF rec.kind <> 'refund' THEN
                k_day_amt[ki] := k_day_amt[ki] + approved; k_week_amt[ki] := k_week_amt[ki] + approved;
                k_month_amt[ki] := k_month_amt[ki] + approved; k_life_amt[ki] := k_life_amt[ki] + approved;
                cinc := CASE WHEN rec.kind = 'incremental' THEN 0 ELSE 1 END;
                k_day_cnt[ki] := k_day_cnt[ki] + cinc; k_week_cnt[ki] := k_week_cnt[ki] + cinc;
                k_month_cnt[ki] := k_month_cnt[ki] + cinc; k_life_cnt[ki] := k_life_cnt[ki] + cinc;
                k_spend_dirty[ki] := true;
            END IF;
            over := a_av[ai] < 0;
        END IF;

        o.response_code := code; o.rule := rl; o.approved_amount := approved; o.auth_id := rec.new_id;
        o.approval_code := CASE WHEN code IN ('00', '10') THEN lpad((rec.new_id % 1000000)::text, 6, '0') END;
        IF ai IS NOT NULL THEN
            o.available_after := a_av[ai]; o.balance_after := a_bal[ai]; o.currency := cur;
        END IF;
        p_pos := p_pos || rec.pos; p_id := p_id || rec.new_id; p_card := p_card || rec.card_id;
        p_acct := p_acct || rec.card_account; p_req := p_req || amt; p_appr := p_appr || approved;
        p_hold := p_hold || hold; p_status := p_status || st; p_code := p_code || code; p_rule := p_rule || rl;
        p_pv := p_pv || rec.pol_version; p_orig := p_orig || orig_id; p_over := p_over || over;
        p_av := p_av || o.available_after; p_bal := p_bal || o.balance_after; p_cur := p_cur || cur;
        p_exp := p_exp || expires;
        out_o := out_o || o;
        out_sig := out_sig || (coalesce(rec.pan_hash, '') || ':' || coalesce(rec.txn_amount, -1));
        RETURN NEXT o;
    END LOOP;
END $$;

-- The same, taking a JSON array of objects whose keys are auth_request's
-- field names (missing keys are NULL).  Convenient from C: no composite
-- quoting, one text parameter.
CREATE FUNCTION authorize_batch_json(reqs jsonb) RETURNS SETOF auth_outcome
LANGUAGE sql AS $$
    SELECT * FROM authorize_batch(ARRAY(SELECT x FROM jsonb_populate_recordset(NULL::auth_request, reqs) x))
$$;
