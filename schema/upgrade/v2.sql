-- SPDX-License-Identifier: MIT
--
-- Version 1 -> 2: blob bytes move out of blobs.data into pack files, and
-- the tables dictionaries (zstd dictionaries), working_set (recorded
-- working sets) and removed (snapshots removed while claimed by a reader)
-- are added; the views leave removed snapshots out.
-- src/upgrade.c runs this in one transaction, with foreign keys off, in
-- two parts around the copy: part 1 makes the new tables; then every
-- blob's bytes are appended to pack 1 (packs/00000001.pack) in id order,
-- a blobs_v2 row is written for each and the pack is made durable; part 2
-- replaces the old table. A crash anywhere rolls the database back; the
-- next attempt starts pack 1 again from its first byte.

-- @part 1
CREATE TABLE packs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    length  INTEGER NOT NULL CHECK (length >= 0)  -- committed bytes
);
CREATE TABLE blobs_v2 (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    codec       INTEGER NOT NULL,
    page_count  INTEGER NOT NULL CHECK (page_count > 0),
    stored_size INTEGER NOT NULL,
    checksum    INTEGER NOT NULL,
    pack_id     INTEGER NOT NULL,
    pack_offset INTEGER NOT NULL,
    dict_id     INTEGER NOT NULL DEFAULT 0      -- dictionaries.id; 0: none
);
CREATE TABLE dictionaries (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    codec    INTEGER NOT NULL,
    checksum INTEGER NOT NULL,
    data     BLOB NOT NULL
);
INSERT INTO packs (length) VALUES (0);

-- @part 2
-- Every snapshot's meta_digest is computed by src/upgrade.c after this.
ALTER TABLE snapshots ADD COLUMN meta_digest INTEGER NOT NULL DEFAULT 0;
-- Keep "ids are never reused": the new table carries the old sequence on.
DELETE FROM sqlite_sequence WHERE name = 'blobs_v2';
INSERT INTO sqlite_sequence (name, seq)
SELECT 'blobs_v2', max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'blobs'), 0),
                       coalesce((SELECT max(id) FROM blobs_v2), 0));
-- Legacy renaming: the views that name blobs (snapshot_summary) must
-- not be re-checked while the old table is gone.
PRAGMA legacy_alter_table = ON;
DROP TABLE blobs;
ALTER TABLE blobs_v2 RENAME TO blobs;
PRAGMA legacy_alter_table = OFF;
CREATE INDEX blobs_by_pack ON blobs(pack_id, pack_offset);
CREATE TABLE working_set (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    first_page  INTEGER NOT NULL CHECK (first_page >= 0),
    page_count  INTEGER NOT NULL CHECK (page_count > 0),
    PRIMARY KEY (snapshot_id, seq)
) WITHOUT ROWID;

-- Removed snapshots kept for their readers (claims), and the public views
-- made to leave them out: the same text as schema/snapfs.sql.
CREATE TABLE removed (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    removed_at  TEXT NOT NULL
);
DROP VIEW snapshot_summary;
DROP VIEW kind_usage;
DROP VIEW page_runs;
CREATE VIEW snapshot_summary AS
SELECT s.name,
       s.file_size,
       (SELECT count(*) FROM segments g WHERE g.snapshot_id = s.id)
           AS segment_count,
       (SELECT coalesce(sum(g.end - g.start), 0) FROM segments g
         WHERE g.snapshot_id = s.id AND g.committed = 1)
           AS committed_bytes,
       (SELECT coalesce(sum(min((m.first_page + m.page_count) * s.page_size,
                                s.file_size) - m.first_page * s.page_size), 0)
          FROM page_map m WHERE m.snapshot_id = s.id)
           AS data_bytes,
       (SELECT coalesce(sum(b.stored_size), 0) FROM blobs b
         WHERE b.id IN (SELECT m.blob_id FROM page_map m
                         WHERE m.snapshot_id = s.id))
           AS stored_bytes
  FROM snapshots s
 WHERE NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id);
CREATE VIEW kind_usage AS
SELECT s.name,
       g.kind,
       sum(g.end - g.start) AS bytes,
       sum(CASE WHEN g.committed = 1 THEN g.end - g.start ELSE 0 END)
           AS committed_bytes
  FROM segments g JOIN snapshots s ON s.id = g.snapshot_id
 WHERE NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id)
 GROUP BY s.id, g.kind;
CREATE VIEW page_runs AS
SELECT s.name,
       m.first_page * s.page_size AS start,
       min((m.first_page + m.page_count) * s.page_size, s.file_size) AS end,
       m.blob_id,
       m.slot
  FROM page_map m JOIN snapshots s ON s.id = m.snapshot_id
 WHERE NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id);
