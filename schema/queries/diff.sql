-- SPDX-License-Identifier: MIT
--
-- The pages that differ between two snapshots, as `snapfs diff STORE A B`
-- prints them: one range a line, "0xSTART 0xEND STATUS", adjacent pages of
-- one status merged. Run it with the sqlite3 shell:
--
--   sqlite3 STORE/snapfs.db ".parameter set :a 'vm-1'" \
--       ".parameter set :b 'vm-2'" ".read schema/queries/diff.sql"
--
-- Pages are compared by the blob slot that stores them: the store keeps
-- every distinct page content once, so equal slots mean equal pages and
-- different slots mean different pages (snapfs diff also reads pages whose
-- slots differ and compares their bytes, which only matters for the rare
-- page the content index could not share).
WITH RECURSIVE
  ids(a, b) AS (
    SELECT (SELECT id FROM snapshots WHERE name = :a),
           (SELECT id FROM snapshots WHERE name = :b)),
  size(bytes) AS (
    SELECT max(file_size) FROM snapshots, ids WHERE id IN (ids.a, ids.b)),
  pages_a(page, blob_id, slot, left) AS (
    SELECT first_page, blob_id, slot, page_count - 1
      FROM page_map, ids WHERE snapshot_id = ids.a
    UNION ALL
    SELECT page + 1, blob_id, slot + 1, left - 1 FROM pages_a WHERE left > 0),
  pages_b(page, blob_id, slot, left) AS (
    SELECT first_page, blob_id, slot, page_count - 1
      FROM page_map, ids WHERE snapshot_id = ids.b
    UNION ALL
    SELECT page + 1, blob_id, slot + 1, left - 1 FROM pages_b WHERE left > 0),
  differing(page, status) AS (
    SELECT coalesce(a.page, b.page),
           CASE WHEN a.page IS NULL THEN 'added'
                WHEN b.page IS NULL THEN 'removed'
                ELSE 'changed' END
      FROM pages_a a FULL OUTER JOIN pages_b b ON a.page = b.page
     WHERE a.page IS NULL OR b.page IS NULL
        OR a.blob_id != b.blob_id OR a.slot != b.slot),
  islands(page, status, island) AS (
    SELECT page, status,
           page - row_number() OVER (PARTITION BY status ORDER BY page)
      FROM differing)
SELECT printf('0x%x 0x%x %s', min(page) * 4096,
              min((max(page) + 1) * 4096, (SELECT bytes FROM size)), status)
  FROM islands
 GROUP BY status, island
 ORDER BY min(page);
