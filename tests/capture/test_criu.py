# SPDX-License-Identifier: MIT
"""CRIU dumps made with `crit encode`: pagemap, pages and mm images of a
chain of incremental dumps (`parent` symlinks, in_parent / PE_PARENT
entries), saved and checked page by page against what CRIU's own rules
give; broken dumps (a parent loop, truncated pages, a missing parent,
entries out of order) are refused cleanly, leaving no snapshot."""

import json
import os
import struct
import shutil
import subprocess

import common
from common import PAGE, check, snapfs

CRIT = "/usr/bin/crit"

HEAP = (0x400000, 0x410000)      # 16 pages, [heap]
FILE = (0x500000, 0x502000)      # 2 pages, a private file mapping
STACK = (0x7000000, 0x7008000)   # 8 pages, [stack]
VVAR = (0x7100000, 0x7102000)    # left out by snapfs


def crit(obj, path):
    if not os.path.exists(CRIT):
        raise common.Skip("crit (Debian package criu) is not installed")
    src = str(path) + ".json"
    with open(src, "w") as f:
        json.dump(obj, f)
    common.run(["/usr/bin/python3", CRIT, "encode", "-i", src, "-o", path])
    os.unlink(src)


def page(level, addr):
    return common.pattern(PAGE, level * 1_000_003 + addr // PAGE)


def write_pagemap(d, name, pages_id, level, entries):
    """A pagemap image and its pages image (see write_dump)."""
    pm = [{"pages_id": pages_id}]
    data, present = bytearray(), {}
    for vaddr, nr, how in entries:
        e = {"vaddr": hex(vaddr), "nr_pages": nr}
        if how == "present":
            e["flags"] = "PE_PRESENT"
            for i in range(nr):
                b = page(level, vaddr + i * PAGE)
                present[vaddr + i * PAGE] = b
                data += b
        elif how == "parent":
            e["flags"] = "PE_PARENT"
        elif how == "in_parent":
            e["in_parent"] = True
        elif how == "lazy":
            e["flags"] = "PE_LAZY"
        pm.append(e)
    crit({"magic": "PAGEMAP", "entries": pm}, d / name)
    (d / f"pages-{pages_id}.img").write_bytes(bytes(data))
    return present


def write_dump(d, level, entries, parent=None, with_mm=True, pid=1, extra_vmas=()):
    """entries: (vaddr, nr_pages, how) with how 'present', 'parent' (flags),
    'in_parent' (the old field) or 'lazy'. Present pages get page(level,
    addr). Returns {addr: bytes} of the present pages."""
    os.makedirs(d, exist_ok=True)
    present = write_pagemap(d, f"pagemap-{pid}.img", pid + 100, level, entries)
    if with_mm:
        vma = lambda r, status, flags="MAP_PRIVATE | MAP_ANON", pgoff=0, shmid=0: {
            "start": hex(r[0]), "end": hex(r[1]), "pgoff": pgoff, "shmid": shmid,
            "prot": "PROT_READ | PROT_WRITE", "flags": flags, "status": status, "fd": -1}
        mm = {k: 0 for k in ("mm_start_code", "mm_end_code", "mm_start_data",
                             "mm_end_data", "mm_start_stack", "mm_start_brk", "mm_brk",
                             "mm_arg_start", "mm_arg_end", "mm_env_start", "mm_env_end")}
        mm["exe_file_id"] = 1
        mm["vmas"] = [
            vma(HEAP, "VMA_AREA_REGULAR | VMA_ANON_PRIVATE | VMA_AREA_HEAP"),
            vma(FILE, "VMA_AREA_REGULAR | VMA_FILE_PRIVATE", "MAP_PRIVATE"),
            vma(STACK, "VMA_AREA_REGULAR | VMA_ANON_PRIVATE | VMA_AREA_STACK"),
            vma(VVAR, "VMA_AREA_REGULAR | VMA_AREA_VVAR"),
        ] + [vma(r, "VMA_AREA_REGULAR | VMA_ANON_SHARED", "MAP_SHARED | MAP_ANON", pgoff, shmid)
             for r, pgoff, shmid in extra_vmas]
        mm["vmas"].sort(key=lambda v: int(v["start"], 16))
        crit({"magic": "MM", "entries": [mm]}, d / f"mm-{pid}.img")
    if parent:
        os.symlink(parent, d / "parent")
    return present


def make_chain(ctx):
    """Three dumps: d2 (full), d1 on d2, d0 on d1; returns d0 and the
    expected pages {addr: bytes}."""
    d2, d1, d0 = ctx.dir / "d2", ctx.dir / "d1", ctx.dir / "d0"
    p2 = write_dump(d2, 2, [(HEAP[0], 16, "present"), (STACK[0], 8, "present")])
    p1 = write_dump(d1, 1, [(HEAP[0], 4, "present"), (HEAP[0] + 4 * PAGE, 12, "in_parent"),
                            (STACK[0], 8, "parent")], parent="../d2")
    p0 = write_dump(d0, 0, [(HEAP[0], 2, "parent"), (HEAP[0] + 2 * PAGE, 2, "present"),
                            (HEAP[0] + 4 * PAGE, 12, "parent"), (FILE[0], 1, "present"),
                            (STACK[0], 4, "present"), (STACK[0] + 4 * PAGE, 4, "parent")],
                    parent="../d1")
    want = dict(p2)
    want.update(p1)
    want.update(p0)
    return d0, want


def check_pages(ctx, store, name, want, ranges):
    offsets = [a for lo, hi in ranges for a in range(lo, hi, PAGE)]
    got = common.read_memory(ctx, store, name, [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        check(b == want.get(a, bytes(PAGE)), f"page at {a:#x} is wrong")


REG_NAMES = ["r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx",
             "dx", "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss", "fs_base",
             "gs_base", "ds", "es", "fs", "gs"]


def core_notes_of(data):
    """(name, type, desc) of every note of an ELF64 LE core's PT_NOTE."""
    phoff, = struct.unpack_from("<Q", data, 32)
    phentsize, phnum = struct.unpack_from("<HH", data, 54)
    for i in range(phnum):
        p_type, _f, off, _v, _p, filesz = struct.unpack_from("<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:
            continue
        out, at = [], off
        while at < off + filesz:
            namesz, descsz, ntype = struct.unpack_from("<III", data, at)
            at += 12
            name = data[at:at + namesz - 1].decode()
            at += (namesz + 3) & ~3
            out.append((name, ntype, data[at:at + descsz]))
            at += (descsz + 3) & ~3
        return out
    return []


def case_registers(ctx):
    """core-<tid>.img of each thread (pstree.img names them) gives the
    core file's NT_PRSTATUS: the registers as dumped, pr_pid the thread;
    NT_PRPSINFO the task's name, NT_AUXV mm_saved_auxv. A thread without
    a core image is named in the notes."""
    d = ctx.dir / "regs"
    write_dump(d, 0, [(HEAP[0], 4, "present"), (STACK[0], 8, "present")], pid=7)
    mm = json.loads(subprocess.run(["/usr/bin/python3", CRIT, "decode", "-i", d / "mm-7.img"],
                                   capture_output=True, text=True, check=True).stdout)
    mm["entries"][0]["mm_saved_auxv"] = [6, 4096, 9, 0x401000, 0, 0]
    crit(mm, d / "mm-7.img")
    crit({"magic": "PSTREE", "entries": [{"pid": 7, "ppid": 1, "pgid": 7, "sid": 7,
                                          "threads": [7, 8, 9]}]}, d / "pstree.img")
    fp = {"cwd": 0x37f, "swd": 0, "twd": 0, "fop": 0, "rip": 0, "rdp": 0, "mxcsr": 0x1f80,
          "mxcsr_mask": 0xffff, "st_space": list(range(32)), "xmm_space": list(range(64)),
          "padding": [0] * 24}
    want = {}
    for tid in (7, 8):
        regs = {n: hex(0x1000 * tid + i) for i, n in enumerate(REG_NAMES)}
        regs["ip"], regs["sp"] = hex(HEAP[0] + 0x10 * tid), hex(STACK[1] - 0x100 * tid)
        want[tid] = [int(regs[n], 16) for n in REG_NAMES]
        crit({"magic": "CORE", "entries": [{
            "mtype": "X86_64",
            "thread_info": {"clear_tid_addr": "0x0", "gpregs": regs, "fpregs": fp},
            "tc": {"task_state": 1, "exit_code": 0, "personality": 0, "flags": 0,
                   "blk_sigset": "0x0", "comm": "criu-target"},
        }]}, d / f"core-{tid}.img")
    store = ctx.store()
    snapfs("save", store, "r", d)
    row = common.snapshot_row(store, "r")
    check("core-9.img" in (row["notes"] or ""), f"notes do not name core-9.img: {row['notes']}")
    out = ctx.dir / "r.core"
    snapfs("export", store, "r", "--format", "elf", out)
    notes = core_notes_of(out.read_bytes())
    prstatus = [n for n in notes if n[:2] == ("CORE", 1)]
    check(len(prstatus) == 2, f"{len(prstatus)} NT_PRSTATUS notes, wanted 2")
    for (_o, _t, desc), tid in zip(prstatus, (7, 8)):
        pid, = struct.unpack_from("<i", desc, 32)
        regs = list(struct.unpack_from("<27Q", desc, 112))
        check(pid == tid and regs == want[tid], f"thread {tid}: pr_pid {pid}, registers {regs}")
    psinfo = [n[2] for n in notes if n[:2] == ("CORE", 3)]
    check(len(psinfo) == 1 and psinfo[0][40:56].rstrip(b"\0") == b"criu-target",
          f"NT_PRPSINFO: {psinfo}")
    auxv = [n[2] for n in notes if n[:2] == ("CORE", 6)]
    check(auxv == [struct.pack("<6Q", 6, 4096, 9, 0x401000, 0, 0)], f"NT_AUXV: {auxv}")
    fpregs = [n[2] for n in notes if n[:2] == ("CORE", 2)]
    check(len(fpregs) == 2 and struct.unpack_from("<32I", fpregs[0], 32) == tuple(range(32)),
          "NT_PRFPREG: st_space")


def case_chain(ctx):
    d0, want = make_chain(ctx)
    store = ctx.store()
    snapfs("save", store, "c", d0)
    row = common.snapshot_row(store, "c")
    check(row["format"] == "criu", f"format {row['format']}")
    check(row["file_size"] == STACK[1], f"file_size {row['file_size']:#x}")
    check("[vvar]" in (row["notes"] or ""), f"notes: {row['notes']}")
    segs = common.segments(store, "c")
    check([(g[0], g[1], g[2], g[5]) for g in segs] == [
        (HEAP[0], HEAP[1], "anonymous", "[heap]"), (FILE[0], FILE[1], "mapped", None),
        (STACK[0], STACK[1], "anonymous", "[stack]")], f"segments {segs}")
    check_pages(ctx, store, "c", want, [HEAP, FILE, STACK, (FILE[1], FILE[1] + 2 * PAGE)])
    # The oldest dump alone gives its own pages.
    snapfs("save", store, "c2", ctx.dir / "d2", "--format", "criu")
    want2 = {a: page(2, a) for lo, hi in (HEAP, STACK) for a in range(lo, hi, PAGE)}
    check_pages(ctx, store, "c2", want2, [HEAP, FILE, STACK])


SHM1 = (0x6000000, 0x6004000)   # maps object 77 from offset 0x1000
SHM2 = (0x6100000, 0x6102000)   # maps object 77 from offset 0
SHM3 = (0x6200000, 0x6201000)   # object 78, which the dump lacks


def case_shared_memory(ctx):
    """Shared anonymous memory comes from pagemap-shmem-<shmid>.img (and
    its parent dump), at object offset pgoff + (address - start)."""
    extra = [(SHM1, 0x1000, 77), (SHM2, 0, 77), (SHM3, 0, 78)]
    p, d = ctx.dir / "p", ctx.dir / "d"
    write_dump(p, 1, [(HEAP[0], 1, "present")], extra_vmas=extra)
    old = write_pagemap(p, "pagemap-shmem-77.img", 500, 1, [(0, 2, "present")])
    write_dump(d, 0, [(HEAP[0], 1, "present")], parent="../p", extra_vmas=extra)
    new = write_pagemap(d, "pagemap-shmem-77.img", 501, 0,
                        [(0, 2, "parent"), (2 * PAGE, 3, "present")])
    obj = dict(old)
    obj.update(new)
    store = ctx.store()
    snapfs("save", store, "s", d)
    notes = common.snapshot_row(store, "s")["notes"]
    check("pagemap-shmem-78.img" in notes and "not saved" in notes, f"notes {notes}")
    want = {HEAP[0]: page(0, HEAP[0])}
    for (lo, hi), pgoff, _ in extra[:2]:
        for a in range(lo, hi, PAGE):
            if pgoff + a - lo in obj:
                want[a] = obj[pgoff + a - lo]
    check(len(want) == 1 + 4 + 2, f"test data: {len(want)} pages")
    check_pages(ctx, store, "s", want, [HEAP, SHM1, SHM2, SHM3])
    segs = common.segments(store, "s")
    check([g[0] for g in segs if g[2] == "anonymous" and g[5] is None] ==
          [SHM1[0], SHM2[0], SHM3[0]], f"segments {segs}")


def case_no_mm_and_lazy(ctx):
    d = ctx.dir / "d"
    p = write_dump(d, 0, [(HEAP[0], 3, "present"), (HEAP[0] + 3 * PAGE, 2, "lazy"),
                          (STACK[0], 1, "present")], with_mm=False)
    store = ctx.store()
    snapfs("save", store, "n", d)
    row = common.snapshot_row(store, "n")
    check("lazy pages" in row["notes"] and "no mm-1.img" in row["notes"], row["notes"])
    segs = common.segments(store, "n")
    # Lazy pages are not in the dump: noted, and no segment.
    check([(g[0], g[1]) for g in segs] == [(HEAP[0], HEAP[0] + 3 * PAGE),
                                            (STACK[0], STACK[0] + PAGE)], f"segments {segs}")
    check_pages(ctx, store, "n", p, [(HEAP[0], HEAP[0] + 5 * PAGE), (STACK[0], STACK[0] + PAGE)])


def case_several_processes(ctx):
    d = ctx.dir / "d"
    write_dump(d, 5, [(HEAP[0], 1, "present")], pid=5)
    p6 = write_dump(d, 6, [(HEAP[0], 2, "present")], pid=6)
    store = ctx.store()
    p = snapfs("save", store, "x", d, expect=1)
    check("pstree.img" in p.stderr, p.stderr)
    crit({"magic": "PSTREE", "entries": [
        {"pid": 6, "ppid": 0, "pgid": 6, "sid": 6, "threads": [6]},
        {"pid": 5, "ppid": 6, "pgid": 6, "sid": 6, "threads": [5]}]}, d / "pstree.img")
    snapfs("save", store, "root", d)
    check_pages(ctx, store, "root", p6, [(HEAP[0], HEAP[0] + 2 * PAGE)])


def refused(ctx, d, words):
    store = ctx.store()
    p = snapfs("save", store, "bad", d, expect=None)
    check(p.returncode in (1, 2), f"exit {p.returncode}")
    for w in words:
        check(w in p.stderr, f"{w!r} not in {p.stderr!r}")
    check(not common.query(store, "SELECT name FROM snapshots"), "a failed save left a snapshot")


def case_parent_loop(ctx):
    d0, _ = make_chain(ctx)
    os.unlink(ctx.dir / "d2" / "pagemap-1.img")
    shutil.copy(ctx.dir / "d1" / "pagemap-1.img", ctx.dir / "d2" / "pagemap-1.img")
    os.symlink("../d0", ctx.dir / "d2" / "parent")
    refused(ctx, d0, ["loops", str(d0)])


def case_self_parent(ctx):
    d = ctx.dir / "d"
    write_dump(d, 0, [(HEAP[0], 1, "parent")], parent=".")
    refused(ctx, d, ["loops"])


def case_missing_parent(ctx):
    d = ctx.dir / "d"
    write_dump(d, 0, [(HEAP[0], 1, "present"), (HEAP[0] + PAGE, 1, "parent")])
    refused(ctx, d, ["parent", str(d)])
    # A parent that lacks the pages.
    e = ctx.dir / "e"
    write_dump(ctx.dir / "p", 1, [(HEAP[0], 1, "present")])
    write_dump(e, 0, [(HEAP[0], 2, "parent")], parent="../p")
    refused(ctx, e, ["lacks them", "0x401000"])


def case_truncated_pages(ctx):
    d = ctx.dir / "d"
    write_dump(d, 0, [(HEAP[0], 4, "present")])
    pages = d / "pages-101.img"
    pages.write_bytes(pages.read_bytes()[: 3 * PAGE + 10])
    refused(ctx, d, ["pages-101.img", "truncated"])


def case_bad_entries(ctx):
    d = ctx.dir / "d"
    write_dump(d, 0, [(HEAP[0] + PAGE, 1, "present"), (HEAP[0], 1, "present")])
    refused(ctx, d, ["pagemap-1.img", "out of order"])
    e = ctx.dir / "e"
    write_dump(e, 0, [(0x900000, 1, "present")])
    refused(ctx, e, ["outside every VMA", "0x900000"])
    f = ctx.dir / "f"
    write_dump(f, 0, [(HEAP[0], 1, "present")])
    img = f / "pagemap-1.img"
    img.write_bytes(img.read_bytes()[:-3])
    refused(ctx, f, ["pagemap-1.img"])


if __name__ == "__main__":
    common.main()
