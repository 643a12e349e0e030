# SPDX-License-Identifier: MIT
"""ELF cores: gdb's gcore of a running python holding a known buffer is
saved (format detected), and the buffer reads back at its address; the
segments carry NT_FILE's paths; bad cores are refused cleanly."""

import os
import shutil
import struct

import common
from common import PAGE, check, snapfs


def make_core(ctx):
    if not shutil.which("gcore"):
        raise common.Skip("gcore (gdb) is not installed")
    proc, addr, pat = common.start_holder()
    try:
        prefix = ctx.dir / "core"
        common.run(["gcore", "-o", prefix, proc.pid], timeout=120)
        common.ping(proc)
        return proc, addr, pat, ctx.dir / f"core.{proc.pid}"
    except Exception:
        common.stop_holder(proc)
        raise


def case_gcore_roundtrip(ctx):
    proc, addr, pat, core = make_core(ctx)
    try:
        store = ctx.store()
        snapfs("save", store, "c", core)
        row = common.snapshot_row(store, "c")
        check(row["format"] == "elf", f"format {row['format']}, wanted elf")
        check(row["source"] == str(core), f"source {row['source']}")
        segs = common.segments(store, "c")
        check(segs, "no segments")
        # The buffer lies in one anonymous segment.
        inside = [g for g in segs if g[0] <= addr and addr + len(pat) <= g[1]]
        check(len(inside) == 1 and inside[0][2] == "anonymous",
              f"buffer at {addr:#x} not in one anonymous segment: {inside}")
        # NT_FILE labels: the python executable is mapped.
        exe = os.path.realpath(f"/proc/{proc.pid}/exe")
        check(any(g[2] == "mapped" and g[5] == exe for g in segs),
              f"no mapped segment labelled {exe}")
        check(all(g[2] in ("anonymous", "mapped") and g[3] == 0 and g[4] == 1 for g in segs),
              "unexpected kind, memcg or committed")
        check(all(g[0] % PAGE == 0 and g[1] % PAGE == 0 for g in segs), "unaligned segment")
        check(all(a[1] <= b[0] for a, b in zip(segs, segs[1:])), "segments overlap")
        check(row["file_size"] == segs[-1][1], "file_size is not the end of the last segment")
        got, before = common.read_memory(ctx, store, "c",
                                         [(addr, len(pat)), (segs[0][0] - PAGE, PAGE)])
        check(got == pat, "the buffer does not read back at its address")
        check(before == bytes(PAGE), "the hole below the first segment is not zeros")
    finally:
        common.stop_holder(proc)


def case_bad_cores(ctx):
    proc, addr, pat, core = make_core(ctx)
    common.stop_holder(proc)
    store = ctx.store()
    data = core.read_bytes()
    # Truncated: the last PT_LOAD's data is cut off.
    cut = ctx.dir / "truncated.core"
    cut.write_bytes(data[: len(data) // 2])
    p = snapfs("save", store, "t", cut, expect=1)
    check("truncated core" in p.stderr and str(cut) in p.stderr, "truncation not named")
    # Not a core: an executable is refused with a hint.
    p = snapfs("save", store, "x", "/bin/true", expect=2)
    check("not a core file" in p.stderr and "--format raw" in p.stderr, p.stderr)
    # Overlapping PT_LOADs.
    e_phoff, = struct.unpack_from("<Q", data, 32)
    e_phentsize, e_phnum = struct.unpack_from("<HH", data, 54)
    loads = [e_phoff + i * e_phentsize for i in range(e_phnum)
             if struct.unpack_from("<I", data, e_phoff + i * e_phentsize)[0] == 1]
    bad = bytearray(data)
    vaddr0, = struct.unpack_from("<Q", data, loads[0] + 16)
    struct.pack_into("<Q", bad, loads[1] + 16, vaddr0)
    ov = ctx.dir / "overlap.core"
    ov.write_bytes(bad)
    p = snapfs("save", store, "o", ov, expect=1)
    check("overlaps" in p.stderr and str(ov) in p.stderr, p.stderr)
    check(not common.query(store, "SELECT name FROM snapshots"), "a failed save left a snapshot")


def synthetic_core(loads, notes):
    """An ELF64 core: one PT_NOTE holding notes, then loads (vaddr, paddr,
    memsz, data)."""
    phnum = 1 + len(loads)
    off = 64 + 56 * phnum
    blob = b"".join(notes)
    phdrs = struct.pack("<IIQQQQQQ", 4, 0, off, 0, 0, len(blob), 0, 4)
    body = blob
    off += len(blob)
    for vaddr, paddr, memsz, data in loads:
        phdrs += struct.pack("<IIQQQQQQ", 1, 7, off, vaddr, paddr, len(data), memsz, PAGE)
        body += data
        off += len(data)
    ehdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + struct.pack(
        "<HHIQQQIHHHHHH", 4, 0x3E, 1, 0, 64, 0, 0, 64, 56, phnum, 64, 0, 0)
    return ehdr + phdrs + body


def elf_note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + bytes((4 - len(b) % 4) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


def case_qemu_physical(ctx):
    """A QEMU dump-guest-memory core (a "QEMU" note, p_vaddr 0): guest RAM
    lands at its guest-physical address (p_paddr)."""
    low, high = common.pattern(2 * PAGE, 1), common.pattern(PAGE, 2)
    core = ctx.dir / "vm.core"
    core.write_bytes(synthetic_core([(0, 0, 4 * PAGE, low), (0, 0x100000, PAGE, high)],
                                    [elf_note("QEMU", 0, bytes(16))]))
    store = ctx.store()
    snapfs("save", store, "vm", core)
    row = common.snapshot_row(store, "vm")
    check(row["file_size"] == 0x101000, f"file_size {row['file_size']:#x}")
    check("physical" in row["notes"], f"notes {row['notes']}")
    segs = common.segments(store, "vm")
    check([(g[0], g[1]) for g in segs] == [(0, 4 * PAGE), (0x100000, 0x101000)], f"{segs}")
    a, b, c = common.read_memory(ctx, store, "vm", [(0, 2 * PAGE), (2 * PAGE, 2 * PAGE),
                                                    (0x100000, PAGE)])
    check(a == low and b == bytes(2 * PAGE) and c == high, "guest memory misplaced")


if __name__ == "__main__":
    common.main()
