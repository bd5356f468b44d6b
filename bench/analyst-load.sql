-- analyst-load.sql - the generator bench/analyst loads ten million reports with
--
-- Defines the schema fbl_bench: fbl_bench.load(lo, hi, n, t0, t1) writes the
-- reports number lo to hi - 1 of n, delivered evenly from t0 to t1, with what
-- the analyst views read (the hourly rollups follow through their triggers): fbl.reports (a compact document: the real one is
-- larger), fbl.report_urls, fbl.report_dkim, one vendor's fbl.vendor_outbox
-- row each, and a reject for about one mail in twenty. fbl.mails, hops and
-- attachments are left out: no view reads them, and they would double the
-- disk the benchmark needs. Everything derives from a hash of the report's
-- number, so a chunk is the same whoever loads it and in whatever order.
--
-- Distributions (zipf-ish: the k-th value has weight 1/k):
--   campaigns   70% live one day (1,000 a day), 30% run all along (5,000)
--   source IPs  60% the campaign's own (30 per campaign), 40% from 400,000,
--               25 hosts per /24 or /48; one in twelve IPv6; 5% unknown
--   reporters   55% 25 feedback loops (80% verified), 45% 300,000
--               subscribers over 8 big mail providers and 2,000 small ones;
--               2% of subscriber reports rate limited
--   domains     From: the campaign's (60,000), 10% spoofing 8 brands;
--               Return-Path: the From domain or 200 ESP bounce domains;
--               DKIM: none 15%, one 70%, two 15%
--   URLs        0 to 3 per report: the campaign's host or 500 shared ones
--   feedback    mailbox spamalert 92% / notspam 5% / abuse 3%; abuse 93%
--   outbox      sent, the last ten minutes pending, 0.3% dead, limited as flagged
--   rejects     5% of mails, bounces and auto-replies first
CREATE SCHEMA IF NOT EXISTS fbl_bench;

-- A uniform number in [0, 1) from @i and @salt.
CREATE OR REPLACE FUNCTION fbl_bench.u(i bigint, salt integer) RETURNS float8
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT (hashint8(i * 1000003 + salt) & 2147483647)::float8 / 2147483648.0
$$;

-- A zipf-ish rank in [1, n] from the uniform @u: P(k) ~ 1/k.
CREATE OR REPLACE FUNCTION fbl_bench.zipf(u float8, n integer) RETURNS integer
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT least(n, greatest(1, floor(exp(u * ln(n + 1.0)))::integer))
$$;

CREATE OR REPLACE PROCEDURE fbl_bench.load(lo bigint, hi bigint, n bigint, t0 timestamptz,
                                           t1 timestamptz, full_doc boolean DEFAULT false)
LANGUAGE plpgsql AS $$
DECLARE
    brands text[] := ARRAY['paypal.com', 'microsoft.com', 'apple.com', 'amazon.com',
                           'dhl.com', 'netflix.com', 'chase.com', 'wellsfargo.com'];
    big text[] := ARRAY['gmail.com', 'yahoo.com', 'outlook.com', 'hotmail.com', 'aol.com',
                        'gmx.de', 'web.de', 'mail.ru'];
    themes text[] := ARRAY['Cheap watches, today only', 'Your invoice is ready',
                           'You have won a prize', 'Your account is locked',
                           'Lose weight fast', 'Crypto gains guaranteed',
                           'Meet singles near you', 'Your parcel is waiting'];
    span float8 := extract(epoch FROM t1 - t0);
BEGIN
    CREATE TEMP TABLE IF NOT EXISTS chunk (
        i bigint, at timestamptz, id text COLLATE "C", mail_id text COLLATE "C",
        campaign bigint, fingerprint text, subject text, from_domain text, rp_domain text,
        dkim_n integer, dkim1 text, dkim2 text, ip inet, reporter text, verified boolean,
        limited boolean, mailbox text, feedback fbl.feedback_type, format fbl.format,
        urls integer, state fbl.outbox_state, reject boolean
    ) ON COMMIT DROP;

    INSERT INTO chunk
    SELECT i, at, id, mail_id, c, fp, subj, fd, rpd, dn, d1, d2, ip, who, ver, lim, mb, ft, fmt,
           nu,
           CASE WHEN lim THEN 'limited'
                WHEN at > t1 - interval '10 minutes' THEN 'pending'
                WHEN fbl_bench.u(i, 21) < 0.003 THEN 'dead'
                ELSE 'sent' END::fbl.outbox_state,
           fbl_bench.u(i, 19) < 0.05
    FROM (
        SELECT i, at, id, mail_id, c, fp, subj, fd, who, sub, mb,
               CASE WHEN fbl_bench.u(i, 6) < 0.6 THEN fd
                    ELSE 'bounce' || fbl_bench.zipf(fbl_bench.u(c, 2), 200) || '.esp.example' END
                   AS rpd,
               CASE WHEN fbl_bench.u(i, 7) < 0.15 THEN 0
                    WHEN fbl_bench.u(i, 7) < 0.85 THEN 1 ELSE 2 END AS dn,
               CASE WHEN fbl_bench.u(i, 8) < 0.6 THEN fd
                    ELSE 'esp' || fbl_bench.zipf(fbl_bench.u(c, 5), 50) || '.example' END AS d1,
               'esp' || fbl_bench.zipf(fbl_bench.u(i, 9), 50) || '.example' AS d2,
               CASE WHEN fbl_bench.u(i, 22) < 0.05 THEN NULL
                    WHEN ipk % 12 = 0 THEN
                        ('2001:db8:' || to_hex((ipk / 25) % 65536) || '::' ||
                         to_hex(ipk % 25 + 1))::inet
                    ELSE '0.0.0.0'::inet + (754974720 + (ipk / 25) * 256 + (ipk % 25) * 7 + 1)
               END AS ip,
               CASE WHEN sub THEN NULL ELSE fbl_bench.u(i, 14) < 0.8 END AS ver,
               sub AND fbl_bench.u(i, 15) < 0.02 AS lim,
               CASE WHEN mb = 'notspam' THEN 'not-spam'
                    WHEN fbl_bench.u(i, 16) < 0.93 THEN 'abuse'
                    WHEN fbl_bench.u(i, 16) < 0.95 THEN 'not-spam'
                    WHEN fbl_bench.u(i, 16) < 0.965 THEN 'fraud'
                    WHEN fbl_bench.u(i, 16) < 0.97 THEN 'virus'
                    WHEN fbl_bench.u(i, 16) < 0.985 THEN 'other'
                    WHEN fbl_bench.u(i, 16) < 0.995 THEN 'opt-out'
                    ELSE 'auth-failure' END::fbl.feedback_type AS ft,
               CASE WHEN fbl_bench.u(i, 17) < 0.60 THEN 'arf'
                    WHEN fbl_bench.u(i, 17) < 0.80 THEN 'attachment'
                    WHEN fbl_bench.u(i, 17) < 0.90 THEN 'inline'
                    WHEN fbl_bench.u(i, 17) < 0.94 THEN 'jmrp'
                    WHEN fbl_bench.u(i, 17) < 0.96 THEN 'xarf'
                    WHEN fbl_bench.u(i, 17) < 0.98 THEN 'spamcop'
                    ELSE 'raw' END::fbl.format AS fmt,
               CASE WHEN fbl_bench.u(i, 18) < 0.15 THEN 0
                    WHEN fbl_bench.u(i, 18) < 0.55 THEN 1
                    WHEN fbl_bench.u(i, 18) < 0.85 THEN 2 ELSE 3 END AS nu
        FROM (
            SELECT i, at, id, mail_id, c, sub, mb,
                   CASE WHEN fbl_bench.u(i, 3) < 0.05 THEN NULL
                        ELSE left(md5('campaign' || c), 32) END AS fp,
                   themes[1 + c % 8] ||
                       CASE WHEN fbl_bench.u(i, 4) < 0.5 THEN ''
                            ELSE ' #' || floor(fbl_bench.u(i, 5) * 100)::integer END AS subj,
                   CASE WHEN fbl_bench.u(c, 6) < 0.1 THEN brands[1 + c % 8]
                        ELSE 'd' || fbl_bench.zipf(fbl_bench.u(c, 1), 60000) || '.example'
                   END AS fd,
                   CASE WHEN fbl_bench.u(i, 10) < 0.6 THEN
                            (c * 7919 + fbl_bench.zipf(fbl_bench.u(i, 11), 30)) % 400000
                        ELSE fbl_bench.zipf(fbl_bench.u(i, 11), 400000) END AS ipk,
                   CASE WHEN NOT sub THEN
                            'fbl@feedback' || fbl_bench.zipf(fbl_bench.u(i, 13), 25) || '.example'
                        ELSE 'user' || s || '@' ||
                             CASE WHEN s % 50 < 8 THEN big[1 + s % 50]
                                  ELSE 'isp' || s % 2000 || '.example' END
                   END AS who
            FROM (
                SELECT i, t0 + make_interval(secs => span * i / n) AS at,
                       encode(sha256(int8send(i)), 'hex') AS id,
                       encode(sha256(int8send(-i)), 'hex') AS mail_id,
                       CASE WHEN fbl_bench.u(i, 1) < 0.7 THEN
                                (i * 182 / n) * 1000 + fbl_bench.zipf(fbl_bench.u(i, 2), 1000)
                            ELSE 10000000 + fbl_bench.zipf(fbl_bench.u(i, 2), 5000) END AS c,
                       fbl_bench.u(i, 12) >= 0.55 AS sub,
                       fbl_bench.zipf(fbl_bench.u(i, 13), 300000) AS s,
                       CASE WHEN fbl_bench.u(i, 20) < 0.92 THEN 'spamalert'
                            WHEN fbl_bench.u(i, 20) < 0.97 THEN 'notspam'
                            ELSE 'abuse' END AS mb
                FROM generate_series(lo, hi - 1) i
            ) a
        ) b
    ) x;

    INSERT INTO fbl.report_dkim (report_id, received_at, position, d, s)
    SELECT id, at, 0, dkim1, 's1' FROM chunk WHERE dkim_n >= 1
    UNION ALL
    SELECT id, at, 1, dkim2, 's2' FROM chunk WHERE dkim_n = 2;

    INSERT INTO fbl.reports (id, received_at, mail_id, part, mailbox, format, feedback_type,
                             reporter_address, reporter_verified, reporting_mta, user_agent,
                             source_ip, source_ip_from, redacted, headers_only, message_id,
                             message_date, from_address, from_domain, return_path,
                             return_path_domain, subject, fingerprint, message_size,
                             arf_feedback_type, arf_source_ip, doc, rate_limited)
    SELECT id, at, mail_id, 0, mailbox, format, feedback, reporter, verified,
           CASE WHEN format = 'arf' THEN 'mx.' || split_part(reporter, '@', 2) END,
           CASE WHEN format = 'arf' THEN 'FBL/1.0' END,
           ip, CASE WHEN ip IS NULL THEN NULL WHEN format = 'arf' THEN 'arf' ELSE 'received' END,
           false, false, i || '.' || campaign || '@' || from_domain, at - interval '5 minutes',
           'news@' || from_domain, from_domain, 'b-' || i || '@' || rp_domain, rp_domain, subject,
           fingerprint, 2000 + (fbl_bench.u(i, 23) * 30000)::bigint,
           CASE WHEN format = 'arf' THEN feedback::text END,
           CASE WHEN format = 'arf' THEN ip END,
           CASE WHEN NOT full_doc THEN
               jsonb_build_object('v', 1, 'kind', 'report', 'id', id, 'format', format,
                                  'feedback_type', feedback, 'source_ip', ip,
                                  'message', jsonb_build_object('dkim', CASE
                                      WHEN dkim_n = 0 THEN '[]'::jsonb
                                      ELSE jsonb_build_array(jsonb_build_object('d', dkim1))
                                  END))
           ELSE jsonb_build_object(
               'v', 1, 'kind', 'report', 'id', id, 'mail_id', mail_id, 'part', 0,
               'received_at', at, 'mailbox', mailbox, 'format', format,
               'feedback_type', feedback,
               'reporter', jsonb_build_object(
                   'address', reporter, 'name', 'Feedback Loop', 'user_agent', 'FBL/1.0',
                   'reporting_mta', 'mx.' || split_part(reporter, '@', 2), 'verified', verified),
               'arf', jsonb_build_object(
                   'version', '1', 'feedback_type_raw', feedback, 'user_agent', 'FBL/1.0',
                   'source_ip', ip, 'original_mail_from', 'b-' || i || '@' || rp_domain,
                   'original_rcpt_to', jsonb_build_array('user' || i % 9973 || '@example.net'),
                   'arrival_date', at - interval '5 minutes',
                   'reporting_mta', 'mx.' || split_part(reporter, '@', 2),
                   'reported_domain', '[]'::jsonb, 'reported_uri', '[]'::jsonb, 'incidents', 1,
                   'authentication_results', jsonb_build_array(
                       'mx.example.net; spf=pass smtp.mailfrom=' || rp_domain ||
                       '; dkim=pass header.d=' || coalesce(dkim1, from_domain) ||
                       '; dmarc=fail header.from=' || from_domain),
                   'original_envelope_id', NULL, 'redacted_address', false, 'auth_failure', NULL,
                   'delivery_result', NULL),
               'source_ip', ip, 'source_ip_from', 'arf', 'redacted', false,
               'message', jsonb_build_object(
                   'headers_only', false,
                   'message_id', i || '.' || campaign || '@' || from_domain,
                   'date', at - interval '6 minutes',
                   'from', 'news@' || from_domain, 'from_name', 'News', 'from_domain', from_domain,
                   'sender', NULL, 'reply_to', 'help@' || from_domain,
                   'return_path', 'b-' || i || '@' || rp_domain,
                   'to', jsonb_build_array('user' || i % 9973 || '@example.net'),
                   'subject', subject,
                   'dkim', CASE WHEN dkim_n = 0 THEN '[]'::jsonb
                                ELSE jsonb_build_array(jsonb_build_object('d', dkim1, 's', 's1')) END,
                   'list_unsubscribe', '<mailto:unsub-' || i || '@' || from_domain || '>',
                   'x_mailer', 'Mailer 9',
                   'received', jsonb_build_array(
                       jsonb_build_object('from', 'o1.' || from_domain, 'by', 'mx.example.net',
                                          'ip', ip, 'helo', 'o1.' || from_domain,
                                          'date', at - interval '6 minutes'),
                       jsonb_build_object('from', 'relay.' || rp_domain, 'by', 'o1.' || from_domain,
                                          'ip', '10.1.2.3', 'helo', 'relay.' || rp_domain,
                                          'date', at - interval '7 minutes')),
                   'urls', jsonb_build_array('http://c' || campaign || '.example/p/' || i || '/0'),
                   'url_hosts', jsonb_build_array('c' || campaign || '.example'),
                   'attachments', '[]'::jsonb, 'fingerprint', fingerprint,
                   'size', 2000 + (fbl_bench.u(i, 23) * 30000)::bigint),
               'warnings', '[]'::jsonb) END,
           limited
    FROM chunk;

    INSERT INTO fbl.report_urls (report_id, received_at, position, url, host)
    SELECT id, at, p, 'http://' || h || '/p/' || i || '/' || p, h
    FROM chunk CROSS JOIN LATERAL generate_series(0, urls - 1) p
    CROSS JOIN LATERAL (SELECT CASE WHEN fbl_bench.u(i, 30 + p) < 0.65 THEN 'c' || campaign || '.example'
                        ELSE 'lnk' || fbl_bench.zipf(fbl_bench.u(i, 40 + p), 500) || '.example'
                        END AS h) hh;


    INSERT INTO fbl.vendor_outbox (report_id, received_at, vendor, state, attempts,
                                   next_attempt_at, created_at, sent_at, last_error)
    SELECT id, at, 'example', state, CASE state WHEN 'sent' THEN 1 WHEN 'dead' THEN 8 ELSE 0 END,
           at + interval '1 second', at + interval '1 second',
           CASE WHEN state = 'sent' THEN at + make_interval(secs => 1 + fbl_bench.u(i, 24) * 5) END,
           CASE WHEN state = 'dead' THEN 'HTTP 400: bad report' END
    FROM chunk;

    INSERT INTO fbl.rejects (mail_id, received_at, mailbox, reason, detail, size)
    SELECT encode(sha256(int8send(i + 4611686018427387904)), 'hex'), at + interval '1 ms',
           mailbox, r.reason, 'generated', 1000 + (fbl_bench.u(i, 26) * 20000)::bigint
    FROM chunk
    CROSS JOIN LATERAL (SELECT CASE WHEN fbl_bench.u(i, 25) < 0.35 THEN 'bounce'
                                    WHEN fbl_bench.u(i, 25) < 0.60 THEN 'auto_reply'
                                    WHEN fbl_bench.u(i, 25) < 0.80 THEN 'not_a_report'
                                    WHEN fbl_bench.u(i, 25) < 0.90 THEN 'no_original_message'
                                    WHEN fbl_bench.u(i, 25) < 0.95 THEN 'dmarc_aggregate'
                                    WHEN fbl_bench.u(i, 25) < 0.99 THEN 'malformed_mime'
                                    ELSE 'too_large' END::fbl.reject_reason AS reason) r
    WHERE reject;
END
$$;
