# SPDX-License-Identifier: MIT
"""gVisor checkpoints made by gVisor itself: Debian 12's runsc (release
20221219) runs a busybox sandbox (network none, cgroups ignored) whose
shell computes a known string into a variable and copies 16 random pages
into a tmpfs file, then `runsc checkpoint` writes checkpoint.img (the
gVisorSF state file: JSON metadata, header HMAC, flate chunks of the state
stream with the MemoryFile inline). snapfs imports it; the bytes are found
through the mount where they belong (the random pages page-aligned in a
tmpfs segment, the string in an anonymous one) and every committed page
equals the state stream's bytes (read here with Python's zlib, walking the
stream back from its end: the memory file's data headers and pages close
it). From the same real stream: a keyed state file (the HMAC layout of
pkg/compressio), the seed-era directory (state-encoded pages_meta.img with
pages.img, cut out of the real stream), the same stream in every container
later gVisor writes ("compression": "flate-best-speed" or "none", framed or
not, keyed with either HMAC chain, with or without the header HMAC) and
broken files, refused by name.

Needs root and runsc (Debian package runsc) and busybox-static; without
them the cases skip (meson: 77)."""

import atexit
import hashlib
import hmac
import json
import os
import shutil
import struct
import subprocess
import tempfile
import time
import zlib
from pathlib import Path

import common
from common import PAGE, check, snapfs, Skip

RUNSC = shutil.which("runsc")
BUSYBOX = "/bin/busybox"
KNOWN = b"SNAPFS-42-KNOWN-1337"   # computed by the sandbox's shell
SCRIPT = ('K="SNAPFS-$((6*7))-KNOWN-$((1000+337))"; cat /rand > /dev/shm/r; '
          'echo ok > /dev/shm/ready; while :; do sleep 1; done')
MAGIC = b"gVisorSF"
OBJECT_FLAG = 1 << 63

_made = {}


def varint(v):
    out = bytearray()
    while True:
        b = v & 0x7F
        v >>= 7
        out.append(b | (0x80 if v else 0))
        if not v:
            return bytes(out)


def usable():
    if not RUNSC or os.geteuid() != 0:
        raise Skip("runsc (Debian package runsc) and root are needed")
    if not os.path.exists(BUSYBOX):
        raise Skip("busybox-static is needed")


def runsc(root, *args, expect=0, timeout=60):
    return common.run([RUNSC, "--root", root, "--network=none", "--ignore-cgroups", *args],
                      expect=expect, timeout=timeout)


def make_checkpoint():
    """One real checkpoint per test run: (dir, random bytes)."""
    if "dir" in _made:
        return _made["dir"], _made["rand"]
    usable()
    top = Path(tempfile.mkdtemp(prefix="snapfs-runsc-", dir=common.TMPROOT))
    atexit.register(shutil.rmtree, top, True)
    bundle, root, img = top / "bundle", top / "root", top / "img"
    rootfs = bundle / "rootfs"
    (rootfs / "bin").mkdir(parents=True)
    for d in ("proc", "dev", "sys", "tmp"):
        (rootfs / d).mkdir()
    shutil.copy(BUSYBOX, rootfs / "bin" / "busybox")
    for tool in ("sh", "cat", "sleep"):
        os.symlink("busybox", rootfs / "bin" / tool)
    rand = os.urandom(16 * PAGE)
    (rootfs / "rand").write_bytes(rand)
    common.run([RUNSC, "spec", "--bundle", bundle, "--", "/bin/sh", "-c", SCRIPT])
    spec = json.loads((bundle / "config.json").read_text())
    spec["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(spec))
    cid = f"snapfs-test-{os.getpid()}-{time.monotonic_ns()}"
    try:
        # The sandbox keeps the stdio it was given: a file, not a pipe.
        with open(top / "run.log", "w+") as log:
            p = subprocess.run([RUNSC, "--root", root, "--network=none", "--ignore-cgroups",
                                "run", "--detach", "--bundle", bundle, cid],
                               stdin=subprocess.DEVNULL, stdout=log, stderr=log, timeout=60)
            log.seek(0)
            check(p.returncode == 0, f"runsc run: exit {p.returncode}: {log.read()[-2000:]}")
        for _ in range(100):
            p = runsc(root, "exec", cid, "/bin/cat", "/dev/shm/ready", expect=None)
            if p.returncode == 0 and p.stdout.strip() == "ok":
                break
            time.sleep(0.2)
        else:
            raise common.Failed("the sandbox never got ready")
        runsc(root, "checkpoint", "--image-path", img, cid)
    finally:
        runsc(root, "delete", "--force", cid, expect=None)
    check((img / "checkpoint.img").read_bytes()[:8] == MAGIC, "runsc wrote no gVisorSF file")
    _made["dir"], _made["rand"] = img, rand
    return img, rand


def parse_statefile(data):
    """(json bytes, chunk size, [compressed chunks]) of an unkeyed file."""
    check(data[:8] == MAGIC, "no magic")
    n = struct.unpack(">Q", data[8:16])[0]
    meta = data[16:16 + n]
    at = 16 + n
    want = hmac.new(b"", data[:at], hashlib.sha256).digest()
    check(data[at:at + 32] == want, "the header HMAC (empty key) does not match")
    at += 32
    chunk_size = struct.unpack(">I", data[at:at + 4])[0]
    at += 4
    chunks = []
    while at < len(data):
        clen = struct.unpack(">I", data[at:at + 4])[0]
        chunks.append(data[at + 4:at + 4 + clen])
        at += 4 + clen
    return meta, chunk_size, chunks


def state_stream(data):
    _, _, chunks = parse_statefile(data)
    out = bytearray()
    for c in chunks:
        d = zlib.decompressobj(-15)
        out += d.decompress(c) + d.flush()
    return bytes(out)


def write_statefile(meta, stream, key=b"", keyed=False, chunk_size=1 << 20):
    """A state file as pkg/state/statefile and pkg/compressio lay it out:
    with keyed, the chunk size and every chunk carry HMAC-SHA256(key)."""
    head = MAGIC + struct.pack(">Q", len(meta)) + meta
    out = bytearray(head + hmac.new(key, head, hashlib.sha256).digest())
    size = struct.pack(">I", chunk_size)
    out += size
    last = b""
    if keyed:
        last = hmac.new(key, size, hashlib.sha256).digest()
        out += last
    for i in range(0, len(stream), chunk_size):
        c = zlib.compressobj(1, zlib.DEFLATED, -15)
        data = c.compress(stream[i:i + chunk_size]) + c.flush()
        clen = struct.pack(">I", len(data))
        out += clen + data
        if keyed:
            last = hmac.new(key, data + clen + last, hashlib.sha256).digest()
            out += last
    return bytes(out)


def committed(store, name):
    return [(s, e) for s, e, _, _, c, _ in common.segments(store, name) if c]


def memory_tail(stream, ranges):
    """Walk the stream back from its end: per committed range, last first,
    its bytes and before them WriteHeader(length, false). Returns the
    bytes of each range and where the first header starts."""
    at, pages = len(stream), []
    for s, e in reversed(ranges):
        n = e - s
        pages.append(stream[at - n:at])
        at -= n
        hdr = varint(n)
        check(stream[at - len(hdr):at] == hdr, f"no data header before 0x{s:x}-0x{e:x}")
        at -= len(hdr)
    return list(reversed(pages)), at


def check_against_stream(ctx, store, name, stream):
    ranges = committed(store, name)
    check(ranges, "no committed segment")
    want, _ = memory_tail(stream, ranges)
    got = common.read_memory(ctx, store, name, [(s, e - s) for s, e in ranges])
    for (s, e), g, w in zip(ranges, got, want):
        check(g == w, f"pages 0x{s:x}-0x{e:x} differ from the state stream")
    return dict(zip(ranges, got))


def case_runsc_checkpoint(ctx):
    img, rand = make_checkpoint()
    stream = state_stream((img / "checkpoint.img").read_bytes())
    store = ctx.store()
    snapfs("save", store, "g", img)
    row = common.snapshot_row(store, "g")
    check(row["format"] == "gvisor", f"format {row['format']}")
    check(row["notes"] is None, f"notes {row['notes']}")
    check(row["file_size"] % (1 << 30) == 0, f"file_size {row['file_size']}")
    segs = common.segments(store, "g")
    kinds = {k for _, _, k, _, _, _ in segs}
    check({"anonymous", "tmpfs"} <= kinds, f"kinds {kinds}")
    got = check_against_stream(ctx, store, "g", stream)
    # The random file's pages lie page-aligned in a tmpfs segment.
    where = {}
    for (s, e), data in got.items():
        for off in range(0, e - s, PAGE):
            where.setdefault(data[off:off + PAGE], s + off)
    for i in range(0, len(rand), PAGE):
        a = where.get(rand[i:i + PAGE])
        check(a is not None, f"random page {i // PAGE} is not in the snapshot")
        kind = [k for s, e, k, _, _, _ in segs if s <= a < e]
        check(kind == ["tmpfs"], f"random page {i // PAGE} at 0x{a:x} lies in {kind}")
    # The shell's string in an anonymous (heap) segment.
    hits = [(s, data.find(KNOWN)) for (s, e), data in got.items() if KNOWN in data]
    check(hits, "the sandbox's known string is not in the snapshot")
    for s, off in hits:
        kind = [k for a, e, k, _, _, _ in segs if a <= s + off < e]
        check(kind == ["anonymous"], f"the known string at 0x{s + off:x} lies in {kind}")


def case_keyed(ctx):
    img, _ = make_checkpoint()
    data = (img / "checkpoint.img").read_bytes()
    meta, _, _ = parse_statefile(data)
    stream = state_stream(data)
    d = ctx.dir / "keyed"
    d.mkdir()
    key = b"snapfs test key \x00\xff"
    (d / "checkpoint.img").write_bytes(write_statefile(meta, stream, key, keyed=True))
    (ctx.dir / "key").write_bytes(key)
    (ctx.dir / "other").write_bytes(key[:-1] + b"\xfe")
    store = ctx.store()
    snapfs("save", store, "k", d, "--key-file", ctx.dir / "key")
    check_against_stream(ctx, store, "k", stream)
    p = snapfs("save", store, "bad", d, "--key-file", ctx.dir / "other", expect=1)
    check("HMAC" in p.stderr and "key file holds a key other" in p.stderr, p.stderr)
    p = snapfs("save", store, "bad", d, expect=1)
    check("written with a key; pass it with --key-file" in p.stderr, p.stderr)
    # A key for an unkeyed file is wrong too; a key for a raw file is refused.
    p = snapfs("save", store, "bad", img, "--key-file", ctx.dir / "key", expect=1)
    check("HMAC" in p.stderr, p.stderr)
    p = snapfs("save", store, "bad", img / "checkpoint.img", "--format", "raw",
               "--key-file", ctx.dir / "key", expect=2)
    check("--key-file is for gVisor checkpoints" in p.stderr, p.stderr)
    # A changed chunk fails its HMAC.
    bad = bytearray((d / "checkpoint.img").read_bytes())
    bad[len(bad) // 2] ^= 0x40
    (d / "checkpoint.img").write_bytes(bytes(bad))
    p = snapfs("save", store, "bad", d, "--key-file", ctx.dir / "key", expect=1)
    check("HMAC of chunk" in p.stderr, p.stderr)
    check([r[0] for r in common.query(store, "SELECT name FROM snapshots")] == ["k"],
          "a refused save left a snapshot")


def write_none(meta, stream, key=b"", header_sum=True, framed=False, chain=True):
    """A state file with "compression": "none" (pkg/compressio/
    nocompressio.go): with framed or a key, the stream cut in frames (the
    Writes; here of varied sizes): length (4 bytes big-endian), bytes and
    with a key HMAC(key, bytes || length [|| previous HMAC]), the
    previous one since ed5a61a24 (chain); else the stream as it is."""
    head = MAGIC + struct.pack(">Q", len(meta)) + meta
    out = bytearray(head)
    if header_sum:
        out += hmac.new(key, head, hashlib.sha256).digest()
    if not key and not framed:
        return bytes(out + stream)
    sizes, prev, i, k = [1, 10, 4096, 100000, 1 << 20, 3], bytes(32), 0, 0
    while i < len(stream):
        piece = stream[i:i + sizes[k % len(sizes)]]
        i, k = i + len(piece), k + 1
        n = struct.pack(">I", len(piece))
        out += n + piece
        if key:
            prev = hmac.new(key, piece + n + (prev if chain else b""), hashlib.sha256).digest()
            out += prev
    return bytes(out)


def case_newer_containers(ctx):
    """The real stream in each container later gVisor writes (statefile.go
    and pkg/compressio, commits named in gvisor_statefile.c): every
    committed page equals the stream's."""
    img, _ = make_checkpoint()
    stream = state_stream((img / "checkpoint.img").read_bytes())
    key = b"newer key"
    (ctx.dir / "key").write_bytes(key)
    (ctx.dir / "other").write_bytes(b"other key")
    flate = b'{"compression":"flate-best-speed","_timestamp":"t"}'
    none = b'{"_timestamp":"t \\u00e9\\"","compression":"none"}'
    m0 = b"{}"
    nohead = len(MAGIC) + 8 + len(flate)
    files = {
        # 669726877 (2023-07) .. 2026-03: the setting, the header HMAC.
        "flate-2023": (write_statefile(flate, stream), None),
        # since c7907727f (2026-03): no header HMAC without a key.
        "flate-2026": (write_statefile(flate, stream)[:nohead] +
                       write_statefile(flate, stream)[nohead + 32:], None),
        "flate-keyed": (write_statefile(flate, stream, key, keyed=True), key),
        "empty-metadata": (write_statefile(m0, stream), None),
        # "none": frames until 68f0b41bf (2024-08-30), then unframed.
        "none-2023": (write_none(none, stream, framed=True), None),
        "none-2024": (write_none(none, stream), None),
        "none-2026": (write_none(none, stream, header_sum=False), None),
        # keyed: HMAC(bytes || length) until ed5a61a24, then chained.
        "none-keyed-2023": (write_none(none, stream, key, chain=False), key),
        "none-keyed-2024": (write_none(none, stream, key), key),
    }
    store = ctx.store()
    for name, (content, k) in files.items():
        d = ctx.dir / name
        d.mkdir()
        (d / "checkpoint.img").write_bytes(content)
        args = ["--key-file", ctx.dir / "key"] if k else []
        snapfs("save", store, name, d, *args)
        check(common.snapshot_row(store, name)["notes"] is None, f"{name}: notes")
        check_against_stream(ctx, store, name, stream)
    for name in ("none-keyed-2023", "none-keyed-2024", "flate-keyed"):
        p = snapfs("save", store, "bad", ctx.dir / name, "--key-file", ctx.dir / "other",
                   expect=1)
        check("key file holds a key other" in p.stderr, p.stderr)
        p = snapfs("save", store, "bad", ctx.dir / name, expect=1)
        check("pass it with --key-file" in p.stderr, p.stderr)
    # A changed byte in a frame fails that frame's HMAC.
    bad = bytearray(files["none-keyed-2024"][0])
    bad[len(bad) // 2] ^= 0x40
    (ctx.dir / "none-keyed-2024" / "checkpoint.img").write_bytes(bytes(bad))
    p = snapfs("save", store, "bad", ctx.dir / "none-keyed-2024", "--key-file",
               ctx.dir / "key", expect=1)
    check("HMAC of frame" in p.stderr, p.stderr)
    check("bad" not in [r[0] for r in common.query(store, "SELECT name FROM snapshots")],
          "a refused save left a snapshot")


def case_seed_era(ctx):
    """The seed's layout: pages_meta.img holds state.Save(fileSize),
    state.Save(usage) and the data headers; pages.img the pages. Cut out
    of the real stream (gVisor's own encoding of the real metadata)."""
    img, _ = make_checkpoint()
    stream = state_stream((img / "checkpoint.img").read_bytes())
    store = ctx.store()
    snapfs("save", store, "g", img)
    ranges = committed(store, "g")
    pages, data_at = memory_tail(stream, ranges)
    # fileSize's graph: header (1 object), ID 1, an Int; the last such
    # before the data.
    fs_graph = varint(OBJECT_FLAG | 1) + b"\x02\x01\x01"
    start = stream.rfind(fs_graph, 0, data_at)
    check(start > 0, "fileSize's graph not found")
    # Metadata: up to the first data header; then every header, no data.
    hdr_at = data_at
    meta = stream[start:hdr_at]
    for (s, e) in ranges:
        meta += varint(e - s)
    d = ctx.dir / "seed"
    d.mkdir()
    (d / "pages_meta.img").write_bytes(meta)
    (d / "pages.img").write_bytes(b"".join(pages))
    snapfs("save", store, "seed", d)
    check(common.segments(store, "seed") == common.segments(store, "g"), "segments differ")
    check(common.snapshot_row(store, "seed")["file_size"] ==
          common.snapshot_row(store, "g")["file_size"], "sizes differ")
    got = common.read_memory(ctx, store, "seed", [(s, e - s) for s, e in ranges])
    check(got == pages, "the seed-era import differs from the stream")
    # pages.img one page short is refused.
    (d / "pages.img").write_bytes(b"".join(pages)[:-PAGE])
    p = snapfs("save", store, "bad", d, expect=1)
    check("pages.img holds" in p.stderr, p.stderr)


def refused(store, d, status, *words):
    p = snapfs("save", store, "bad", d, expect=status)
    for w in words:
        check(w in p.stderr, f"{w!r} not in {p.stderr!r}")


def case_refusals(ctx):
    img, _ = make_checkpoint()
    data = (img / "checkpoint.img").read_bytes()
    meta, _, _ = parse_statefile(data)
    stream = state_stream(data)
    store = ctx.store()

    def ckpt(name, content):
        d = ctx.dir / name
        d.mkdir()
        (d / "checkpoint.img").write_bytes(content)
        return d

    refused(store, ckpt("cut-file", data[:len(data) // 2]), 1, "checkpoint.img",
            "truncated: the file ends at byte")
    refused(store, ckpt("cut-stream", write_statefile(meta, stream[:len(stream) - 5000])), 1,
            "checkpoint.img", "the state stream ends at byte")
    refused(store, ckpt("magic", b"gVisorXX" + data[8:]), 2, "no 'gVisorSF' magic")
    refused(store, ckpt("changed", data[:20] + b"X" + data[21:]), 1,
            "HMAC of the header does not match")
    for value in ("zstd", ""):
        m = json.dumps({"compression": value}).encode()
        refused(store, ckpt("compression-" + value, write_statefile(m, stream)), 2,
                f'compression "{value}" in the metadata', '"flate-best-speed" and "none"')
    m = b'{"compression":"none"}'
    refused(store, ckpt("not-json", write_statefile(m[:-1], stream)), 1,
            "the metadata is not a JSON object of strings")
    refused(store, ckpt("none-cut", write_none(m, stream, framed=True)[:-5000]), 1,
            "truncated: the file ends at byte", "inside frame")
    garbage = bytearray(stream)
    garbage[10] = 0x7f  # the first entry of the CPU feature graph (a type)
    refused(store, ckpt("garbage", write_statefile(meta, bytes(garbage))), 1,
            "checkpoint.img: state stream, byte 11: a unknown where a type or an object ID")
    # Object IDs must ascend: the feature set's graph has 2 objects.
    two = stream.find(b"\x02\x02", 10)
    check(two > 0, "object 2 of the first graph not found")
    garbage = bytearray(stream)
    garbage[two + 1] = 0x01
    refused(store, ckpt("ids", write_statefile(meta, bytes(garbage))), 1,
            "object ID 1 out of order")
    fs_only = ctx.dir / "fs-only"
    fs_only.mkdir()
    (fs_only / "fscheckpoint.pb").write_bytes(b"\x0a\x00")
    (fs_only / "multitar.img").write_bytes(bytes(512))
    (fs_only / "pages_meta.img").write_bytes(b"")
    (fs_only / "pages.img").write_bytes(b"")
    refused(store, fs_only, 2, "filesystem-only gVisor checkpoint", "fscheckpoint.pb",
            "checkpoint.img")
    empty = ctx.dir / "empty-dir"
    empty.mkdir()
    refused(store, empty, 1, "neither a gVisor checkpoint (checkpoint.img")
    check(not common.query(store, "SELECT name FROM snapshots"), "a refused save left a snapshot")


if __name__ == "__main__":
    common.main()
