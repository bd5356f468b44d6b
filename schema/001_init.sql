-- 001_init.sql - the store: mails, reports and their children, rejects, vendor outbox
--
-- Applied by `fbl migrate` and at sink start (sink/pg.c), in one transaction,
-- under an advisory lock; recorded in fbl.schema_migrations. Never edit an
-- applied migration: add the next number.
--
-- Partitioning: every table is partitioned by RANGE on received_at, the
-- mail's delivery time, in UTC calendar months (fbl.reports_202601, ...).
-- received_at is the same on every redelivery of a mail, so each primary key
-- (which includes it) is unique across partitions and INSERT ... ON CONFLICT
-- DO NOTHING makes every write idempotent. Retention drops whole months
-- (DROP TABLE fbl.reports_202401, and so on for each table). The writer
-- creates the months a batch needs with fbl.create_month_partitions(); the
-- DEFAULT partitions only catch rows nobody made a month for.
--
-- Ids are the contract's hex SHA-256 strings (text COLLATE "C": byte order,
-- cheap comparisons), so analysts paste them from logs and JSON as they are.
-- There are no foreign keys: one writer fills parents and children in one
-- transaction, and each key check would cost every COPY.

CREATE SCHEMA IF NOT EXISTS fbl;

CREATE TABLE IF NOT EXISTS fbl.schema_migrations (
    version integer PRIMARY KEY,
    name text NOT NULL,
    checksum text NOT NULL, -- hex SHA-256 of the migration's SQL as applied
    applied_at timestamptz NOT NULL DEFAULT now()
);

-- The names are parsers/report.c's, exactly. The C lists are append-only and
-- so are these: a new name in C needs a migration
-- (ALTER TYPE fbl.reject_reason ADD VALUE 'x') before a binary that makes it
-- runs, or its mails are stored as store_error rejects until then (their raw
-- bytes are kept; fbl reparse turns them into what they are).
CREATE TYPE fbl.format AS ENUM (
    'arf', 'attachment', 'inline', 'jmrp', 'xarf', 'spamcop', 'raw');
CREATE TYPE fbl.feedback_type AS ENUM (
    'abuse', 'fraud', 'virus', 'other', 'not-spam', 'opt-out', 'auth-failure');
CREATE TYPE fbl.reject_reason AS ENUM (
    'too_large', 'not_a_report', 'malformed_mime', 'no_original_message', 'empty',
    'too_deep', 'too_many_parts', 'too_many_headers', 'header_too_long', 'bounce',
    'auto_reply', 'dmarc_aggregate',
    'store_error'); -- the sink's own: PostgreSQL refused the mail's rows
CREATE TYPE fbl.outbox_state AS ENUM ('pending', 'sent', 'dead');

-- One row per mail, report or reject alike.
--
-- raw: the mail exactly as delivered; NULL when it was over the size limit
-- (a too_large reject) or sink.store_raw is off. Compressed with lz4, chosen
-- by measurement (bench/raw-storage: 2,000 generated report mails, 31.1 MB,
-- 3-91 KiB, median 7.5 KiB, one in five with a base64 attachment; COPY in
-- transactions of 500; best of 3 on a shared 2-core machine):
--   stored as               table size   write
--   uncompressed            33.6 MB      7,200 mails/s
--   pglz (the default)      26.9 MB      1,740 mails/s
--   lz4                     26.3 MB      6,760 mails/s
--   zstd -3 in the client   19.7 MB      4,530 mails/s (STORAGE EXTERNAL)
-- lz4 is as small as pglz and writes 3.9 times as fast, nearly as fast as no
-- compression. zstd is a quarter smaller still (its entropy coder undoes some
-- of base64's 4/3, which lz4 and pglz cannot) but writes a third slower,
-- makes raw opaque to SQL (no convert_from(raw, 'UTF8') for an analyst:
-- PostgreSQL 15 cannot decompress it) and adds libzstd to the sink and to
-- reparse. Hence lz4; if disk becomes the limit, client-side zstd (with a
-- codec column, in a new migration) is the next step. The staging table
-- compresses with lz4 too: INSERT ... SELECT keeps a value's compression.
CREATE TABLE fbl.mails (
    mail_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    mailbox text,
    size bigint,
    raw bytea COMPRESSION lz4,
    stored_at timestamptz NOT NULL DEFAULT now(), -- first stored; reparse keeps it
    PRIMARY KEY (mail_id, received_at)
) PARTITION BY RANGE (received_at);
-- fbl reparse walks mails in this order.
CREATE INDEX ON fbl.mails (received_at, mail_id);

-- One row per report: the contract's columns (DESIGN.md) plus the ones
-- analysts group by, and the whole document in doc. Every column is derived
-- from doc by fbl.store_staged() (002), so the two never disagree.
CREATE TABLE fbl.reports (
    id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    mail_id text COLLATE "C" NOT NULL,
    part integer NOT NULL,
    mailbox text,
    format fbl.format NOT NULL,
    feedback_type fbl.feedback_type NOT NULL,
    reporter_address text,
    reporter_verified boolean,
    reporting_mta text,
    user_agent text,
    source_ip inet,
    source_ip_from text,
    redacted boolean NOT NULL,
    headers_only boolean NOT NULL,
    message_id text,
    message_date timestamptz,
    from_address text,
    from_domain text,
    return_path text,
    return_path_domain text,
    subject text,
    fingerprint text,
    message_size bigint,
    arf_feedback_type text, -- Feedback-Type as written
    arf_source_ip inet,
    arf_original_mail_from text,
    arf_arrival_date timestamptz,
    arf_reported_domains text[],
    arf_incidents bigint,
    arf_auth_failure text,
    warnings text[] NOT NULL DEFAULT '{}',
    doc jsonb COMPRESSION lz4 NOT NULL, -- lz4: see fbl.mails.raw
    parsed_at timestamptz NOT NULL DEFAULT now(), -- written, or rewritten by fbl reparse
    PRIMARY KEY (id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX ON fbl.reports (mail_id);
CREATE INDEX ON fbl.reports (received_at);
CREATE INDEX ON fbl.reports (source_ip); -- btree serves =, and << '192.0.2.0/24'
CREATE INDEX ON fbl.reports (fingerprint);

-- Children: one row per list element, position = index in the document's
-- list, from 0 (hops: 0 is the topmost, newest Received header).
CREATE TABLE fbl.report_urls (
    report_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    position integer NOT NULL,
    url text NOT NULL,
    host text, -- lower case, at most 255 bytes (longer is no host name)
    PRIMARY KEY (report_id, received_at, position)
) PARTITION BY RANGE (received_at);
CREATE INDEX ON fbl.report_urls (host);

CREATE TABLE fbl.report_hops (
    report_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    position integer NOT NULL,
    from_host text,
    by_host text,
    ip inet,
    helo text,
    date timestamptz,
    PRIMARY KEY (report_id, received_at, position)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.report_dkim (
    report_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    position integer NOT NULL,
    d text,
    s text,
    PRIMARY KEY (report_id, received_at, position)
) PARTITION BY RANGE (received_at);

CREATE TABLE fbl.report_attachments (
    report_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    position integer NOT NULL,
    name text,
    type text,
    size bigint,
    sha256 text,
    PRIMARY KEY (report_id, received_at, position)
) PARTITION BY RANGE (received_at);

-- One row per mail that yielded no report.
CREATE TABLE fbl.rejects (
    mail_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    mailbox text,
    reason fbl.reject_reason NOT NULL,
    detail text,
    size bigint,
    parsed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (mail_id, received_at)
) PARTITION BY RANGE (received_at);
CREATE INDEX ON fbl.rejects (received_at);

-- One row per report and configured vendor, for the forwarder. report_id is
-- the vendor's idempotency key.
CREATE TABLE fbl.vendor_outbox (
    report_id text COLLATE "C" NOT NULL,
    received_at timestamptz NOT NULL,
    vendor text NOT NULL,
    state fbl.outbox_state NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    sent_at timestamptz,
    last_error text,
    PRIMARY KEY (report_id, received_at, vendor)
) PARTITION BY RANGE (received_at);
CREATE INDEX ON fbl.vendor_outbox (next_attempt_at) WHERE state = 'pending';

CREATE TABLE fbl.mails_default PARTITION OF fbl.mails DEFAULT;
CREATE TABLE fbl.reports_default PARTITION OF fbl.reports DEFAULT;
CREATE TABLE fbl.report_urls_default PARTITION OF fbl.report_urls DEFAULT;
CREATE TABLE fbl.report_hops_default PARTITION OF fbl.report_hops DEFAULT;
CREATE TABLE fbl.report_dkim_default PARTITION OF fbl.report_dkim DEFAULT;
CREATE TABLE fbl.report_attachments_default PARTITION OF fbl.report_attachments DEFAULT;
CREATE TABLE fbl.rejects_default PARTITION OF fbl.rejects DEFAULT;
CREATE TABLE fbl.vendor_outbox_default PARTITION OF fbl.vendor_outbox DEFAULT;

-- fbl.create_month_partitions - make the partitions of the UTC month that
-- holds p_at, for every table in fbl partitioned on received_at; returns how
-- many it made (0 when they exist). Safe to call concurrently and often.
--
-- A month is made as a plain table and attached (ATTACH takes SHARE UPDATE
-- EXCLUSIVE on the parent, where CREATE TABLE ... PARTITION OF would take
-- ACCESS EXCLUSIVE and stall every writer and reader). Rows the DEFAULT
-- partition holds for that month move into it first. lock_timeout bounds the
-- wait behind long analyst queries: the caller sees SQLSTATE 55P03 and
-- retries later. The writer asks for the month after too, so the next month
-- usually exists before its first mail.
CREATE FUNCTION fbl.create_month_partitions(p_at timestamptz) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    lo_local timestamp := date_trunc('month', p_at AT TIME ZONE 'UTC');
    lo timestamptz := lo_local AT TIME ZONE 'UTC';
    hi timestamptz := (lo_local + interval '1 month') AT TIME ZONE 'UTC';
    suffix text := to_char(lo_local, 'YYYYMM');
    parent text;
    part text;
    made integer := 0;
BEGIN
    -- One maker at a time; the others then find the tables made.
    PERFORM pg_advisory_xact_lock(hashtext('fbl.create_month_partitions'));
    PERFORM set_config('lock_timeout', '10s', true);
    FOR parent IN
        SELECT c.relname
        FROM pg_partitioned_table p
        JOIN pg_class c ON c.oid = p.partrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.partattrs[0]
        WHERE n.nspname = 'fbl' AND p.partstrat = 'r' AND a.attname = 'received_at'
        ORDER BY c.relname
    LOOP
        part := parent || '_' || suffix;
        CONTINUE WHEN to_regclass(format('fbl.%I', part)) IS NOT NULL;
        EXECUTE format('CREATE TABLE fbl.%I (LIKE fbl.%I INCLUDING DEFAULTS INCLUDING '
                       'CONSTRAINTS INCLUDING STORAGE INCLUDING COMPRESSION)', part, parent);
        IF to_regclass(format('fbl.%I', parent || '_default')) IS NOT NULL THEN
            EXECUTE format('WITH moved AS (DELETE FROM fbl.%I WHERE received_at >= $1 AND '
                           'received_at < $2 RETURNING *) INSERT INTO fbl.%I SELECT * FROM moved',
                           parent || '_default', part) USING lo, hi;
        END IF;
        EXECUTE format('ALTER TABLE fbl.%I ATTACH PARTITION fbl.%I FOR VALUES FROM (%L) TO (%L)',
                       parent, part, lo, hi);
        made := made + 1;
    END LOOP;
    RETURN made;
END
$$;
