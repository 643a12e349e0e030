-- SPDX-License-Identifier: MIT
--
-- The snapfs store schema, version 4 (version 1 kept blob bytes in
-- blobs.data, version 2 had no snapshots.comment, version 3 no core_notes;
-- schema/upgrade/ says how a store moves on).
--
-- A store is one SQLite database, snapfs.db, in WAL mode. This file creates
-- a new store; schema/README.md documents every table, column and view and
-- shows example queries. The tables snapshots and segments and the views
-- snapshot_summary and kind_usage are the public, stable surface; the page
-- map and blob tables are documented too so that people can write their own
-- queries. PRAGMA user_version holds the schema version (set by snapfs after
-- this script ran, see src/catalog.c); upgrade steps live in
-- schema/upgrade/.

-- Facts about the whole store, one key a row.
--   page_size   bytes per page (4096)
--   blob_pages  most pages one blob holds
--   created_at  when `snapfs init` made the store (ISO-8601 UTC)
--   created_by  the snapfs version that made it
CREATE TABLE store_info (
    key   TEXT PRIMARY KEY,
    value ANY NOT NULL
) WITHOUT ROWID;

-- One row per snapshot. A snapshot row, its segments and its page map are
-- written in one transaction: a row exists only for a complete snapshot.
-- ids are never reused (AUTOINCREMENT), so a removed snapshot's id never
-- names a newer one.
CREATE TABLE snapshots (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    name            TEXT NOT NULL UNIQUE,       -- [A-Za-z0-9._-]{1,128}
    created_at      TEXT NOT NULL,              -- ISO-8601 UTC
    parent_id       INTEGER REFERENCES snapshots(id) ON DELETE SET NULL,
    file_size       INTEGER NOT NULL CHECK (file_size >= 0),
    page_size       INTEGER NOT NULL,
    format          TEXT NOT NULL,              -- raw, elf, criu, pid, ...
    source          TEXT NOT NULL,              -- what was captured
    notes           TEXT,                       -- what the capture skipped
    -- Figures recorded at save time so that list and the mount need no
    -- scan; the view snapshot_summary recomputes them from the tables
    -- below and `snapfs verify` checks that both agree.
    segment_count   INTEGER NOT NULL DEFAULT 0,
    committed_bytes INTEGER NOT NULL DEFAULT 0,
    data_bytes      INTEGER NOT NULL DEFAULT 0,
    stored_bytes    INTEGER NOT NULL DEFAULT 0,
    -- XXH3-64 over snapshot id, file_size and every page_map run's
    -- (first_page, page_count, run_hash) in order: a deleted, moved or
    -- added run, or a changed file_size, makes the snapshot read as EIO.
    map_digest      INTEGER NOT NULL DEFAULT 0,
    -- XXH3-64 over id, name, parent_id, file_size, page_size, format,
    -- map_digest and every segment row but its label, in order: a snapshot
    -- renamed,
    -- reparented, resized or resegmented outside snapfs, or two names
    -- swapped, is refused when it is opened.
    meta_digest     INTEGER NOT NULL DEFAULT 0,
    -- Free text from `snapfs save --comment`, NULL when none. Not in the
    -- seal: it never decides bytes (schema/README.md). Last, as version
    -- 3's ALTER TABLE added it.
    comment         TEXT
);
CREATE INDEX snapshots_by_parent ON snapshots(parent_id);

-- Snapshots removed while a reader had them open (see "Claims" in
-- schema/README.md): `snapfs rm` renames the row to '.removed-<id>' (a
-- name no user can give, so the name is free at once) and records it
-- here; every listing, lookup and public view leaves such snapshots out,
-- while their segments, page map and blobs stay for the readers that hold
-- them. `snapfs gc` deletes the snapshot (and so this row) once no reader
-- claims it any more.
--   name        the name it had
--   removed_at  when `snapfs rm` ran (ISO-8601 UTC)
CREATE TABLE removed (
    snapshot_id INTEGER PRIMARY KEY REFERENCES snapshots(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    removed_at  TEXT NOT NULL
);

-- The usage set: byte ranges of the memory file, half-open [start, end),
-- page-aligned, sorted and non-overlapping within a snapshot. The last
-- segment may end at file_size rounded up to a whole page.
CREATE TABLE segments (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    start       INTEGER NOT NULL,
    end         INTEGER NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('system', 'anonymous',
                    'pagecache', 'tmpfs', 'ramdiskfs', 'mapped')),
    memcg_id    INTEGER NOT NULL DEFAULT 0,
    committed   INTEGER NOT NULL CHECK (committed IN (0, 1)),
    label       TEXT,                          -- path, [heap], [stack]; or NULL
    PRIMARY KEY (snapshot_id, start),
    CHECK (start >= 0 AND end > start)
) WITHOUT ROWID;

-- Pack files: append-only files of blobs in the store's packs/ folder,
-- named after their id (packs/00000001.pack). A save appends its new blobs
-- to the newest pack (a new one past 1 GiB), makes the file durable, and
-- only then commits the blob rows and the pack's new length, so bytes past
-- length were never named by a row (a crashed save's tail): the next
-- writer cuts them off. gc punches holes where no blob lives any more and
-- deletes packs that hold no blob. ids are never reused.
CREATE TABLE packs (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    length  INTEGER NOT NULL CHECK (length >= 0)  -- committed bytes
);

-- zstd dictionaries: small blobs (8 pages) compress 3-5 % better with a
-- dictionary trained on the store's own pages. The first zstd save of a
-- store with at least 1 MiB of data trains one from a sample of its pages;
-- later saves use the newest. Blobs name theirs in blobs.dict_id.
--   codec     1 (zstd)
--   checksum  XXH3-64 of data; a dictionary that fails it decodes nothing
CREATE TABLE dictionaries (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    codec    INTEGER NOT NULL,
    checksum INTEGER NOT NULL,
    data     BLOB NOT NULL
);

-- Compressed page blobs. A blob holds page_count consecutive pages of
-- page_size bytes (its "slots"), compressed together with one codec; its
-- stored bytes are pack_offset .. pack_offset + stored_size - 1 of pack
-- pack_id. A cold random read of a page is one read of those bytes.
--   codec       0 none, 1 zstd, 2 lz4
--   stored_size bytes in the pack (compressed)
--   checksum    XXH3-64 of the stored bytes, as a signed 64-bit integer
--   dict_id     the zstd dictionary it was compressed with, 0 for none
-- ids are never reused, so a stale reference can never reach a newer blob.
CREATE TABLE blobs (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    codec       INTEGER NOT NULL,
    page_count  INTEGER NOT NULL CHECK (page_count > 0),
    stored_size INTEGER NOT NULL,
    checksum    INTEGER NOT NULL,
    pack_id     INTEGER NOT NULL,
    pack_offset INTEGER NOT NULL,
    dict_id     INTEGER NOT NULL DEFAULT 0      -- dictionaries.id; 0: none
);
CREATE INDEX blobs_by_pack ON blobs(pack_id, pack_offset);

-- The content index that makes dedup store-wide: page digest -> the blob
-- slot that holds a page with that content. digest is the first 8 bytes of
-- the page's SHA-256, read as a big-endian signed 64-bit integer. A save
-- reuses a slot only after the stored page compares byte-equal to the new
-- one, so no collision, accidental or crafted, can alias two pages. Rows may
-- outlive their blob after `snapfs gc`; a lookup that finds no blob is a
-- miss.
CREATE TABLE page_index (
    digest  INTEGER PRIMARY KEY,
    blob_id INTEGER NOT NULL,
    slot    INTEGER NOT NULL
);

-- The page map: which stored page backs each non-zero page of a snapshot's
-- memory file, in runs. A row says: pages first_page .. first_page +
-- page_count - 1 of the snapshot are slots slot .. slot + page_count - 1 of
-- blob blob_id. Pages of the memory file in no run are holes or zero pages
-- and read as zeros.
--   run_hash  XXH3-64 of the run's page_count * page_size decoded bytes,
--             seeded with (snapshot_id << 40) ^ first_page. Readers check it
--             before serving a run, so a row pointing at the wrong blob,
--             slot, offset or snapshot is caught, never served.
CREATE TABLE page_map (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    first_page  INTEGER NOT NULL,
    page_count  INTEGER NOT NULL CHECK (page_count > 0),
    blob_id     INTEGER NOT NULL REFERENCES blobs(id),
    slot        INTEGER NOT NULL,
    run_hash    INTEGER NOT NULL,
    PRIMARY KEY (snapshot_id, first_page)
) WITHOUT ROWID;
CREATE INDEX page_map_by_blob ON page_map(blob_id);

-- Per snapshot: what it holds, recomputed from the tables (the same figures
-- that the snapshots row records at save time). Like every view here, it
-- leaves out removed snapshots (table removed).
--   data_bytes   bytes of non-zero pages (within file_size)
--   stored_bytes bytes on disk of the blobs the snapshot uses, each blob
--                counted in full once for every snapshot that uses any of
--                its pages
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

-- Per snapshot and kind: bytes of segments, and of committed segments.
CREATE VIEW kind_usage AS
SELECT s.name,
       g.kind,
       sum(g.end - g.start) AS bytes,
       sum(CASE WHEN g.committed = 1 THEN g.end - g.start ELSE 0 END)
           AS committed_bytes
  FROM segments g JOIN snapshots s ON s.id = g.snapshot_id
 WHERE NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id)
 GROUP BY s.id, g.kind;

-- The page map in byte offsets, one row per run: the form to join on when
-- comparing snapshots (see schema/README.md).
CREATE VIEW page_runs AS
SELECT s.name,
       m.first_page * s.page_size AS start,
       min((m.first_page + m.page_count) * s.page_size, s.file_size) AS end,
       m.blob_id,
       m.slot
  FROM page_map m JOIN snapshots s ON s.id = m.snapshot_id
 WHERE NOT EXISTS (SELECT 1 FROM removed r WHERE r.snapshot_id = s.id);

-- --- Working sets ----------------------------------------------------------
-- The pages of a snapshot's memory file that a mount with `-o record` saw
-- read in the first seconds after the file was opened, in first-touch
-- order: one row per run of consecutive pages, seq 0, 1, 2 ... in the order
-- the runs were first touched. A mount prefetches these pages when the
-- file is opened again. Replaced as a whole by each new record.
CREATE TABLE working_set (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    first_page  INTEGER NOT NULL CHECK (first_page >= 0),
    page_count  INTEGER NOT NULL CHECK (page_count > 0),
    PRIMARY KEY (snapshot_id, seq)
) WITHOUT ROWID;

-- --- Process notes (version 4) -------------------------------------------
-- What a process snapshot (format elf, criu, pid) knows beyond its memory:
-- the ELF notes of the core file the mount synthesizes (NAME/core, `snapfs
-- export --format elf`), in the order they go into its PT_NOTE segment.
-- One row per note: owner is the note's name ("CORE", "LINUX"), type its
-- n_type (1 NT_PRSTATUS: one per thread, the registers; 2 NT_PRFPREG,
-- 3 NT_PRPSINFO, 6 NT_AUXV, 0x46494c45 NT_FILE...), descr its bytes, in
-- the byte order of the machine that made them. One row with owner
-- "snapfs" and type 1 is not a note: its descr is the ELF e_machine of the
-- process (2 bytes, little-endian). Read as untrusted input: the core
-- synthesizer checks every size. Removed with the snapshot.
CREATE TABLE core_notes (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    owner       TEXT NOT NULL,
    type        INTEGER NOT NULL CHECK (type >= 0 AND type <= 4294967295),
    descr       BLOB NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
) WITHOUT ROWID;
