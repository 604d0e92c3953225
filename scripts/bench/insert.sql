-- 1. single-row INSERT; aid comes from the table's identity sequence
\set bid random(1, 10)
INSERT INTO @TABLE@ (bid, abalance, filler) VALUES (:bid, 0, '');
