# SPDX-License-Identifier: MIT
"""rm and gc: rm removes metadata at once, gc gives the space back (the
store's bytes on disk shrink: snapfs.db and its WAL plus the allocated
blocks of the pack files, where gc punches holes) and every remaining
snapshot still restores byte for byte; gc is safe while a mount reads; gc killed with SIGKILL at random
moments loses nothing still referenced."""

import os
import random
import signal
import subprocess
import threading
import time

from lifelib import MIB, PAGE, Mount, check, common, log, random_pages, restore_equals
from lifelib import snapfs, sql_value, write_pages


def pack_slack(store):
    """Allocated bytes of the pack files beyond what the live blobs need
    (each blob's bytes rounded out to whole 4 KiB blocks): what a gc that
    punched every dead byte leaves is 0."""
    live = 0
    for r in common.sql(store, "SELECT pack_offset AS o, stored_size AS n FROM blobs"):
        live += (r["o"] + r["n"] + PAGE - 1) // PAGE * PAGE - r["o"] // PAGE * PAGE
    packs = sum(common.allocated_bytes(store / "packs" / n) for n in common.pack_files(store))
    return packs - live


def make_images(ctx, count, pages=4096, seed=0):
    rng = random.Random(seed)
    paths = []
    for i in range(count):
        p = ctx.path(f"img{seed}-{i}")
        write_pages(p, pages * PAGE, random_pages(rng, pages, 0.8))
        paths.append(p)
    return paths


def case_rm_then_gc_reclaims(ctx):
    store = ctx.store()
    imgs = make_images(ctx, 4)
    for i, p in enumerate(imgs):
        snapfs("save", store, f"s{i}", p, "--quiet")
    stored = {r.split()[0]: int(r.split()[4])
              for r in snapfs("list", store, "--bytes", quiet=True).stdout.splitlines()[1:]}
    before = common.store_file_bytes(store)
    snapfs("rm", store, "s0", "s2")
    check(common.snapshot_names(store) == ["s1", "s3"], "rm removes from list at once")
    out = snapfs("gc", store).stdout
    after = common.store_file_bytes(store)
    freed = stored["s0"] + stored["s2"]
    log(f"gc: {out.strip()}; store (snapfs.db + WAL + packs' allocated bytes) "
        f"{before} -> {after} bytes, blobs of s0+s2: {freed}")
    check(before - after >= freed * 0.8,
          f"the store should shrink by about the removed blobs ({freed} bytes): {before} -> {after}")
    check(f"-> {after} bytes" in out, f"gc's 'after' figure should be the store's size {after}: {out!r}")
    common.check_pack_files(store, "after gc")
    slack = pack_slack(store)
    check(slack <= 0, f"gc left {slack} allocated bytes of dead blobs in the packs")
    for i in (1, 3):
        check(restore_equals(store, f"s{i}", imgs[i], ctx.tmp), f"s{i} restores byte-identical")
    snapfs("verify", store)
    check(sql_value(store, "SELECT count(*) FROM page_index WHERE blob_id NOT IN "
                           "(SELECT id FROM blobs)") == 0, "no stale content-index rows")
    # A second gc finds nothing to do.
    check("removed 0 unused blobs" in snapfs("gc", store).stdout, "gc twice")


def case_shared_pages_survive(ctx):
    """rm of a parent: the child's pages (shared blobs) stay."""
    store = ctx.store()
    [a] = make_images(ctx, 1, seed=5)
    snapfs("save", store, "parent", a, "--quiet")
    snapfs("save", store, "child", a, "--parent", "parent", "--quiet")
    snapfs("rm", store, "parent")
    check(sql_value(store, "SELECT coalesce(parent_id, 'NULL') FROM snapshots WHERE name='child'") == "NULL",
          "child's parent_id becomes NULL")
    snapfs("gc", store)
    check(restore_equals(store, "child", a, ctx.tmp), "child restores after parent rm + gc")
    snapfs("verify", store)


def case_gc_while_mounted(ctx):
    store = ctx.store()
    imgs = make_images(ctx, 3, seed=7)
    for i, p in enumerate(imgs):
        snapfs("save", store, f"s{i}", p, "--quiet")
    expected = imgs[1].read_bytes()
    errors = []
    stop = threading.Event()
    with Mount(store, ctx.path("mnt")) as m:
        def reader():
            rng = random.Random(1)
            path = m.mnt / "s1" / "memory"
            while not stop.is_set():
                off = rng.randrange(len(expected) // PAGE) * PAGE
                try:
                    with open(path, "rb") as f:
                        f.seek(off)
                        got = f.read(PAGE * 4)
                except OSError as e:
                    errors.append(f"read at {off}: {e}")
                    return
                if got != expected[off:off + PAGE * 4]:
                    errors.append(f"wrong bytes at {off}")
                    return
        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        snapfs("rm", store, "s0", "s2")
        snapfs("gc", store)
        time.sleep(0.5)
        stop.set()
        for t in threads:
            t.join()
        check(not errors, f"reads during gc: {errors[:3]}")
        check(sorted(os.listdir(m.mnt)) == ["s1"], "removed snapshots leave the mount")
    check(restore_equals(store, "s1", imgs[1], ctx.tmp), "s1 after gc")


def case_gc_killed(ctx):
    store = ctx.store()
    keep = make_images(ctx, 2, seed=11)
    for i, p in enumerate(keep):
        snapfs("save", store, f"keep{i}", p, "--quiet")
    garbage = make_images(ctx, 2, pages=8192, seed=12)
    rng = random.Random(3)
    kills = 0
    for round_ in range(20):
        for i, p in enumerate(garbage):
            snapfs("save", store, f"junk{round_}-{i}", p, "--quiet")
            # Different content each round so gc has blobs to delete.
            with open(p, "r+b") as f:
                f.seek(rng.randrange(8192) * PAGE)
                f.write(rng.randbytes(PAGE))
        snapfs("rm", store, *[f"junk{round_}-{i}" for i in range(len(garbage))], quiet=True)
        proc = subprocess.Popen([common.SNAPFS, "gc", str(store), "--quiet"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(rng.uniform(0, 0.25))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            kills += 1
        proc.wait()
        common.integrity_ok(store)  # fails the case unless "ok"
        check(common.snapshot_names(store) == ["keep0", "keep1"], f"round {round_}: snapshots")
    log(f"{kills} of 20 gc runs killed mid-way")
    snapfs("verify", store)
    for i, p in enumerate(keep):
        check(restore_equals(store, f"keep{i}", p, ctx.tmp), f"keep{i} after killed gcs")
    snapfs("gc", store)
    snapfs("verify", store)
    # A whole gc after killed ones gives back everything they left behind:
    # no stray pack file, no dead bytes still allocated.
    common.check_pack_files(store, "after killed gcs and a whole one")
    slack = pack_slack(store)
    check(slack <= 0, f"after killed gcs and a whole one, {slack} allocated bytes of dead "
                      "blobs remain in the packs")


common.main()
