#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--json of the commands that maintain a store: gc, verify and rm (prune's
is pinned in test_retention.py). Each schema is pinned here: exactly these
keys, these types, and the same figures as the text output. The keys of
save, list, info (a snapshot and the store), diff and workingset are pinned
here too, in order."""

import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE  # noqa: E402

GC_KEYS = ["store", "blobs_removed", "blob_bytes_removed", "packs_removed",
           "file_bytes_before", "file_bytes_after", "removed_purged", "removed_kept",
           "kept_blobs", "kept_bytes", "remote_objects_removed", "remote_bytes_removed"]
VERIFY_KEYS = ["store", "snapshots", "ok", "problems", "problem_list"]
RM_KEYS = ["store", "removed", "still_open"]


SNAP_KEYS = ["name", "id", "created_at", "parent", "file_size", "page_size", "format",
             "source", "notes", "comment", "segment_count", "committed_bytes",
             "data_bytes", "stored_bytes"]
SAVE_KEYS = ["name", "id", "file_size", "scanned_bytes", "zero_pages", "data_pages",
             "new_pages", "dedup_pages", "new_blob_bytes", "ignored_bytes"]
STORE_KEYS = ["snapshot_count", "logical_bytes", "data_bytes", "unique_pages",
              "blob_count", "blob_bytes", "file_bytes", "dedup_ratio", "reduction_ratio"]
LAYOUT_KEYS = ["blobs", "moved", "moved_bytes", "stretches_before", "stretches_after"]


def image(ctx, name, seed, pages=64):
    rng = random.Random(seed)
    p = ctx.path(name)
    p.write_bytes(b"".join(c.random_page(rng) for _ in range(pages)))
    return p


def store_of_three(ctx, name="store"):
    store = ctx.store(name)
    for i, n in enumerate(("a", "b", "c")):
        c.snapfs("save", store, n, image(ctx, f"{n}.img", 10 + i), "--quiet")
    return store


def case_gc_json(ctx):
    store = store_of_three(ctx)
    c.snapfs("rm", store, "a", "b")
    twin = ctx.path("twin")
    shutil.copytree(store, twin)
    js = c.parse_json(c.snapfs("gc", store, "--json").stdout, "gc --json")
    c.check_eq(list(js), GC_KEYS, "gc --json keys, in order")
    c.check_eq(js["store"], str(store), "gc --json store")
    for k in GC_KEYS[1:]:
        c.check(isinstance(js[k], int) and js[k] >= 0, f"gc --json {k}: {js[k]!r}")
    # The same figures as the text on an identical store.
    text = c.snapfs("gc", twin).stdout
    m = re.search(r"removed (\d+) unused blobs \((\d+) bytes\); store file (\d+) -> (\d+) bytes",
                  text)
    c.check(m, f"gc text: {text!r}")
    c.check_eq((js["blobs_removed"], js["blob_bytes_removed"]), (int(m[1]), int(m[2])),
               "gc --json vs text: blobs and bytes removed")
    c.check(js["blobs_removed"] > 0 and js["file_bytes_after"] < js["file_bytes_before"],
            f"gc gave space back: {js}")
    c.check_eq((js["removed_purged"], js["removed_kept"]), (0, 0), "no hidden snapshots")
    # Nothing to do: zeros, and --json prints nothing else.
    cp = c.snapfs("gc", store, "--json", "--quiet")
    js = c.parse_json(cp.stdout, "second gc --json")
    c.check_eq(js["blobs_removed"], 0, "second gc removes nothing")


def case_gc_json_kept(ctx):
    if not os.path.exists("/dev/fuse"):
        raise c.Skip("no /dev/fuse")
    store = store_of_three(ctx)
    mnt = ctx.path("mnt")
    mnt.mkdir()
    c.snapfs("mount", store, mnt)
    try:
        with open(mnt / "a" / "memory", "rb") as held:
            js = c.parse_json(c.snapfs("rm", store, "a", "b", "--json").stdout, "rm --json")
            c.check_eq(js, {"store": str(store), "removed": ["a", "b"], "still_open": 1},
                       "rm --json with 'a' held open")
            js = c.parse_json(c.snapfs("gc", store, "--json").stdout, "gc --json")
            c.check_eq((js["removed_purged"], js["removed_kept"]), (0, 1),
                       "gc --json with 'a' still open")
            c.check(js["kept_blobs"] > 0 and js["kept_bytes"] > 0, f"kept figures: {js}")
            held.read(PAGE)
    finally:
        for _ in range(50):
            if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
    js = c.parse_json(c.snapfs("gc", store, "--json").stdout, "gc --json after unmount")
    c.check_eq((js["removed_purged"], js["removed_kept"]), (1, 0), "gc --json after the reader")


def case_rm_json(ctx):
    store = store_of_three(ctx)
    cp = c.snapfs("rm", store, "a", "c", "--json")
    js = c.parse_json(cp.stdout, "rm --json")
    c.check_eq(list(js), RM_KEYS, "rm --json keys")
    c.check_eq(js, {"store": str(store), "removed": ["a", "c"], "still_open": 0}, "rm --json")
    c.check_eq(c.snapshot_names(store), ["b"], "after rm --json")
    c.expect_error(["rm", store, "nope", "--json"], c.EXIT_FAILED, "nope", what="rm --json unknown")


def case_verify_json(ctx):
    store = store_of_three(ctx)
    js = c.parse_json(c.snapfs("verify", store, "--json").stdout, "verify --json")
    c.check_eq(list(js), VERIFY_KEYS, "verify --json keys")
    c.check_eq(js, {"store": str(store), "snapshots": [], "ok": True, "problems": 0,
                    "problem_list": []}, "verify --json of a sound store")
    js = c.parse_json(c.snapfs("verify", store, "b", "c", "--json").stdout, "verify b c")
    c.check_eq(js["snapshots"], ["b", "c"], "verify --json snapshots named")
    # Damage: exit 3, the problems in the JSON and on standard error alike.
    blob = c.sql_value(store, "SELECT min(blob_id) FROM page_map m JOIN snapshots s ON "
                              "s.id = m.snapshot_id WHERE s.name = 'b'")
    c.damage_blob(store, blob, "flip")
    cp = c.snapfs("verify", store, "--json", expect=c.EXIT_DAMAGE)
    js = c.parse_json(cp.stdout, "verify --json of a damaged store")
    c.check_eq(js["ok"], False, "verify --json ok")
    c.check(js["problems"] >= 1 and len(js["problem_list"]) == js["problems"],
            f"verify --json problems: {js}")
    head = f"snapfs: verify '{store}': "
    lines = [line[len(head):] for line in c.stderr_text(cp).splitlines()
             if line.startswith(head) and not line.endswith(" found")]
    c.check_eq(lines, js["problem_list"], "problem_list vs standard error")
    c.check(any(f"blob {blob}" in p or "'b'" in p for p in js["problem_list"]),
            f"the problems name the blob or snapshot: {js['problem_list']}")


def case_json_keys_pinned(ctx):
    store = ctx.store("pins")
    a = image(ctx, "a.img", 1)
    b = ctx.path("b.img")
    data = bytearray(a.read_bytes())
    data[5 * PAGE:6 * PAGE] = bytes(reversed(data[5 * PAGE:6 * PAGE]))
    b.write_bytes(bytes(data))
    js = c.parse_json(c.snapfs("save", store, "a", a, "--json", "--quiet").stdout, "save")
    c.check_eq(list(js), SAVE_KEYS, "save --json keys")
    c.snapfs("save", store, "b", b, "--parent", "a", "--comment", "x", "--quiet")
    js = c.parse_json(c.snapfs("list", store, "--json").stdout, "list")
    c.check_eq([list(o) for o in js], [SNAP_KEYS, SNAP_KEYS], "list --json keys")
    c.check_eq((js[1]["parent"], js[1]["comment"]), ("a", "x"), "list --json parent, comment")
    js = c.parse_json(c.snapfs("info", store, "b", "--json").stdout, "info NAME")
    c.check_eq(list(js), SNAP_KEYS + ["working_set_pages"], "info NAME --json keys")
    c.check_eq(js["working_set_pages"], 0, "working_set_pages without a record")
    js = c.parse_json(c.snapfs("info", store, "--json").stdout, "info")
    c.check_eq(list(js), STORE_KEYS, "info --json keys (the store)")
    js = c.parse_json(c.snapfs("diff", store, "a", "b", "--json").stdout, "diff")
    c.check_eq(js, [{"start": 5 * PAGE, "end": 6 * PAGE, "status": "changed"}], "diff --json")
    js = c.parse_json(c.snapfs("workingset", store, "a", "--json").stdout, "workingset")
    c.check_eq(js, [], "workingset --json without a record")
    js = c.parse_json(c.snapfs("workingset", store, "a", "--lay-out", "--json").stdout,
                      "workingset --lay-out")
    c.check_eq(list(js), LAYOUT_KEYS, "workingset --lay-out --json keys")
    c.check_eq((js["blobs"], js["moved"]), (0, 0), "--lay-out without a record")


def case_json_help(ctx):
    for cmd in ("gc", "verify", "rm", "prune"):
        out = c.snapfs(cmd, "--help").stdout
        c.check("--json" in out, f"{cmd} --help lacks --json: {out!r}")


if __name__ == "__main__":
    c.main()
