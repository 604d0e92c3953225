-- 2. primary-key SELECT of a random row (pgbench -D rows=N)
\set aid random(1, :rows)
SELECT abalance FROM @TABLE@ WHERE aid = :aid;
