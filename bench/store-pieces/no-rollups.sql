-- bench/store-cost --new-sql: the store without the hourly rollups (schema 012):
-- their triggers off, so the reports and URLs are stored as before 012.
ALTER TABLE fbl.reports DISABLE TRIGGER rollup_added;
ALTER TABLE fbl.report_urls DISABLE TRIGGER rollup_added;
