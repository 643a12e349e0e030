# SPDX-License-Identifier: MIT
"""Firecracker diff snapshots: a sparse memory file holding only the dirty
pages, saved with --parent P --overlay, must read (through the mount and
restore) exactly as the file Firecracker's rebase-snap makes of the
parent's memory file and the diff; rebase() below is that tool's walk
(seek_data / seek_hole over the diff, each data run copied onto the base
at the same offset), reimplemented here. Only the dirty pages are stored:
the blobs table grows by them alone."""

import json
import os

import common
from common import PAGE, check, snapfs


def rebase(base, diff_path):
    """rebase-snap --base-file (bytes) --diff-file diff_path, as bytes."""
    out = bytearray(base)
    size = os.path.getsize(diff_path)
    fd = os.open(diff_path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                data = os.lseek(fd, off, os.SEEK_DATA)
            except OSError:
                break
            hole = min(os.lseek(fd, data, os.SEEK_HOLE), size)
            chunk = os.pread(fd, hole - data, data)
            if hole > len(out):
                out.extend(bytes(hole - len(out)))
            out[data:hole] = chunk
            off = hole
    finally:
        os.close(fd)
    return bytes(out)


def make_diff(path, size, dirty):
    """A sparse file of size bytes with data only at dirty (page -> bytes)."""
    with open(path, "wb") as f:
        f.truncate(size)
        for page, data in dirty.items():
            f.seek(page * PAGE)
            f.write(data)
    fd = os.open(path, os.O_RDONLY)
    try:
        holes = os.lseek(fd, 0, os.SEEK_HOLE) < size or len(dirty) == size // PAGE
    finally:
        os.close(fd)
    if not holes:
        raise common.Skip(f"{path}: this file system keeps no holes")


def blob_bytes(store):
    """Bytes of all blobs, as the sqlite3 shell reports them."""
    return int(common.sqlite3_shell(store, "SELECT coalesce(sum(stored_size), 0) FROM blobs;"))


def whole(ctx, store, name, size):
    """The snapshot's memory file read through restore and the mount."""
    got = common.read_memory(ctx, store, name, [(0, size)])[0]
    check(len(got) == size, f"{name}: read {len(got)} bytes, wanted {size}")
    return got


def save_parent(ctx, store, pages, zero_pages=()):
    base = bytearray(os.urandom(pages * PAGE))
    for p in zero_pages:
        base[p * PAGE:(p + 1) * PAGE] = bytes(PAGE)
    path = ctx.dir / "base.src"
    path.write_bytes(base)
    snapfs("save", store, "base", path, "--quiet")
    return bytes(base)


def case_diff_overlay(ctx):
    store = ctx.store()
    pages = 64
    base = save_parent(ctx, store, pages, zero_pages=(7, 40))
    before = blob_bytes(store)
    dirty = {
        3: os.urandom(PAGE),
        4: os.urandom(PAGE),
        10: bytes(PAGE),             # dirty, all zero: reads as zero after
        40: os.urandom(PAGE),        # was a zero page in the parent
        63: os.urandom(PAGE),
    }
    diff = ctx.dir / "d.diff"
    make_diff(diff, pages * PAGE, dirty)
    want = rebase(base, diff)
    check(want[10 * PAGE:11 * PAGE] == bytes(PAGE), "the reference rebase lost the zero page")
    p = snapfs("save", store, "d1", diff, "--parent", "base", "--overlay", "--json")
    result = json.loads(p.stdout)
    check(result["file_size"] == pages * PAGE, f"file_size {result['file_size']}")
    check(result["new_pages"] == 4, f"new_pages {result['new_pages']}, wanted the 4 dirty "
          "non-zero pages")
    grown = blob_bytes(store) - before
    check(0 < grown <= 4 * PAGE + 512, f"blobs grew by {grown} bytes for 4 dirty pages")
    # snapshot_summary: d1's data is the rebased file's non-zero pages.
    nonzero = sum(1 for i in range(pages) if want[i * PAGE:(i + 1) * PAGE] != bytes(PAGE))
    row = common.sqlite3_shell(store, "SELECT data_bytes FROM snapshot_summary "
                               "WHERE name = 'd1';")
    check(int(row) == nonzero * PAGE, f"data_bytes {row.strip()}, wanted {nonzero * PAGE}")
    got = whole(ctx, store, "d1", pages * PAGE)
    check(got == want, "d1 does not read as the rebased file")
    # The same diff saved without --overlay reads its holes as zeros.
    snapfs("save", store, "plain", diff, "--parent", "base", "--quiet")
    plain = whole(ctx, store, "plain", pages * PAGE)
    check(plain[0:PAGE] == bytes(PAGE) and plain != want, "plain save took parent pages")
    # Segments: the data ranges of the rebased file, as a raw save of it.
    segs = common.segments(store, "d1")
    check(segs[0][0] == 0 and segs[-1][1] == pages * PAGE, f"segments {segs}")
    # A chain: a diff over the overlay snapshot.
    dirty2 = {0: os.urandom(PAGE), 10: os.urandom(PAGE)}
    diff2 = ctx.dir / "d2.diff"
    make_diff(diff2, pages * PAGE, dirty2)
    snapfs("save", store, "d2", diff2, "--parent", "d1", "--overlay", "--quiet")
    check(whole(ctx, store, "d2", pages * PAGE) == rebase(want, diff2),
          "d2 (over d1) does not read as the rebased file")
    snapfs("verify", store)


def case_sizes(ctx):
    """A diff larger than its parent grows the file; a smaller one, or one
    that ends in a partial page, keeps the parent's tail, byte for byte."""
    store = ctx.store()
    base = save_parent(ctx, store, 8)
    big = ctx.dir / "big.diff"
    make_diff(big, 12 * PAGE, {9: os.urandom(PAGE), 11: os.urandom(PAGE)})
    snapfs("save", store, "big", big, "--parent", "base", "--overlay", "--quiet")
    want = rebase(base, big)
    check(len(want) == 12 * PAGE, "reference size")
    check(whole(ctx, store, "big", len(want)) == want, "big does not read as rebased")
    small = ctx.dir / "small.diff"
    with open(small, "wb") as f:
        f.truncate(2 * PAGE)
        f.seek(PAGE)
        f.write(os.urandom(100))     # ends mid-page: the rest is the parent's
    snapfs("save", store, "small", small, "--parent", "base", "--overlay", "--quiet")
    want = rebase(base, small)
    check(len(want) == 8 * PAGE, "reference size")
    check(whole(ctx, store, "small", len(want)) == want, "small does not read as rebased")
    empty = ctx.dir / "empty.diff"
    make_diff(empty, 8 * PAGE, {})
    snapfs("save", store, "same", empty, "--parent", "base", "--overlay", "--quiet")
    check(whole(ctx, store, "same", 8 * PAGE) == base, "an all-hole diff is not the parent")


def case_errors(ctx):
    store = ctx.store()
    save_parent(ctx, store, 2)
    diff = ctx.dir / "d.diff"
    make_diff(diff, 2 * PAGE, {1: os.urandom(PAGE)})
    p = snapfs("save", store, "x", diff, "--overlay", expect=2)
    check("--overlay needs --parent" in p.stderr, p.stderr)
    p = snapfs("save", store, "x", diff, "--overlay", "--parent", "base", "--format", "elf",
               expect=2)
    check("--overlay" in p.stderr and "elf" in p.stderr, p.stderr)
    p = snapfs("save", store, "x", diff, "--overlay", "--parent", "nosuch", expect=1)
    check("nosuch" in p.stderr, p.stderr)
    p = snapfs("save", store, "x", ctx.dir / "missing", "--overlay", "--parent", "base",
               expect=1)
    check("missing" in p.stderr, p.stderr)
    names = common.query(store, "SELECT name FROM snapshots ORDER BY name")
    check(names == [("base",)], f"a failed save left {names}")


if __name__ == "__main__":
    common.main()
