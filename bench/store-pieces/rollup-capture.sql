-- bench/store-cost --new-sql: the rollup triggers (schema 012) kept, their work
-- taken away. A statement trigger REFERENCING NEW TABLE makes PostgreSQL copy
-- every row the statement inserts (documents and all) into a transition table
-- before the trigger runs; with the trigger functions returning at once, what
-- is left of the rollups' cost is that copy. Against no-rollups.sql: the
-- copy's cost; against empty.sql: the rollups' own work.
CREATE OR REPLACE FUNCTION fbl.rollup_reports_added() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
CREATE OR REPLACE FUNCTION fbl.rollup_urls_added() RETURNS trigger
LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
