# SPDX-License-Identifier: MIT
"""snapfs verify and damage: a clean store verifies (exit 0); each kind of
damage (blob bytes zeroed, flipped or cut off in their pack file, a missing
pack file, a missing blob row, a page-map row pointing elsewhere,
overlapping segments, SQLite-level corruption) gives exit 3 and names the
snapshot or blob and the byte range; and flipping or zeroing random bytes
of the database file, or of the pack file, in many rounds never makes
restore return bytes that differ from what was saved."""

import os
import random
import shutil

from lifelib import PAGE, check, common, log, random_pages, run, snapfs, sql, write_pages


def saved_store(ctx, pages=1500, seed=1):
    store = ctx.store()
    rng = random.Random(seed)
    imgs = []
    for i in range(2):
        p = ctx.path(f"img{i}")
        write_pages(p, pages * PAGE + 77, random_pages(rng, pages, 0.6))
        snapfs("save", store, f"s{i}", p, "--quiet")
        imgs.append(p)
    return store, imgs


def expect_damage(store, *mentions):
    cp = run([common.SNAPFS, "verify", store], expect=3)
    err = common.stderr_text(cp)
    for m in mentions:
        check(m in err, f"verify's report should mention {m!r}: {err[:2000]!r}")
    return err


def case_clean(ctx):
    store, _ = saved_store(ctx)
    cp = snapfs("verify", store)
    check("ok" in cp.stdout, "verify prints ok")
    snapfs("verify", store, "s1")
    common.expect_error(["verify", store, "nope"], 1, "nope")
    common.expect_error(["verify", ctx.path("nostore")], 2, "snapfs init")


def first_blob_of(store, name):
    return common.sql_value(store, "SELECT blob_id FROM page_map WHERE snapshot_id = "
                                   f"(SELECT id FROM snapshots WHERE name='{name}') "
                                   "ORDER BY first_page LIMIT 1")


def case_blob_bytes(ctx):
    store, _ = saved_store(ctx)
    bid = first_blob_of(store, "s0")
    common.damage_blob(store, bid, "zero")
    err = expect_damage(store, f"blob {bid}", "s0", "0x")
    log(err)


def case_blob_byte_flipped(ctx):
    store, imgs = saved_store(ctx)
    bid = first_blob_of(store, "s1")
    common.damage_blob(store, bid, "flip", at=-1)  # its last byte
    expect_damage(store, f"blob {bid}", "s1", "0x")
    check(not check_restore_never_wrong(store, "s1", imgs[1], ctx.tmp),
          "restore of s1 with a flipped blob byte succeeded")


def case_pack_truncated(ctx):
    """The pack cut off inside the last blob: that blob (and only the
    snapshots using it) read as damage."""
    store, imgs = saved_store(ctx)
    bid = common.sql_value(store, "SELECT id FROM blobs ORDER BY pack_id DESC, pack_offset DESC LIMIT 1")
    common.damage_blob(store, bid, "truncate")
    expect_damage(store, f"blob {bid}", "0x")
    users = {r["name"] for r in common.sql(
        store, f"SELECT DISTINCT s.name FROM page_map m JOIN snapshots s ON s.id = m.snapshot_id "
               f"WHERE m.blob_id = {bid}")}
    for i, img in enumerate(imgs):
        ok = check_restore_never_wrong(store, f"s{i}", img, ctx.tmp)
        check(ok == (f"s{i}" not in users),
              f"restore of s{i} {'succeeded' if ok else 'failed'}; users of blob {bid}: {users}")


def case_pack_missing(ctx):
    store, imgs = saved_store(ctx)
    pack = common.pack_path(store, 1)
    check(pack.exists(), f"{pack} exists")
    pack.unlink()
    bid = first_blob_of(store, "s0")
    expect_damage(store, f"blob {bid}", "s0", "s1")
    for i, img in enumerate(imgs):
        check(not check_restore_never_wrong(store, f"s{i}", img, ctx.tmp),
              f"restore of s{i} without its pack file succeeded")


def case_pack_length_damaged(ctx):
    """packs.length set below the blobs it holds: verify names it, and
    neither gc nor the next save cut a single blob off."""
    store, imgs = saved_store(ctx)
    end = common.sql_value(store, "SELECT max(pack_offset + stored_size) FROM blobs")
    sql(store, "UPDATE packs SET length = 10")
    expect_damage(store, "pack 1", "past its recorded length")
    size = common.pack_path(store, 1).stat().st_size
    snapfs("gc", store, "--quiet")
    check(common.pack_path(store, 1).stat().st_size >= end,
          f"gc cut the pack to {common.pack_path(store, 1).stat().st_size} bytes, "
          f"below its last blob's end {end} (was {size})")
    more = ctx.path("more")
    write_pages(more, 64 * PAGE, random_pages(random.Random(5), 64, 1.0))
    snapfs("save", store, "more", more, "--quiet")
    for i, img in enumerate(imgs):
        check(check_restore_never_wrong(store, f"s{i}", img, ctx.tmp),
              f"s{i} lost bytes after packs.length was damaged and gc and save ran")


def case_stray_pack_removed_by_gc(ctx):
    """A pack file no row names (a killed save's new pack, a killed gc's
    unlink) is removed by gc; the others stay."""
    store, imgs = saved_store(ctx)
    stray = common.pack_path(store, 99)
    stray.write_bytes(os.urandom(100000))
    snapfs("gc", store, "--quiet")
    check(not stray.exists(), f"gc left the stray {stray}")
    check(common.pack_path(store, 1).exists(), "gc removed a live pack")
    snapfs("verify", store)
    for i, img in enumerate(imgs):
        check(check_restore_never_wrong(store, f"s{i}", img, ctx.tmp), f"restore of s{i}")


def case_missing_blob(ctx):
    store, _ = saved_store(ctx)
    sql(store, "PRAGMA foreign_keys = OFF; DELETE FROM blobs WHERE id = (SELECT max(blob_id) FROM page_map)")
    expect_damage(store, "cannot be read back intact")


def case_page_map_retargeted(ctx):
    store, _ = saved_store(ctx)
    sql(store, "UPDATE page_map SET blob_id = (SELECT min(id) FROM blobs) WHERE "
               "(snapshot_id, first_page) = (SELECT snapshot_id, max(first_page) FROM page_map "
               "WHERE snapshot_id = (SELECT id FROM snapshots WHERE name='s1'))")
    expect_damage(store, "s1", "0x")


def case_page_map_row_deleted(ctx):
    store, _ = saved_store(ctx)
    sql(store, "DELETE FROM page_map WHERE (snapshot_id, first_page) = "
               "(SELECT snapshot_id, first_page FROM page_map LIMIT 1 OFFSET 3)")
    expect_damage(store, "page map fails its digest")


def case_segments_overlap(ctx):
    store, _ = saved_store(ctx)
    sql(store, "INSERT INTO segments VALUES ((SELECT id FROM snapshots WHERE name='s0'), 4096, "
               "(SELECT max(end) FROM segments) + 8192, 'anonymous', 0, 1, NULL)")
    expect_damage(store, "s0", "overlaps")


def case_sqlite_corruption(ctx):
    store, _ = saved_store(ctx)
    db = common.db_path(store)
    with open(db, "r+b") as f:
        f.seek(0)
        f.write(b"\xff" * 100)  # the database header
    cp = run([common.SNAPFS, "verify", store], expect=3)
    check("snapfs: verify" in common.stderr_text(cp), "a one-line report")


def check_restore_never_wrong(store, name, image, tmp):
    """restore of name either fails or writes exactly the image."""
    out = os.path.join(tmp, f"out-{name}")
    cp = run([common.SNAPFS, "restore", store, name, out, "--quiet", "--force"], quiet=True)
    if cp.returncode == 0:
        with open(out, "rb") as a, open(image, "rb") as b:
            if a.read() != b.read():
                common.fail(f"restore of damaged {name} exited 0 with wrong bytes")
        os.unlink(out)
        return True
    if "\ufffd" in common.stderr_text(cp):
        log(f"restore of damaged {name}: stderr is not UTF-8: {common.stderr_text(cp)!r}")
    check(cp.returncode in (1, 2), f"restore of damaged store: exit {cp.returncode}")
    check(not os.path.exists(out), "a failed restore leaves no output")
    return False


def case_random_damage_rounds(ctx):
    """Many rounds of flipped or zeroed bytes anywhere in the database."""
    store, imgs = saved_store(ctx, pages=600, seed=4)
    pristine = ctx.path("pristine.db")
    shutil.copyfile(common.db_path(store), pristine)
    rng = random.Random(99)
    outcomes = {"intact": 0, "refused": 0}
    verify_codes = {}
    for round_ in range(60):
        db = str(common.db_path(store))
        shutil.copyfile(pristine, db)
        for suffix in ("-wal", "-shm"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        size = os.path.getsize(pristine)
        with open(common.db_path(store), "r+b") as f:
            for _ in range(rng.randint(1, 8)):
                off = rng.randrange(size)
                f.seek(off)
                if rng.random() < 0.5:
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
                else:
                    f.write(bytes(rng.randint(1, 64)))
        for i, img in enumerate(imgs):
            ok = check_restore_never_wrong(store, f"s{i}", img, ctx.tmp)
            outcomes["intact" if ok else "refused"] += 1
        code = run([common.SNAPFS, "verify", store, "--quiet"], quiet=True).returncode
        verify_codes[code] = verify_codes.get(code, 0) + 1
        check(code in (0, 2, 3), f"round {round_}: verify exit {code}")
    log(f"restores: {outcomes}; verify exit codes: {verify_codes}")


def case_random_pack_damage_rounds(ctx):
    """Many rounds of flipped or zeroed bytes anywhere in the pack file:
    restore gives the saved bytes or fails, never wrong bytes, and verify
    finds every damage that made a restore fail."""
    store, imgs = saved_store(ctx, pages=600, seed=5)
    pack = common.pack_path(store, 1)
    pristine = ctx.path("pristine.pack")
    shutil.copyfile(pack, pristine)
    size = os.path.getsize(pristine)
    rng = random.Random(98)
    outcomes = {"intact": 0, "refused": 0}
    for round_ in range(40):
        shutil.copyfile(pristine, pack)
        with open(pack, "r+b") as f:
            for _ in range(rng.randint(1, 4)):
                off = rng.randrange(size)
                f.seek(off)
                if rng.random() < 0.5:
                    b = f.read(1)
                    f.seek(off)
                    f.write(bytes([b[0] ^ (1 << rng.randrange(8))]))
                else:
                    f.write(bytes(rng.randint(1, 64)))
        refused = 0
        for i, img in enumerate(imgs):
            ok = check_restore_never_wrong(store, f"s{i}", img, ctx.tmp)
            outcomes["intact" if ok else "refused"] += 1
            refused += not ok
        code = run([common.SNAPFS, "verify", store, "--quiet"], quiet=True).returncode
        check(code in (0, 3), f"round {round_}: verify exit {code}")
        check(code == 3 or refused == 0,
              f"round {round_}: {refused} restores failed but verify exits {code}")
    shutil.copyfile(pristine, pack)
    snapfs("verify", store)
    log(f"restores: {outcomes}")
    check(outcomes["refused"] > 0, "no round of pack damage was ever noticed")


common.main()
