#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Retention and names: `snapfs rename STORE OLD NEW` (the snapshot keeps
its bytes, its children their parent, its seal is renewed, a live mount
shows the new name; invalid, unknown and taken names are refused and
change nothing); `save --comment TEXT` (snapshots.comment, shown by list,
info, info --json and the mount's info file; not sealed)."""

import errno
import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE  # noqa: E402


def small_image(ctx, name, seed, pages=16):
    rng = random.Random(seed)
    p = ctx.path(name)
    p.write_bytes(b"".join(c.random_page(rng) for _ in range(pages)))
    return p


def parent_and_child(ctx):
    store = ctx.store()
    a = small_image(ctx, "a.img", 1)
    data = bytearray(a.read_bytes())
    data[0:PAGE] = c.random_page(random.Random(2))
    b = ctx.path("b.img")
    b.write_bytes(bytes(data))
    c.snapfs("save", store, "a", a)
    c.snapfs("save", store, "b", b, "--parent", "a")
    return store, a, b


def unmount(mnt):
    for _ in range(50):
        if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode == 0:
            return
        time.sleep(0.1)
    c.fail(f"cannot unmount {mnt}")


# --------------------------------------------------------------------------
# rename


def case_rename(ctx):
    store, a, b = parent_and_child(ctx)
    ids = {r["name"]: r["id"] for r in c.sql(store, "SELECT id, name FROM snapshots")}
    cp = c.snapfs("rename", store, "a", "a-renamed")
    c.check_eq(cp.stdout, "renamed 'a' to 'a-renamed'\n", "rename output")
    c.check_eq(c.snapshot_names(store), ["a-renamed", "b"], "names after rename")
    c.check_eq(c.sql_value(store, "SELECT id FROM snapshots WHERE name = 'a-renamed'"),
               ids["a"], "the renamed snapshot keeps its id")
    # The child still names it as parent; both restore byte for byte and
    # verify (the seal, which covers the name, was renewed).
    info = c.parse_json(c.snapfs("info", store, "b", "--json").stdout, "info --json")
    c.check_eq(info["parent"], "a-renamed", "the child's parent after rename")
    c.snapfs("restore", store, "a-renamed", ctx.path("a.out"))
    c.cmp_files(a, ctx.path("a.out"))
    c.snapfs("restore", store, "b", ctx.path("b.out"))
    c.cmp_files(b, ctx.path("b.out"))
    c.snapfs("verify", store)
    # The old name is free again.
    c.snapfs("save", store, "a", a, "--quiet")
    c.check_eq(c.snapshot_names(store), ["a", "a-renamed", "b"], "old name reused")
    # --quiet prints nothing.
    cp = c.snapfs("rename", store, "a", "c", "--quiet")
    c.check_eq(cp.stdout + c.stderr_text(cp), "", "rename --quiet output")


def case_rename_errors(ctx):
    store, _, _ = parent_and_child(ctx)
    before = c.store_state(store)
    c.expect_error(["rename", store, "a", "b"], c.EXIT_FAILED, "rename 'a'", "'b'",
                   "already taken", what="taken name")
    c.expect_error(["rename", store, "nope", "x"], c.EXIT_FAILED, "rename 'nope'",
                   "no such snapshot", str(store), what="unknown name")
    c.expect_error(["rename", store, "a", ".hidden"], c.EXIT_USAGE, "rename 'a'",
                   "'.hidden'", "invalid name", what="bad new name")
    c.expect_error(["rename", store, "a/b", "x"], c.EXIT_USAGE, "'a/b'", "invalid name",
                   what="bad old name")
    c.expect_error(["rename", store, "a", "x" * 129], c.EXIT_USAGE, "invalid name",
                   what="too long")
    c.expect_error(["rename", store, "a"], c.EXIT_USAGE, "rename", "STORE OLD NEW",
                   what="missing NEW")
    c.expect_error(["rename", store, "a", "b", "c"], c.EXIT_USAGE, "rename",
                   what="too many")
    c.expect_error(["rename", store, "a", "x", "--bogus"], c.EXIT_USAGE, "--bogus",
                   what="unknown option")
    c.expect_error(["rename", ctx.path("nostore"), "a", "x"], c.EXIT_USAGE, "not a store",
                   what="not a store")
    c.check_state_unchanged(store, before, "after refused renames")


def case_rename_refuses_tampered(ctx):
    # A snapshot changed outside snapfs is not resealed under a new name.
    store, _, _ = parent_and_child(ctx)
    c.sql(store, "UPDATE snapshots SET file_size = 4096 WHERE name = 'a'")
    c.expect_error(["rename", store, "a", "x"], c.EXIT_FAILED, "rename 'a'",
                   "changed outside snapfs", what="tampered")
    c.check_eq(c.snapshot_names(store), ["a", "b"], "names after refused rename")


def case_rename_mounted(ctx):
    if not os.path.exists("/dev/fuse"):
        raise c.Skip("no /dev/fuse")
    store, a, _ = parent_and_child(ctx)
    mnt = ctx.path("mnt")
    mnt.mkdir()
    c.snapfs("mount", store, mnt)
    try:
        c.check_eq(sorted(os.listdir(mnt)), ["a", "b"], "mount before rename")
        with open(mnt / "a" / "memory", "rb") as held:
            c.snapfs("rename", store, "a", "renamed")
            t0 = time.monotonic()
            while time.monotonic() - t0 < 3:
                if sorted(os.listdir(mnt)) == ["b", "renamed"]:
                    break
                time.sleep(0.05)
            took = time.monotonic() - t0
            c.check_eq(sorted(os.listdir(mnt)), ["b", "renamed"], "mount after rename")
            c.check(took < 1.5, f"the mount took {took:.2f} s to show the new name")
            # A file opened under the old name reads on.
            c.check(held.read() == a.read_bytes(), "open file after rename")
        c.check((mnt / "renamed" / "memory").read_bytes() == a.read_bytes(),
                "renamed/memory")
        info = (mnt / "renamed" / "info").read_text()
        c.check("name: renamed\n" in info, f"info file after rename: {info!r}")
        try:
            os.stat(mnt / "a")
            c.fail("the old name is still in the mount")
        except OSError as e:
            c.check_eq(e.errno, errno.ENOENT, "errno of the old name")
    finally:
        unmount(mnt)


# --------------------------------------------------------------------------
# --comment


def case_comment(ctx):
    store = ctx.store()
    a = small_image(ctx, "a.img", 3)
    text = "before the kernel upgrade: ünïcode, 'quotes' \"and\" \\ back"
    c.snapfs("save", store, "a", a, "--comment", text)
    c.snapfs("save", store, "b", a, "--comment", "")
    c.snapfs("save", store, "n", a)
    c.check_eq(c.sql(store, "SELECT name, comment FROM snapshots ORDER BY name"),
               [{"name": "a", "comment": text}, {"name": "b", "comment": None},
                {"name": "n", "comment": None}], "snapshots.comment ('' is none)")
    rows = {r["name"]: r for r in c.parse_list(c.snapfs("list", store).stdout)}
    c.check_eq(rows["a"]["comment"], text, "list comment column")
    c.check_eq(rows["n"]["comment"], "-", "list comment column without one")
    js = {o["name"]: o for o in c.parse_json(c.snapfs("list", store, "--json").stdout, "list")}
    c.check_eq(js["a"]["comment"], text, "list --json comment")
    c.check_eq(js["n"]["comment"], None, "list --json comment without one")
    info = c.parse_json(c.snapfs("info", store, "a", "--json").stdout, "info --json")
    c.check_eq(info["comment"], text, "info --json comment")
    out = c.snapfs("info", store, "a").stdout
    c.check(f"comment: {text.replace(chr(92), chr(92) + '134')}\n" in out,
            f"info text comment line: {out!r}")
    c.check("comment:" not in c.snapfs("info", store, "n").stdout, "info without comment")
    # Not sealed: changing it by hand leaves the snapshot readable.
    c.sql(store, "UPDATE snapshots SET comment = 'edited by hand' WHERE name = 'n'")
    c.snapfs("verify", store)
    c.snapfs("restore", store, "n", ctx.path("n.out"))
    c.cmp_files(a, ctx.path("n.out"))
    c.check_eq(c.parse_json(c.snapfs("info", store, "n", "--json").stdout, "info")["comment"],
               "edited by hand", "comment edited with sqlite3")
    if os.path.exists("/dev/fuse"):
        mnt = ctx.path("mnt")
        mnt.mkdir()
        c.snapfs("mount", store, mnt)
        try:
            c.check("comment: edited by hand\n" in (mnt / "n" / "info").read_text(),
                    "the mount's info file shows the comment")
        finally:
            unmount(mnt)


def case_comment_errors(ctx):
    store = ctx.store()
    a = small_image(ctx, "a.img", 4)
    before = c.store_state(store)
    for bad, what in (("tab\there", "control character"), ("x" * 1025, "too long"),
                      ("new\nline", "newline")):
        c.expect_error(["save", store, "a", a, "--comment", bad], c.EXIT_USAGE, "save 'a'",
                       "comment", "1024 bytes", what=what)
    # Bytes ff fe (not UTF-8), passed as they are (surrogateescape).
    cp = c.snapfs("save", store, "a", a, "--comment", os.fsdecode(b"ok \xff\xfe"),
                  expect=c.EXIT_USAGE, quiet=True)
    c.check_error_message(cp, "comment", "UTF-8", what="not UTF-8")
    c.expect_error(["save", store, "a", a, "--comment"], c.EXIT_USAGE, "save",
                   what="--comment without TEXT")
    c.check_state_unchanged(store, before, "after refused comments")
    c.snapfs("save", store, "a", a, "--comment", "x" * 1024, "--quiet")


if __name__ == "__main__":
    c.main()
