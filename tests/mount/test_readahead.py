#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""-o read_ahead_kb=N and the bytes of large reads.

Bad values (read_ahead_kb=abc, =99999999, =-1, =65537, empty) exit 2
with "snapfs: mount 'STORE': option 'read_ahead_kb=...'", foreground and
background, nothing mounted and no daemon left behind.

As root: -o read_ahead_kb=1024 sets the mount's readahead window
(/sys/class/bdi/MAJ:MIN/read_ahead_kb reads 1024) and a cold sequential
read then reaches the daemon as 1 MiB requests (-d shows them); =0 and
=65536 are taken as given. Through mount.fuse3 -o drop_privileges (the
daemon gets /dev/fd/N, not the mountpoint) the window cannot be set: a
one-line warning, and the mount works.

The bytes: an image of single pages of every kind (holes, zero pages,
data), long holes of several MiB, long data extents and a partial last
page, read cold with dd bs=1M and bs=4k from the start and from unaligned
offsets (to the end, and counts that stop mid-page), each compared with
the same dd of the source by cmp; and the whole file with cmp.
"""
import os
import random
import subprocess

from mountlib import (PAGE, SNAPFS, Mount, as_root, check, daemon_pids,
                      drop_cache, is_snapfs_mount, log, main, make_image,
                      run, save, wait_for)

MiB = 1 << 20


def make_source(path, seed):
    """Pages of every kind, then a 5 MiB hole, a 3 MiB data extent, a
    2.5 MiB hole, more mixed pages and a partial last page."""
    rng = random.Random(seed)
    head = make_image(path, 600, seed)
    extent = rng.randbytes(3 * MiB)
    with open(path, "r+b") as f:
        at = len(head) + 5 * MiB
        f.seek(at)
        f.write(extent)
        at += len(extent) + 5 * MiB // 2
        tail = bytearray(rng.randbytes(300 * PAGE + 1234))
        for p in range(0, 300, 3):          # holes among the data
            tail[p * PAGE:(p + 1) * PAGE] = bytes(PAGE)
        f.seek(at)
        f.write(tail)
    return at + len(tail)


def bdi_read_ahead(mnt):
    st = os.stat(mnt)
    path = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
    with open(path) as f:
        return int(f.read())


def dd(path, out, bs, skip, count=None):
    argv = ["dd", f"if={path}", f"of={out}", f"bs={bs}", f"skip={skip}",
            "status=none", "iflag=skip_bytes,count_bytes"]
    if count is not None:
        argv.append(f"count={count}")
    run(argv)


def compare_dd(work, src, mem, size):
    """dd of the mount equals dd of the source, cold, at many offsets."""
    a, b = os.path.join(work, "a.out"), os.path.join(work, "b.out")
    rng = random.Random(9)
    cases = [(0, None), (1, None), (PAGE - 1, None), (MiB + 5, None),
             (size - 100, None), (size - PAGE - 1, None), (size, None)]
    cases += [(rng.randrange(size), rng.choice([1, 4095, 4097, MiB - 3, MiB + 7,
                                                3 * MiB + 11]))
              for _ in range(12)]
    n = 0
    for bs in ("1M", "4k"):
        for skip, count in cases:
            drop_cache(mem)
            dd(mem, a, bs, skip, count)
            dd(src, b, bs, skip, count)
            run(["cmp", a, b])
            n += 1
    drop_cache(mem)
    run(["cmp", src, mem])
    return n


def expect_bad(store, mnt, value):
    opt = f"read_ahead_kb={value}"
    for fg in (["-f"], []):
        argv = [SNAPFS, "mount", store, mnt, "-o", opt, *fg]
        p = subprocess.run(argv, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, encoding="utf-8",
                           errors="replace", timeout=30)
        want = f"snapfs: mount '{store}': option '{opt}': expected a whole number"
        check(p.returncode == 2, f"{' '.join(argv)}: exit {p.returncode}, "
              f"expected 2; stderr:\n{p.stderr}")
        check(p.stderr.strip().startswith(want),
              f"{' '.join(argv)}: stderr {p.stderr!r}, expected {want!r}...")
        check(not is_snapfs_mount(mnt), f"{opt}: something mounted")
        check(not daemon_pids(mnt), f"{opt}: a daemon was left behind")


def test(work):
    store = os.path.join(work, "store")
    run([SNAPFS, "init", store])
    src = os.path.join(work, "vm.img")
    size = make_source(src, 31)
    check(os.path.getsize(src) == size, "source size")
    save(store, "vm", src)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)
    mem = os.path.join(mnt, "vm", "memory")

    for value in ("abc", "99999999", "-1", "65537", "", "1k", "+5"):
        expect_bad(store, mnt, value)
    log("bad read_ahead_kb values: exit 2, clear message, nothing mounted")

    if not as_root("read_ahead_kb (writes /sys/class/bdi)"):
        with Mount(store, mnt) as m:
            n = compare_dd(work, src, mem, size)
            m.unmount()
        log(f"{n} dd reads equal the source")
        return

    with Mount(store, mnt, "-d", "-o", "read_ahead_kb=1024") as m:
        check(bdi_read_ahead(mnt) == 1024,
              f"read_ahead_kb reads {bdi_read_ahead(mnt)}, expected 1024")
        check("read_ahead_kb" not in m.stderr(),
              f"a warning as root: {m.stderr()!r}")
        drop_cache(mem)
        run(["dd", f"if={mem}", "of=/dev/null", "bs=1M", "status=none"])
        # A 1 MiB read reply: 16 bytes of header and the data.
        check(f"outsize: {MiB + 16}" in m.stderr(),
              "no 1 MiB read request reached the daemon")
        m.unmount()
    log("read_ahead_kb=1024: the window is 1024 KiB, requests 1 MiB")

    with Mount(store, mnt, "-o", "read_ahead_kb=1024") as m:
        n = compare_dd(work, src, mem, size)
        m.unmount()
    log(f"read_ahead_kb=1024: {n} dd reads (bs=1M, bs=4k) equal the source")

    for kb in (0, 65536):
        with Mount(store, mnt, "-o", f"read_ahead_kb={kb}") as m:
            check(bdi_read_ahead(mnt) == kb,
                  f"read_ahead_kb reads {bdi_read_ahead(mnt)}, expected {kb}")
            drop_cache(mem)
            run(["cmp", src, mem])
            m.unmount()
    log("read_ahead_kb=0 and =65536: taken as given")

    # mount.fuse3 -o drop_privileges hands the daemon /dev/fd/N.
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(SNAPFS)) + ":" + \
        env.get("PATH", "")
    p = run(["mount.fuse3", store, mnt, "-t", "fuse.snapfs", "-o",
             "ro,read_ahead_kb=1024,drop_privileges"], env=env)
    try:
        check(is_snapfs_mount(mnt), "drop_privileges: not mounted")
        want = f"snapfs: warning: mount '{store}': -o read_ahead_kb: "
        check(p.stderr.startswith(want) and len(p.stderr.splitlines()) == 1,
              f"drop_privileges: stderr {p.stderr!r}, expected one line "
              f"{want!r}...")
        run(["cmp", src, mem])
    finally:
        run(["umount", mnt], expect=None)
    check(wait_for(lambda: not is_snapfs_mount(mnt), 10),
          "drop_privileges: still mounted after umount")
    log(f"drop_privileges: warned ({p.stderr.strip()}), served")


if __name__ == "__main__":
    main(test)
