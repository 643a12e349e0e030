#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Upgrade of a version-1 store (blob bytes in blobs.data) to version 5
(blob bytes in packs/NNNNNNNN.pack, snapshots.comment), in place, by a
write command, in one transaction; and of a version-2 store (made with
schema/history/snapfs-v2.sql, main's schema at 77f4829), of a version-3
store (schema/history/snapfs-v3.sql, before core_notes) and of a version-4
store (schema/history/snapfs-v4.sql, before remote stores) to version 5.

The version-1 store is made genuinely: snapshots saved by this snapfs (two,
one --parent of the other, and two more removed and collected so that blob
ids have gaps, inside and past the end), then turned into the version-1
layout with python's sqlite3 module: the blobs table of version 1 (with a
`data` column) filled from the pack files, `blobs`, `packs`, their index
and the tables version 1 did not have dropped, sqlite_sequence's blobs
value kept, packs/ deleted, user_version 1.

Then: read-only commands refuse it, saying it needs an upgrade, and leave
it as it is; `snapfs gc STORE` upgrades it (exit 0) to the schema a new
store has, with the same blob rows and bytes; verify passes; every snapshot
restores (and reads through a mount) byte for byte; a new save gets blob
ids above every old one. An upgrade killed with SIGKILL at several moments
leaves either a version-1 store that the next gc upgrades, or a version-3
store that verifies: never a broken one (nor one left at version 2).
"""

import hashlib
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB, PAGE  # noqa: E402

V1_TABLES = {"store_info", "snapshots", "segments", "blobs", "page_index", "page_map",
             "sqlite_sequence"}
V1_BLOB_COLUMNS = ["id", "codec", "page_count", "stored_size", "checksum", "data"]


# --------------------------------------------------------------------------
# Making a version-1 store


V1_SCHEMA = c.SOURCE_ROOT / "schema" / "history" / "snapfs-v1.sql"
V2_SCHEMA = c.SOURCE_ROOT / "schema" / "history" / "snapfs-v2.sql"
V3_SCHEMA = c.SOURCE_ROOT / "schema" / "history" / "snapfs-v3.sql"
V4_SCHEMA = c.SOURCE_ROOT / "schema" / "history" / "snapfs-v4.sql"


def make_v1(store):
    """Turn a version-2 store into a genuine version-1 one, in place: a new
    snapfs.db made the way `snapfs init` of version 1 made it (its page
    size, auto-vacuum, WAL, then schema/history/snapfs-v1.sql, byte for
    byte), the rows copied over (the columns version 1 had) and every
    blob's bytes read out of its pack into blobs.data. Returns {blob id:
    sha256 of its stored bytes}."""
    store = Path(store)
    db = store / "snapfs.db"
    old = store / "snapfs-v2.db"
    c.run([c.SQLITE3, db, "PRAGMA wal_checkpoint(TRUNCATE);"], expect=0)
    os.replace(db, old)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(str(db), isolation_level=None)
    try:
        con.execute("PRAGMA page_size = 4096")
        con.execute("PRAGMA auto_vacuum = INCREMENTAL")
        con.execute("PRAGMA journal_mode = WAL")
        con.executescript(V1_SCHEMA.read_text())
        con.execute("ATTACH DATABASE ? AS v2", (str(old),))
        con.execute("BEGIN IMMEDIATE")
        dicts = con.execute("SELECT count(*) FROM v2.blobs WHERE dict_id != 0").fetchone()[0]
        c.check_eq(dicts, 0, "blobs compressed with a dictionary (version 1 had none)")
        for table in ("store_info", "snapshots", "segments", "page_index", "page_map"):
            cols = [r[1] for r in con.execute(f"PRAGMA main.table_info('{table}')")]
            names = ", ".join(cols)
            con.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM v2.{table}")
        shas = {}
        rows = con.execute("SELECT id, codec, page_count, stored_size, checksum, pack_id, "
                           "pack_offset FROM v2.blobs ORDER BY id").fetchall()
        for bid, codec, pages, size, checksum, pack_id, offset in rows:
            with open(c.pack_path(store, pack_id), "rb") as f:
                f.seek(offset)
                data = f.read(size)
            c.check_eq(len(data), size, f"bytes of blob {bid} in pack {pack_id}")
            shas[bid] = hashlib.sha256(data).hexdigest()
            con.execute("INSERT INTO main.blobs (id, codec, page_count, stored_size, checksum, "
                        "data) VALUES (?, ?, ?, ?, ?, ?)",
                        (bid, codec, pages, size, checksum, data))
        # ids are never reused: the sequences carry over.
        con.execute("DELETE FROM main.sqlite_sequence")
        con.execute("INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq FROM "
                    "v2.sqlite_sequence WHERE name IN ('snapshots', 'blobs')")
        # What version 1 stores said (readers go by each blob's page_count).
        con.execute("UPDATE main.store_info SET value = 32 WHERE key = 'blob_pages'")
        con.execute("COMMIT")
        con.execute("DETACH DATABASE v2")
        con.execute("PRAGMA user_version = 1")
        bad = con.execute("PRAGMA integrity_check").fetchall()
        c.check_eq(bad, [("ok",)], "integrity_check of the version-1 store")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    old.unlink()
    shutil.rmtree(store / "packs")
    # It is a version-1 store now.
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), 1, "user_version of the v1 store")
    tables = {r["name"] for r in c.sql(store, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    c.check_eq(tables, V1_TABLES, "tables of the v1 store")
    cols = [r["name"] for r in c.sql(store, "SELECT name FROM pragma_table_info('blobs')")]
    c.check_eq(cols, V1_BLOB_COLUMNS, "columns of the v1 blobs table")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM blobs WHERE length(data) != stored_size"),
               0, "v1 blobs whose data is not stored_size bytes")
    c.check(not (store / "packs").exists(), "a v1 store has no packs/")
    return shas


def make_v2(store, version=2, schema=V2_SCHEMA):
    """Turn a store of this snapfs into a genuine version-2 (or 3) one, in
    place: a new snapfs.db made the way `snapfs init` of that version made
    it (page size, auto-vacuum, WAL, then schema/history/snapfs-vN.sql,
    byte for byte) and every row copied over (the columns that version
    had); the pack files stay as they are."""
    store = Path(store)
    db = store / "snapfs.db"
    old = store / "snapfs-new.db"
    if version < 3:
        c.check_eq(c.sql_value(store, "SELECT count(*) FROM snapshots "
                               "WHERE comment IS NOT NULL"),
                   0, "snapshots with a comment (version 2 had none)")
    if version < 4:
        c.check_eq(c.sql_value(store, "SELECT count(*) FROM core_notes"), 0,
                   "process notes (versions before 4 had none)")
    c.run([c.SQLITE3, db, "PRAGMA wal_checkpoint(TRUNCATE);"], expect=0)
    os.replace(db, old)
    for suffix in ("-wal", "-shm"):
        Path(str(db) + suffix).unlink(missing_ok=True)
    con = sqlite3.connect(str(db), isolation_level=None)
    try:
        con.execute("PRAGMA page_size = 4096")
        con.execute("PRAGMA auto_vacuum = INCREMENTAL")
        con.execute("PRAGMA journal_mode = WAL")
        con.executescript(schema.read_text())
        con.execute("ATTACH DATABASE ? AS v3", (str(old),))
        con.execute("BEGIN IMMEDIATE")
        tables = [r[0] for r in con.execute(
            "SELECT name FROM main.sqlite_master WHERE type = 'table' "
            "AND name != 'sqlite_sequence'")]
        for table in tables:
            cols = [r[1] for r in con.execute(f"PRAGMA main.table_info('{table}')")]
            names = ", ".join(cols)
            con.execute(f"INSERT INTO main.{table} ({names}) SELECT {names} FROM v3.{table}")
        con.execute("DELETE FROM main.sqlite_sequence")
        con.execute("INSERT INTO main.sqlite_sequence (name, seq) SELECT name, seq "
                    "FROM v3.sqlite_sequence")
        con.execute("COMMIT")
        con.execute("DETACH DATABASE v3")
        con.execute(f"PRAGMA user_version = {version}")
        c.check_eq(con.execute("PRAGMA integrity_check").fetchall(), [("ok",)],
                   f"integrity_check of the version-{version} store")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    old.unlink()
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), version,
               f"user_version of the v{version} store")
    cols = [r["name"] for r in c.sql(store, "SELECT name FROM pragma_table_info('snapshots')")]
    c.check(version >= 3 or "comment" not in cols, f"a v2 store has no snapshots.comment: {cols}")
    tables = [r["name"] for r in c.sql(store, "SELECT name FROM sqlite_master "
                                              "WHERE type = 'table'")]
    c.check(version >= 4 or "core_notes" not in tables,
            f"a v{version} store has no core_notes: {tables}")
    c.check("remote" not in tables and "remote_packs" not in tables,
            f"a v{version} store has no remote tables: {tables}")


def pack_shas(store):
    """{blob id: sha256 of its stored bytes}, read from the pack files."""
    out = {}
    for r in c.sql(store, "SELECT id, pack_id, pack_offset, stored_size FROM blobs"):
        with open(c.pack_path(store, r["pack_id"]), "rb") as f:
            f.seek(r["pack_offset"])
            data = f.read(r["stored_size"])
        c.check_eq(len(data), r["stored_size"], f"bytes of blob {r['id']} in its pack")
        out[r["id"]] = hashlib.sha256(data).hexdigest()
    return out


def v1_shas(store):
    """{blob id: sha256 of blobs.data} of a version-1 store."""
    con = sqlite3.connect(str(Path(store) / "snapfs.db"))
    try:
        return {bid: hashlib.sha256(data).hexdigest()
                for bid, data in con.execute("SELECT id, data FROM blobs")}
    finally:
        con.close()


def schema_shape(store):
    """The shape of the store's schema, without the SQL text (an upgraded
    table's CREATE statement is worded differently): every object, every
    table's columns, indexes and foreign keys."""
    shape = {}
    for r in c.sql(store, "SELECT type, name, tbl_name FROM sqlite_master "
                          "WHERE name NOT LIKE 'sqlite_autoindex%' ORDER BY name"):
        shape[(r["type"], r["name"])] = r["tbl_name"]
        if r["type"] == "table":
            n = r["name"]
            shape[("columns", n)] = c.sql(
                store, f"SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('{n}')")
            shape[("indexes", n)] = c.sql(
                store, f"SELECT name, \"unique\", origin, partial FROM pragma_index_list('{n}') "
                       "ORDER BY name")
            shape[("fks", n)] = c.sql(
                store, f"SELECT \"table\", \"from\", \"to\", on_update, on_delete "
                       f"FROM pragma_foreign_key_list('{n}')")
        if r["type"] == "index":
            shape[("index_columns", r["name"])] = c.sql(
                store, f"SELECT name FROM pragma_index_info('{r['name']}')")
    return shape


def check_same_shape(got, want):
    """The upgraded store's schema must be a new store's; name what differs."""
    diff = sorted((k for k in set(got) | set(want) if got.get(k) != want.get(k)), key=str)
    c.check(not diff, "schema of the upgraded store differs from a new store's in: "
                      + "; ".join(f"{k}: upgraded {got.get(k)!r}, new {want.get(k)!r}"
                                  for k in diff))


def metadata(store):
    """The rows an upgrade must not change."""
    return {
        # The columns version 1 had (version 2 adds meta_digest, the seal,
        # computed by the upgrade: verify checks it).
        "snapshots": c.sql(store, "SELECT id, name, created_at, parent_id, file_size, page_size, "
                                  "format, source, notes, segment_count, committed_bytes, "
                                  "data_bytes, stored_bytes, map_digest FROM snapshots ORDER BY id"),
        "segments": c.sql(store, "SELECT * FROM segments ORDER BY snapshot_id, start"),
        "page_map": c.sql(store, "SELECT * FROM page_map ORDER BY snapshot_id, first_page"),
        "page_index": c.sql(store, "SELECT * FROM page_index ORDER BY digest"),
        "blobs": c.sql(store, "SELECT id, codec, page_count, stored_size, checksum FROM blobs "
                              "ORDER BY id"),
    }


def dir_state(store):
    """Every file under the store with its sha256 (the WAL index left out,
    and an empty WAL: SQLite readers make them)."""
    out = {}
    for root, _, files in os.walk(store):
        for n in files:
            p = Path(root) / n
            if n.endswith("-shm") or (n.endswith("-wal") and p.stat().st_size == 0):
                continue
            out[str(p.relative_to(store))] = c.sha_file(p)
    return out


def check_refused_read_only(store, snapshot, ctx, version=1):
    """Read-only commands on a version-1 (or 2) store: exit 2, one line
    saying it needs an upgrade by 'snapfs gc', and nothing changed (no
    packs/ made)."""
    before = dir_state(store)
    out = ctx.path("refused.out")
    for args in (["list", store], ["list", store, "--json"], ["info", store],
                 ["info", store, snapshot], ["verify", store],
                 ["restore", store, snapshot, out], ["diff", store, snapshot, snapshot]):
        cp = c.snapfs(*args, expect=c.EXIT_USAGE)
        line = c.check_error_message(cp, str(store), f"schema version {version}", "snapfs gc",
                                     what=f"snapfs {args[0]} on a v{version} store")
        c.check("upgrade" in line, f"snapfs {args[0]} should say the store needs an upgrade: {line!r}")
    c.check(not out.exists(), "restore from a v1 store wrote its output")
    if have_fuse():
        mnt = ctx.path("refused-mnt")
        mnt.mkdir()
        cp = c.snapfs("mount", store, mnt, "-f", expect=c.EXIT_USAGE, timeout=60)
        line = c.check_error_message(cp, str(store), what="snapfs mount on a v1 store")
        c.check("upgrade" in line, f"snapfs mount should say the store needs an upgrade: {line!r}")
        c.check(not os.path.ismount(mnt), "a v1 store was mounted")
    c.check_eq(dir_state(store), before, f"files of the v{version} store after read-only commands")
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), version,
               "user_version after read-only commands")


# --------------------------------------------------------------------------
# Mounting (when FUSE is there)


def have_fuse():
    if os.path.exists("/dev/fuse") and shutil.which("fusermount3"):
        return True
    c.log("mount part skipped: no /dev/fuse or fusermount3")
    return False


def mount_compare(ctx, store, expected):
    """Mount the store and compare NAME/memory with each expected image;
    returns False (and logs why) when mounting is not possible here."""
    if not have_fuse():
        return False
    mnt = ctx.path("mnt")
    mnt.mkdir(exist_ok=True)
    proc = ctx.track(subprocess.Popen([c.SNAPFS, "mount", str(store), str(mnt), "-f"],
                                      stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    try:
        for _ in range(400):
            if os.path.ismount(mnt):
                break
            if proc.poll() is not None:
                c.fail(f"snapfs mount exited {proc.returncode}: {proc.stderr.read()}")
            time.sleep(0.025)
        else:
            c.fail("the mount did not appear within 10 s")
        c.check_eq(sorted(os.listdir(mnt)), sorted(expected), "snapshots in the mount")
        for name, img in expected.items():
            c.cmp_files(img, mnt / name / "memory")
    finally:
        subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            subprocess.run(["fusermount3", "-uz", str(mnt)], capture_output=True)
    return True


# --------------------------------------------------------------------------
# Cases


def images(ctx):
    """s1: text, random, zero pages and holes; s2: s1 with pages changed,
    zeroed and added; gap, tail: unique random pages."""
    rng = random.Random(301)
    s1 = c.Image(ctx.path("s1.img"), 6 * MIB + 1000)
    s1.pages(0, 300, "text", rng)
    s1.pages(300, 200, "random", rng)
    s1.pages(520, 40, "zero", rng)
    s1.pages(600, 120, "mixed", rng)
    s1.pages(1200, 300, "text", rng)
    s1.close()
    s2 = ctx.path("s2.img")
    shutil.copyfile(s1.path, s2)
    with open(s2, "r+b") as f:
        for p in (3, 4, 5, 310, 1250):
            f.seek(p * PAGE)
            f.write(c.random_page(rng))
        f.seek(700 * PAGE)
        f.write(bytes(PAGE))
        f.seek(1000 * PAGE)
        f.write(c.text_page(rng, 1000) + c.random_page(rng))
    gap = c.Image(ctx.path("gap.img"), 2 * MIB)
    gap.pages(0, 512, "random", rng)
    gap.close()
    tail = c.Image(ctx.path("tail.img"), 1 * MIB)
    tail.pages(0, 256, "random", rng)
    tail.close()
    return {"s1": s1.path, "s2": s2}, gap.path, tail.path


def case_upgrade_in_place(ctx):
    imgs, gap, tail = images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "s1", imgs["s1"])
    c.snapfs("save", store, "gap", gap)
    c.snapfs("save", store, "s2", imgs["s2"], "--parent", "s1", "--codec", "lz4")
    c.snapfs("save", store, "tail", tail)
    c.snapfs("rm", store, "gap", "tail")
    c.snapfs("gc", store)
    ids = [r["id"] for r in c.sql(store, "SELECT id FROM blobs ORDER BY id")]
    seq = c.sql_value(store, "SELECT seq FROM sqlite_sequence WHERE name = 'blobs'")
    c.check(len(ids) < ids[-1] - ids[0] + 1, f"blob ids should have gaps: {ids[0]}..{ids[-1]}, "
                                             f"{len(ids)} blobs")
    c.check(seq > ids[-1], f"the blobs sequence ({seq}) should be past the last blob ({ids[-1]})")
    codecs = {r["codec"] for r in c.sql(store, "SELECT DISTINCT codec FROM blobs")}
    c.check(len(codecs) >= 2, f"blobs of several codecs wanted, got {codecs}")
    meta = metadata(store)
    new_shape = schema_shape(ctx.store("fresh"))

    shas = make_v1(store)
    c.check_eq(sorted(shas), ids, "blobs of the v1 store")
    c.check_eq(metadata(store), meta, "rows of the v1 store")
    c.check_eq(c.sql_value(store, "SELECT seq FROM sqlite_sequence WHERE name = 'blobs'"), seq,
               "sqlite_sequence's blobs value in the v1 store")

    check_refused_read_only(store, "s1", ctx)

    # A write command upgrades it.
    c.snapfs("gc", store)
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "user_version after the upgrade")
    c.check(c.pack_path(store, 1).is_file(), "packs/00000001.pack after the upgrade")
    c.check_pack_files(store, "after the upgrade")
    c.check_eq(sorted(set(os.listdir(store)) - c.STORE_ENTRIES), [],
               "files in the store directory after the upgrade")
    check_same_shape(schema_shape(store), new_shape)
    c.integrity_ok(store)
    c.check_eq(metadata(store), meta, "rows of the upgraded store (ids, checksums, page map)")
    c.check_eq(pack_shas(store), shas, "stored bytes of every blob after the upgrade")
    c.check(c.sql_value(store, "SELECT seq FROM sqlite_sequence WHERE name = 'blobs'") >= seq,
            "the blobs sequence went back in the upgrade")
    c.snapfs("verify", store)
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)
        out.unlink()

    # A new save after the upgrade: its blobs get ids above every old one
    # (also the removed ones), in the pack.
    rng = random.Random(302)
    new = c.Image(ctx.path("new.img"), 2 * MIB)
    new.pages(0, 200, "random", rng)
    new.pages(300, 100, "text", rng)
    new.close()
    c.snapfs("save", store, "new", new.path)
    new_ids = [r["blob_id"] for r in c.sql(
        store, "SELECT DISTINCT blob_id FROM page_map WHERE snapshot_id = "
               "(SELECT id FROM snapshots WHERE name = 'new') AND blob_id NOT IN "
               "(SELECT blob_id FROM page_map WHERE snapshot_id IN "
               "(SELECT id FROM snapshots WHERE name IN ('s1', 's2')))")]
    c.check(new_ids, "the new save stored blobs of its own")
    c.check(min(new_ids) > seq, f"new blob ids {min(new_ids)}.. must be above every old id "
                                f"(up to {seq}, the removed ones included)")
    c.check_pack_files(store, "after a save on the upgraded store")
    c.snapfs("verify", store)
    imgs["new"] = new.path
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)
        out.unlink()
    # Upgraded once: the next gc has nothing to do.
    out = c.snapfs("gc", store).stdout
    c.check("removed 0 unused blobs" in out, f"gc after the upgrade: {out!r}")
    mount_compare(ctx, store, imgs)


def case_upgrade_v3(ctx):
    """A version-3 store: read-only commands refuse it naming gc; gc adds
    the empty table core_notes, changes no row, seal or stored byte, and
    gives the schema a new store has."""
    imgs, _, _ = images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "s1", imgs["s1"], "--comment", "before version 4")
    c.snapfs("save", store, "s2", imgs["s2"], "--parent", "s1")
    make_v2(store, 3, V3_SCHEMA)
    meta = metadata(store)
    seals = c.sql(store, "SELECT id, meta_digest, comment FROM snapshots ORDER BY id")
    shas = pack_shas(store)
    new_shape = schema_shape(ctx.store("fresh"))
    check_refused_read_only(store, "s1", ctx, version=3)
    c.snapfs("gc", store)
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "user_version after the upgrade")
    check_same_shape(schema_shape(store), new_shape)
    c.integrity_ok(store)
    c.check_eq(metadata(store), meta, "rows of the upgraded store")
    c.check_eq(c.sql(store, "SELECT id, meta_digest, comment FROM snapshots ORDER BY id"), seals,
               "seals and comments after the upgrade")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM core_notes"), 0,
               "process notes after the upgrade")
    c.check_eq(pack_shas(store), shas, "stored bytes of every blob after the upgrade")
    c.snapfs("verify", store)
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)
        out.unlink()


def case_upgrade_v4(ctx):
    """A version-4 store: read-only commands refuse it naming gc; gc adds
    the empty tables remote and remote_packs (the store stays local),
    changes no row, seal or stored byte, and gives the schema a new store
    has."""
    imgs, _, _ = images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "s1", imgs["s1"], "--comment", "before version 5")
    c.snapfs("save", store, "s2", imgs["s2"], "--parent", "s1")
    make_v2(store, 4, V4_SCHEMA)
    meta = metadata(store)
    seals = c.sql(store, "SELECT id, meta_digest, comment FROM snapshots ORDER BY id")
    shas = pack_shas(store)
    new_shape = schema_shape(ctx.store("fresh"))
    check_refused_read_only(store, "s1", ctx, version=4)
    c.snapfs("gc", store)
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "user_version after the upgrade")
    check_same_shape(schema_shape(store), new_shape)
    c.integrity_ok(store)
    c.check_eq(metadata(store), meta, "rows of the upgraded store")
    c.check_eq(c.sql(store, "SELECT id, meta_digest, comment FROM snapshots ORDER BY id"), seals,
               "seals and comments after the upgrade")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM remote"), 0, "remote rows")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM remote_packs"), 0, "remote_packs rows")
    c.check_eq(pack_shas(store), shas, "stored bytes of every blob after the upgrade")
    c.snapfs("verify", store)
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)
        out.unlink()


def case_upgrade_v2(ctx):
    """A version-2 store: read-only commands refuse it naming gc; gc adds
    snapshots.comment (NULL for every snapshot), changes no other row or
    byte, and gives the schema a new store has; then --comment works."""
    imgs, _, _ = images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "s1", imgs["s1"])
    c.snapfs("save", store, "s2", imgs["s2"], "--parent", "s1")
    make_v2(store)
    meta = metadata(store)
    seals = c.sql(store, "SELECT id, meta_digest FROM snapshots ORDER BY id")
    shas = pack_shas(store)
    new_shape = schema_shape(ctx.store("fresh"))
    check_refused_read_only(store, "s1", ctx, version=2)
    c.snapfs("gc", store)
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "user_version after the upgrade")
    check_same_shape(schema_shape(store), new_shape)
    c.integrity_ok(store)
    c.check_eq(metadata(store), meta, "rows of the upgraded store")
    c.check_eq(c.sql(store, "SELECT id, meta_digest FROM snapshots ORDER BY id"), seals,
               "seals after the upgrade (the comment is not sealed)")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM snapshots WHERE comment IS NOT NULL"),
               0, "comments after the upgrade")
    c.check_eq(pack_shas(store), shas, "stored bytes of every blob after the upgrade")
    c.snapfs("verify", store)
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)
    c.snapfs("save", store, "s3", imgs["s1"], "--comment", "after the upgrade")
    imgs["s3"] = imgs["s1"]
    c.check_eq(c.sql_value(store, "SELECT comment FROM snapshots WHERE name = 's3'"),
               "after the upgrade", "comment saved on the upgraded store")
    out = c.snapfs("gc", store).stdout
    c.check("removed 0 unused blobs" in out, f"gc after the upgrade: {out!r}")
    mount_compare(ctx, store, imgs)


def case_upgrade_by_save(ctx):
    """save is a write command too: it upgrades, then saves."""
    imgs, _, _ = images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "s1", imgs["s1"])
    make_v1(store)
    c.snapfs("save", store, "s2", imgs["s2"], "--parent", "s1")
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "user_version after a save on a v1 store")
    c.check_pack_files(store, "after a save on a v1 store")
    c.snapfs("verify", store)
    for name, img in imgs.items():
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img, out)


def case_upgrade_killed(ctx):
    """SIGKILL during the upgrade, at several moments: the store is a whole
    version 1 (and the next gc upgrades it) or a whole version 3."""
    rng = random.Random(303)
    big = c.Image(ctx.path("big.img"), 64 * MIB)
    big.pages(0, 64 * MIB // PAGE, "random", rng)
    big.close()
    small = c.standard_image(ctx.path("small.img"), seed=304)
    imgs = {"big": big.path, "small": small.path}
    pristine = ctx.path("pristine")
    c.snapfs("init", pristine)
    c.snapfs("save", pristine, "small", small.path)
    c.snapfs("save", pristine, "big", big.path)
    shas = make_v1(pristine)
    meta = metadata(pristine)

    def fresh_copy():
        store = ctx.path("store")
        if store.exists():
            shutil.rmtree(store)
        shutil.copytree(pristine, store)
        return store

    def check_whole(store, what):
        c.integrity_ok(store)
        c.check_eq(metadata(store), meta, f"rows of the store {what}")
        c.snapfs("verify", store)
        for name, img in imgs.items():
            out = ctx.path(f"{name}.out")
            c.snapfs("restore", store, name, out, "--quiet")
            c.cmp_files(img, out)
            out.unlink()

    # How long a whole upgrade takes here, to spread the kills over it.
    store = fresh_copy()
    t0 = time.monotonic()
    c.snapfs("gc", store, "--quiet")
    whole = time.monotonic() - t0
    c.log(f"a whole upgrade of {len(shas)} blobs takes {whole:.3f} s")
    check_whole(store, "after a whole upgrade")
    c.check_eq(pack_shas(store), shas, "stored bytes after a whole upgrade")

    outcomes = []
    for frac in (0.0, 0.05, 0.15, 0.3, 0.5, 0.7, 0.85, 1.0):
        delay = frac * whole
        store = fresh_copy()
        proc = ctx.track(subprocess.Popen([c.SNAPFS, "gc", str(store), "--quiet"],
                                          stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.PIPE))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        err = proc.stderr.read().decode("utf-8", "replace")
        killed = proc.returncode == -signal.SIGKILL
        c.check(killed or proc.returncode == 0,
                f"gc at {delay:.3f} s: exit {proc.returncode}: {err!r}")
        # Ask snapfs first, before the sqlite3 shell recovers anything.
        cp = c.snapfs("list", store, expect=(0, c.EXIT_USAGE))
        version = c.sql_value(store, "PRAGMA user_version")
        if version == 1:
            c.check_eq(cp.returncode, c.EXIT_USAGE, "list on a store left at version 1")
            c.check("upgrade" in c.stderr_text(cp), f"list: {c.stderr_text(cp)!r}")
            c.integrity_ok(store)
            c.check_eq(metadata(store), meta, "rows of the store left at version 1")
            c.check_eq(v1_shas(store), shas, "blob bytes of the store left at version 1")
            c.snapfs("gc", store, "--quiet")
            c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
                       "user_version after the next gc")
            check_whole(store, "upgraded by the next gc")
        else:
            c.check_eq(version, c.SCHEMA_VERSION, f"user_version after gc killed at {delay:.3f} s")
            c.check_eq(cp.returncode, 0, "list on a store left at version 3")
            check_whole(store, "left at version 3")
        c.check_pack_files(store, f"after gc killed at {delay:.3f} s")
        c.check_eq(pack_shas(store), shas, "stored bytes of every blob")
        outcomes.append((round(delay, 3), "killed" if killed else "finished", version))
    c.log(f"(delay s, gc, version found): {outcomes}")
    c.check(any(k == "killed" for _, k, _ in outcomes), "no gc was killed: the store is too small")
    c.check(any(k == "killed" and v == 1 for _, k, v in outcomes),
            "no kill landed before the upgrade's commit")


if __name__ == "__main__":
    c.main()
