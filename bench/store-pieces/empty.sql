-- bench/store-cost --base-sql: nothing; the same steps as a variant's side
-- (a psql run before fbl starts) with no change.
SELECT 1;
