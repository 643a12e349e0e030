# SPDX-License-Identifier: MIT
"""Crashes lose nothing: save, rm and the mount daemon are killed with
SIGKILL at random moments, 20 rounds each (gc: test_gc.py). After every
round PRAGMA integrity_check is ok, no partial snapshot is visible, and
after all rounds verify passes and every snapshot restores byte for byte."""

import os
import random
import signal
import subprocess
import time

from lifelib import PAGE, Mount, check, common, log, random_pages, restore_equals, run
from lifelib import snapfs, write_pages

ROUNDS = 20


def images(ctx, count, pages, seed):
    rng = random.Random(seed)
    out = []
    for i in range(count):
        p = ctx.path(f"img{seed}-{i}")
        write_pages(p, pages * PAGE, random_pages(rng, pages, 0.9))
        out.append(p)
    return out


def kill_at_random(args, rng, max_delay):
    proc = subprocess.Popen([str(a) for a in args], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    time.sleep(rng.uniform(0, max_delay))
    killed = proc.poll() is None
    if killed:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
    return killed


def case_save_killed(ctx):
    store = ctx.store()
    keep = images(ctx, 2, 2048, seed=1)
    for i, p in enumerate(keep):
        snapfs("save", store, f"keep{i}", p, "--quiet")
    [big] = images(ctx, 1, 16384, seed=2)  # 64 MiB, most of it data
    # A slow codec level keeps each save running long enough that the
    # kills land mid-save even on a loaded machine.
    slow = ("--level", "12")
    t0 = time.monotonic()
    snapfs("save", store, "probe", big, "--quiet", *slow)
    duration = time.monotonic() - t0
    snapfs("rm", store, "probe")
    snapfs("gc", store, "--quiet")  # so that later saves store anew, not dedup
    rng = random.Random(5)
    killed = 0
    for r in range(ROUNDS):
        killed += kill_at_random([common.SNAPFS, "save", store, f"victim{r}", big, "--quiet",
                                  *slow], rng, duration * 0.9)
        common.integrity_ok(store)
        names = common.snapshot_names(store)
        visible = [n for n in names if n.startswith("victim")]
        # A save either completed (listed, whole) or left no trace.
        for n in visible:
            check(restore_equals(store, n, big, ctx.tmp), f"{n} completed, so it must be whole")
            snapfs("rm", store, n)
            snapfs("gc", store, "--quiet")
    log(f"{killed} of {ROUNDS} saves killed mid-way")
    check(killed >= ROUNDS // 2, "most rounds should kill a running save")
    snapfs("verify", store)
    for i, p in enumerate(keep):
        check(restore_equals(store, f"keep{i}", p, ctx.tmp), f"keep{i} after killed saves")
    snapfs("save", store, "victim0", big, "--quiet")  # the name is free again
    check(restore_equals(store, "victim0", big, ctx.tmp), "a save after the kills")


def case_rm_killed(ctx):
    store = ctx.store()
    imgs = images(ctx, 2, 4096, seed=3)
    rng = random.Random(6)
    killed = 0
    for r in range(ROUNDS):
        snapfs("save", store, f"s{r}", imgs[r % 2], "--quiet")
        snapfs("save", store, f"t{r}", imgs[(r + 1) % 2], "--quiet")
        killed += kill_at_random([common.SNAPFS, "rm", store, f"s{r}", f"t{r}"], rng, 0.05)
        common.integrity_ok(store)
        names = set(common.snapshot_names(store))
        # rm is all or nothing.
        check(({f"s{r}", f"t{r}"} <= names) or not ({f"s{r}", f"t{r}"} & names),
              f"round {r}: rm of two snapshots must be all or nothing: {sorted(names)}")
    log(f"{killed} of {ROUNDS} rm runs killed mid-way")
    snapfs("verify", store)
    for n in common.snapshot_names(store):
        r = int(n[1:])
        img = imgs[r % 2] if n[0] == "s" else imgs[(r + 1) % 2]
        check(restore_equals(store, n, img, ctx.tmp), f"{n} after killed rms")


def case_mount_killed(ctx):
    store = ctx.store()
    imgs = images(ctx, 2, 4096, seed=4)
    for i, p in enumerate(imgs):
        snapfs("save", store, f"s{i}", p, "--quiet")
    expected = imgs[0].read_bytes()
    mnt = ctx.path("mnt")
    mnt.mkdir()
    rng = random.Random(7)
    for r in range(ROUNDS):
        daemon = subprocess.Popen([common.SNAPFS, "mount", str(store), str(mnt), "-f"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(200):
            if os.path.ismount(mnt):
                break
            time.sleep(0.02)
        check(os.path.ismount(mnt), f"round {r}: mounted")
        reader = subprocess.Popen(["cat", str(mnt / "s0" / "memory")], stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(0, 0.1))
        daemon.send_signal(signal.SIGKILL)
        daemon.wait()
        reader.wait()
        run(["fusermount3", "-u", mnt], quiet=True)
        if os.path.ismount(mnt):
            run(["fusermount3", "-uz", mnt], quiet=True)
        check(not os.path.ismount(mnt), f"round {r}: a dead mount can be unmounted")
        common.integrity_ok(store)
    with Mount(store, mnt) as m:
        with open(m.mnt / "s0" / "memory", "rb") as f:
            check(f.read() == expected, "reads after 20 killed daemons")
    snapfs("verify", store)


common.main()
