# SPDX-License-Identifier: MIT
"""NAME/core, checked by the debugger everyone uses: a small C program
(core_target.c: a known global string, a heap object whose address it
prints, main -> level1 -> level2 -> level3 stopped in sleep) is saved as
pid:N, and again from gdb's gcore of it (--format elf); the store is
mounted and `gdb -batch -c MNT/NAME/core PROGRAM` must show the backtrace's
functions in order, the global and the heap string. On the same core:
SEEK_DATA / SEEK_HOLE and st_blocks are exact (the headers are data, each
PT_LOAD's holes are the memory file's holes), every PT_LOAD reads the
memory file's bytes, `snapfs export --format elf` writes the same bytes
(cmp) and `--format raw` what restore writes; NAME/map.svg is the bytes
`snapfs map` prints; a raw snapshot has no core."""

import os
import re
import shutil
import struct
import subprocess
import time

import common
from common import PAGE, check, snapfs

TARGET = os.environ.get("CORE_TARGET", "")
GLOBAL = "snapfs-core-global-5e1f0c"
HEAP = "snapfs-core-heap-9d27a4"
FRAMES = ["level3", "level2", "level1", "main"]


def need_tools():
    if not TARGET or not os.path.exists(TARGET):
        raise common.Failed(f"CORE_TARGET {TARGET!r}: the test program is not built")
    if not shutil.which("gdb"):
        raise common.Skip("gdb is not installed")
    if not common.fuse_usable():
        raise common.Skip("no /dev/fuse or fusermount3")


def start_target():
    """The program, stopped in its sleep; (process, heap address)."""
    proc = subprocess.Popen([TARGET], stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    check(len(line) == 2, f"the program said {line!r}")
    # It prints before it sleeps: wait until it is in the sleep.
    for _ in range(200):
        if common.proc_state(proc.pid) == "S":
            break
        time.sleep(0.01)
    return proc, int(line[0], 16)


def gdb_check(core, heap, what):
    """gdb on core: the backtrace, the global, the heap object."""
    p = common.run(["gdb", "-batch", "-nx", "-c", core, TARGET, "-ex", "bt",
                    "-ex", "print global", "-ex", "x/s heap_ptr"], timeout=120)
    out = p.stdout
    names = re.findall(r"^#\d+\s+(?:0x[0-9a-f]+ in )?(\w+)", out, re.M)
    check([n for n in names if n in FRAMES] == FRAMES,
          f"{what}: backtrace functions {names}, wanted {FRAMES} in order:\n{out}")
    check(f'$1 = "{GLOBAL}"' in out, f"{what}: print global:\n{out}")
    check(re.search(rf'^0x0*{heap:x}:\s+"{HEAP}"$', out, re.M) is not None,
          f"{what}: x/s heap_ptr (at {heap:#x}):\n{out}")
    warnings = [l for l in (p.stdout + p.stderr).splitlines() if "warning" in l.lower()]
    check(not warnings, f"{what}: gdb warned: {warnings}")


def program_headers(data):
    """(type, offset, vaddr, filesz, memsz) of each program header of an
    ELF64 little-endian core."""
    check(data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, "not an ELF64 LE file")
    e_type, e_machine = struct.unpack_from("<HH", data, 16)
    check(e_type == 4, f"e_type {e_type}, not ET_CORE")
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    out = []
    for i in range(phnum):
        p_type, _flags, off, vaddr, _paddr, filesz, memsz, _align = struct.unpack_from(
            "<IIQQQQQQ", data, phoff + i * phentsize)
        out.append((p_type, off, vaddr, filesz, memsz))
    return out


def seek_extents(fd, size):
    """The data extents of an open file, walked with SEEK_DATA / SEEK_HOLE."""
    out, off = [], 0
    while off < size:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        h = os.lseek(fd, d, os.SEEK_HOLE)
        out.append((d, h))
        off = h
    return out


def range_extents(fd, start, end):
    """The data extents of [start, end) of an open file, clipped."""
    out, off = [], start
    while off < end:
        try:
            d = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        if d >= end:
            break
        h = min(os.lseek(fd, d, os.SEEK_HOLE), end)
        out.append((d, h))
        off = h
    return out


def merge(extents):
    out = []
    for s, e in extents:
        if out and out[-1][1] == s:
            out[-1] = (out[-1][0], e)
        elif e > s:
            out.append((s, e))
    return out


def check_core_file(mnt, name, what):
    """SEEK_DATA / SEEK_HOLE and st_blocks of NAME/core against its
    memory file; every PT_LOAD's bytes."""
    core_path = os.path.join(mnt, name, "core")
    st = os.stat(core_path)
    cfd = os.open(core_path, os.O_RDONLY)
    mfd = os.open(os.path.join(mnt, name, "memory"), os.O_RDONLY)
    try:
        head = os.pread(cfd, 1 << 20, 0)
        phdrs = program_headers(head)
        loads = [p for p in phdrs if p[0] == 1]
        notes = [p for p in phdrs if p[0] == 4]
        check(len(notes) == 1, f"{what}: {len(notes)} PT_NOTE headers")
        check(loads, f"{what}: no PT_LOAD")
        first = min(p[1] for p in loads)
        check(first % PAGE == 0 and first > 0, f"{what}: first PT_LOAD at {first:#x}")
        want = [(0, first)]
        end = first
        for _t, off, vaddr, filesz, memsz in loads:
            check(off == end or filesz == 0, f"{what}: PT_LOAD at {off:#x} is not packed")
            check(filesz in (0, memsz), f"{what}: filesz {filesz:#x} memsz {memsz:#x}")
            for d, h in range_extents(mfd, vaddr, vaddr + filesz):
                want.append((off + d - vaddr, off + h - vaddr))
            end = max(end, off + filesz)
        want = merge(want)
        check(st.st_size == end, f"{what}: size {st.st_size}, PT_LOADs end at {end}")
        got = seek_extents(cfd, st.st_size)
        check(got == want, f"{what}: SEEK_DATA/SEEK_HOLE extents {got[:6]}..., wanted "
              f"{want[:6]}...")
        data = sum(e - s for s, e in want)
        check(st.st_blocks * 512 == data,
              f"{what}: st_blocks {st.st_blocks} ({st.st_blocks * 512} bytes), data {data}")
        # Each PT_LOAD holds the memory file's bytes at its address: every
        # data extent compared whole, and the first page of every hole
        # (a process's address space may hold reservations of many GiB,
        # such as a sanitizer's shadow memory: mostly holes).
        for _t, off, vaddr, filesz, _m in loads:
            pos = vaddr
            for d, h in range_extents(mfd, vaddr, vaddr + filesz):
                if d > pos:
                    check(os.pread(cfd, PAGE, off + pos - vaddr) == bytes(min(PAGE, d - pos)),
                          f"{what}: hole at {pos:#x} in the PT_LOAD at {vaddr:#x} is not zeros")
                for at in range(d, h, 1 << 20):
                    n = min(1 << 20, h - at)
                    check(os.pread(cfd, n, off + at - vaddr) == os.pread(mfd, n, at),
                          f"{what}: PT_LOAD at {vaddr:#x}+{at - vaddr:#x} differs from memory")
                pos = h
    finally:
        os.close(cfd)
        os.close(mfd)


def check_export(ctx, store, mnt, name):
    out = ctx.dir / f"{name}.core"
    snapfs("export", store, name, "--format", "elf", out)
    common.run(["cmp", out, os.path.join(mnt, name, "core")])
    sparse = os.stat(out).st_blocks * 512
    check(sparse <= os.stat(os.path.join(mnt, name, "core")).st_blocks * 512 + 64 * PAGE,
          f"export of {name} is not sparse ({sparse} bytes on disk)")
    p = snapfs("export", store, name, "--format", "elf", out, expect=1)
    check("exists" in p.stderr, f"export over an existing file: {p.stderr!r}")
    p = snapfs("export", store, name, "--format", "pdf", out, expect=2)
    check("pdf" in p.stderr, p.stderr)


def check_export_raw(ctx, store, name):
    """--format raw is the memory file, as restore writes it; a snapshot
    without a core has no --format elf."""
    a, b = ctx.dir / f"{name}.raw", ctx.dir / f"{name}.restored"
    snapfs("export", store, name, "--format", "raw", a)
    snapfs("restore", store, name, b)
    common.run(["cmp", a, b])
    p = snapfs("export", store, name, "--format", "elf", ctx.dir / "none.core", expect=1)
    check("no core" in p.stderr and not (ctx.dir / "none.core").exists(),
          f"export --format elf of a raw snapshot: {p.stderr!r}")


def check_map(store, mnt, name):
    with open(os.path.join(mnt, name, "map.svg")) as f:
        mounted = f.read()
    printed = snapfs("map", store, name).stdout
    check(mounted == printed and mounted.startswith("<?xml"),
          f"{name}/map.svg ({len(mounted)} bytes) differs from snapfs map ({len(printed)})")


def case_pid_core(ctx):
    need_tools()
    proc, heap = start_target()
    try:
        store = ctx.store()
        snapfs("save", store, "p", f"pid:{proc.pid}")
        check(common.proc_state(proc.pid) in "SR", "the program was left stopped")
        types = common.query(store, "SELECT n.owner, n.type FROM core_notes n JOIN snapshots s "
                             "ON s.id = n.snapshot_id WHERE s.name = 'p' ORDER BY seq")
        check(("CORE", 1) in types and ("CORE", 3) in types and ("CORE", 6) in types and
              ("CORE", 0x46494c45) in types and ("snapfs", 1) in types,
              f"notes recorded: {types}")
        # A raw snapshot beside it has no core.
        img = ctx.dir / "raw.img"
        img.write_bytes(b"\x01" * PAGE)
        snapfs("save", store, "r", img)
        m = common.Mount(store, ctx.dir / "mnt")
        try:
            check("core" in os.listdir(m.mnt / "p") and "map.svg" in os.listdir(m.mnt / "p"),
                  f"p/: {os.listdir(m.mnt / 'p')}")
            check("core" not in os.listdir(m.mnt / "r") and
                  not os.path.exists(m.mnt / "r" / "core"), "a raw snapshot has a core")
            gdb_check(m.mnt / "p" / "core", heap, "pid:N core")
            check_core_file(m.mnt, "p", "pid:N core")
            check_export(ctx, store, m.mnt, "p")
            check_map(store, m.mnt, "p")
            check_map(store, m.mnt, "r")
            check_export_raw(ctx, store, "r")
        finally:
            m.close()
    finally:
        common.stop_holder(proc)


def case_gcore_core(ctx):
    need_tools()
    if not shutil.which("gcore"):
        raise common.Skip("gcore (gdb) is not installed")
    proc, heap = start_target()
    try:
        common.run(["gcore", "-o", ctx.dir / "gc", proc.pid], timeout=120)
        gcore = ctx.dir / f"gc.{proc.pid}"
        # The original for comparison: gdb sees the same in it.
        gdb_check(gcore, heap, "gcore's own core")
        store = ctx.store()
        snapfs("save", store, "g", gcore, "--format", "elf")
        m = common.Mount(store, ctx.dir / "mnt")
        try:
            gdb_check(m.mnt / "g" / "core", heap, "gcore-imported core")
            check_core_file(m.mnt, "g", "gcore-imported core")
            check_export(ctx, store, m.mnt, "g")
        finally:
            m.close()
    finally:
        common.stop_holder(proc)


def case_core_notes_damaged(ctx):
    """A stored note changed outside snapfs: the seal catches it; a note
    that cannot be served (an NT_FILE that does not parse) too."""
    need_tools()
    proc, _heap = start_target()
    try:
        store = ctx.store()
        snapfs("save", store, "p", f"pid:{proc.pid}")
    finally:
        common.stop_holder(proc)
    common.run(["sqlite3", store / "snapfs.db",
                "UPDATE core_notes SET descr = x'0100' WHERE type = 1 AND owner = 'CORE'"])
    out = ctx.dir / "p.core"
    p = snapfs("export", store, "p", "--format", "elf", out, expect=1)
    check("changed outside snapfs" in p.stderr and not out.exists(),
          f"export of a snapshot whose notes were changed: {p.stderr!r}")


if __name__ == "__main__":
    common.main()
