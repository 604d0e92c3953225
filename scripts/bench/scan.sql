-- 4. sequential scan filtering on a sealed (non-indexed) column
SELECT count(*) FROM @TABLE@ WHERE filler LIKE 'x%';
