# SPDX-License-Identifier: MIT
"""CRIU dumps with LZ4-compressed pages (pagemap_entry.blocks = 6:
pagemap_blocks {block_sizes = 1 packed, total_payload_size = 2,
pages_per_block = 3}, criu-dev since pull requests #2895/#3115: pages cut
into blocks of pages_per_block pages, each stored as 0 bytes (zeros), raw
(its pages' size) or one LZ4 block; PE_PAYLOAD_ALIGNED 8 puts an entry's
payload at a page boundary; see src/lib/proto/pagemap.proto), written here byte by byte in
CRIU's image format (magics, u32-length-prefixed protobuf entries) and
compressed with liblz4 itself (through ctypes): per-page blocks, larger
blocks with a shorter last one, a chain mixing plain and compressed dumps
(and plain and compressed entries in one dump), every page compared through
the mount. A pagemap from a newer CRIU (an unknown field or flag) and
broken blocks are refused with a message, leaving no snapshot."""

import ctypes
import ctypes.util
import os

import common
from common import PAGE, check, snapfs

COMMON_MAGIC = 0x54564319
PAGEMAP_MAGIC = 0x56084025
PE_PARENT, PE_LAZY, PE_PRESENT, PE_PAYLOAD_ALIGNED = 1, 2, 4, 8

_lz4 = None


def lz4_compress(data):
    """One LZ4 block (block format, no frame) made by liblz4."""
    global _lz4
    if _lz4 is None:
        name = ctypes.util.find_library("lz4") or "liblz4.so.1"
        _lz4 = ctypes.CDLL(name)
    bound = _lz4.LZ4_compressBound(len(data))
    out = ctypes.create_string_buffer(bound)
    n = _lz4.LZ4_compress_default(data, out, len(data), bound)
    check(n > 0, "LZ4_compress_default failed")
    return out.raw[:n]


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def fld(num, payload=None, value=None):
    if payload is None:
        return varint(num << 3) + varint(value)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def image(magic, entries):
    out = COMMON_MAGIC.to_bytes(4, "little") + magic.to_bytes(4, "little")
    for e in entries:
        out += len(e).to_bytes(4, "little") + e
    return out


def page(level, addr):
    """Pages that compress (a repeating 64-byte motif) but differ."""
    motif = common.pattern(64, level * 1_000_003 + addr // PAGE)
    return motif * (PAGE // 64)


def blocks_msg(per, sizes, total=None):
    """pagemap_blocks: block_sizes = 1 (packed), total_payload_size = 2,
    pages_per_block = 3."""
    total = sum(sizes) if total is None else total
    return (fld(1, b"".join(varint(x) for x in sizes)) + fld(2, value=total) +
            fld(3, value=per))


def store_block(data):
    """What CRIU stores for a block (criu/compression.c compress_region()):
    nothing for zeros, the LZ4 block, or the bytes raw when LZ4 does not
    save at least an eighth."""
    if data == bytes(len(data)):
        return b""
    c = lz4_compress(data)
    return data if len(c) >= len(data) * 7 // 8 else c


def write_dump(d, level, entries, parent=None, pages_id=101, extra=b""):
    """entries: (vaddr, nr, how, block_pages) with how 'present' (plain),
    'aligned' (plain, PE_PAYLOAD_ALIGNED), 'lz4' (in blocks of
    block_pages), 'lz4-aligned', 'parent', 'lazy'; the page at ZERO_ADDR
    (if any) is all zeros, RAW_ADDR holds random bytes (a raw block), the
    pages from ZERO_RUN are zeros (a zero block). Returns {addr: bytes}."""
    os.makedirs(d, exist_ok=True)
    pm = [fld(1, value=pages_id)]
    data, present = bytearray(), {}
    for vaddr, nr, how, per in entries:
        e = fld(1, value=vaddr) + fld(2, value=nr)
        pages = [page(level, vaddr + i * PAGE) for i in range(nr)]
        for i in range(nr):
            a = vaddr + i * PAGE
            if a == ZERO_ADDR or ZERO_RUN <= a < ZERO_RUN + 4 * PAGE:
                pages[i] = bytes(PAGE)
            elif a == RAW_ADDR:
                pages[i] = common.pattern(PAGE, 99 + level)
        flags = {"present": PE_PRESENT, "lz4": PE_PRESENT, "parent": PE_PARENT,
                 "lazy": PE_LAZY, "aligned": PE_PRESENT | PE_PAYLOAD_ALIGNED,
                 "lz4-aligned": PE_PRESENT | PE_PAYLOAD_ALIGNED}[how]
        e += fld(4, value=flags)
        if flags & PE_PRESENT:
            for i, b in enumerate(pages):
                present[vaddr + i * PAGE] = b
        if flags & PE_PAYLOAD_ALIGNED:
            data += bytes(-len(data) % PAGE)
        if how in ("present", "aligned"):
            data += b"".join(pages)
        elif how.startswith("lz4"):
            stored = [store_block(b"".join(pages[i:i + per])) for i in range(0, nr, per)]
            data += b"".join(stored)
            e += fld(6, blocks_msg(per, [len(x) for x in stored]))
        pm.append(e + extra)
    (d / "pagemap-1.img").write_bytes(image(PAGEMAP_MAGIC, pm))
    (d / f"pages-{pages_id}.img").write_bytes(bytes(data))
    if parent:
        os.symlink(parent, d / "parent")
    return present


ZERO_ADDR = 0x402000
RAW_ADDR = 0x405000
ZERO_RUN = 0x410000  # 4 zero pages: a zero block in blocks of 4
A = 0x400000        # 40 pages
B = 0x800000        # 7 pages


def check_all(ctx, store, name, want, ranges):
    offsets = [a for lo, hi in ranges for a in range(lo, hi, PAGE)]
    got = common.read_memory(ctx, store, name, [(a, PAGE) for a in offsets])
    bad = [hex(a) for a, b in zip(offsets, got) if b != want.get(a, bytes(PAGE))]
    check(not bad, f"{name}: pages differ at {bad[:8]}")


def case_per_page(ctx):
    d = ctx.dir / "d"
    want = write_dump(d, 0, [(A, 40, "lz4", 1), (B, 7, "lz4", 1)])
    check(os.path.getsize(d / "pages-101.img") < 47 * PAGE // 4, "the pages did not compress")
    store = ctx.store()
    snapfs("save", store, "c", d, "--quiet")
    check(common.snapshot_row(store, "c")["format"] == "criu", "format")
    check_all(ctx, store, "c", want, [(A, A + 41 * PAGE), (B - PAGE, B + 7 * PAGE)])
    n = common.query(store, "SELECT data_bytes FROM snapshot_summary WHERE name = 'c'")[0][0]
    check(n == 42 * PAGE, f"data_bytes {n}: the zero pages should not count")


def case_blocks(ctx):
    """Blocks of 16 pages (40 = 16 + 16 + 8) and of 4 (7 = 4 + 3)."""
    d = ctx.dir / "d"
    want = write_dump(d, 0, [(A, 40, "lz4", 16), (B, 7, "lz4", 4)])
    store = ctx.store()
    snapfs("save", store, "c", d, "--quiet")
    check_all(ctx, store, "c", want, [(A, A + 40 * PAGE), (B, B + 7 * PAGE)])


def case_zero_raw_aligned(ctx):
    """Zero blocks (size 0), a raw block (its pages' size), entries whose
    payload is PE_PAYLOAD_ALIGNED after compressed ones (padding before
    them), mixed with plain ones."""
    d = ctx.dir / "d"
    entries = [(A, 8, "lz4", 1), (A + 8 * PAGE, 8, "present", 0),
               (A + 16 * PAGE, 4, "lz4-aligned", 4), (A + 20 * PAGE, 3, "aligned", 0),
               (A + 24 * PAGE, 16, "lz4", 8), (B, 7, "aligned", 0)]
    want = write_dump(d, 0, entries)
    check(store_block(want[RAW_ADDR]) == want[RAW_ADDR], "the random page compressed")
    check(store_block(want[ZERO_RUN] * 4) == b"", "no zero block")
    pages = (d / "pages-101.img").read_bytes()
    # Padding: the plain pages before the aligned entries do not start
    # where the compressed bytes end.
    check(pages.find(want[A + 20 * PAGE]) % PAGE == 0 and pages.find(want[B]) % PAGE == 0,
          "the aligned entries are not page-aligned in the pages image")
    check(pages.find(want[A + 8 * PAGE]) % PAGE != 0, "no padding to skip")
    store = ctx.store()
    snapfs("save", store, "c", d, "--quiet")
    check_all(ctx, store, "c", want, [(A, A + 40 * PAGE), (B, B + 7 * PAGE)])


def case_mixed_chain(ctx):
    """d2 plain, d1 compressed on d2 (and one plain entry), d0 plain on d1."""
    d2, d1, d0 = ctx.dir / "d2", ctx.dir / "d1", ctx.dir / "d0"
    p2 = write_dump(d2, 2, [(A, 40, "present", 0), (B, 7, "present", 0)])
    p1 = write_dump(d1, 1, [(A, 8, "lz4", 3), (A + 8 * PAGE, 32, "parent", 0),
                            (B, 2, "present", 0), (B + 2 * PAGE, 5, "lz4", 2)],
                    parent="../d2")
    p0 = write_dump(d0, 0, [(A, 4, "parent", 0), (A + 4 * PAGE, 4, "present", 0),
                            (A + 8 * PAGE, 32, "parent", 0), (B, 7, "parent", 0)],
                    parent="../d1")
    want = {**p2, **p1, **p0}
    store = ctx.store()
    snapfs("save", store, "c", d0, "--quiet")
    check_all(ctx, store, "c", want, [(A, A + 40 * PAGE), (B, B + 7 * PAGE)])
    snapfs("save", store, "mid", d1, "--quiet")
    check_all(ctx, store, "mid", {**p2, **p1}, [(A, A + 40 * PAGE), (B, B + 7 * PAGE)])


def refused(ctx, d, words, expect=1):
    """Refused: 1 for a broken dump, 2 for one this snapfs cannot read
    (a newer format, like a store of a newer schema)."""
    store = ctx.store()
    p = snapfs("save", store, "x", d, "--format", "criu", expect=expect)
    for w in words:
        check(w in p.stderr, f"message lacks {w!r}: {p.stderr.strip()}")
    check(common.query(store, "SELECT count(*) FROM snapshots") == [(0,)],
          "a refused dump left a snapshot")


def case_newer_criu(ctx):
    """An unknown field in an entry, an unknown flag, an unknown field in
    blocks: refused, naming it."""
    d = ctx.dir / "f"
    write_dump(d, 0, [(A, 4, "lz4", 1)], extra=fld(15, value=3))
    refused(ctx, d, ["pagemap-1.img", "field 15", "newer CRIU"], expect=2)
    d = ctx.dir / "g"
    write_dump(d, 0, [(A, 4, "present", 0)], extra=fld(4, value=PE_PRESENT | 0x10))
    refused(ctx, d, ["pagemap-1.img", "flags 0x14", "newer CRIU"], expect=2)
    d = ctx.dir / "g2"
    write_dump(d, 0, [(A, 4, "parent", 0)], extra=fld(4, value=PE_PARENT | PE_PAYLOAD_ALIGNED))
    refused(ctx, d, ["PE_PAYLOAD_ALIGNED but has no pages"])
    d = ctx.dir / "h"
    os.makedirs(d)
    pages = [page(0, A + i * PAGE) for i in range(2)]
    blocks = [lz4_compress(p) for p in pages]
    b = blocks_msg(1, [len(x) for x in blocks]) + fld(9, value=1)
    e = fld(1, value=A) + fld(2, value=2) + fld(4, value=PE_PRESENT) + fld(6, b)
    (d / "pagemap-1.img").write_bytes(image(PAGEMAP_MAGIC, [fld(1, value=101), e]))
    (d / "pages-101.img").write_bytes(b"".join(blocks))
    refused(ctx, d, ["blocks of the entry", "field 9"], expect=2)


def bad_dump(d, nr, per, blocks, sizes=None, total=None):
    os.makedirs(d)
    sizes = sizes if sizes is not None else [len(x) for x in blocks]
    e = (fld(1, value=A) + fld(2, value=nr) + fld(4, value=PE_PRESENT) +
         fld(6, blocks_msg(per, sizes, total)))
    (d / "pagemap-1.img").write_bytes(image(PAGEMAP_MAGIC, [fld(1, value=101), e]))
    (d / "pages-101.img").write_bytes(b"".join(blocks))


def case_bad_blocks(ctx):
    one = lz4_compress(page(0, A))
    two = lz4_compress(page(0, A) + page(0, A + PAGE))
    # A block that holds one page where two are declared.
    bad_dump(ctx.dir / "short", 2, 2, [one])
    refused(ctx, ctx.dir / "short", ["block 0", "fewer bytes"])
    # A block that holds more than its pages.
    bad_dump(ctx.dir / "long", 1, 1, [two])
    refused(ctx, ctx.dir / "long", ["block 0", "not valid LZ4"])
    # Damaged bytes: a match at offset 0, which LZ4 does not have.
    bad_dump(ctx.dir / "dmg", 2, 2, [bytes(len(two))])
    refused(ctx, ctx.dir / "dmg", ["block 0"])
    # Wrong count of sizes, a total that does not add up, too large blocks,
    # a pages image cut short.
    bad_dump(ctx.dir / "count", 3, 1, [one, one])
    refused(ctx, ctx.dir / "count", ["2 block sizes, wanted 3"])
    bad_dump(ctx.dir / "total", 1, 1, [one], total=len(one) + 1)
    refused(ctx, ctx.dir / "total", ["total_payload_size"])
    bad_dump(ctx.dir / "big", 1, 1, [bytes(PAGE + 1)])
    refused(ctx, ctx.dir / "big", ["block 0 of 4097 bytes is larger than its 1 pages"])
    bad_dump(ctx.dir / "huge", 2048, 2048, [one])
    refused(ctx, ctx.dir / "huge", ["2048 pages per block"])
    bad_dump(ctx.dir / "cut", 2, 1, [one, one[:-4]], sizes=[len(one), len(one)])
    refused(ctx, ctx.dir / "cut", ["pages-101.img", "truncated"])
    # Blocks on an entry without pages in this dump.
    d = ctx.dir / "par"
    os.makedirs(d)
    e = (fld(1, value=A) + fld(2, value=1) + fld(4, value=PE_PARENT) +
         fld(6, blocks_msg(1, [len(one)])))
    (d / "pagemap-1.img").write_bytes(image(PAGEMAP_MAGIC, [fld(1, value=101), e]))
    refused(ctx, d, ["compressed blocks but no pages"])


if __name__ == "__main__":
    common.main()
