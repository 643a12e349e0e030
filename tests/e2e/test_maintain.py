#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""diff, verify and gc from the command line: diff's `0xSTART 0xEND STATUS`
lines and --json; verify exit 0 on a sound store and 3 on damage (a blob's
bytes zeroed in its pack file, or a page-map row changed with sqlite3),
restore of damaged data failing with exit 1 and no output; gc deleting only
unused blobs and giving space back (snapfs.db + WAL + the pack files'
allocated blocks shrink)."""

import random
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB  # noqa: E402


def two_images(ctx):
    """a.img and b.img (b: pages 3-4 and 100 changed, 40 zeroed, 2000-2001
    added where a has a hole)."""
    rng = random.Random(101)
    a = c.Image(ctx.path("a.img"), 16 * MIB)
    a.pages(0, 256, "text", rng)
    a.pages(512, 64, "random", rng)
    a.close()
    b = ctx.path("b.img")
    shutil.copyfile(a.path, b)
    with open(b, "r+b") as f:
        for p in (3, 4, 100):
            f.seek(p * PAGE)
            f.write(c.random_page(rng))
        f.seek(40 * PAGE)
        f.write(bytes(PAGE))
        f.seek(2000 * PAGE)
        f.write(c.random_page(rng) + c.random_page(rng))
    return a.path, b


def case_diff(ctx):
    a, b = two_images(ctx)
    store = ctx.store()
    c.snapfs("save", store, "a", a)
    c.snapfs("save", store, "b", b, "--parent", "a")
    out = c.snapfs("diff", store, "a", "b").stdout
    want = [
        (3 * PAGE, 5 * PAGE, "changed"),
        (40 * PAGE, 41 * PAGE, "removed"),
        (100 * PAGE, 101 * PAGE, "changed"),
        (2000 * PAGE, 2002 * PAGE, "added"),
    ]
    c.check_eq(out.splitlines(), [f"0x{s:x} 0x{e:x} {st}" for s, e, st in want],
               "diff a b lines")
    js = c.parse_json(c.snapfs("diff", store, "a", "b", "--json").stdout, "diff --json")
    c.check_eq(js, [{"start": s, "end": e, "status": st} for s, e, st in want], "diff --json")
    # The other way round, added and removed swap.
    back = c.snapfs("diff", store, "b", "a").stdout.splitlines()
    swap = {"added": "removed", "removed": "added", "changed": "changed"}
    c.check_eq(back, [f"0x{s:x} 0x{e:x} {swap[st]}" for s, e, st in want], "diff b a lines")
    c.snapfs("save", store, "a2", a)
    c.check_eq(c.snapfs("diff", store, "a", "a2").stdout, "", "diff of two equal snapshots")
    c.check_eq(c.parse_json(c.snapfs("diff", store, "a", "a2", "--json").stdout, "diff --json"),
               [], "diff --json of two equal snapshots")
    cp = c.snapfs("diff", store, "a", "nope", expect=c.EXIT_FAILED)
    c.check_error_message(cp, "nope")
    cp = c.snapfs("diff", store, "a", expect=c.EXIT_USAGE)
    c.check_error_message(cp)


def blob_only_in(store, name, other):
    rows = c.sql(store, f"""
        SELECT DISTINCT m.blob_id FROM page_map m JOIN snapshots s ON s.id = m.snapshot_id
         WHERE s.name = '{name}' AND m.blob_id NOT IN (
               SELECT m2.blob_id FROM page_map m2 JOIN snapshots s2 ON s2.id = m2.snapshot_id
                WHERE s2.name = '{other}')
         ORDER BY m.blob_id LIMIT 1""")
    c.check(rows, f"no blob used by '{name}' alone")
    return rows[0]["blob_id"]


def damage_store(ctx):
    rng = random.Random(102)
    x = c.Image(ctx.path("x.img"), 4 * MIB)
    x.pages(0, 256, "mixed", rng)
    x.close()
    y = c.Image(ctx.path("y.img"), 4 * MIB)
    y.pages(100, 200, "text", rng)
    y.close()
    store = ctx.store()
    c.snapfs("save", store, "x", x.path)
    c.snapfs("save", store, "y", y.path)
    return store, x.path, y.path


def case_verify_sound_store(ctx):
    store, _, _ = damage_store(ctx)
    c.snapfs("verify", store)
    c.snapfs("verify", store, "x")
    c.snapfs("verify", store, "--quiet")
    cp = c.snapfs("verify", store, "nope", expect=c.EXIT_FAILED)
    c.check_error_message(cp, "nope")


def case_verify_damaged_blob(ctx):
    store, x, y = damage_store(ctx)
    blob = blob_only_in(store, "x", "y")
    # Zero the stored bytes of one blob of x in its pack, keeping its length.
    c.damage_blob(store, blob, "zero")
    cp = c.snapfs("verify", store, expect=c.EXIT_DAMAGE)
    err = c.stderr_text(cp)
    c.check(err.startswith("snapfs: ") and all(l.startswith("snapfs: ") for l in err.splitlines()),
            f"verify's report lines must start with 'snapfs: ': {err!r}")
    c.check("x" in err, f"verify's report should name snapshot 'x': {err!r}")
    c.check(f"blob {blob}" in err, f"verify's report should name blob {blob}: {err!r}")
    c.snapfs("verify", store, "x", expect=c.EXIT_DAMAGE)
    c.snapfs("verify", store, "y")
    out = ctx.path("x.out")
    cp = c.snapfs("restore", store, "x", out, expect=c.EXIT_FAILED)
    c.check_error_message(cp, "x")
    c.check(not out.exists(), "restore of damaged data left an output file")
    c.check_eq(sorted(p.name for p in ctx.path().iterdir()), ["store", "x.img", "y.img"],
               "files after the failed restore (no temporary files)")
    yout = ctx.path("y.out")
    c.snapfs("restore", store, "y", yout)
    c.cmp_files(y, yout)


def case_verify_damaged_page_map(ctx):
    store, x, y = damage_store(ctx)
    # Point one run of y at another slot: run hashes must catch it.
    c.sql(store, """UPDATE page_map SET slot = CASE WHEN slot > 0 THEN slot - 1 ELSE slot + 1 END
                     WHERE (snapshot_id, first_page) = (
                           SELECT m.snapshot_id, m.first_page FROM page_map m
                             JOIN snapshots s ON s.id = m.snapshot_id
                            WHERE s.name = 'y' ORDER BY m.first_page LIMIT 1)""")
    c.snapfs("verify", store, expect=c.EXIT_DAMAGE)
    c.snapfs("verify", store, "y", expect=c.EXIT_DAMAGE)
    out = ctx.path("y.out")
    c.snapfs("restore", store, "y", out, expect=c.EXIT_FAILED)
    c.check(not out.exists(), "restore of a damaged page map left an output file")


def case_verify_not_a_database(ctx):
    store, _, _ = damage_store(ctx)
    db = store / "snapfs.db"
    with open(db, "r+b") as f:
        f.seek(0)
        f.write(b"this is not an sqlite database at all")
    for suffix in ("-wal", "-shm"):
        p = Path(str(db) + suffix)
        if p.exists():
            p.unlink()
    cp = c.snapfs("verify", store, expect=c.EXIT_DAMAGE)
    c.check_error_message(cp)


def case_gc(ctx):
    rng = random.Random(103)
    big = c.Image(ctx.path("big.img"), 16 * MIB)
    big.pages(0, 4096, "random", rng)
    big.close()
    keep = c.standard_image(ctx.path("keep.img"), seed=104)
    store = ctx.store()
    c.snapfs("save", store, "keep", keep.path)
    keep_blobs = c.sql_value(store, "SELECT count(*) FROM blobs")
    c.snapfs("save", store, "big", big.path)
    c.sql(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    size_full = c.store_file_bytes(store)
    c.snapfs("rm", store, "big")
    c.check(c.sql_value(store, "SELECT count(*) FROM blobs") > keep_blobs,
            "rm deleted blobs (SPEC: they stay until gc)")
    gc_out = c.snapfs("gc", store).stdout
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM blobs"), keep_blobs,
               "blobs left after gc (those of 'keep')")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM blobs WHERE id NOT IN "
                                  "(SELECT blob_id FROM page_map)"), 0, "unused blobs after gc")
    c.check_pack_files(store, "after gc")
    m = re.search(r"store file (\d+) -> (\d+) bytes", gc_out)
    c.check(m, f"gc should report the store's size before and after: {gc_out!r}")
    c.check_eq(int(m.group(2)), c.store_file_bytes(store),
               "gc's 'after' figure vs snapfs.db + WAL + allocated bytes of packs/")
    c.sql(store, "PRAGMA wal_checkpoint(TRUNCATE)")
    size_gc = c.store_file_bytes(store)
    c.log(f"store (snapfs.db + WAL + packs' allocated bytes): {size_full} bytes with "
          f"'big', {size_gc} after rm + gc")
    c.check(size_gc <= size_full - 8 * MIB,
            f"gc gave back too little: {size_full} -> {size_gc} bytes after removing 16 MiB "
            "of incompressible data")
    c.integrity_ok(store)
    out = ctx.path("keep.out")
    c.snapfs("restore", store, "keep", out)
    c.cmp_files(keep.path, out)
    # The pages can be saved again after gc (the content index must not
    # point at deleted blobs).
    c.snapfs("save", store, "big", big.path)
    out = ctx.path("big.out")
    c.snapfs("restore", store, "big", out)
    c.cmp_files(big.path, out)
    c.snapfs("verify", store)


if __name__ == "__main__":
    c.main()
