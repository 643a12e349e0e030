#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Round trips: save an image, restore it (to a file and to standard
output) and compare with cmp; restored files are sparse where the source
had holes or zero pages. Every codec, an empty file, a size that is not a
whole number of pages."""

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB  # noqa: E402


_outputs = [0]


def roundtrip(ctx, store, name, src, *save_args):
    """Save src as name, restore to a file and to stdout, cmp both."""
    c.snapfs("save", store, name, src, *save_args)
    _outputs[0] += 1
    out = ctx.path(f"{name}.{_outputs[0]}.restored")
    c.snapfs("restore", store, name, out)
    c.cmp_files(src, out)
    piped = ctx.path(f"{name}.{_outputs[0]}.stdout")
    with open(piped, "wb") as f:
        c.snapfs("restore", store, name, "-", stdout=f)
    c.cmp_files(src, piped)
    return out


def check_sparse(img, restored):
    """Holes and committed zero pages of the source are holes in the
    restored file, and it allocates little more than its non-zero pages."""
    pages, data = c.page_stats(img.path)
    alloc = c.allocated_bytes(restored)
    limit = len(pages) * PAGE + 64 * 1024
    c.check(alloc <= limit,
            f"restored file {restored} allocates {alloc} bytes; its {len(pages)} non-zero "
            f"pages need {len(pages) * PAGE} (limit {limit}): not sparse")
    zero_or_hole = [p for p in range(img.size // PAGE) if p not in pages]
    # Check maximal runs of zero/hole pages.
    runs, start = [], None
    for i, p in enumerate(zero_or_hole):
        if start is None:
            start = prev = p
        elif p != prev + 1:
            runs.append((start, prev + 1))
            start = p
        prev = p
    if start is not None:
        runs.append((start, prev + 1))
    for s, e in runs:
        c.check(c.is_hole(restored, s * PAGE, (e - s) * PAGE),
                f"restored file has data in pages {s}..{e - 1} (0x{s * PAGE:x}..0x{e * PAGE:x}), "
                "which are zero or holes in the source: expected a hole")


def case_mixed_default_codec(ctx):
    img = c.standard_image(ctx.path("mixed.img"))
    store = ctx.store()
    out = roundtrip(ctx, store, "mixed", img.path)
    check_sparse(img, out)


def case_mixed_ending_in_data(ctx):
    img = c.standard_image(ctx.path("mixed2.img"), seed=2, end_in_data=True)
    store = ctx.store()
    out = roundtrip(ctx, store, "mixed2", img.path)
    check_sparse(img, out)


def case_each_codec(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=3, end_in_data=True)
    store = ctx.store()
    for codec in ("zstd", "lz4", "none"):
        out = roundtrip(ctx, store, f"img-{codec}", img.path, "--codec", codec)
        check_sparse(img, out)


def case_each_codec_fresh_store(ctx):
    # In one store the second and third save find every page already
    # stored; a store per codec makes each codec encode and decode.
    img = c.standard_image(ctx.path("mixed.img"), seed=4)
    for codec in ("zstd", "lz4", "none"):
        store = ctx.store(f"store-{codec}")
        out = roundtrip(ctx, store, "img", img.path, "--codec", codec)
        check_sparse(img, out)
        codes = c.sql(store, "SELECT DISTINCT codec FROM blobs")
        # codec numbers per schema/snapfs.sql: 0 none, 1 zstd, 2 lz4; a
        # blob that does not shrink may be kept uncompressed (0).
        allowed = {"none": {0}, "zstd": {0, 1}, "lz4": {0, 2}}[codec]
        got = {r["codec"] for r in codes}
        c.check(got and got <= allowed,
                f"--codec {codec}: blobs.codec values {sorted(got)} not within {sorted(allowed)}")
        if codec != "none":
            c.check(got != {0}, f"--codec {codec}: no blob compressed at all, although "
                    "the image has text pages")


def case_levels(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=5)
    for codec, level in (("zstd", "1"), ("zstd", "19"), ("lz4", "9")):
        store = ctx.store(f"store-{codec}-{level}")
        roundtrip(ctx, store, "img", img.path, "--codec", codec, "--level", level)


def case_empty_file(ctx):
    src = ctx.path("empty.img")
    src.write_bytes(b"")
    store = ctx.store()
    out = roundtrip(ctx, store, "empty", src)
    c.check_eq(os.path.getsize(out), 0, "size of restored empty image")
    rows = c.parse_list(c.snapfs("list", store, "--bytes").stdout)
    c.check_eq([(r["name"], r["file_size"], r["data_bytes"]) for r in rows],
               [("empty", 0, 0)], "list of a store holding an empty image")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM segments"), 0, "segments of an empty image")


def case_all_holes(ctx):
    src = ctx.path("holes.img")
    with open(src, "wb") as f:
        f.truncate(64 * MIB)
    store = ctx.store()
    out = roundtrip(ctx, store, "holes", src)
    c.check(c.allocated_bytes(out) <= 64 * 1024, "restored all-hole image is not sparse")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM page_map"), 0, "page_map rows of an all-hole image")


def case_all_zero_pages(ctx):
    src = ctx.path("zeros.img")
    with open(src, "wb") as f:
        f.write(bytes(8 * MIB))
    store = ctx.store()
    out = roundtrip(ctx, store, "zeros", src)
    c.check(c.allocated_bytes(out) <= 64 * 1024,
            f"restored image of committed zero pages allocates {c.allocated_bytes(out)} bytes")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM blobs"), 0, "blobs stored for zero pages")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM page_map"), 0, "page_map rows for zero pages")
    segs = c.sql(store, "SELECT start, \"end\", committed FROM segments")
    c.check_eq([(r["start"], r["end"], r["committed"]) for r in segs], [(0, 8 * MIB, 1)],
               "segments of an 8 MiB file of written zeros")


def case_unaligned_size(ctx):
    rng = random.Random(7)
    size = 4096 * 3 + 123
    src = ctx.path("odd.img")
    data = bytearray(c.text_page(rng, 1) + bytes(PAGE) + c.random_page(rng) + rng.randbytes(123))
    data[-1] = 0x5A  # the very last byte is not zero
    src.write_bytes(bytes(data))
    store = ctx.store()
    out = roundtrip(ctx, store, "odd", src)
    c.check_eq(os.path.getsize(out), size, "size of the restored unaligned image")
    row = c.sql(store, "SELECT file_size FROM snapshots WHERE name = 'odd'")
    c.check_eq(row, [{"file_size": size}], "snapshots.file_size")
    summary = c.sql(store, "SELECT data_bytes FROM snapshot_summary WHERE name = 'odd'")
    c.check_eq(summary, [{"data_bytes": 2 * PAGE + 123}],
               "snapshot_summary.data_bytes (2 data pages + a partial page of 123 bytes)")


def case_unaligned_partial_zero_tail(ctx):
    # The partial last page is all zeros: it is a zero page, not stored.
    size = 4096 * 2 + 500
    src = ctx.path("tail.img")
    rng = random.Random(8)
    src.write_bytes(c.random_page(rng) + bytes(size - PAGE))
    store = ctx.store()
    roundtrip(ctx, store, "tail", src)
    c.check_eq(c.sql_value(store, "SELECT data_bytes FROM snapshot_summary"), PAGE,
               "data_bytes of an image whose only non-zero page is the first")


def case_restore_force_and_overwrite_stdout(ctx):
    img = c.standard_image(ctx.path("mixed.img"), seed=9)
    store = ctx.store()
    c.snapfs("save", store, "m", img.path)
    out = ctx.path("out.img")
    out.write_bytes(b"old contents\n" * 1000)
    c.snapfs("restore", store, "m", out, "--force")
    c.cmp_files(img.path, out)


def case_restore_to_pipe_reader(ctx):
    # Standard output a pipe that a reader drains: dd counts the bytes.
    img = c.standard_image(ctx.path("mixed.img"), seed=10, end_in_data=True)
    store = ctx.store()
    c.snapfs("save", store, "m", img.path)
    cp = c.run(["sh", "-c", f'"$0" restore "$1" m - | dd of="$2" bs=64k 2>/dev/null && echo ok',
                c.SNAPFS, store, ctx.path("dd.out")], expect=0)
    c.check("ok" in cp.stdout, "pipeline restore | dd failed")
    c.cmp_files(img.path, ctx.path("dd.out"))


def case_larger_image(ctx):
    # 48 MiB with data spread over it: many blobs, runs, chunks of restore.
    rng = random.Random(11)
    img = c.Image(ctx.path("large.img"), 48 * MIB)
    for i in range(24):
        first = i * 512 + rng.randrange(0, 128)
        kind = ("text", "random", "mixed", "zero")[i % 4]
        img.pages(first, rng.randrange(64, 384), kind, rng)
    img.close()
    store = ctx.store()
    out = roundtrip(ctx, store, "large", img.path)
    check_sparse(img, out)


if __name__ == "__main__":
    c.main()
