-- bench/store-cost --new-sql: the raw mail and the report document stored
-- without lz4 (storage EXTERNAL: out of line when large, never compressed).
ALTER TABLE fbl.mails ALTER COLUMN raw SET STORAGE EXTERNAL;
ALTER TABLE fbl.reports ALTER COLUMN doc SET STORAGE EXTERNAL;
