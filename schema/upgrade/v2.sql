-- SPDX-License-Identifier: MIT
--
-- Version 1 -> 2: blob bytes move out of blobs.data into pack files, and
-- the tables dictionaries (zstd dictionaries) and working_set (recorded
-- working sets) are added.
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
