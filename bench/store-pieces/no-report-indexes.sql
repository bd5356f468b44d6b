-- bench/store-cost --new-sql: fbl.reports without the indexes the store itself
-- does not read (the analysts', the outbound feature's). Kept: the primary
-- key, 007's two duplicate indexes, the per-reporter limit's index, and the
-- mail_id index, all of which the store looks up (without the last,
-- PostgreSQL's CPU per mail rose by 40 %).
DROP INDEX fbl.reports_received_at_idx;
DROP INDEX fbl.reports_source_ip_idx;
DROP INDEX fbl.reports_fingerprint_idx;
DROP INDEX fbl.reports_outbound_idx;
