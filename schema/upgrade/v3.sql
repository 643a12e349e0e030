-- SPDX-License-Identifier: MIT
--
-- Version 2 -> 3: snapshots get a free-text comment (`snapfs save
-- --comment TEXT`), NULL when none. Not part of the snapshot's seal
-- (meta_digest): it never decides which bytes a reader gets. src/upgrade.c
-- runs this in one transaction with the new user_version.

ALTER TABLE snapshots ADD COLUMN comment TEXT;
