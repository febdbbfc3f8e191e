-- 0005_late_release_answer.sql - release a late approval AND record the
-- answer the switch was really given.
--
-- cardgated answers a request from stand-in (91 by default) when the
-- database has not decided by the deadline.  If the database then approves
-- it anyway (the batch committed just after the deadline), release_late()
-- gives the hold back.  The stored answer must then also become the one the
-- switch got: a retransmission of the same request is answered from the
-- stored row (duplicate path of authorize_batch), and must not say 00 for a
-- hold that no longer exists.
--
-- release_late_answered(ids, code, reason): release_late(ids, reason), then
-- set response_code = code (the stand-in answer) and clear the approval code
-- on the rows it released.  Idempotent like release_late.  Returns the number
-- of authorizations released by this call.
CREATE FUNCTION release_late_answered(p_auth_ids bigint[], p_code text, p_reason text)
RETURNS int LANGUAGE plpgsql AS $$
DECLARE
    n int;
BEGIN
    n := release_late(p_auth_ids, p_reason);
    UPDATE authorizations SET response_code = p_code, approval_code = NULL,
           rule = 'deadline.late_released'
     WHERE id = ANY (p_auth_ids) AND status = 'late_released' AND response_code IN ('00', '10');
    RETURN n;
END $$;
