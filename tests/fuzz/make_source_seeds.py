# SPDX-License-Identifier: MIT
"""Writes the seed corpora of fuzz_elf, fuzz_criu, fuzz_gvisor,
fuzz_gvisor_wire and fuzz_gvisor_statefile (corpus/elf, corpus/criu,
corpus/gvisor, corpus/gvisor_wire, corpus/gvisor_statefile): small valid
inputs and the
crafted bad ones each parser must refuse cleanly. Run it from anywhere:
`python3 tests/fuzz/make_source_seeds.py`. Crashers found by fuzzing are
kept next to these seeds under their own names (crash-*); this script
leaves them alone.

Directory inputs use fuzz_source.h's records: a byte choosing the file, a
little-endian u32 length, the bytes. Protobuf is encoded by hand.
"""

import ctypes
import ctypes.util
import hashlib
import hmac
import sys
import struct
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PAGE = 4096


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fv(num, v):
    return varint(num << 3) + varint(v)


def fb(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def page(seed):
    return bytes(((i * 131 + seed * 7) % 251) + 1 for i in range(PAGE))


def write(corpus, name, data):
    d = HERE / "corpus" / corpus
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# --- ELF cores -----------------------------------------------------------

PT_LOAD, PT_NOTE = 1, 4
NT_FILE, NT_PRSTATUS = 0x46494C45, 1


def note(name, ntype, desc):
    n = name.encode() + b"\0"
    pad = lambda b: b + bytes((4 - len(b) % 4) % 4)
    return struct.pack("<III", len(n), len(desc), ntype) + pad(n) + pad(desc)


def nt_file(entries):
    desc = struct.pack("<QQ", len(entries), PAGE)
    for start, end, off, _ in entries:
        desc += struct.pack("<QQQ", start, end, off)
    for *_, path in entries:
        desc += path.encode() + b"\0"
    return note("CORE", NT_FILE, desc)


def core(loads, notes, machine=0x3E):
    """loads: (vaddr, paddr, memsz, data). Returns the ELF64 core."""
    phnum = 1 + len(loads)
    off = 64 + 56 * phnum
    notes_blob = b"".join(notes)
    phdrs = struct.pack("<IIQQQQQQ", PT_NOTE, 0, off, 0, 0, len(notes_blob), 0, 4)
    body = notes_blob
    off += len(notes_blob)
    for vaddr, paddr, memsz, data in loads:
        phdrs += struct.pack("<IIQQQQQQ", PT_LOAD, 7, off, vaddr, paddr, len(data), memsz, PAGE)
        body += data
        off += len(data)
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    ehdr = ident + struct.pack("<HHIQQQIHHHHHH", 4, machine, 1, 0, 64, 0, 0, 64, 56,
                               phnum, 64, 0, 0)
    return ehdr + phdrs + body


def elf_seeds():
    loads = [(0x400000, 0, 2 * PAGE, page(1) + page(2)),
             (0x600000, 0, 4 * PAGE, page(3)),           # p_filesz < p_memsz
             (0x7FF000, 0, PAGE, page(4))]
    files = nt_file([(0x400000, 0x402000, 0, "/usr/bin/prog")])
    write("elf", "gcore", core(loads, [note("CORE", NT_PRSTATUS, bytes(336)), files]))
    write("elf", "no-nt-file", core(loads, []))
    write("elf", "qemu", core([(0, 0, 2 * PAGE, page(5) + page(6)),
                               (0, 0x100000, PAGE, page(7))],
                              [note("QEMU", 0, bytes(16))]))
    write("elf", "vsyscall", core(loads + [(0xFFFFFFFFFF600000, 0, PAGE, page(8))], [files]))
    good = core(loads, [files])
    write("elf", "truncated", good[: len(good) - PAGE - 100])
    write("elf", "overlap", core([(0x400000, 0, 2 * PAGE, page(1)),
                                  (0x401000, 0, PAGE, page(2))], [files]))
    write("elf", "unordered", core(list(reversed(loads)), [files]))
    write("elf", "unaligned", core([(0x400010, 0, PAGE, page(1))], []))
    write("elf", "filesz-gt-memsz", core([(0x400000, 0, PAGE, page(1) + page(2))], []))
    write("elf", "wrap", core([(0xFFFFFFFFFFFFF000, 0, 2 * PAGE, page(1))], []))
    bad_files = nt_file([(0x400000, 0x402000, 0, "/a"), (0x401000, 0x403000, 0, "/b")])
    write("elf", "nt-file-overlap", core(loads, [bad_files]))
    huge_count = note("CORE", NT_FILE, struct.pack("<QQ", 2**62, PAGE) + bytes(24))
    write("elf", "nt-file-count", core(loads, [huge_count]))
    # Many program headers claimed, few present.
    many = bytearray(good)
    struct.pack_into("<H", many, 56, 0xFFFF)
    write("elf", "phnum", bytes(many))
    not_core = bytearray(good)
    struct.pack_into("<H", not_core, 16, 2)
    write("elf", "exec", bytes(not_core))


# --- CRIU dumps ----------------------------------------------------------

CRIU_NAMES = ["d/pagemap-1.img", "d/pages-1.img", "d/mm-1.img", "d/pstree.img",
              "d/pagemap-2.img", "d/pages-2.img", "d/mm-2.img", "d/parent",
              "p/pagemap-1.img", "p/pages-1.img", "p/parent",
              "q/pagemap-1.img", "q/pages-1.img", "q/parent",
              "d/pagemap-shmem-7.img", "d/pages-7.img", "p/pagemap-shmem-7.img", "p/pages-7.img"]
TARGETS = ["../p", "../q", "../d", ".", "missing"]
COMMON, PAGEMAP_M, MM_M, PSTREE_M = 0x54564319, 0x56084025, 0x57492820, 0x50273030


def image(magic, entries):
    out = struct.pack("<II", COMMON, magic)
    for e in entries:
        out += struct.pack("<I", len(e)) + e
    return out


def pagemap(pages_id, entries):
    """entries: (vaddr, nr, flags or None, in_parent or None)."""
    msgs = [fv(1, pages_id)]
    for vaddr, nr, flags, in_parent in entries:
        m = fv(1, vaddr) + fv(2, nr & 0xFFFFFFFF)
        if nr > 0xFFFFFFFF:
            m += fv(5, nr)  # nr_pages, CRIU 3.16 on
        if in_parent is not None:
            m += fv(3, int(in_parent))
        if flags is not None:
            m += fv(4, flags)
        msgs.append(m)
    return image(PAGEMAP_M, msgs)


def lz4_block(data):
    """One LZ4 block (block format) made by liblz4 through ctypes."""
    lib = ctypes.CDLL(ctypes.util.find_library("lz4") or "liblz4.so.1")
    bound = lib.LZ4_compressBound(len(data))
    out = ctypes.create_string_buffer(bound)
    n = lib.LZ4_compress_default(data, out, len(data), bound)
    assert n > 0
    return out.raw[:n]


def lz4_pagemap(pages_id, entries, extra=b""):
    """A pagemap of compressed entries (vaddr, pages, per[, aligned]):
    pagemap_entry field 6 (pagemap_blocks: block_sizes 1 packed,
    total_payload_size 2, pages_per_block 3; criu-dev after #3115), and
    the pages image of their blocks: zero blocks stored as nothing, the
    rest as LZ4 blocks or raw where LZ4 does not shrink them; aligned
    entries (PE_PAYLOAD_ALIGNED 8) at a page boundary."""
    msgs, data = [fv(1, pages_id)], b""
    for vaddr, pages, per, *aligned in entries:
        sizes, total = b"", 0
        if aligned and aligned[0]:
            data += bytes(-len(data) % PAGE)
        for i in range(0, len(pages), per):
            raw = b"".join(pages[i:i + per])
            block = b"" if raw == bytes(len(raw)) else lz4_block(raw)
            if len(block) >= len(raw):
                block = raw
            sizes += varint(len(block))
            total += len(block)
            data += block
        blocks = fb(1, sizes) + fv(2, total) + fv(3, per)
        flags = 4 | (8 if aligned and aligned[0] else 0)
        msgs.append(fv(1, vaddr) + fv(2, len(pages)) + fv(4, flags) + fb(6, blocks) + extra)
    return image(PAGEMAP_M, msgs), data


def mm(vmas):
    m = b"".join(fv(i, 0) for i in range(1, 12)) + fv(12, 1)
    for start, end, status, *shm in vmas:
        pgoff, shmid = shm if shm else (0, 0)
        v = fv(1, start) + fv(2, end) + fv(3, pgoff) + fv(4, shmid) + fv(5, 3) + \
            fv(6, 0x22) + fv(7, status) + fv(8, 1)  # fd -1 as sint64 (zigzag 1)
        m += fb(14, v)
    return image(MM_M, [m])


def records(files):
    out = b""
    for name, data in files:
        out += bytes([CRIU_NAMES.index(name)]) + struct.pack("<I", len(data)) + data
    return out


def link(name, target):
    return (name, bytes([TARGETS.index(target)]))


VMAS = [(0x400000, 0x410000, 0x221), (0x7000000, 0x7004000, 0x203), (0x7100000, 0x7101000, 0x1001)]


def criu_seeds():
    PRESENT, PARENT, LAZY = 4, 1, 2
    simple = [("d/pagemap-1.img", pagemap(1, [(0x400000, 2, PRESENT, None),
                                             (0x7000000, 1, None, None)])),
              ("d/pages-1.img", page(1) + page(2) + page(3)),
              ("d/mm-1.img", mm(VMAS))]
    write("criu", "simple", records(simple))
    write("criu", "no-mm", records(simple[:2]))
    chain = [("d/pagemap-1.img", pagemap(1, [(0x400000, 1, PRESENT, None),
                                            (0x401000, 3, PARENT, None),
                                            (0x7000000, 1, None, True)])),
             ("d/pages-1.img", page(4)), ("d/mm-1.img", mm(VMAS)), link("d/parent", "../p"),
             ("p/pagemap-1.img", pagemap(1, [(0x400000, 2, PRESENT, None),
                                            (0x402000, 2, PARENT, None),
                                            (0x7000000, 1, PRESENT, None)])),
             ("p/pages-1.img", page(5) + page(6) + page(7)), link("p/parent", "../q"),
             ("q/pagemap-1.img", pagemap(1, [(0x402000, 2, PRESENT, None),
                                            (0x404000, 1, LAZY, None)])),
             ("q/pages-1.img", page(8) + page(9))]
    write("criu", "chain", records(chain))
    write("criu", "parent-loop", records(chain[:-2] + [link("p/parent", "../d")]))
    write("criu", "self-parent", records(chain[:3] + [link("d/parent", ".")]))
    write("criu", "missing-parent", records(chain[:3] + [link("d/parent", "missing")]))
    write("criu", "truncated-pages", records([simple[0], ("d/pages-1.img", page(1)[:100]),
                                              simple[2]]))
    write("criu", "unordered", records([("d/pagemap-1.img",
                                         pagemap(1, [(0x401000, 1, PRESENT, None),
                                                     (0x400000, 1, PRESENT, None)])),
                                        ("d/pages-1.img", page(1) + page(2))]))
    write("criu", "huge-count", records([("d/pagemap-1.img",
                                          pagemap(1, [(0x400000, 2**52, PARENT, None)]))]))
    write("criu", "outside-vmas", records([("d/pagemap-1.img",
                                            pagemap(1, [(0x900000, 1, PRESENT, None)])),
                                           ("d/pages-1.img", page(1)), ("d/mm-1.img", mm(VMAS))]))
    pstree = image(PSTREE_M, [fv(1, 2) + fv(2, 0) + fv(3, 2) + fv(4, 2) + fv(5, 2)])
    write("criu", "two-processes", records(simple + [
        ("d/pagemap-2.img", pagemap(2, [(0x400000, 1, PRESENT, None)])),
        ("d/pages-2.img", page(9)), ("d/pstree.img", pstree)]))
    shm_vmas = VMAS[:1] + [(0x6000000, 0x6003000, 0x101, PAGE, 7),
                           (0x6100000, 0x6101000, 0x101, 0, 7)] + VMAS[1:]
    shared = [("d/pagemap-1.img", pagemap(1, [(0x400000, 1, PRESENT, None)])),
              ("d/pages-1.img", page(1)), ("d/mm-1.img", mm(shm_vmas)),
              ("d/pagemap-shmem-7.img", pagemap(7, [(0, 1, PARENT, None),
                                                   (PAGE, 2, PRESENT, None)])),
              ("d/pages-7.img", page(2) + page(3)), link("d/parent", "../p"),
              ("p/pagemap-shmem-7.img", pagemap(7, [(0, 4, PRESENT, None)])),
              ("p/pages-7.img", page(4) + page(5) + page(6) + page(7))]
    write("criu", "shared-memory", records(shared))
    write("criu", "shared-overlap", records(shared[:2] + [
        ("d/mm-1.img", mm([(0x400000, 0x410000, 0x101, 0, 7)]))] + shared[3:]))
    cut = bytearray(simple[0][1])
    write("criu", "entry-cut", records([("d/pagemap-1.img", bytes(cut[:-3])), simple[1]]))
    big_len = bytearray(simple[0][1])
    struct.pack_into("<I", big_len, 8, 0xFFFFFFF0)
    write("criu", "entry-length", records([("d/pagemap-1.img", bytes(big_len)), simple[1]]))
    # LZ4-compressed pages, alone and over a plain parent dump; a block
    # that decodes short; an entry with a field from a newer CRIU.
    pm, data = lz4_pagemap(1, [(0x400000, [page(1), page(2), page(3)], 2),
                               (0x7000000, [page(4)], 1)])
    write("criu", "lz4", records([("d/pagemap-1.img", pm), ("d/pages-1.img", data),
                                  ("d/mm-1.img", mm(VMAS))]))
    pm, data = lz4_pagemap(1, [(0x400000, [page(5)], 1)])
    pm += struct.pack("<I", len(fv(1, 0x401000) + fv(2, 3) + fv(4, 1))) + \
        fv(1, 0x401000) + fv(2, 3) + fv(4, 1)
    write("criu", "lz4-chain", records([
        ("d/pagemap-1.img", pm), ("d/pages-1.img", data), link("d/parent", "../p"),
        ("p/pagemap-1.img", pagemap(1, [(0x400000, 4, PRESENT, None)])),
        ("p/pages-1.img", page(6) + page(7) + page(8) + page(9))]))
    one = lz4_block(page(1))
    short = image(PAGEMAP_M, [fv(1, 1), fv(1, 0x400000) + fv(2, 2) + fv(4, 4) +
                              fb(6, fb(1, varint(len(one))) + fv(2, len(one)) + fv(3, 2))])
    write("criu", "lz4-short", records([("d/pagemap-1.img", short), ("d/pages-1.img", one)]))
    # Zero and raw blocks, PE_PAYLOAD_ALIGNED entries after a compressed one.
    rnd = bytes((i * 2654435761 >> 13) & 0xFF for i in range(PAGE))
    pm, data = lz4_pagemap(1, [(0x400000, [page(1), bytes(PAGE), rnd], 1),
                               (0x500000, [bytes(PAGE)] * 2, 2, True),
                               (0x600000, [page(2), page(3)], 2, True)])
    write("criu", "lz4-zero-raw-aligned", records([("d/pagemap-1.img", pm),
                                                   ("d/pages-1.img", data)]))
    pm, data = lz4_pagemap(1, [(0x400000, [page(1)], 1)], extra=fv(15, 1))
    write("criu", "newer-field", records([("d/pagemap-1.img", pm), ("d/pages-1.img", data)]))


# --- gVisor checkpoints --------------------------------------------------


def gv_meta(ranges, chunks=1, version=1):
    m = fv(1, version) if version else b""
    m += fb(2, b"") * chunks
    for start, end, kind, memcg, committed in ranges:
        r = b""
        for num, v in ((1, start), (2, end), (3, kind), (4, memcg), (5, int(committed))):
            if v:
                r += fv(num, v)
        m += fb(3, r)
    m += fb(8, fv(1, 1) + fv(2, 2))
    return m


def gv(meta, pages, extra=b""):
    pm = struct.pack("<Q", len(meta)) + meta + extra
    return bytes([0]) + struct.pack("<I", len(pm)) + pm + \
        bytes([1]) + struct.pack("<I", len(pages)) + pages


def gvisor_seeds():
    ranges = [(0, 2 * PAGE, 1, 0, True), (2 * PAGE, 4 * PAGE, 2, 3, False),
              (8 * PAGE, 9 * PAGE, 5, 1, True)]
    pages = page(1) + page(2) + page(3)
    write("gvisor", "basic", gv(gv_meta(ranges), pages))
    second = gv_meta([(0, PAGE, 3, 0, True)])
    write("gvisor", "private-mfs", gv(gv_meta(ranges), pages + page(4),
                                      extra=private_meta([("c", "/dev/shm")]) +
                                      struct.pack("<Q", len(second)) + second))
    write("gvisor", "version-2", gv(gv_meta(ranges, version=2), pages))
    write("gvisor", "no-version", gv(gv_meta(ranges, version=0), pages))
    write("gvisor", "overlap", gv(gv_meta([(0, 2 * PAGE, 1, 0, True),
                                           (PAGE, 3 * PAGE, 1, 0, True)]), pages))
    write("gvisor", "unordered", gv(gv_meta(list(reversed(ranges))), pages))
    write("gvisor", "truncated-pages", gv(gv_meta(ranges), pages[:-1]))
    write("gvisor", "past-end", gv(gv_meta([(0, 2 << 30, 1, 0, False)]), b""))
    write("gvisor", "many-chunks", gv(gv_meta(ranges, chunks=3) + fb(2, b"") * 5000, pages))
    write("gvisor", "length", bytes([0]) + struct.pack("<I", 10) +
          struct.pack("<Q", 2**64 - 1) + b"\x08\x01")
    write("gvisor", "kind", gv(gv_meta([(0, PAGE, 6, 0, True)]), page(1)))


# --- gVisor's state encoding (pkg/state/wire, gVisor 20221219) ----------

OBJECT_FLAG = 1 << 63
T_BOOL, T_INT, T_UINT, T_NIL, T_REF, T_STRING, T_SLICE, T_ARRAY, T_MAP, T_STRUCT = \
    0, 1, 2, 5, 6, 7, 8, 9, 10, 11
T_NO_OBJECTS, T_MULTIPLE, T_INTERFACE, T_COMPLEX64, T_TYPE = 12, 13, 14, 15, 17
NIL = varint(T_NIL)


def s_str(b):
    return varint(len(b)) + b


def s_type(name, fields):
    return varint(T_TYPE) + s_str(name) + varint(len(fields)) + b"".join(s_str(f) for f in fields)


def zigzag(v):
    return v << 1 if v >= 0 else ~(v << 1)


def s_int(v):
    return varint(T_INT) + varint(zigzag(v))


def s_uint(v):
    return varint(T_UINT) + varint(v)


def ref(root):
    return varint(T_REF) + varint(root) + varint(0)


def graph(types, objs):
    """state.Save(): the header, the types, then each object by ID."""
    out = varint(OBJECT_FLAG | len(objs)) + types
    for i, o in enumerate(objs):
        out += varint(T_UINT) + varint(i + 1) + o
    return out


def file_size_graph(size):
    return graph(b"", [s_int(size) if size else NIL])


def usage_graph(segs):
    """pgalloc's usageSet as usageSegmentDataSlices (usage_set.go)."""
    types = (s_type(b"pkg/sentry/pgalloc.usageSet", [b"root"]) +
             s_type(b"pkg/sentry/pgalloc.usageSegmentDataSlices", [b"Start", b"End", b"Values"]) +
             s_type(b"pkg/sentry/pgalloc.usageInfo", [b"kind", b"knownCommitted", b"refs"]))
    n = len(segs)
    sl = (lambda root: varint(T_SLICE) + varint(n) + varint(n) + varint(root) + varint(0)) \
        if n else (lambda root: NIL)
    objs = [varint(T_STRUCT) + varint(1) + ref(2),
            varint(T_STRUCT) + varint(2) + varint(T_MULTIPLE) + varint(3) + sl(3) + sl(4) + sl(5)]
    if n:
        for col in (0, 1):
            vals = [sg[col] for sg in segs]
            objs.append(varint(T_ARRAY) + varint(n) + s_uint(vals[0]) +
                        b"".join(varint(v) for v in vals[1:]))

        def info(kind, committed):
            return (varint(3) + varint(T_MULTIPLE) + varint(3) + (s_int(kind) if kind else NIL) +
                    (varint(T_BOOL) + varint(1) if committed else NIL) + s_uint(1))
        objs.append(varint(T_ARRAY) + varint(n) + varint(T_STRUCT) + info(*segs[0][2:]) +
                    b"".join(info(*sg[2:]) for sg in segs[1:]))
    return graph(types, objs)


def _struct_array(first_tagged_bodies):
    bodies = first_tagged_bodies
    return (varint(T_ARRAY) + varint(len(bodies)) + varint(T_STRUCT) + bodies[0] +
            b"".join(bodies[1:]))


def _value(tid, kind, memcg, committed, extra):
    """usageInfo {kind, knownCommitted, refs, memCgID} (tid 3, gVisor
    a87aa7369 on) or memAcctInfo {kind, memCgID, knownCommitted,
    wasteOrReleasing, commitSeq}."""
    k = s_int(kind) if kind else NIL
    m = s_uint(memcg) if memcg else NIL
    c = varint(T_BOOL) + varint(1) if committed else NIL
    fields = [k, c, s_uint(1), m] if not extra else [k, m, c, NIL, NIL]
    return varint(tid) + varint(T_MULTIPLE) + varint(len(fields)) + b"".join(fields)


def _flat(segs, tid_flat, tid_value, extra):
    def u(v):
        return s_uint(v) if v else NIL
    return _struct_array([varint(tid_flat) + varint(T_MULTIPLE) + varint(3) + u(s) + u(e) +
                          varint(T_STRUCT) + _value(tid_value, k, m, c, extra)
                          for s, e, k, m, c in segs])


def flat_usage_graph(segs):
    """The usage set as gVisor 88d35cd8f (2023-11-17) to a5573312e saves
    it: root []usageFlatSegment {Start, End, Value usageInfo}.
    segs: (start, end, kind, memcg, committed)."""
    types = (s_type(b"pkg/sentry/pgalloc.usageSet", [b"root"]) +
             s_type(b"pkg/sentry/pgalloc.usageFlatSegment", [b"Start", b"End", b"Value"]) +
             s_type(b"pkg/sentry/pgalloc.usageInfo", [b"kind", b"knownCommitted", b"refs",
                                                      b"memCgID"]))
    n = len(segs)
    objs = [varint(T_STRUCT) + varint(1) +
            (varint(T_SLICE) + varint(n) + varint(n) + varint(2) + varint(0) if n else NIL)]
    if n:
        objs.append(_flat(segs, 2, 3, False))
    return graph(types, objs)


def saved_graph(segs, chunks):
    """memoryFileSaved (gVisor a5573312e, 2024-06-28, to 6acfb4158):
    memAcct *memAcctSet (root []memAcctFlatSegment), chunks []chunkInfo."""
    types = (s_type(b"pkg/sentry/pgalloc.memoryFileSaved",
                    [b"unwasteSmall", b"unwasteHuge", b"unfreeSmall", b"unfreeHuge",
                     b"subreleased", b"memAcct", b"chunks"]) +
             s_type(b"pkg/sentry/pgalloc.memAcctSet", [b"root"]) +
             s_type(b"pkg/sentry/pgalloc.memAcctFlatSegment", [b"Start", b"End", b"Value"]) +
             s_type(b"pkg/sentry/pgalloc.memAcctInfo", [b"kind", b"memCgID", b"knownCommitted",
                                                        b"wasteOrReleasing", b"commitSeq"]) +
             s_type(b"pkg/sentry/pgalloc.chunkInfo", [b"huge"]))
    n, m = len(segs), len(chunks)
    seg_id = 3 if n else None
    chunk_id = (4 if n else 3) if m else None
    objs = [varint(T_STRUCT) + varint(1) + varint(T_MULTIPLE) + varint(7) + NIL * 5 + ref(2) +
            (varint(T_SLICE) + varint(m) + varint(m) + varint(chunk_id) + varint(0) if m else NIL),
            varint(T_STRUCT) + varint(2) +
            (varint(T_SLICE) + varint(n) + varint(n) + varint(seg_id) + varint(0) if n else NIL)]
    if n:
        objs.append(_flat(segs, 3, 4, True))
    if m:
        objs.append(_struct_array([varint(5) + (varint(T_BOOL) + varint(1) if h else NIL)
                                   for h in chunks]))
    return graph(types, objs)


def odd_graph():
    """Every other kind once: strings, maps, interfaces, complex numbers,
    refs with dots, empty structs."""
    types = s_type(b"x.T", [b"a", b"b"])
    objs = [varint(T_STRING) + s_str(b"hello"),
            varint(T_MAP) + varint(2) + s_uint(1) + varint(T_STRING) + s_str(b"one") +
            varint(2) + s_str(b"two"),
            varint(T_INTERFACE) + varint(0) + varint(1) + varint(T_STRUCT) + varint(1) +
            varint(T_MULTIPLE) + varint(2) + NIL + s_int(-5),
            varint(T_COMPLEX64) + varint(1) + varint(2),
            varint(T_REF) + varint(1) + varint(2) + varint(zigzag(3)) + varint(zigzag(-1)) +
            b"a" + varint(1) + varint(0) + varint(1),
            varint(T_STRUCT) + varint(0) + varint(T_NO_OBJECTS),
            varint(T_ARRAY) + varint(0)]
    return graph(types, objs)


def private_meta(owners):
    """state.Save() of kernel.privateMemoryFileMetadata {owners
    []checkpoint.ResourceID {ContainerName, Path}} (gVisor 3c5eee17dc45);
    an owner given as a str is the older owners []string."""
    T = sys.modules[__name__]
    types = (T.s_type(b"pkg/sentry/kernel.privateMemoryFileMetadata", [b"owners"]) +
             T.s_type(b"pkg/sentry/checkpoint.ResourceID", [b"ContainerName", b"Path"]))
    n = len(owners)

    def owner(o, tagged):
        if isinstance(o, str):
            return (T.varint(T.T_STRING) if tagged else b"") + T.s_str(o.encode())
        fields = b"".join(T.varint(T.T_STRING) + T.s_str(f.encode()) if f else T.NIL
                          for f in o)
        return ((T.varint(T.T_STRUCT) if tagged else b"") + T.varint(2) +
                T.varint(T.T_MULTIPLE) + T.varint(2) + fields)
    objs = [T.varint(T.T_STRUCT) + T.varint(1) +
            (T.varint(T.T_SLICE) + T.varint(n) + T.varint(n) + T.varint(2) + T.varint(0)
             if n else T.NIL)]
    if n:
        objs.append(T.varint(T.T_ARRAY) + T.varint(n) + owner(owners[0], True) +
                    b"".join(owner(o, False) for o in owners[1:]))
    return T.graph(types, objs)


SEGS = [(0, 2 * PAGE, 1, True), (2 * PAGE, 4 * PAGE, 3, False), (8 * PAGE, 9 * PAGE, 3, True)]


def mf_stream(segs, size=1 << 30, data=True):
    """The MemoryFile as kernel.SaveTo() ends: fileSize, usage, then per
    committed segment a data header and (with data) its bytes."""
    out = file_size_graph(size) + usage_graph(segs)
    for i, (s, e, _, c) in enumerate(segs):
        if c:
            out += varint(e - s) + (b"".join(page(i * 8 + k) for k in range(0, e - s, PAGE))
                                    if data else b"")
    return out


def statefile(stream, key=b"", keyed=False, chunk=4096):
    meta = b'{"_timestamp":"seed"}'
    head = b"gVisorSF" + struct.pack(">Q", len(meta)) + meta
    out = head + hmac.new(key, head, hashlib.sha256).digest() + struct.pack(">I", chunk)
    last = hmac.new(key, struct.pack(">I", chunk), hashlib.sha256).digest()
    if keyed:
        out += last
    for i in range(0, len(stream), chunk):
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        d = c.compress(stream[i:i + chunk]) + c.flush()
        out += struct.pack(">I", len(d)) + d
        if keyed:
            last = hmac.new(key, d + struct.pack(">I", len(d)) + last, hashlib.sha256).digest()
            out += last
    return out


def gvisor_state_seeds():
    skip = graph(b"", [NIL])
    write("gvisor_wire", "mf", skip + mf_stream(SEGS, data=False))
    write("gvisor_wire", "mf-empty", file_size_graph(0) + usage_graph([]))
    write("gvisor_wire", "odd-kinds", odd_graph() + odd_graph())
    write("gvisor_wire", "nil-array", graph(b"", [varint(T_ARRAY) + varint(2**40) + NIL]))
    write("gvisor_wire", "deep", graph(b"", [varint(T_INTERFACE) + varint(1) * 600 + varint(0)]))
    stream = skip + skip + mf_stream(SEGS)
    write("gvisor_statefile", "stream", b"\x01" + stream)
    write("gvisor_statefile", "stream-empty-usage", b"\x01" + skip + skip + mf_stream([]))
    write("gvisor_statefile", "stream-bad-header", b"\x01" + skip + skip +
          mf_stream(SEGS, data=False) + varint(OBJECT_FLAG | 5))
    write("gvisor_statefile", "file", b"\x00" + statefile(stream))
    write("gvisor_statefile", "file-cut", b"\x00" + statefile(stream)[:-100])
    write("gvisor_statefile", "file-chunk-size", b"\x00" + statefile(stream, chunk=1 << 30))
    # Later containers (gvisor_statefile.c): "none" unframed, framed,
    # keyed (chained HMACs); flate without the header HMAC; unknown value.
    none = b'{"compression":"none"}'
    head = b"gVisorSF" + struct.pack(">Q", len(none)) + none
    hsum = hmac.new(b"", head, hashlib.sha256).digest()
    write("gvisor_statefile", "none-raw", b"\x00" + head + stream)
    write("gvisor_statefile", "none-raw-sum", b"\x00" + head + hsum + stream)
    framed, prev = bytearray(head + hsum), bytes(32)
    keyed = bytearray(head + hmac.new(b"k", head, hashlib.sha256).digest())
    for i in range(0, len(stream), 1000):
        p = stream[i:i + 1000]
        n = struct.pack(">I", len(p))
        framed += n + p
        prev = hmac.new(b"k", p + n + prev, hashlib.sha256).digest()
        keyed += n + p + prev
    write("gvisor_statefile", "none-framed", b"\x00" + bytes(framed))
    write("gvisor_statefile", "none-keyed", b"\x00" + bytes(keyed))
    flate = b'{"compression":"flate-best-speed"}'
    old = statefile(stream, chunk=1 << 20)
    fhead = b"gVisorSF" + struct.pack(">Q", len(flate)) + flate
    body = old[16 + len(b'{"_timestamp":"seed"}') + 32:]
    write("gvisor_statefile", "flate-nosum", b"\x00" + fhead + body)
    write("gvisor_statefile", "zstd", b"\x00" + fhead.replace(b"flate-best-speed",
                                                              b"zstd-best-speedy") + body)
    # The v1 MemoryFile inline (gVisor since 6acfb4158), main and private.
    v1 = gv_meta([(0, 2 * PAGE, 1, 0, True), (4 * PAGE, 5 * PAGE, 3, 2, False)])
    inline = struct.pack("<Q", len(v1)) + v1 + varint(2 * PAGE) + page(1) + page(2)
    write("gvisor_statefile", "inline-v1", b"\x03" + skip + skip + inline)
    write("gvisor_statefile", "inline-v1-private", b"\x03" + skip + skip + inline +
          private_meta([("c", "/p")]) + inline)
    write("gvisor_statefile", "inline-v1-flate", b"\x01" + skip + skip + inline)
    # The later state-encoded generations, inline (flate) and in
    # pages_meta.img (with and without data headers).
    later = [(0, 2 * PAGE, 1, 3, True), (2 * PAGE, 4 * PAGE, 3, 0, False),
             (8 * PAGE, 9 * PAGE, 3, 0, True)]
    data = varint(2 * PAGE) + page(1) + page(2) + varint(PAGE) + page(3)
    flat = file_size_graph(1 << 30) + flat_usage_graph(later)
    saved = saved_graph(later, [True])
    write("gvisor_statefile", "flat-inline", b"\x01" + skip + skip + flat + data)
    write("gvisor_statefile", "saved-inline", b"\x01" + skip + skip + saved + data)
    write("gvisor_wire", "saved", skip + saved)
    write("gvisor_statefile", "saved-inline-private", b"\x01" + skip + skip + saved + data +
          private_meta([("c", "/p")]) + saved + data)
    pages = page(1) + page(2) + page(3)
    for name, meta in (("flat", flat + varint(2 * PAGE) + varint(PAGE)),
                       ("saved-async", saved + private_meta([]))):
        write("gvisor", "state-" + name, bytes([0]) + struct.pack("<I", len(meta)) + meta +
              bytes([1]) + struct.pack("<I", len(pages)) + pages)
    # The seed era's directory: state-encoded pages_meta.img, pages.img.
    meta = mf_stream(SEGS, data=False)
    pages = b"".join(page(i * 8 + k) for i, (s, e, _, c) in enumerate(SEGS) if c
                     for k in range(0, e - s, PAGE))
    write("gvisor", "state-encoded", bytes([0]) + struct.pack("<I", len(meta)) + meta +
          bytes([1]) + struct.pack("<I", len(pages)) + pages)


if __name__ == "__main__":
    elf_seeds()
    criu_seeds()
    gvisor_seeds()
    gvisor_state_seeds()
