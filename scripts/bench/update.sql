-- 3. UPDATE of a non-indexed column by primary key (pgbench -D rows=N)
\set aid random(1, :rows)
\set delta random(-5000, 5000)
UPDATE @TABLE@ SET abalance = abalance + :delta WHERE aid = :aid;
