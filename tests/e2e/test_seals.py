#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Lying fields: every field that decides which bytes a reader gets is
bound to the snapshot by its seal (snapshots.meta_digest), checked when a
snapshot is opened.

Each case edits a store with the real sqlite3 shell the way a careless
operator would (file_size set to 0 or to text, two names swapped, a
parent, a page size, a format or a segment changed) and checks that
restore and diff fail with exit 1, info with exit 1, verify with exit 3,
and the mount answers EIO on opening the files of that snapshot, never a
short or empty file with success; snapshots nobody touched still work.
And snapfs's own changes keep seals whole: rm of a parent reseals its
children, so they still restore.
"""

import errno
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402


def two_snapshots(ctx, name="store"):
    """A store with a (from a.img) and b (b.img, parent a), different bytes."""
    store = ctx.store(name)
    a = c.standard_image(ctx.path("a.img"), seed=21)
    c.snapfs("save", store, "a", a.path, "--quiet")
    b = c.standard_image(ctx.path("b.img"), seed=22)
    c.snapfs("save", store, "b", b.path, "--parent", "a", "--quiet")
    return store, a.path, b.path


def craft(store, script):
    c.run([c.SQLITE3, "-bail", "-batch", c.db_path(store), script], expect=0)


def refused(ctx, store, name, other, other_img):
    """Snapshot name is refused by every reader; other still reads right."""
    out = ctx.path(f"{name}.out")
    for args in (["restore", store, name, out, "--force"], ["info", store, name],
                 ["diff", store, name, other]):
        c.expect_error(args, c.EXIT_FAILED, name, "changed outside snapfs", what=args[0])
    c.check(not out.exists() or out.stat().st_size == 0,
            "a refused restore left bytes in its output")
    cp = c.snapfs("verify", store, expect=c.EXIT_DAMAGE)
    c.check(f"'{name}'" in c.stderr_text(cp), f"verify must name {name}: {c.stderr_text(cp)!r}")
    good = ctx.path(f"{other}.out")
    c.snapfs("restore", store, other, good, "--force", "--quiet")
    c.cmp_files(other_img, good)


def case_file_size_zero(ctx):
    store, _, b = two_snapshots(ctx)
    craft(store, "UPDATE snapshots SET file_size = 0 WHERE name = 'a'")
    refused(ctx, store, "a", "b", b)


def case_file_size_text(ctx):
    store, _, b = two_snapshots(ctx)
    craft(store, "UPDATE snapshots SET file_size = 'big' WHERE name = 'a'")
    refused(ctx, store, "a", "b", b)


def case_names_swapped(ctx):
    store, a, b = two_snapshots(ctx)
    craft(store, "UPDATE snapshots SET name = 'x' WHERE name = 'a'; "
                 "UPDATE snapshots SET name = 'a' WHERE name = 'b'; "
                 "UPDATE snapshots SET name = 'b' WHERE name = 'x';")
    out = ctx.path("swapped.out")
    for name in ("a", "b"):
        c.expect_error(["restore", store, name, out, "--force"], c.EXIT_FAILED, name,
                       "changed outside snapfs", what="restore")
    c.snapfs("verify", store, expect=c.EXIT_DAMAGE)
    # Swapped back, both are whole again: the seal is about the names.
    craft(store, "UPDATE snapshots SET name = 'x' WHERE name = 'a'; "
                 "UPDATE snapshots SET name = 'a' WHERE name = 'b'; "
                 "UPDATE snapshots SET name = 'b' WHERE name = 'x';")
    c.snapfs("verify", store)
    c.snapfs("restore", store, "a", out, "--force", "--quiet")
    c.cmp_files(a, out)


def case_other_fields(ctx):
    edits = {
        "parent": "UPDATE snapshots SET parent_id = NULL WHERE name = 'b'",
        "page size": "UPDATE snapshots SET page_size = 8192 WHERE name = 'b'",
        "format": "UPDATE snapshots SET format = 'elf' WHERE name = 'b'",
        "segment end": "UPDATE segments SET end = end + 4096 WHERE snapshot_id = "
                       "(SELECT id FROM snapshots WHERE name = 'b') AND start = "
                       "(SELECT max(start) FROM segments WHERE snapshot_id = "
                       "(SELECT id FROM snapshots WHERE name = 'b'))",
        "segment kind": "UPDATE segments SET kind = 'tmpfs' WHERE snapshot_id = "
                        "(SELECT id FROM snapshots WHERE name = 'b')",
        "segment deleted": "DELETE FROM segments WHERE snapshot_id = "
                           "(SELECT id FROM snapshots WHERE name = 'b') AND start = "
                           "(SELECT min(start) FROM segments WHERE snapshot_id = "
                           "(SELECT id FROM snapshots WHERE name = 'b'))",
        "map digest": "UPDATE snapshots SET map_digest = map_digest + 1 WHERE name = 'b'",
    }
    for i, (what, script) in enumerate(edits.items()):
        store, a, _ = two_snapshots(ctx, f"store{i}")
        craft(store, script)
        c.log(f"edit: {what}")
        refused(ctx, store, "b", "a", a)


def case_rm_parent_reseals_children(ctx):
    store, _, b = two_snapshots(ctx)
    c.snapfs("rm", store, "a")
    c.check(c.sql_value(store, "SELECT parent_id IS NULL FROM snapshots WHERE name = 'b'") == 1,
            "b keeps a parent after rm a")
    c.snapfs("verify", store)
    out = ctx.path("b.out")
    c.snapfs("restore", store, "b", out, "--quiet")
    c.cmp_files(b, out)


def case_rm_claimed_parent_reseals_children(ctx):
    # The parent is being read (a restore blocked on a full pipe holds its
    # claim): rm hides it instead of deleting it, and its child, which
    # loses its parent all the same, is resealed and still restores.
    store, a, b = two_snapshots(ctx)
    reader = subprocess.Popen([c.SNAPFS, "restore", str(store), "a", "-"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1.0)
        c.check(reader.poll() is None, "the blocked restore ended early")
        cp = c.snapfs("rm", store, "a")
        c.log(c.stderr_text(cp).strip())
        c.check_eq(c.sql_value(store, "SELECT count(*) FROM removed"), 1,
                   "rows of removed while a reader holds the parent")
        c.snapfs("verify", store)
        out = ctx.path("b.out")
        c.snapfs("restore", store, "b", out, "--quiet")
        c.cmp_files(b, out)
    finally:
        reader.kill()
        reader.wait()
    c.snapfs("gc", store, "--quiet")
    c.snapfs("verify", store)


def case_rm_parent_keeps_a_bad_child_caught(ctx):
    # A child changed by hand before its parent is removed is not
    # laundered by the reseal.
    store, a, _ = two_snapshots(ctx)
    craft(store, "UPDATE snapshots SET file_size = 4096 WHERE name = 'b'")
    c.snapfs("rm", store, "a")
    c.expect_error(["restore", store, "b", ctx.path("b.out")], c.EXIT_FAILED, "b",
                   "changed outside snapfs", what="restore")


def case_mount_eio(ctx):
    if not os.path.exists("/dev/fuse"):
        raise c.Skip("no /dev/fuse")
    store, a, _ = two_snapshots(ctx)
    craft(store, "UPDATE snapshots SET file_size = 0 WHERE name = 'b'")
    mnt = ctx.path("mnt")
    mnt.mkdir()
    c.snapfs("mount", store, mnt)
    try:
        for f in ("memory", "info", "segments"):
            try:
                with open(mnt / "b" / f, "rb") as fh:
                    data = fh.read()
                c.fail(f"b/{f} opened and read {len(data)} bytes; expected EIO")
            except OSError as e:
                c.check_eq(e.errno, errno.EIO, f"errno opening b/{f}")
        with open(mnt / "a" / "memory", "rb") as fh:
            c.check(fh.read() == Path(a).read_bytes(), "a/memory must read right")
    finally:
        for _ in range(50):
            if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)


if __name__ == "__main__":
    c.main()
