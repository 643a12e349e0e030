#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The metadata a save writes, read with the sqlite3 shell: the snapshots
row, segments equal to the data ranges widened to pages, snapshot_summary
and kind_usage figures, the figures recorded in snapshots agreeing with the
views, the pragmas (user_version 3, WAL), the store's files (snapfs.db and
packs/NNNNNNNN.pack, as the packs table says)."""

import datetime
import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB  # noqa: E402


def case_pragmas(ctx):
    store = ctx.store()
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION, "PRAGMA user_version")
    c.check_eq(c.sql_value(store, "PRAGMA journal_mode"), "wal", "PRAGMA journal_mode")
    for table in ("snapshots", "segments"):
        c.sql(store, f"SELECT * FROM {table} LIMIT 0")
    names = {r["name"] for r in c.sql(store, "SELECT name FROM sqlite_master")}
    for n in ("snapshots", "segments", "snapshot_summary", "kind_usage", "blobs", "page_map"):
        c.check(n in names, f"the database has no '{n}'")
    cols = [r["name"] for r in c.sql(store, "SELECT name FROM pragma_table_info('snapshots')")]
    for col in ("id", "name", "created_at", "parent_id", "file_size", "page_size", "format", "source"):
        c.check(col in cols, f"snapshots has no column '{col}' (has {cols})")
    cols = [r["name"] for r in c.sql(store, "SELECT name FROM pragma_table_info('segments')")]
    for col in ("snapshot_id", "start", "end", "kind", "memcg_id", "committed", "label"):
        c.check(col in cols, f"segments has no column '{col}' (has {cols})")
    integrity = c.sql_value(store, "PRAGMA integrity_check")
    c.check_eq(integrity, "ok", "PRAGMA integrity_check of a new store")


def case_snapshot_row_and_segments(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=31)
    store = ctx.store()
    t0 = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    c.snapfs("save", store, "vm1", img.path)
    t1 = datetime.datetime.now(datetime.timezone.utc)

    c.check_eq(c.sql_value(store, "PRAGMA user_version"), c.SCHEMA_VERSION,
               "PRAGMA user_version after a save")
    c.check_eq(c.sql_value(store, "PRAGMA journal_mode"), "wal", "PRAGMA journal_mode after a save")

    rows = c.sql(store, "SELECT id, name, created_at, parent_id, file_size, page_size, format, "
                        "source FROM snapshots")
    c.check_eq(len(rows), 1, "snapshot rows")
    r = rows[0]
    c.check_eq(r["name"], "vm1", "snapshots.name")
    c.check_eq(r["file_size"], img.size, "snapshots.file_size")
    c.check_eq(r["page_size"], 4096, "snapshots.page_size")
    c.check_eq(r["format"], "raw", "snapshots.format")
    c.check_eq(r["parent_id"], None, "snapshots.parent_id")
    c.check(isinstance(r["source"], str) and img.path.name in r["source"],
            f"snapshots.source should name the source file: {r['source']!r}")
    c.check(c.ISO_UTC.match(r["created_at"] or ""),
            f"snapshots.created_at is not ISO-8601 UTC: {r['created_at']!r}")
    created = datetime.datetime.fromisoformat(r["created_at"].replace("Z", "+00:00"))
    c.check(t0 - datetime.timedelta(seconds=2) <= created <= t1 + datetime.timedelta(seconds=2),
            f"created_at {r['created_at']} is not the time of the save ({t0}..{t1})")

    segs = c.sql(store, "SELECT start, \"end\", kind, memcg_id, committed, label FROM segments "
                        f"WHERE snapshot_id = {r['id']} ORDER BY start")
    want = c.expected_segments(img.path)
    c.log(f"data ranges of the source: {c.data_ranges(img.path)}")
    c.check_eq([(s["start"], s["end"]) for s in segs], want,
               "segments (data ranges widened to pages)")
    for s in segs:
        c.check_eq((s["kind"], s["memcg_id"], s["committed"], s["label"]),
                   ("anonymous", 0, 1, None), f"segment {s['start']:#x}..{s['end']:#x}")
    # The image's written ranges are pages 0-15, 32-81 and 256-279.
    c.check_eq(want, [(0, 16 * PAGE), (32 * PAGE, 82 * PAGE), (256 * PAGE, 280 * PAGE)],
               "data ranges of the generated image (filesystem reports)")

    pages, data = c.page_stats(img.path)
    summary = c.sql(store, "SELECT * FROM snapshot_summary")
    c.check_eq(len(summary), 1, "snapshot_summary rows")
    s = summary[0]
    c.check_eq(s["name"], "vm1", "snapshot_summary.name")
    c.check_eq(s["file_size"], img.size, "snapshot_summary.file_size")
    c.check_eq(s["segment_count"], 3, "snapshot_summary.segment_count")
    c.check_eq(s["committed_bytes"], sum(e - b for b, e in want), "snapshot_summary.committed_bytes")
    c.check_eq(s["data_bytes"], len(pages) * PAGE, "snapshot_summary.data_bytes (non-zero pages * 4096)")
    blob_sum = c.sql_value(store, "SELECT sum(stored_size) FROM blobs")
    c.check_eq(s["stored_bytes"], blob_sum, "snapshot_summary.stored_bytes (only snapshot: all blobs)")
    c.check(0 < s["stored_bytes"] <= s["data_bytes"] + 4096,
            f"stored_bytes {s['stored_bytes']} vs data_bytes {s['data_bytes']}")

    recorded = c.sql(store, "SELECT segment_count, committed_bytes, data_bytes, stored_bytes "
                            "FROM snapshots WHERE name = 'vm1'")[0]
    for k, v in recorded.items():
        c.check_eq(v, s[k], f"snapshots.{k} (recorded at save) vs snapshot_summary.{k}")

    ku = c.sql(store, "SELECT * FROM kind_usage")
    c.check_eq(ku, [{"name": "vm1", "kind": "anonymous", "bytes": s["committed_bytes"],
                     "committed_bytes": s["committed_bytes"]}], "kind_usage")

    # Every page of the page map is a non-zero page of the source.
    mapped = set()
    for m in c.sql(store, "SELECT first_page, page_count FROM page_map"):
        mapped |= set(range(m["first_page"], m["first_page"] + m["page_count"]))
    c.check_eq(sorted(mapped), sorted(pages), "pages in page_map vs non-zero pages of the source")

    integrity = c.sql_value(store, "PRAGMA integrity_check")
    c.check_eq(integrity, "ok", "PRAGMA integrity_check")


def case_kind_option(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=32)
    store = ctx.store()
    c.snapfs("save", store, "pc", img.path, "--kind", "pagecache")
    kinds = {r["kind"] for r in c.sql(store, "SELECT kind FROM segments")}
    c.check_eq(kinds, {"pagecache"}, "segment kinds with --kind pagecache")
    ku = c.sql(store, "SELECT name, kind, bytes, committed_bytes FROM kind_usage")
    total = sum(e - b for b, e in c.expected_segments(img.path))
    c.check_eq(ku, [{"name": "pc", "kind": "pagecache", "bytes": total, "committed_bytes": total}],
               "kind_usage with --kind pagecache")


def case_unaligned_data_bytes(ctx):
    rng = random.Random(33)
    size = 4096 * 3 + 123
    src = ctx.path("odd.img")
    src.write_bytes(c.text_page(rng) + bytes(PAGE) + c.random_page(rng) + b"\x01" * 123)
    store = ctx.store()
    c.snapfs("save", store, "odd", src)
    segs = c.sql(store, "SELECT start, \"end\" FROM segments")
    c.check_eq([(r["start"], r["end"]) for r in segs], [(0, 4 * PAGE)],
               "segments of a 12411-byte file (one range, widened to whole pages)")
    c.check_eq(c.sql_value(store, "SELECT data_bytes FROM snapshot_summary"), 2 * PAGE + 123,
               "data_bytes: 2 non-zero pages + the partial last page")
    c.check_eq(c.sql_value(store, "SELECT file_size FROM snapshots"), size, "file_size")


def case_two_snapshots_stored_bytes(ctx):
    # stored_bytes counts each blob a snapshot uses in full, once per
    # snapshot: a second snapshot sharing every page has the same figure.
    img = c.standard_image(ctx.path("mixed.img"), seed=34)
    store = ctx.store()
    c.snapfs("save", store, "a", img.path)
    c.snapfs("save", store, "b", img.path)
    rows = {r["name"]: r for r in c.sql(store, "SELECT * FROM snapshot_summary")}
    c.check_eq(rows["a"]["stored_bytes"], rows["b"]["stored_bytes"],
               "stored_bytes of two snapshots of the same image")
    c.check_eq(rows["a"]["data_bytes"], rows["b"]["data_bytes"],
               "data_bytes of two snapshots of the same image")
    listed = {r["name"]: r for r in c.parse_list(c.snapfs("list", store, "--bytes").stdout)}
    for n in ("a", "b"):
        for k in ("file_size", "data_bytes", "stored_bytes"):
            c.check_eq(listed[n][k], rows[n][k], f"list {k} of '{n}' vs snapshot_summary")


def case_store_files(ctx):
    store = ctx.store()
    c.check(os.path.isfile(store / "snapfs.db"), "a store holds snapfs.db")
    img = c.standard_image(ctx.path("mixed.img"), seed=35)
    c.snapfs("save", store, "x", img.path)
    extra = sorted(set(os.listdir(store)) - c.STORE_ENTRIES)
    c.check_eq(extra, [], "files in the store directory besides snapfs.db, its WAL, packs/ and claims")
    c.check((store / "packs").is_dir(), "a store with a snapshot has a packs/ folder")
    c.check_eq(c.pack_files(store), ["00000001.pack"], "pack files after one small save")
    c.check_pack_files(store, "after one save")
    # Every blob's bytes lie inside its pack's committed length, and no
    # two blobs overlap.
    rows = c.sql(store, "SELECT b.id, b.pack_offset, b.stored_size, p.length FROM blobs b "
                        "JOIN packs p ON p.id = b.pack_id ORDER BY b.pack_id, b.pack_offset")
    c.check_eq(len(rows), c.sql_value(store, "SELECT count(*) FROM blobs"),
               "blobs whose pack_id names a packs row")
    end = 0
    for r in rows:
        c.check(r["pack_offset"] >= end, f"blob {r['id']} overlaps the blob before it: {r!r}")
        end = r["pack_offset"] + r["stored_size"]
        c.check(end <= r["length"], f"blob {r['id']} ends past its pack's length: {r!r}")


def case_large_image_figures(ctx):
    # Figures over many blobs and runs.
    rng = random.Random(36)
    img = c.Image(ctx.path("big.img"), 40 * MIB)
    img.pages(0, 2048, "mixed", rng)
    img.pages(4096, 1024, "text", rng)
    img.pages(8192, 512, "random", rng)
    img.close()
    store = ctx.store()
    c.snapfs("save", store, "big", img.path)
    pages, data = c.page_stats(img.path)
    c.check_eq(c.sql_value(store, "SELECT data_bytes FROM snapshot_summary"), data, "data_bytes")
    c.check_eq(c.sql_value(store, "SELECT data_bytes FROM snapshots"), data,
               "snapshots.data_bytes")
    c.check_eq(c.sql_value(store, "SELECT sum(page_count) FROM page_map"), len(pages),
               "pages in page_map")


if __name__ == "__main__":
    c.main()
