#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--usage FILE: lines `start end kind memcg committed` (decimal or 0x hex)
become the snapshot's segments; committed=0 ranges keep their metadata but
store no data (they read back as zeros), and so do ranges outside every
segment. Malformed usage files are refused with exit 2 and a one-line
message, leaving the store as it was."""

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE  # noqa: E402

PAGES = 256  # a 1 MiB image


def make_image(ctx):
    """Every page of the 1 MiB image holds non-zero data (text or random),
    so what is stored depends on the usage set alone."""
    rng = random.Random(21)
    img = c.Image(ctx.path("full.img"), PAGES * PAGE)
    img.pages(0, PAGES // 2, "text", rng)
    img.pages(PAGES // 2, PAGES // 2, "random", rng)
    img.close()
    return img


def segments(store, name):
    return [(r["start"], r["end"], r["kind"], r["memcg_id"], r["committed"], r["label"])
            for r in c.sql(store, "SELECT g.start, g.\"end\", g.kind, g.memcg_id, g.committed, "
                                  "g.label FROM segments g JOIN snapshots s ON s.id = g.snapshot_id "
                                  f"WHERE s.name = '{name}' ORDER BY g.start")]


def case_usage_file(ctx):
    img = make_image(ctx)
    usage = ctx.path("usage.txt")
    # Pages 0-15 anonymous, 16-31 pagecache (hex offsets), 32-47 tmpfs
    # uncommitted, 48-63 in no segment, 64-127 mapped, 128-191 system
    # uncommitted, 192-255 ramdiskfs.
    usage.write_text(
        "0 65536 anonymous 0 1\n"
        "0x10000 0x20000 pagecache 5 1\n"
        "131072 196608 tmpfs 7 0\n"
        "0x40000 0x80000 mapped 3 1\n"
        "0x80000 0xC0000 system 0 0\n"
        "786432 1048576 ramdiskfs 12 1\n")
    store = ctx.store()
    c.snapfs("save", store, "u", img.path, "--usage", usage)
    c.check_eq(segments(store, "u"), [
        (0, 65536, "anonymous", 0, 1, None),
        (0x10000, 0x20000, "pagecache", 5, 1, None),
        (131072, 196608, "tmpfs", 7, 0, None),
        (0x40000, 0x80000, "mapped", 3, 1, None),
        (0x80000, 0xC0000, "system", 0, 0, None),
        (786432, 1048576, "ramdiskfs", 12, 1, None),
    ], "segments saved from the usage file")

    out = ctx.path("u.restored")
    c.snapfs("restore", store, "u", out)
    src = img.path.read_bytes()
    got = out.read_bytes()
    c.check_eq(len(got), len(src), "restored size")
    committed_pages = set(range(0, 32)) | set(range(64, 128)) | set(range(192, 256))
    for p in range(PAGES):
        want = src[p * PAGE:(p + 1) * PAGE] if p in committed_pages else bytes(PAGE)
        if got[p * PAGE:(p + 1) * PAGE] != want:
            fail_what = "the source page" if p in committed_pages else \
                "zeros (page is uncommitted or outside every segment)"
            c.fail(f"restored page {p} (offset 0x{p * PAGE:x}) is not {fail_what}")

    s = c.sql(store, "SELECT segment_count, committed_bytes, data_bytes FROM snapshot_summary "
                     "WHERE name = 'u'")
    c.check_eq(s, [{"segment_count": 6, "committed_bytes": len(committed_pages) * PAGE,
                    "data_bytes": len(committed_pages) * PAGE}], "snapshot_summary of 'u'")
    k = c.sql(store, "SELECT kind, bytes, committed_bytes FROM kind_usage WHERE name = 'u' "
                     "ORDER BY kind")
    c.check_eq([(r["kind"], r["bytes"], r["committed_bytes"]) for r in k], [
        ("anonymous", 65536, 65536),
        ("mapped", 0x40000, 0x40000),
        ("pagecache", 0x10000, 0x10000),
        ("ramdiskfs", 262144, 262144),
        ("system", 0x40000, 0),
        ("tmpfs", 65536, 0),
    ], "kind_usage of 'u'")
    # Nothing of the uncommitted ranges reached the page map.
    mapped = c.sql(store, "SELECT first_page, page_count FROM page_map m JOIN snapshots s "
                          "ON s.id = m.snapshot_id WHERE s.name = 'u'")
    pages = set()
    for r in mapped:
        pages |= set(range(r["first_page"], r["first_page"] + r["page_count"]))
    c.check_eq(sorted(pages), sorted(committed_pages), "pages in the page map")


def case_usage_hex_uppercase_and_blank_lines(ctx):
    img = make_image(ctx)
    usage = ctx.path("usage.txt")
    usage.write_text("\n0x0 0x1000 system 0 1\n\n0x2000\t0x3000\tanonymous\t1\t1\n")
    store = ctx.store()
    c.snapfs("save", store, "u", img.path, "--usage", usage)
    c.check_eq([s[:2] for s in segments(store, "u")], [(0, 0x1000), (0x2000, 0x3000)],
               "segments from a usage file with blank lines and tabs")


def case_usage_all_uncommitted(ctx):
    img = make_image(ctx)
    usage = ctx.path("usage.txt")
    usage.write_text(f"0 {PAGES * PAGE} anonymous 0 0\n")
    store = ctx.store()
    c.snapfs("save", store, "u", img.path, "--usage", usage)
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM blobs"), 0, "blobs of an uncommitted image")
    c.check_eq(len(segments(store, "u")), 1, "segments of an uncommitted image")
    out = ctx.path("u.restored")
    c.snapfs("restore", store, "u", out)
    c.check(out.read_bytes() == bytes(PAGES * PAGE), "uncommitted image must restore as zeros")


BAD_USAGE = {
    "overlap": "0 0x4000 anonymous 0 1\n0x3000 0x8000 anonymous 0 1\n",
    "out_of_order": "0x8000 0x9000 anonymous 0 1\n0 0x1000 anonymous 0 1\n",
    "unaligned_start": "100 0x1000 anonymous 0 1\n",
    "unaligned_end": "0 5000 anonymous 0 1\n",
    "unknown_kind": "0 0x1000 heap 0 1\n",
    "past_end": f"0 {PAGES * PAGE + PAGE} anonymous 0 1\n",
    "start_past_end": f"{PAGES * PAGE * 4} {PAGES * PAGE * 5} anonymous 0 1\n",
    "garbage": "hello world, this is not a usage file\n",
    "binary": "\x00\x01\x02\x7f\xff\n",
    "missing_field": "0 0x1000 anonymous 0\n",
    "extra_field": "0 0x1000 anonymous 0 1 extra\n",
    "committed_2": "0 0x1000 anonymous 0 2\n",
    "negative": "-4096 0x1000 anonymous 0 1\n",
    "empty_range": "0x1000 0x1000 anonymous 0 1\n",
    "reversed": "0x2000 0x1000 anonymous 0 1\n",
    "bad_hex": "0xZZ 0x1000 anonymous 0 1\n",
    "bad_memcg": "0 0x1000 anonymous cg 1\n",
}


def case_bad_usage_files(ctx):
    img = make_image(ctx)
    store = ctx.store()
    c.snapfs("save", store, "before", img.path)
    before = c.store_state(store)
    problems = []
    for what, text in BAD_USAGE.items():
        usage = ctx.path(f"usage-{what}.txt")
        usage.write_bytes(text.encode("latin-1"))
        cp = c.snapfs("save", store, f"bad-{what}", img.path, "--usage", usage, expect=None)
        try:
            c.check(cp.returncode == c.EXIT_USAGE,
                    f"exit {cp.returncode}, expected {c.EXIT_USAGE}; stderr {c.stderr_text(cp)!r}")
            c.check_error_message(cp, str(usage), what=what)
            c.check_state_unchanged(store, before, f"the refused save ({what})")
        except AssertionError as e:
            problems.append(f"usage file '{what}' ({text!r}): {e}")
            # Undo a wrongly accepted save so the next cases start alike.
            if f"bad-{what}" in c.snapshot_names(store):
                c.snapfs("rm", store, f"bad-{what}")
            before = c.store_state(store)
    if problems:
        c.fail("\n".join(problems))


def case_missing_usage_file(ctx):
    img = make_image(ctx)
    store = ctx.store()
    before = c.store_state(store)
    missing = ctx.path("no-such-usage.txt")
    cp = c.snapfs("save", store, "x", img.path, "--usage", missing, expect=(1, 2))
    c.check_error_message(cp, str(missing))
    c.check_state_unchanged(store, before, "save with a missing usage file")


if __name__ == "__main__":
    c.main()
