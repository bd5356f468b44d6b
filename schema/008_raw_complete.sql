-- 008_raw_complete.sql - a too_large mail keeps the start of its bytes
--
-- A mail over [limits] max_mail_bytes is still one too_large reject, but the
-- watcher now sends the start of it (fbl/mailfile.h): its header block (at
-- most 1 MiB of it) and the first 64 KiB of its body, and fbl.mails.raw
-- keeps that prefix (unless sink.store_raw is off), so an admin can read who
-- sent what. fbl.mails.raw_complete tells the two apart: false when raw holds
-- only the start of the mail, true otherwise (raw NULL included: nothing
-- partial is kept). mail_id stays the SHA-256 of the whole mail, which a
-- prefix does not hash to; fbl reparse reads complete raw mails only, so a
-- too_large mail stays one.
--
-- ADD COLUMN with a constant default rewrites no partition. Rows stored
-- before keep true: their too_large mails have raw NULL.

ALTER TABLE fbl.mails ADD COLUMN raw_complete boolean NOT NULL DEFAULT true;

COMMENT ON COLUMN fbl.mails.raw_complete IS
    'false: raw is only the start of a too_large mail (its headers and 64 KiB of body)';

-- fbl.write_staged (002), now setting raw_complete: the watcher's RAW is
-- shorter than SIZE for a too_large mail only (fbl/wire.h). octet_length()
-- reads a compressed value's length from its header, not its bytes.
CREATE OR REPLACE FUNCTION fbl.write_staged(p_vendors text[], OUT mails integer,
                                            OUT reports integer, OUT rejects integer)
LANGUAGE plpgsql AS $$
BEGIN
    WITH m AS (
        INSERT INTO fbl.mails (mail_id, received_at, mailbox, size, raw, raw_complete)
        SELECT mail_id, received_at, mailbox, size, raw,
               raw IS NULL OR octet_length(raw) = size
        FROM pg_temp.fbl_stage_mails
        ORDER BY received_at, mail_id -- one order for every sink: fewer deadlocks
        ON CONFLICT DO NOTHING
        RETURNING mail_id, received_at
    )
    INSERT INTO pg_temp.fbl_stage_keys SELECT mail_id, received_at FROM m;
    GET DIAGNOSTICS mails = ROW_COUNT;
    SELECT s.reports, s.rejects INTO reports, rejects FROM fbl.store_staged(p_vendors) s;
END
$$;
