#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A 64 GiB sparse memory file holding a few MiB of data saves and
restores; the restored file is sparse (st_blocks small) and equal to the
source. The comparison reads only the data ranges of both files: outside
them both are holes, which read as zeros. No timing assertions."""

import os
import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB, GIB  # noqa: E402

SIZE = 64 * GIB


def case_64gib_sparse(ctx):
    rng = random.Random(64)
    src = ctx.path("huge.img")
    img = c.Image(src, SIZE)
    # A few MiB at the start, in the middle, at odd places and at the end.
    places = [0, 5 * GIB + 12 * PAGE, 32 * GIB, 47 * GIB + 3 * MIB, SIZE - 2 * MIB]
    for i, off in enumerate(places):
        kind = ("text", "random", "mixed", "text", "random")[i]
        img.pages(off // PAGE, 256, kind, rng)
    # The very last page holds data too.
    img.pages(SIZE // PAGE - 1, 1, "random", rng)
    img.close()
    st = os.stat(src)
    c.log(f"source: {st.st_size} bytes, {st.st_blocks * 512} allocated")
    _, data = c.page_stats(src)

    store = ctx.store()
    c.snapfs("save", store, "huge", src, timeout=3600)
    rows = c.parse_list(c.snapfs("list", store, "--bytes").stdout)
    c.check_eq([(r["name"], r["file_size"], r["data_bytes"]) for r in rows],
               [("huge", SIZE, data)], "list after saving the 64 GiB image")

    segs = c.sql(store, "SELECT start, \"end\" FROM segments ORDER BY start")
    c.check_eq([(r["start"], r["end"]) for r in segs], c.expected_segments(src),
               "segments of the 64 GiB image (its data ranges widened to pages)")

    out = ctx.path("huge.restored")
    c.snapfs("restore", store, "huge", out, timeout=3600)
    c.check_eq(os.path.getsize(out), SIZE, "size of the restored 64 GiB image")
    alloc = c.allocated_bytes(out)
    c.check(alloc <= 64 * MIB,
            f"restored 64 GiB image allocates {alloc} bytes; it holds {data} bytes of data: "
            "not sparse")
    c.compare_sparse(src, out)


if __name__ == "__main__":
    c.main()
