-- 0010_standin_settle_reversed.sql - a stand-in approval the switch reversed
-- before it was settled holds nothing.
--
-- The daemon settles a stand-in approval only after its deadline (+1 s), so
-- a switch that timed out, or whose cardholder cancelled, may send the
-- reversal (0400/0420/0421) first.  The database then remembers the
-- reversal as 'unmatched' (no original yet), and 0008's settlement made the
-- hold anyway: a hold on a reversed purchase until it expired.  Now the
-- settlement looks for an unmatched reversal of the request (acquirer, STAN,
-- field 7 of the original, as authorize_batch matches them) and answers 00
-- with rule 'standin.reversed_before_settlement' and nothing held, so the
-- daemon retires its journal record; the reversal stays unmatched (its
-- original was never recorded) and a database decision of the same request
-- arriving later is declined 05 as before.  Otherwise the same as 0008.
CREATE OR REPLACE FUNCTION standin_settle_json(reqs jsonb) RETURNS SETOF auth_outcome
LANGUAGE plpgsql AS $$
DECLARE
    x record;
    r auth_request;
    a authorizations;
    u authorizations;
    o auth_outcome;
    appr text;
BEGIN
    PERFORM lock_wallets(ARRAY(SELECT c.account_id FROM jsonb_array_elements(reqs) e
                                 JOIN cards c ON c.pan_hash = e.value->>'pan_hash'));
    FOR x IN SELECT e.value AS v, e.ordinality::int AS i
               FROM jsonb_array_elements(reqs) WITH ORDINALITY e ORDER BY e.ordinality
    LOOP
        r := jsonb_populate_record(NULL::auth_request, x.v);
        appr := x.v->>'standin_approval_code';
        SELECT * INTO a FROM authorizations z
         WHERE z.acquirer_id = coalesce(r.acquirer_id, '') AND z.stan = coalesce(r.stan, '')
           AND z.xmit_at = coalesce(r.xmit_at, '') AND z.rrn = coalesce(r.rrn, '')
           AND z.key_kind IN ('auth', 'financial') AND z.response_code IN ('00', '10')
         LIMIT 1;
        IF FOUND THEN
            RETURN NEXT ROW(x.i, a.response_code, a.approval_code, a.amount_approved, a.available_after,
                            a.balance_after, a.currency, 'standin.settled_by_authorization',
                            a.policy_version, a.id, a.account_id)::auth_outcome;
            CONTINUE;
        END IF;
        -- the switch reversed it (0400/0420/0421) before this settlement: the
        -- reversal is remembered as unmatched; nothing is held (the reversal
        -- stays unmatched: the original was never recorded, and a repeated
        -- settlement finds it again, so this is idempotent too)
        SELECT * INTO u FROM authorizations z
         WHERE z.status = 'unmatched' AND z.orig_acquirer_id = coalesce(r.acquirer_id, '')
           AND z.orig_stan = coalesce(r.stan, '') AND z.orig_xmit_at = coalesce(r.xmit_at, '')
         LIMIT 1;
        IF FOUND THEN
            RETURN NEXT ROW(x.i, '00', appr, 0, NULL, NULL, NULL, 'standin.reversed_before_settlement',
                            NULL, u.id, u.account_id)::auth_outcome;
            CONTINUE;
        END IF;
        r.kind := 'standin';
        r.advice_code := '00';
        FOR o IN SELECT * FROM authorize_batch(ARRAY[r]) LOOP
            o.ord := x.i;
            IF o.rule = 'standin.advice' THEN
                UPDATE authorizations SET rule = 'standin.approved',
                       approval_code = coalesce(appr, approval_code)
                 WHERE id = o.auth_id;
                o.rule := 'standin.approved';
                o.approval_code := coalesce(appr, o.approval_code);
            END IF;
            RETURN NEXT o;
        END LOOP;
    END LOOP;
END $$;
