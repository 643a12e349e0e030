#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A store with 1,000 snapshots mounts and lists quickly.

1,000 snapshots are saved with the real CLI (a handful of distinct small
images, so most pages are shared). Then: the mount comes up, `ls` lists
exactly the 1,000 names in order, `ls -l` stats them all, and a sample of
memory files compares equal to their sources. The times are printed (no
timing is asserted: machines differ), along with the time to notice one
more snapshot saved while mounted.
"""
import os
import random
import time

from mountlib import (SNAPFS, Mount, check, log, main, make_image, run,
                      wait_for)

COUNT = 1000


def test(work):
    store = os.path.join(work, "store")
    run([SNAPFS, "init", store])
    sources = []
    for i in range(5):
        src = os.path.join(work, f"img{i}")
        make_image(src, 8 + 4 * i, 500 + i, 100 * i)
        sources.append(src)
    names = {}
    t0 = time.monotonic()
    for i in range(COUNT):
        name = f"snap-{(i * 7919) % COUNT:04d}"   # not saved in name order
        names[name] = sources[i % len(sources)]
        run([SNAPFS, "save", store, name, names[name], "--quiet"])
    log(f"saved {COUNT} snapshots in {time.monotonic() - t0:.1f} s")
    check(len(names) == COUNT, "duplicate names")

    mnt = os.path.join(work, "mnt")
    t0 = time.monotonic()
    with Mount(store, mnt) as m:
        mounted = time.monotonic() - t0
        t1 = time.monotonic()
        listed = run(["ls", mnt]).stdout.split()
        ls_time = time.monotonic() - t1
        check(listed == sorted(names), f"ls lists {len(listed)} names; "
              f"first {listed[:3]}, expected {sorted(names)[:3]}")
        t1 = time.monotonic()
        long = run(["ls", "-l", mnt]).stdout.splitlines()
        ls_l_time = time.monotonic() - t1
        check(len(long) == COUNT + 1, f"ls -l: {len(long)} lines")
        t1 = time.monotonic()
        for name in random.Random(1).sample(sorted(names), 25):
            run(["cmp", names[name], os.path.join(mnt, name, "memory")])
        cmp_time = time.monotonic() - t1
        run([SNAPFS, "save", store, "zz-one-more", sources[0], "--quiet"])
        t1 = time.monotonic()
        check(wait_for(lambda: "zz-one-more" in os.listdir(mnt), 5),
              "a snapshot saved while mounted did not appear")
        seen = time.monotonic() - t1
        m.unmount()
    log(f"{COUNT} snapshots: mount {mounted:.3f} s, first ls "
        f"{ls_time:.3f} s, ls -l {ls_l_time:.3f} s, 25 cmps "
        f"{cmp_time:.3f} s, new snapshot seen after {seen:.3f} s")


if __name__ == "__main__":
    main(test)
