#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The daemon's memory while something reads a large snapshot in order.

A 192 MiB image (text-like and random pages) is read through a mount with
the default 128 MiB cache by `cmp` against its source, twice, from cold:
the bytes are equal, and the daemon's peak RSS (VmHWM) stays under 96 MiB,
because blobs decoded for a sequential reader are dropped soon after use
(the kernel's page cache holds what was read) instead of filling the
cache. Random 4 KiB reads at 2,000 places then return the source's bytes.
Under a sanitizer build the RSS bound is not checked (shadow memory,
quarantine).
"""
import os
import random

from mountlib import Mount, check, drop_cache, log, main, pread_all, run, save

MiB = 1 << 20
IMAGE_MIB = 192
RSS_BOUND_MIB = 96


def make_source(path, seed):
    rng = random.Random(seed)
    words = [bytes(rng.choices(b"abcdefghijklmnopqrstuvwxyz", k=rng.randrange(2, 9)))
             for _ in range(500)]
    with open(path, "wb") as f:
        for mib in range(IMAGE_MIB):
            if mib % 3 == 0:
                f.write(rng.randbytes(MiB))
            else:
                text = b" ".join(rng.choices(words, k=MiB // 4))
                f.write(text[:MiB].ljust(MiB, b"."))


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    src = os.path.join(work, "big.img")
    make_source(src, 5)
    save(store, "big", src)
    mnt = os.path.join(work, "mnt")
    mem = os.path.join(mnt, "big", "memory")
    with Mount(store, mnt) as m:
        for _ in range(2):
            drop_cache(mem)
            run(["cmp", src, mem])
        hwm = peak_rss_mib(m.proc.pid)
        log(f"{IMAGE_MIB} MiB read in order twice: equal; daemon peak RSS {hwm:.1f} MiB")
        if os.environ.get("SNAPFS_SANITIZED") == "1":
            log("sanitizer build: the RSS bound is not checked")
        else:
            check(hwm < RSS_BOUND_MIB,
                  f"daemon peak RSS {hwm:.1f} MiB after sequential reads, "
                  f"expected < {RSS_BOUND_MIB} (cache 128 MiB)")
        rng = random.Random(8)
        size = IMAGE_MIB * MiB
        with open(src, "rb") as f:
            for _ in range(2000):
                off = rng.randrange(size // 4096) * 4096
                f.seek(off)
                want = f.read(4096)
                check(pread_all(mem, off, 4096) == want, f"4 KiB at {off:#x} differs")
        log("2000 random 4 KiB reads equal the source")
        m.unmount()


main(test)
