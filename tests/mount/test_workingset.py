#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Working sets: record with -o record, prefetch on the next mount.

A mount with `-o record,read_ahead_kb=0` (no readahead: every fault is a
4 KiB read of exactly the page touched) sees a known list of pages touched
through a MAP_PRIVATE mapping, as a VMM touches guest RAM; at unmount the
`working_set` table holds them as runs in first-touch order (checked with
the sqlite3 shell). A second mount without options pushes those pages into
the page cache before open() of the memory file returns: mincore() on a
MAP_SHARED mapping that never touches them shows them resident, and the
bytes read through MAP_PRIVATE equal the image. With -o prefetch_wait=0
they come after the open returned; under -o private_rw an O_RDWR open
prefetches nothing until its first fault, and the pages pushed then stay.
With -o noprefetch nothing is pushed. A window of -o record=1 leaves out pages read after it. `snapfs
workingset` lists the runs and --clear removes them; `snapfs info` counts
the pages. `snapfs rm` removes the record with the snapshot. Bad -o record
and -o prefetch_wait values are refused.
"""
import ctypes
import errno
import json
import mmap
import os
import re
import time

from mountlib import (PAGE, Mount, blob_place, check, damage_blob, log, main,
                      make_image, run, save, snapfs, wait_for)

PAGES = 2048
# Pages touched, in this order (702 twice: it counts once).
TOUCH = [700, 701, 702, 10, 11, 1500, 3, 702, 1999, 1998]
# The runs they make, in first-touch order.
RUNS = [(700, 3), (10, 2), (1500, 1), (3, 1), (1999, 1), (1998, 1)]

libc = ctypes.CDLL(None, use_errno=True)
libc.mmap.restype = ctypes.c_void_p
libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int,
                      ctypes.c_int, ctypes.c_int, ctypes.c_long]
libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p]


def resident_pages(path):
    """Pages of path in the page cache, seen through mincore() on a
    read-only MAP_SHARED mapping that touches nothing."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        addr = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        check(addr not in (None, ctypes.c_void_p(-1).value), "mmap failed")
        n = (size + PAGE - 1) // PAGE
        vec = ctypes.create_string_buffer(n)
        rc = libc.mincore(ctypes.c_void_p(addr), size, vec)
        libc.munmap(ctypes.c_void_p(addr), size)
        check(rc == 0, f"mincore: errno {ctypes.get_errno()}")
        return {i for i in range(n) if vec.raw[i] & 1}
    finally:
        os.close(fd)


def touch(path, pages, pause=None):
    """Read one byte of each page through MAP_PRIVATE (PROT_WRITE too, as
    a VMM maps guest RAM); returns the pages' bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        m = mmap.mmap(fd, 0, mmap.MAP_PRIVATE,
                      mmap.PROT_READ | mmap.PROT_WRITE)
        out = {}
        for i, p in enumerate(pages):
            if pause and i == pause[0]:
                time.sleep(pause[1])
            _ = m[p * PAGE]
            out[p] = m[p * PAGE:(p + 1) * PAGE]
        m.close()
        return out
    finally:
        os.close(fd)


def table(store, name):
    out = run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
               "SELECT first_page, page_count FROM working_set w "
               "JOIN snapshots s ON s.id = w.snapshot_id "
               f"WHERE s.name = '{name}' ORDER BY seq"]).stdout
    return [tuple(map(int, line.split("|"))) for line in out.split()]


def test(work):
    store = os.path.join(work, "store")
    snapfs("init", store)
    img = os.path.join(work, "vm.img")
    data = make_image(img, PAGES, seed=12, weights=[1, 1, 3, 2, 1])
    save(store, "vm", img)
    save(store, "other", img)
    mnt = os.path.join(work, "mnt")
    mem = os.path.join(mnt, "vm", "memory")

    # Bad values are refused before anything is mounted.
    for bad in ("record=0", "record=x", "record=-1", "record=86401"):
        p = snapfs("mount", store, mnt, "-o", bad, expect=2)
        check("record=" in p.stderr and "seconds" in p.stderr,
              f"-o {bad}: unclear message: {p.stderr!r}")
    for bad in ("prefetch_wait=x", "prefetch_wait=-1", "prefetch_wait=60001",
                "prefetch_wait="):
        p = snapfs("mount", store, mnt, "-o", bad, expect=2)
        check(f"option '{bad}': expected a whole number of milliseconds from 0 "
              "to 60000" in p.stderr, f"-o {bad}: unclear message: {p.stderr!r}")

    # 1. Record.
    with Mount(store, mnt, "-o", "record,read_ahead_kb=0") as m:
        got = touch(mem, TOUCH)
        m.unmount()
        check("working set recorded: 9 pages in 6 runs" in m.stderr(),
              f"no record line in the daemon's log:\n{m.stderr()}")
    for p, b in got.items():
        check(b == data[p * PAGE:(p + 1) * PAGE], f"page {p} differs")
    rows = table(store, "vm")
    check(rows == RUNS, f"working_set rows {rows}, expected {RUNS}")
    check(table(store, "other") == [], "a snapshot not opened has a record")
    log(f"recorded {len(rows)} runs in first-touch order: {rows}")
    out = snapfs("workingset", store, "vm").stdout.split("\n")
    want = [f"{f * PAGE:#x} {(f + n) * PAGE:#x}" for f, n in RUNS] + [""]
    check(out == want, f"snapfs workingset: {out}, expected {want}")
    check(re.search(r"^working_set_pages: +9$", snapfs("info", store, "vm").stdout, re.M),
          "snapfs info: no 'working_set_pages: 9' line")

    # 2. Prefetch, on by default: the open waits for it (-o
    # prefetch_wait, 1 s by default), so the pages are in the page cache
    # when open() returns, before anything touches them.
    recorded = {p for first, n in RUNS for p in range(first, first + n)}
    with Mount(store, mnt, "-o", "read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDONLY)
        check("snapshot 'vm': prefetched" in m.stderr(),
              f"open() returned before the prefetch was over:\n{m.stderr()}")
        res = resident_pages(mem)
        check(recorded <= res, f"pages {sorted(recorded - res)} not resident "
              f"after prefetch (resident: {sorted(res)})")
        # Nothing far from the record: runs are merged across gaps of at
        # most 8 pages, nothing else is read.
        near = {p for p in range(PAGES)
                if any(abs(p - q) <= 8 for q in recorded)}
        check(res <= near, f"pages {sorted(res - near)} resident but "
              "not recorded")
        got = touch(mem, sorted(recorded))
        for p, b in got.items():
            check(b == data[p * PAGE:(p + 1) * PAGE],
                  f"page {p} differs after prefetch")
        os.close(fd)
        m.unmount()
    log(f"prefetch: {len(res)} pages resident, the {len(recorded)} recorded "
        "among them, bytes equal the image")

    # 2b. -o prefetch_wait=0: the open does not wait; the prefetch comes
    # all the same.
    with Mount(store, mnt, "-o", "prefetch_wait=0,read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDONLY)
        check(wait_for(lambda: "prefetched" in m.stderr(), 10),
              f"no prefetch line in the daemon's log:\n{m.stderr()}")
        res = resident_pages(mem)
        os.close(fd)
        check(recorded <= res, f"prefetch_wait=0: pages {sorted(recorded - res)} "
              "not resident after the prefetch")
        m.unmount()
    log("-o prefetch_wait=0: the prefetch runs after the open returned")

    # 2c. -o private_rw, open O_RDWR: direct I/O, whose mmap drops the
    # file's cached pages, so the prefetch waits for the first read (a
    # fault through the private mapping) and its pages stay.
    with Mount(store, mnt, "-o", "private_rw,read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDWR)
        time.sleep(0.5)
        check("prefetched" not in m.stderr(),
              f"an O_RDWR open prefetched before its mmap:\n{m.stderr()}")
        mp = mmap.mmap(fd, 0, mmap.MAP_PRIVATE, mmap.PROT_READ | mmap.PROT_WRITE)
        first = RUNS[0][0]
        check(mp[first * PAGE:(first + 1) * PAGE] == data[first * PAGE:(first + 1) * PAGE],
              "private_rw: first page differs")
        check(wait_for(lambda: "prefetched" in m.stderr(), 10),
              f"private_rw: no prefetch after the first fault:\n{m.stderr()}")
        res = resident_pages(mem)
        check(recorded <= res, f"private_rw: pages {sorted(recorded - res)} "
              "not resident after the prefetch")
        for p in sorted(recorded):
            check(mp[p * PAGE:(p + 1) * PAGE] == data[p * PAGE:(p + 1) * PAGE],
                  f"private_rw: page {p} differs after prefetch")
        mp.close()
        os.close(fd)
        m.unmount()
    log("-o private_rw: the prefetch starts at the first fault, its pages stay")

    # 2d. A damaged blob in the working set: the prefetch stops there and
    # says so, pushes none of that piece, and the open still returns; the
    # damaged page reads EIO, every other page its bytes.
    def blob_of(page):
        return run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
                    "SELECT m.blob_id FROM page_map m JOIN snapshots s "
                    "ON s.id = m.snapshot_id WHERE s.name = 'vm' AND "
                    f"m.first_page <= {page} AND "
                    f"m.first_page + m.page_count > {page}"]).stdout.strip()
    # The first recorded page that is stored (not a zero page).
    bad_page = next(p for f, n in RUNS for p in range(f, f + n) if blob_of(p))
    blob = blob_of(bad_page)
    rows = run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
                "SELECT first_page, page_count FROM page_map "
                f"WHERE blob_id = {int(blob)}"]).stdout.split()
    bad_pages = {f + i for f, n in (map(int, r.split("|")) for r in rows)
                 for i in range(n)}
    path, off, size = blob_place(store, int(blob))
    with open(path, "rb") as f:
        f.seek(off)
        good = f.read(size)
    damage_blob(store, int(blob), "flip")
    with Mount(store, mnt, "-o", "read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDONLY)
        check("snapshot 'vm': prefetch stopped" in m.stderr(),
              f"damage: no 'prefetch stopped' line:\n{m.stderr()}")
        res = resident_pages(mem)
        check(not bad_pages & res, f"damage: pages {sorted(bad_pages & res)} pushed")
        try:
            os.pread(fd, PAGE, bad_page * PAGE)
            check(False, f"damage: page {bad_page} read without error")
        except OSError as e:
            check(e.errno == errno.EIO, f"damage: page {bad_page}: {e}")
        for p in sorted(recorded):
            if p not in bad_pages:
                check(os.pread(fd, PAGE, p * PAGE) == data[p * PAGE:(p + 1) * PAGE],
                      f"damage: page {p} differs")
        os.close(fd)
        m.unmount()
    with open(path, "r+b") as f:
        f.seek(off)
        f.write(good)
    log("damage in the working set: the prefetch stops, the page reads EIO")

    # 2e. workingset --lay-out: the blobs of the record are copied, in
    # first-touch order, one after the other; a second call moves nothing.
    # A mount that opened the file before keeps reading the right bytes
    # after the move and a gc that punched out the old copies.
    db = os.path.join(store, "snapfs.db")
    with Mount(store, mnt, "-o", "noprefetch,read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDONLY)
        os.pread(fd, PAGE, 0)
        out = json.loads(snapfs("workingset", store, "vm", "--lay-out", "--json").stdout)
        check(out["moved"] == out["blobs"] > 0 and out["stretches_after"] == 1,
              f"--lay-out: {out}")
        order = []
        for f, n in RUNS:
            for p in range(f, f + n):
                b = blob_of(p)
                if b and int(b) not in order:
                    order.append(int(b))
        places = [tuple(map(int, run(["sqlite3", "-readonly", db,
                  f"SELECT pack_id, pack_offset, stored_size FROM blobs WHERE id = {b}"]
                  ).stdout.split("|"))) for b in order]
        for a, b in zip(places, places[1:]):
            check(b[0] == a[0] and b[1] == a[1] + a[2],
                  f"--lay-out: blobs {order} not in first-touch order: {places}")
        out = json.loads(snapfs("workingset", store, "vm", "--lay-out", "--json").stdout)
        check(out["moved"] == 0, f"--lay-out again moved {out}")
        gc = snapfs("gc", store).stdout
        sizes = [int(x) for x in gc.split("store file ")[1].split(" bytes")[0].split(" -> ")]
        check(sizes[1] < sizes[0], f"gc gave nothing back after --lay-out: {gc!r}")
        run(["sh", "-c", "sync; echo 3 > /proc/sys/vm/drop_caches"])
        for p in sorted(recorded) + [0, 1, PAGES - 1]:
            check(os.pread(fd, PAGE, p * PAGE) == data[p * PAGE:(p + 1) * PAGE],
                  f"--lay-out: page {p} differs through a file opened before")
        os.close(fd)
        m.unmount()
    snapfs("verify", store)
    log(f"--lay-out: {len(order)} blobs in first-touch order; a reader opened "
        "before reads right after the move and gc")

    # 3. -o noprefetch: nothing pushed.
    with Mount(store, mnt, "-o", "noprefetch,read_ahead_kb=0") as m:
        fd = os.open(mem, os.O_RDONLY)
        time.sleep(0.5)
        res = resident_pages(mem)
        os.close(fd)
        check(not res, f"-o noprefetch: pages {sorted(res)} resident")
        check("prefetched" not in m.stderr(), m.stderr())
        m.unmount()
    log("-o noprefetch: no page resident")

    # 4. The window: pages read after it are left out; the new record
    # replaces the old one.
    with Mount(store, mnt, "-o", "record=1,read_ahead_kb=0") as m:
        touch(mem, [5, 6, 900], pause=(2, 1.5))
        m.unmount()
    rows = table(store, "vm")
    check(rows == [(5, 2)], f"after a 1 s window: rows {rows}, "
          "expected [(5, 2)]")
    log("-o record=1: a page read after the window is not recorded")

    # 5. --clear removes it; a new record comes back for rm to take.
    snapfs("workingset", store, "vm", "--clear")
    check(table(store, "vm") == [], "rows left after workingset --clear")
    with Mount(store, mnt, "-o", "record,read_ahead_kb=0") as m:
        touch(mem, [7])
        m.unmount()
    check(table(store, "vm") == [(7, 1)], f"rows {table(store, 'vm')}")

    # 6. rm takes the record with it.
    snapfs("rm", store, "vm")
    n = run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
             "SELECT count(*) FROM working_set"]).stdout.strip()
    check(n == "0", f"{n} working_set rows left after rm")
    log("rm removes the record (ON DELETE CASCADE)")


main(test)
