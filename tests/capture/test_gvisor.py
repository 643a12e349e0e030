# SPDX-License-Identifier: MIT
"""gVisor checkpoints: pages_meta.img (an 8-byte little-endian length and a
MemoryFileMetadataProto, version 1, encoded here by hand in protobuf's wire
format) and pages.img (the known-committed ranges back to back), as runsc
writes them; saved and checked page by page, with kinds, memcgs and the
committed flag in the segments table; bad checkpoints refused cleanly."""

import hashlib
import hmac
import struct
import sys
import zlib
from pathlib import Path

import common
from common import PAGE, check, snapfs

# The encoder of gVisor's state format the fuzz seeds are made with.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fuzz"))
import make_source_seeds as enc  # noqa: E402

GIB = 1 << 30
KINDS = ["system", "anonymous", "pagecache", "tmpfs", "ramdiskfs", "mapped"]


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def field(num, wire, payload):
    if wire == 0:
        return varint(num << 3) + varint(payload)
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def metadata(ranges, chunks, version=1):
    """MemoryFileMetadataProto: version = 1, chunks = 2, mem_acct = 3
    (start, end, kind, mem_cg_id, known_committed); proto3 leaves out
    fields that are zero."""
    out = field(1, 0, version) if version else b""
    for huge in chunks:
        out += field(2, 2, field(1, 0, 1) if huge else b"")
    for start, end, kind, memcg, committed in ranges:
        r = b""
        for num, v in ((1, start), (2, end), (3, kind), (4, memcg), (5, int(committed))):
            if v:
                r += field(num, 0, v)
        out += field(3, 2, r)
    # A subreleased map entry and unfree ranges, which snapfs skips.
    out += field(8, 2, field(1, 0, 5) + field(2, 0, 7))
    out += field(4, 2, field(1, 0, 0) + field(2, 0, PAGE) + field(3, 0, 1))
    return out


def page(addr):
    return common.pattern(PAGE, 77 + addr // PAGE)


RANGES = [
    (0, 16 * PAGE, 1, 0, True),
    (16 * PAGE, 32 * PAGE, 2, 3, False),
    (GIB, GIB + 8 * PAGE, 3, 5, True),
    (GIB + 8 * PAGE, GIB + 12 * PAGE, 5, 0, True),
    (GIB + 12 * PAGE, GIB + 14 * PAGE, 0, 0, True),   # committed zero pages
    (GIB + 20 * PAGE, GIB + 21 * PAGE, 4, 9, True),
]


def write_checkpoint(d, ranges=RANGES, chunks=(False, True), version=1, meta=None,
                     extra_meta=b"", extra_pages=b""):
    d.mkdir(parents=True, exist_ok=True)
    m = meta if meta is not None else metadata(ranges, chunks, version)
    (d / "pages_meta.img").write_bytes(struct.pack("<Q", len(m)) + m + extra_meta)
    data, want = bytearray(), {}
    for start, end, kind, memcg, committed in ranges:
        if not committed:
            continue
        for a in range(start, end, PAGE):
            b = bytes(PAGE) if kind == 0 else page(a)
            want[a] = b
            data += b
    (d / "pages.img").write_bytes(bytes(data) + extra_pages)
    return want


def case_roundtrip(ctx):
    d = ctx.dir / "ckpt"
    want = write_checkpoint(d)
    store = ctx.store()
    p = snapfs("save", store, "g", d, "--json")
    row = common.snapshot_row(store, "g")
    check(row["format"] == "gvisor", f"format {row['format']}")
    check(row["file_size"] == 2 * GIB, f"file_size {row['file_size']}")
    check(row["notes"] is None, f"notes {row['notes']}")
    segs = common.segments(store, "g")
    check(segs == [(s, e, KINDS[k], m, int(c), None) for s, e, k, m, c in RANGES],
          f"segments {segs}")
    kinds = common.query(store, "SELECT kind, bytes, committed_bytes FROM kind_usage "
                         "WHERE name = 'g' ORDER BY kind")
    check(("pagecache", 16 * PAGE, 0) in kinds, f"kind_usage {kinds}")
    offsets = [a for a in range(0, 40 * PAGE, PAGE)] + \
              [a for a in range(GIB - PAGE, GIB + 24 * PAGE, PAGE)]
    got = common.read_memory(ctx, store, "g", [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        check(b == want.get(a, bytes(PAGE)), f"page at {a:#x} is wrong")
    check('"zero_pages":2' in p.stdout, "the committed zero pages were stored")


def case_huge_chunks(ctx):
    """ChunkInfoProto.huge does not change the size: len(chunks) GiB
    whatever the flags (pgalloc.go LoadFrom(), 3c5eee17dc45)."""
    store = ctx.store()
    for name, chunks in (("all-huge", (True, True, True)), ("none-huge", (False,) * 3),
                         ("mixed", (True, False, True))):
        d = ctx.dir / name
        want = write_checkpoint(d, chunks=chunks)
        snapfs("save", store, name, d)
        check(common.snapshot_row(store, name)["file_size"] == 3 * GIB, f"{name}: size")
        offsets = sorted(want)
        got = common.read_memory(ctx, store, name, [(a, PAGE) for a in offsets])
        check(all(b == want[a] for a, b in zip(offsets, got)), f"{name}: pages differ")


def case_private_memory_files(ctx):
    d = ctx.dir / "ckpt"
    p1 = [(0, PAGE, 3, 2, True), (PAGE, 3 * PAGE, 4, 0, False), (4 * PAGE, 6 * PAGE, 3, 0, True)]
    p2 = [(8 * PAGE, 9 * PAGE, 3, 0, True)]
    extra = enc.private_meta([("c1", "/dev/shm"), ("", "/tmp\n")])
    pages = b""
    for ranges in (p1, p2):
        m = metadata(ranges, [False])
        extra += struct.pack("<Q", len(m)) + m
    for base, ranges in ((2 * GIB, p1), (3 * GIB, p2)):
        for s, e, _, _, c in ranges:
            if c:
                pages += b"".join(page(base + a) for a in range(s, e, PAGE))
    want = write_checkpoint(d, extra_meta=extra, extra_pages=pages)
    store = ctx.store()
    snapfs("save", store, "g", d)
    row = common.snapshot_row(store, "g")
    check(row["notes"] is None, f"notes {row['notes']}")
    check(row["file_size"] == 4 * GIB, f"file_size {row['file_size']}")
    segs = common.segments(store, "g")
    want_segs = [(s, e, KINDS[k], m, int(c), None) for s, e, k, m, c in RANGES] + \
        [(2 * GIB + s, 2 * GIB + e, KINDS[k], m, int(c), "private:c1:/dev/shm")
         for s, e, k, m, c in p1] + \
        [(3 * GIB + s, 3 * GIB + e, KINDS[k], m, int(c), "private::/tmp?") for s, e, k, m, c in p2]
    check(segs == want_segs, f"segments {segs}")
    offsets = [GIB, 2 * GIB, 2 * GIB + PAGE, 2 * GIB + 4 * PAGE, 2 * GIB + 5 * PAGE,
               3 * GIB + 8 * PAGE]
    got = common.read_memory(ctx, store, "g", [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        w = want.get(a) or (page(a) if a >= 2 * GIB and a != 2 * GIB + PAGE else bytes(PAGE))
        check(b == w, f"page at {a:#x} is wrong")
    # The older owners []string; no private MemoryFile at all.
    for owners, label in ((["fs-1"], "private:fs-1"), ([], None)):
        d2 = ctx.dir / f"ckpt-{len(owners)}"
        extra = enc.private_meta(owners)
        if owners:
            m = metadata(p2, [False])
            extra += struct.pack("<Q", len(m)) + m
        write_checkpoint(d2, extra_meta=extra, extra_pages=page(0) if owners else b"")
        snapfs("save", store, d2.name, d2)
        labels = {g[5] for g in common.segments(store, d2.name)}
        check(labels == ({None, label} if label else {None}), f"labels {labels}")
    # A private MemoryFile's pages missing from pages.img.
    write_checkpoint(d, extra_meta=enc.private_meta(["x"]) + struct.pack("<Q", len(m)) + m)
    refused(ctx, d, 1, ["pages.img holds"])
    # Not the metadata after the main MemoryFile.
    write_checkpoint(d, extra_meta=enc.graph(b"", [enc.NIL]))
    refused(ctx, d, 1, ["after the main MemoryFile comes a 'value that is no struct'"])


def refused(ctx, d, status, words):
    store = ctx.store()
    p = snapfs("save", store, "bad", d, expect=status)
    for w in words:
        check(w in p.stderr, f"{w!r} not in {p.stderr!r}")
    check(not common.query(store, "SELECT name FROM snapshots"), "a failed save left a snapshot")


def case_newer_version(ctx):
    d = ctx.dir / "ckpt"
    write_checkpoint(d, version=2)
    refused(ctx, d, 2, ["pages_meta.img", "metadata version 2 is newer", "(version 1)"])


def case_bad_metadata(ctx):
    cases = {
        "overlap": dict(ranges=[(0, 4 * PAGE, 1, 0, True), (2 * PAGE, 6 * PAGE, 1, 0, True)]),
        "unordered": dict(ranges=[(4 * PAGE, 6 * PAGE, 1, 0, True), (0, 2 * PAGE, 1, 0, True)]),
        "unaligned": dict(ranges=[(0, 100, 1, 0, True)]),
        "past-end": dict(ranges=[(GIB - PAGE, GIB + PAGE, 1, 0, True)], chunks=[False]),
        "kind": dict(ranges=[(0, PAGE, 9, 0, True)]),
        "no-version": dict(version=0),
        "garbage": dict(meta=b"\xff" * 40),
    }
    for name, kw in cases.items():
        d = ctx.dir / name
        write_checkpoint(d, **kw)
        refused(ctx, d, 1, ["pages_meta.img", str(d)])
    # The length runs past the end of the file.
    d = ctx.dir / "length"
    write_checkpoint(d)
    (d / "pages_meta.img").write_bytes(struct.pack("<Q", 2**64 - 5) + b"\x08\x01")
    refused(ctx, d, 1, ["pages_meta.img", "past the end"])


def case_truncated_pages(ctx):
    d = ctx.dir / "ckpt"
    write_checkpoint(d)
    pages = d / "pages.img"
    pages.write_bytes(pages.read_bytes()[:-PAGE])
    refused(ctx, d, 1, ["pages.img", str(d)])


# --- the seed-era layout: state-encoded pages_meta.img, pages.img ---------

STATE_SEGS = [(0, 4 * PAGE, 1, True), (4 * PAGE, 6 * PAGE, 2, False),
              (6 * PAGE, 7 * PAGE, 3, True), (GIB + PAGE, GIB + 3 * PAGE, 5, True)]


def write_state_checkpoint(d, meta=None, segs=STATE_SEGS, size=2 * GIB):
    d.mkdir(parents=True, exist_ok=True)
    if meta is None:
        meta = enc.mf_stream(segs, size, data=False)
    (d / "pages_meta.img").write_bytes(meta)
    want, data = {}, bytearray()
    for s, e, kind, c in segs:
        if c:
            for a in range(s, e, PAGE):
                want[a] = page(a)
                data += want[a]
    (d / "pages.img").write_bytes(bytes(data))
    return want


def case_state_encoded(ctx):
    d = ctx.dir / "ckpt"
    want = write_state_checkpoint(d)
    store = ctx.store()
    snapfs("save", store, "s", d)
    row = common.snapshot_row(store, "s")
    check(row["format"] == "gvisor" and row["file_size"] == 2 * GIB, f"row {row}")
    check(row["notes"] is None, f"notes {row['notes']}")
    segs = common.segments(store, "s")
    check(segs == [(s, e, KINDS[k], 0, int(c), None) for s, e, k, c in STATE_SEGS],
          f"segments {segs}")
    offsets = list(range(0, 8 * PAGE, PAGE)) + list(range(GIB, GIB + 4 * PAGE, PAGE))
    got = common.read_memory(ctx, store, "s", [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        check(b == want.get(a, bytes(PAGE)), f"page at {a:#x} is wrong")
    # More after the main MemoryFile is noted.
    (d / "pages_meta.img").write_bytes(enc.mf_stream(STATE_SEGS, 2 * GIB, data=False) +
                                       enc.graph(b"", [enc.NIL]))
    snapfs("save", store, "s2", d)
    check("holds more after the main MemoryFile" in common.snapshot_row(store, "s2")["notes"],
          "no note of what follows")


def case_state_encoded_refused(ctx):
    T = enc
    good = T.mf_stream(STATE_SEGS, 2 * GIB, data=False)
    fs = T.file_size_graph(2 * GIB)
    other_set = T.usage_graph(STATE_SEGS).replace(b"pgalloc.usageSet", b"pgalloc.otherSet")
    two_fields = T.graph(T.s_type(b"pkg/sentry/pgalloc.usageSet", [b"root", b"x"]),
                         [T.varint(T.T_STRUCT) + T.varint(1) + T.ref(2)])
    bad_header = fs + T.usage_graph(STATE_SEGS) + T.varint(PAGE)
    cases = {
        "truncated": (good[:-3], "the state stream ends at byte"),
        "overflow": (T.varint(1 << 63 | 1) + b"\x02\x01\x02" + b"\xff" * 9 + b"\x02",
                     "a varint overflows 64 bits"),
        "deep": (T.graph(b"", [T.varint(T.T_INTERFACE) + T.varint(1) * 600 + T.varint(0)]),
                 "nest deeper than 400 levels"),
        "nil-array": (T.graph(b"", [T.varint(T.T_ARRAY) + T.varint(1 << 40) + T.NIL]),
                      "elements that take no byte"),
        "no-type": (T.graph(b"", [T.varint(T.T_STRUCT) + T.varint(3) + T.NIL]),
                    "a struct of type 3, not defined before it"),
        "fields": (fs + two_fields, "with a field count other than its type's 2"),
        "type-name": (fs + other_set, "not a 'pkg/sentry/pgalloc.usageSet'"),
        "header": (bad_header, "the header before the bytes of 0x0-0x4000 says 4096"),
        "kind": (T.mf_stream([(0, PAGE, 9, True)], 2 * GIB, data=False),
                 "unknown memory kind 9"),
        "past-size": (T.mf_stream(STATE_SEGS, GIB, data=False),
                      "segment 3 (0x40001000-0x40003000) lies past fileSize (fileSize 0x40000000)"),
        "overlap": (T.mf_stream([(0, 2 * PAGE, 1, True), (PAGE, 3 * PAGE, 1, True)], GIB,
                                data=False), "segment 1 (0x1000-0x3000) overlaps"),
        "data-header": (fs + T.varint(5) + good, "a data header (5 bytes) where a state object"),
    }
    for name, (meta, words) in cases.items():
        d = ctx.dir / name
        write_state_checkpoint(d, meta=meta)
        refused(ctx, d, 1, ["pages_meta.img", words])


# --- checkpoint.img of gVisor since 2026-08-10 (6acfb4158) with
# --compression=flate-best-speed: the v1 metadata and the pages inline ---

def statefile(stream, meta=b'{"compression":"flate-best-speed"}', header_sum=False,
              chunk=1 << 20):
    """pkg/state/statefile at 3c5eee17dc45: no header HMAC without a key
    (since c7907727f), then compressio's flate chunks."""
    head = b"gVisorSF" + struct.pack(">Q", len(meta)) + meta
    out = bytearray(head)
    if header_sum:
        out += hmac.new(b"", head, hashlib.sha256).digest()
    out += struct.pack(">I", chunk)
    for i in range(0, len(stream), chunk):
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        d = c.compress(stream[i:i + chunk]) + c.flush()
        out += struct.pack(">I", len(d)) + d
    return bytes(out)


def inline_mf(ranges, chunks, base):
    """MemoryFile.SaveTo() without a pages file: length, proto, then per
    known-committed range WriteHeader(length, false) and its bytes."""
    m = metadata(ranges, chunks)
    out = struct.pack("<Q", len(m)) + m
    want = {}
    for start, end, kind, memcg, committed in ranges:
        if not committed:
            continue
        out += varint(end - start)
        for a in range(start, end, PAGE):
            b = bytes(PAGE) if kind == 0 else page(base + a)
            want[base + a] = b
            out += b
    return out, want


def case_inline_v1(ctx):
    skip = enc.graph(b"", [enc.NIL])
    p1 = [(0, PAGE, 3, 2, True), (PAGE, 3 * PAGE, 4, 0, False), (4 * PAGE, 6 * PAGE, 3, 0, True)]
    main, want = inline_mf(RANGES, (False, True), 0)
    priv, want1 = inline_mf(p1, [True], 2 * GIB)
    want.update(want1)
    stream = skip + skip + main + enc.private_meta([("c1", "/dev/shm")]) + priv
    d = ctx.dir / "inline"
    d.mkdir()
    (d / "checkpoint.img").write_bytes(statefile(stream))
    store = ctx.store()
    snapfs("save", store, "g", d)
    row = common.snapshot_row(store, "g")
    check(row["format"] == "gvisor" and row["file_size"] == 3 * GIB, f"row {row}")
    check(row["notes"] is None, f"notes {row['notes']}")
    segs = common.segments(store, "g")
    want_segs = [(s, e, KINDS[k], m, int(c), None) for s, e, k, m, c in RANGES] + \
        [(2 * GIB + s, 2 * GIB + e, KINDS[k], m, int(c), "private:c1:/dev/shm")
         for s, e, k, m, c in p1]
    check(segs == want_segs, f"segments {segs}")
    # Every page of every segment, through the mount.
    offsets = sorted({a for s, e, *_ in want_segs for a in range(s, e, PAGE)} |
                     {GIB - PAGE, GIB + 30 * PAGE})
    got = common.read_memory(ctx, store, "g", [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        check(b == want.get(a, bytes(PAGE)), f"page at {a:#x} is wrong")
    # The same with the header HMAC of the years before 2026-03; without
    # the private MemoryFiles' metadata at all.
    (d / "checkpoint.img").write_bytes(statefile(skip + skip + main, header_sum=True))
    snapfs("save", store, "g2", d)
    check(common.snapshot_row(store, "g2")["file_size"] == 2 * GIB, "g2's size")
    # Broken: a data header of the wrong length, the stream cut short, a
    # metadata length past the limit, garbage for the proto.
    bad_header = main.replace(varint(16 * PAGE) + page(0), varint(15 * PAGE) + page(0), 1)
    cases = {
        "header": (skip + skip + bad_header, "says 61440, not 65536 bytes"),
        "cut": (skip + skip + main[:-100], "the state stream ends at byte"),
        "length": (skip + skip + struct.pack("<Q", 1 << 40) + b"x" * 16,
                   "MemoryFile metadata length 1099511627776 is over"),
        "proto": (skip + skip + struct.pack("<Q", 3) + b"\xff\xff\xff",
                  "not a MemoryFileMetadataProto"),
        "version": (skip + skip + inline_mf(RANGES, (False,), 0)[0].replace(
            field(1, 0, 1), field(1, 0, 2), 1), "metadata version 2 is newer"),
    }
    for name, (st, words) in cases.items():
        d = ctx.dir / name
        d.mkdir()
        (d / "checkpoint.img").write_bytes(statefile(st))
        refused(ctx, d, 1 if name != "version" else 2, ["checkpoint.img", words])


# --- the state-encoded generations after 20221219 ----------------------

LATER_SEGS = [(0, 4 * PAGE, 1, 7, True), (4 * PAGE, 6 * PAGE, 2, 0, False),
              (6 * PAGE, 7 * PAGE, 3, 9, True), (GIB + PAGE, GIB + 3 * PAGE, 5, 0, True)]


def later_meta(gen):
    if gen == "flat":       # 88d35cd8f (2023-11-17) .. a5573312e
        return enc.file_size_graph(2 * GIB) + enc.flat_usage_graph(LATER_SEGS)
    return enc.saved_graph(LATER_SEGS, [False, True])  # a5573312e .. 6acfb4158


def later_pages():
    want, data = {}, bytearray()
    for s, e, _, _, c in LATER_SEGS:
        if c:
            for a in range(s, e, PAGE):
                want[a] = page(a)
                data += want[a]
    return want, bytes(data)


def case_state_encoded_later(ctx):
    """pages_meta.img + pages.img (--compression=none, a3ae7f25a on) and
    checkpoint.img with the pages inline (flate), each generation."""
    store = ctx.store()
    skip = enc.graph(b"", [enc.NIL])
    want, data = later_pages()
    offsets = sorted({a for s, e, *_ in LATER_SEGS for a in range(s, e, PAGE)} |
                     {8 * PAGE, GIB})
    headers = b"".join(varint(e - s) for s, e, _, _, c in LATER_SEGS if c)
    # A private MemoryFile after the main one (savePrivateMFs(), d8eb29ed6
    # on), at 2 GiB: two committed pages, one not.
    psegs = [(0, 2 * PAGE, 3, 4, True), (2 * PAGE, 3 * PAGE, 3, 0, False)]
    pwant = {2 * GIB + a: page(2 * GIB + a) for a in (0, PAGE)}
    pdata = pwant[2 * GIB] + pwant[2 * GIB + PAGE]
    for gen in ("flat", "saved", "saved-async"):
        meta = later_meta(gen)
        pmeta = (enc.file_size_graph(GIB) + enc.flat_usage_graph(psegs) if gen == "flat"
                 else enc.saved_graph(psegs, [False]))
        owners = enc.private_meta([("c1", "/shm")])
        d = ctx.dir / ("dir-" + gen)
        d.mkdir()
        # Data headers in pages_meta.img until 478d83e70 (2025-10-02).
        hd = (lambda h: b"" if "async" in gen else h)
        (d / "pages_meta.img").write_bytes(meta + hd(headers) + owners + pmeta +
                                           hd(varint(2 * PAGE)))
        (d / "pages.img").write_bytes(data + pdata)
        inline = bytearray(skip + skip + meta)
        for s, e, _, _, c in LATER_SEGS:
            if c:
                inline += varint(e - s) + b"".join(want[a] for a in range(s, e, PAGE))
        inline += owners + pmeta + varint(2 * PAGE) + pdata
        d2 = ctx.dir / ("inline-" + gen)
        d2.mkdir()
        (d2 / "checkpoint.img").write_bytes(statefile(bytes(inline), header_sum=True))
        for name, where in ((gen, d), (gen + "-inline", d2)):
            snapfs("save", store, name, where)
            row = common.snapshot_row(store, name)
            check(row["file_size"] == 3 * GIB, f"{name}: size {row['file_size']}")
            check(row["notes"] is None, f"{name}: notes {row['notes']}")
            segs = common.segments(store, name)
            check(segs == [(s, e, KINDS[k], m, int(c), None) for s, e, k, m, c in LATER_SEGS] +
                  [(2 * GIB + s, 2 * GIB + e, KINDS[k], m, int(c), "private:c1:/shm")
                   for s, e, k, m, c in psegs], f"{name}: segments {segs}")
            offs = offsets + [2 * GIB, 2 * GIB + PAGE, 2 * GIB + 2 * PAGE]
            got = common.read_memory(ctx, store, name, [(a, PAGE) for a in offs])
            for a, b in zip(offs, got):
                check(b == {**want, **pwant}.get(a, bytes(PAGE)),
                      f"{name}: page at {a:#x} is wrong")
    # Something else after the main MemoryFile is noted as skipped.
    d = ctx.dir / "other-after"
    d.mkdir()
    (d / "pages_meta.img").write_bytes(later_meta("saved") + headers + skip)
    (d / "pages.img").write_bytes(data)
    snapfs("save", store, "other", d)
    check("holds more after the main MemoryFile" in common.snapshot_row(store, "other")["notes"],
          "no note of what follows")
    # 5e9207a96 (2024-04-12) to a3ae7f25a: "none", checkpoint.img holds the
    # metadata and the data headers (in frames: without a key until
    # 68f0b41bf), pages.img the bytes.
    meta = b'{"compression":"none"}'
    head = b"gVisorSF" + struct.pack(">Q", len(meta)) + meta
    stream = skip + skip + later_meta("flat") + headers
    framed = bytearray(head + hmac.new(b"", head, hashlib.sha256).digest())
    for i in range(0, len(stream), 7):
        framed += struct.pack(">I", len(stream[i:i + 7])) + stream[i:i + 7]
    d = ctx.dir / "apart"
    d.mkdir()
    (d / "checkpoint.img").write_bytes(bytes(framed))
    (d / "pages.img").write_bytes(data)
    snapfs("save", store, "apart", d)
    check(common.segments(store, "apart") ==
          [(s, e, KINDS[k], m, int(c), None) for s, e, k, m, c in LATER_SEGS], "apart: segments")
    got = common.read_memory(ctx, store, "apart", [(a, PAGE) for a in offsets])
    for a, b in zip(offsets, got):
        check(b == want.get(a, bytes(PAGE)), f"apart: page at {a:#x} is wrong")
    (d / "pages.img").write_bytes(data[:-PAGE])
    refused(ctx, d, 1, ["pages.img holds", "checkpoint.img take"])
    # A memoryFileSaved whose memAcct holds another set, a segment of
    # another type.
    bad = enc.saved_graph(LATER_SEGS, [False]).replace(b"memAcctFlatSegment",
                                                       b"memAcctFlatSegmenX")
    other = enc.saved_graph(LATER_SEGS, [False, True]).replace(b"pgalloc.memAcctSet",
                                                                b"pgalloc.memAcctSeX")
    for name, meta, words in (("seg-type", bad, "a segment is not a pkg/sentry/pgalloc.memAcctFlat"),
                              ("set-type", other, "not a 'pkg/sentry/pgalloc.memAcctSet'"),
                              ("past", enc.saved_graph(LATER_SEGS, [False]),
                               "lies past fileSize")):
        d = ctx.dir / name
        d.mkdir()
        (d / "pages_meta.img").write_bytes(meta + headers)
        (d / "pages.img").write_bytes(data)
        refused(ctx, d, 1, ["pages_meta.img", words])


def case_filesystem_only_refused(ctx):
    d = ctx.dir / "fs"
    write_checkpoint(d)
    (d / "fscheckpoint.pb").write_bytes(b"")
    refused(ctx, d, 2, ["filesystem-only gVisor checkpoint", "no checkpoint.img"])
    (d / "fscheckpoint.pb").unlink()
    (d / "multitar.img").write_bytes(b"")
    refused(ctx, d, 2, ["filesystem-only gVisor checkpoint"])


if __name__ == "__main__":
    common.main()
