-- bench/store-cost --new-sql: what an index per (key, reporter, hour) on the
-- three rollups that count distinct reporters costs the store. Such an index
-- is what a write-time "first hour of this key and reporter" mark would look
-- its previous hour up in (it would let the analyst functions count distinct
-- reporters with a plain filtered count instead of count(DISTINCT)). This is
-- the index upkeep alone: the look-ups and the marks would come on top.
CREATE INDEX ON fbl.rollup_source_ips (source_ip, reporter_address, received_at);
CREATE INDEX ON fbl.rollup_senders (from_domain, dkim_domain, return_path_domain,
                                    reporter_address, received_at);
CREATE INDEX ON fbl.rollup_campaigns (fingerprint, reporter_address, received_at);
