-- 0008_standin_settle.sql - settle the daemon's own stand-in approvals.
--
-- cardgated in [standin] mode = approve answers a plain purchase it could
-- not decide (deadline, no database) with an approval up to the card's
-- stand-in limit, journals it on disk first, and settles it here once the
-- database is usable again: as a stand-in advice (kind 'standin', advice
-- code 00: a hold with ledger entries, applied even if it overdraws, as the
-- network's own 0120), with rule 'standin.approved' and the approval code
-- the switch was given.
--
-- standin_settle_json(reqs jsonb): one auth_outcome per element (ord = its
-- 1-based position), in one transaction.  Each element is an auth_request as
-- authorize_batch_json takes it (the original request, sent as kind standin,
-- its MTI, acquirer/STAN/transmission time/RRN) plus "standin_approval_code".
--
-- Exactly one hold per request, whatever came first:
--   * the settlement repeated (a crash between commit and the journal's
--     "settled" mark): authorize_batch's idempotency key (acquirer, STAN,
--     field 7, RRN, key kind 'standin') returns the stored answer, nothing
--     moves again;
--   * the database approved the request itself (the late answer of a request
--     that timed out, possibly committed by a daemon that was then killed):
--     that authorization (same acquirer/STAN/field 7/RRN, key kind auth or
--     financial, answered 00/10) IS the hold; no second one is made and the
--     outcome is that row's, rule 'standin.settled_by_authorization';
--   * the switch reversed it (0400/0420/0421) before this settlement (the
--     daemon settles only past the deadline, the switch may reverse first):
--     the reversal is remembered 'unmatched' (no original yet), so nothing
--     is held, the outcome is 00 'standin.reversed_before_settlement' and the
--     reversal stays unmatched (its original was never recorded; a repeated
--     settlement finds it again; a database decision arriving later is
--     declined 05 as for any original after its reversal);
--   * the database decides the request after this settlement: the wallet
--     locks (lock_wallets) are taken first, so an authorize_batch still
--     running has committed before the check reads, and one that starts
--     later decides after the request's deadline (the daemon settles only
--     past it) and answers 91 'deadline.passed', holding nothing.
CREATE FUNCTION standin_settle_json(reqs jsonb) RETURNS SETOF auth_outcome
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
