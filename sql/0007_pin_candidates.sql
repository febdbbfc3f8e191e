-- 0007_pin_candidates.sql - PIN verification from the daemon's candidates.
--
-- cardgated holds the keys, the database holds each card's PIN reference
-- (cards.pvv: Visa PVV, cards.pin_offset: IBM 3624 offset) and its try
-- counter.  For a request with a PIN block the daemon decrypts it and sends
-- the reference values the entered PIN would have (never the PIN):
--
--     "pin_result": "verify", "pin_pvv": "1234", "pin_offset": "5678"
--
-- authorize_batch_json resolves "verify" here, before authorize_batch, into
-- the ok/wrong it already understands, so the try counter (55, then 75 at
-- pin_try_limit, reset by a right PIN) stays where it is:
--
--     card unknown                   -> absent (authorize_batch answers 14)
--     card has a PVV                 -> ok when pin_pvv equals it, else wrong
--     else card has a PIN offset     -> ok when pin_offset equals it, else wrong
--     card has neither (no PIN set)  -> wrong: a PIN cannot be verified, so it is
--                                       never accepted (55, and counted)
--
-- Requests without "verify" take the unchanged path (no extra work).

CREATE FUNCTION pin_candidate_result(p_pan_hash text, p_pvv text, p_offset text) RETURNS text
LANGUAGE sql STABLE AS $$
    SELECT COALESCE((
        SELECT CASE
                   WHEN c.pvv IS NOT NULL THEN
                       CASE WHEN c.pvv = p_pvv THEN 'ok' ELSE 'wrong' END
                   WHEN c.pin_offset IS NOT NULL THEN
                       CASE WHEN c.pin_offset = p_offset THEN 'ok' ELSE 'wrong' END
                   ELSE 'wrong'
               END
          FROM cards c
         WHERE c.pan_hash = p_pan_hash), 'absent')
$$;

CREATE OR REPLACE FUNCTION authorize_batch_json(reqs jsonb) RETURNS SETOF auth_outcome
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT jsonb_path_exists(reqs, '$[*] ? (@.pin_result == "verify")') THEN
        RETURN QUERY SELECT * FROM authorize_batch(ARRAY(
            SELECT x FROM jsonb_populate_recordset(NULL::auth_request, reqs) x));
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM authorize_batch(ARRAY(
        SELECT CASE WHEN x.pin_result = 'verify'
                    THEN jsonb_populate_record(x, jsonb_build_object('pin_result',
                             pin_candidate_result(x.pan_hash, e.j ->> 'pin_pvv',
                                                  e.j ->> 'pin_offset')))
                    ELSE x END
          FROM jsonb_array_elements(reqs) WITH ORDINALITY e(j, i),
               LATERAL jsonb_populate_record(NULL::auth_request, e.j) x
         ORDER BY e.i));
END $$;
