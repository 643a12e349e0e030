-- SPDX-License-Identifier: MIT
--
-- Version 4 -> 5: the tables remote and remote_packs (remote stores, issue
-- 18), empty in every store made before: a local store stays local.
-- src/lib/upgrade.c runs this in one transaction with the new user_version.

CREATE TABLE remote (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    url        TEXT NOT NULL,
    generation INTEGER NOT NULL DEFAULT 0 CHECK (generation >= 0),
    dirty      INTEGER NOT NULL DEFAULT 0 CHECK (dirty IN (0, 1))
);

CREATE TABLE remote_packs (
    pack_id INTEGER PRIMARY KEY,
    object  TEXT NOT NULL
);
