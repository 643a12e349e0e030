#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Dedup: an image whose pages repeat stores far less than its data; the
same image saved twice under two names adds almost nothing; a child saved
with --parent after a few pages changed adds about those pages and shares
the rest (checked by joining page_map rows on blob_id and slot)."""

import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB  # noqa: E402


def blob_totals(store):
    r = c.sql(store, "SELECT count(*) AS n, coalesce(sum(stored_size), 0) AS bytes FROM blobs")[0]
    return r["n"], r["bytes"]


def case_repeating_pages(ctx):
    # 32 MiB of data made of 16 distinct random (incompressible) pages:
    # compression cannot explain a small store, only dedup can.
    rng = random.Random(41)
    distinct = [c.random_page(rng) for _ in range(16)]
    src = ctx.path("repeat.img")
    with open(src, "wb") as f:
        for i in range(32 * MIB // PAGE):
            f.write(distinct[rng.randrange(len(distinct))])
    store = ctx.store()
    c.snapfs("save", store, "rep", src)
    s = c.sql(store, "SELECT data_bytes, stored_bytes FROM snapshot_summary")[0]
    c.check_eq(s["data_bytes"], 32 * MIB, "data_bytes of the repeating image")
    _, blob_bytes = blob_totals(store)
    c.log(f"data {s['data_bytes']} bytes, stored {s['stored_bytes']}, blobs {blob_bytes}")
    c.check(s["stored_bytes"] <= 1 * MIB,
            f"32 MiB of 16 distinct random pages stored as {s['stored_bytes']} bytes "
            "(expected well under 1 MiB): pages are not deduplicated")
    c.check(blob_bytes <= 1 * MIB, f"blobs hold {blob_bytes} bytes for 16 distinct pages")
    slots = c.sql_value(store, "SELECT sum(page_count) FROM blobs")
    c.check(slots <= 64, f"{slots} page slots stored for 16 distinct pages")
    out = ctx.path("rep.out")
    c.snapfs("restore", store, "rep", out)
    c.cmp_files(src, out)


def case_same_image_twice(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=42, end_in_data=True)
    store = ctx.store()
    c.snapfs("save", store, "first", img.path)
    n1, b1 = blob_totals(store)
    c.snapfs("save", store, "second", img.path)
    n2, b2 = blob_totals(store)
    c.log(f"blobs: {n1} ({b1} bytes) after the first save, {n2} ({b2} bytes) after the second")
    c.check(b2 - b1 <= max(b1 // 100, 4096),
            f"saving the same image again added {b2 - b1} blob bytes (first save: {b1})")
    c.check(n2 - n1 <= 1, f"saving the same image again added {n2 - n1} blobs")
    for name in ("first", "second"):
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(img.path, out)


def case_same_image_twice_file_growth(ctx):
    # The database file (after a checkpoint) grows by metadata only.
    rng = random.Random(43)
    img = c.Image(ctx.path("data.img"), 16 * MIB)
    img.pages(0, 4096, "random", rng)
    img.close()
    store = ctx.store()
    c.snapfs("save", store, "first", img.path)
    c.sql(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    size1 = os.path.getsize(store / "snapfs.db")
    c.snapfs("save", store, "second", img.path)
    c.sql(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    size2 = os.path.getsize(store / "snapfs.db")
    c.log(f"snapfs.db: {size1} bytes after the first save, {size2} after the second")
    c.check(size2 - size1 <= 1 * MIB,
            f"a second save of the same 16 MiB of data grew snapfs.db by {size2 - size1} bytes")


def case_parent_shares_pages(ctx):
    rng = random.Random(44)
    img = c.Image(ctx.path("v1.img"), 16 * MIB)
    img.pages(0, 1024, "text", rng)
    img.pages(1024, 1024, "random", rng)
    img.pages(3072, 512, "mixed", rng)
    img.close()
    v2 = ctx.path("v2.img")
    shutil.copyfile(img.path, v2)
    changed = sorted(rng.sample(range(0, 2048), 20))
    with open(v2, "r+b") as f:
        for p in changed:
            f.seek(p * PAGE)
            f.write(c.random_page(rng))
    store = ctx.store()
    c.snapfs("save", store, "v1", img.path)
    n1, b1 = blob_totals(store)
    c.snapfs("save", store, "v2", v2, "--parent", "v1")
    n2, b2 = blob_totals(store)
    c.log(f"v2 added {n2 - n1} blobs, {b2 - b1} bytes for {len(changed)} changed pages")
    c.check(b2 - b1 <= len(changed) * PAGE * 2 + 64 * 1024,
            f"child with {len(changed)} changed pages added {b2 - b1} blob bytes")
    c.check_eq(c.sql(store, "SELECT p.name AS parent FROM snapshots s JOIN snapshots p "
                            "ON p.id = s.parent_id WHERE s.name = 'v2'"),
               [{"parent": "v1"}], "v2's parent")

    # Pages at the same offset, backed by the same blob slot in both.
    shared = c.sql_value(store, """
        SELECT coalesce(sum(max(0,
                   min(a.first_page + a.page_count, b.first_page + b.page_count)
                   - max(a.first_page, b.first_page))), 0)
          FROM page_map a
          JOIN page_map b ON b.blob_id = a.blob_id
                         AND b.slot - b.first_page = a.slot - a.first_page
         WHERE a.snapshot_id = (SELECT id FROM snapshots WHERE name = 'v1')
           AND b.snapshot_id = (SELECT id FROM snapshots WHERE name = 'v2')
           AND a.first_page < b.first_page + b.page_count
           AND b.first_page < a.first_page + a.page_count""")
    pages_v1, _ = c.page_stats(img.path)
    c.log(f"v1 has {len(pages_v1)} data pages, {shared} shared with v2 at the same offset")
    c.check_eq(shared, len(pages_v1) - len(changed),
               "pages shared by v1 and v2 (same offset, same blob slot)")

    for name, path in (("v1", img.path), ("v2", v2)):
        out = ctx.path(f"{name}.out")
        c.snapfs("restore", store, name, out)
        c.cmp_files(path, out)


def case_store_wide_dedup_without_parent(ctx):
    # Two unrelated names, the second image holding the first's pages at
    # other offsets: shared through the content index, not by --parent.
    rng = random.Random(45)
    a = c.Image(ctx.path("a.img"), 8 * MIB)
    a.pages(0, 1024, "random", rng)
    a.close()
    b = ctx.path("b.img")
    data = a.path.read_bytes()[:1024 * PAGE]
    with open(b, "wb") as f:
        f.truncate(12 * MIB)
        f.seek(3 * MIB + 5 * PAGE)
        f.write(data)
    store = ctx.store()
    c.snapfs("save", store, "a", a.path)
    _, b1 = blob_totals(store)
    c.snapfs("save", store, "b", b)
    _, b2 = blob_totals(store)
    c.check(b2 - b1 <= 64 * 1024,
            f"an image of the same 4 MiB of pages at another offset added {b2 - b1} blob bytes")
    out = ctx.path("b.out")
    c.snapfs("restore", store, "b", out)
    c.cmp_files(b, out)


if __name__ == "__main__":
    c.main()
