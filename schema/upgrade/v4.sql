-- SPDX-License-Identifier: MIT
--
-- Version 3 -> 4: the table core_notes (the ELF notes of a process
-- snapshot: registers, auxv, process facts, file mappings), empty for
-- every snapshot saved before. src/lib/upgrade.c runs this in one
-- transaction with the new user_version.

CREATE TABLE core_notes (
    snapshot_id INTEGER NOT NULL REFERENCES snapshots(id) ON DELETE CASCADE,
    seq         INTEGER NOT NULL CHECK (seq >= 0),
    owner       TEXT NOT NULL,
    type        INTEGER NOT NULL CHECK (type >= 0 AND type <= 4294967295),
    descr       BLOB NOT NULL,
    PRIMARY KEY (snapshot_id, seq)
) WITHOUT ROWID;
