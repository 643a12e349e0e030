#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Retention and names: `snapfs rename STORE OLD NEW` (the snapshot keeps
its bytes, its children their parent, its seal is renewed, a live mount
shows the new name; invalid, unknown and taken names are refused and
change nothing); `save --comment TEXT` (snapshots.comment, shown by list,
info, info --json and the mount's info file; not sealed); `snapfs prune`
(each --keep-* rule on its own, periods in UTC, newest of each period,
--prefix / --glob selection, --dry-run, --json, children of a pruned
parent stay readable, every error path exits 2 and changes nothing)."""

import datetime
import errno
import os
import random
import re
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
    c.expect_error(["rename", store, "a", "a"], c.EXIT_USAGE, "rename 'a'", "the new name is the old one",
                   what="same name")
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
    rows = {r["name"]: r for r in c.parse_list(c.snapfs("list", store, "--bytes").stdout)}
    c.check_eq(rows["a"]["comment"], text, "list comment column")
    c.check_eq(rows["n"]["comment"], "-", "list comment column without one")
    js = {o["name"]: o for o in c.parse_json(c.snapfs("list", store, "--json").stdout, "list")}
    c.check_eq(js["a"]["comment"], text, "list --json comment")
    c.check_eq(js["n"]["comment"], None, "list --json comment without one")
    info = c.parse_json(c.snapfs("info", store, "a", "--json").stdout, "info --json")
    c.check_eq(info["comment"], text, "info --json comment")
    out = c.snapfs("info", store, "a").stdout
    c.check(re.search(r"^comment: +" + re.escape(text.replace(chr(92), chr(92) + '134')) + "$",
                      out, re.M),
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


# --------------------------------------------------------------------------
# prune


def set_times(store, times):
    """Give snapshots the created_at values {name: 'YYYY-MM-DDTHH:MM:SSZ'}
    (created_at is not sealed)."""
    for name, t in times.items():
        c.sql(store, f"UPDATE snapshots SET created_at = '{t}' WHERE name = '{name}'")


def store_with(ctx, times, image=None):
    store = ctx.store()
    img = image or small_image(ctx, "img", 7, pages=2)
    for name in times:
        c.snapfs("save", store, name, img, "--quiet")
    set_times(store, times)
    return store


def prune_plan(store, *args):
    """{name: reasons} kept and [names] removed, from prune --dry-run --json."""
    js = c.parse_json(c.snapfs("prune", store, "--dry-run", "--json", *args).stdout,
                      "prune --json")
    kept = {o["name"]: o["reasons"] for o in js["snapshots"] if o["action"] == "keep"}
    gone = [o["name"] for o in js["snapshots"] if o["action"] == "remove"]
    return kept, gone


def iso(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def case_prune_last(ctx):
    times = {f"s{i}": f"2026-03-0{i}T12:00:00Z" for i in range(1, 7)}
    store = store_with(ctx, times)
    before = c.store_state(store)
    cp = c.snapfs("prune", store, "--keep-last", "2", "--dry-run")
    c.check_eq(cp.stdout.splitlines(), [
        "keep\ts6\t2026-03-06T12:00:00Z\tlast #1",
        "keep\ts5\t2026-03-05T12:00:00Z\tlast #2",
        "remove\ts4\t2026-03-04T12:00:00Z\t-",
        "remove\ts3\t2026-03-03T12:00:00Z\t-",
        "remove\ts2\t2026-03-02T12:00:00Z\t-",
        "remove\ts1\t2026-03-01T12:00:00Z\t-",
        f"prune '{store}': dry run: would remove 4 snapshots, keep 2; nothing changed",
    ], "prune --dry-run output")
    c.check_state_unchanged(store, before, "prune --dry-run")
    cp = c.snapfs("prune", store, "--keep-last", "2")
    c.check(cp.stdout.endswith(f"prune '{store}': removed 4 snapshots, kept 2 (give the "
                               "space back with 'snapfs gc')\n"), f"prune output: {cp.stdout!r}")
    c.check_eq(c.snapshot_names(store), ["s5", "s6"], "after prune --keep-last 2")
    # Nothing more to do: a second run removes nothing; --quiet prints nothing.
    cp = c.snapfs("prune", store, "--keep-last", "2", "--quiet")
    c.check_eq(cp.stdout + c.stderr_text(cp), "", "prune --quiet output")
    c.check_eq(c.snapshot_names(store), ["s5", "s6"], "after a second prune")
    # Same created_at: the later save (higher id) counts as newer.
    set_times(store, {"s5": "2026-03-06T12:00:00Z"})
    kept, gone = prune_plan(store, "--keep-last", "1")
    c.check_eq((kept, gone), ({"s6": ["last #1"]}, ["s5"]), "tie on created_at")
    c.snapfs("gc", store)
    c.snapfs("verify", store)


def case_prune_periods(ctx):
    # Newest first. Hours/days/weeks/months in UTC; weeks are ISO weeks
    # (Monday to Sunday): 2026-03-01 is a Sunday, 2026-03-02 a Monday.
    times = {
        "a": "2026-03-10T09:40:00Z",   # hour 09 of 03-10 (newest of it)
        "b": "2026-03-10T09:10:00Z",   # same hour
        "c": "2026-03-10T08:30:00Z",   # hour 08
        "d": "2026-03-09T23:59:59Z",   # 03-09, week of 03-09
        "e": "2026-03-08T12:00:00Z",   # 03-08 (Sunday): week of 03-02
        "f": "2026-03-02T00:00:00Z",   # 03-02 (Monday): week of 03-02
        "g": "2026-03-01T23:00:00Z",   # 03-01 (Sunday): week of 02-23
        "h": "2026-02-15T10:00:00Z",   # February
        "i": "2026-01-20T10:00:00Z",   # January
        "j": "2026-01-05T10:00:00Z",   # January
    }
    store = store_with(ctx, times)
    cases = [
        (("--keep-hourly", "2"), {"a": ["hourly #1"], "c": ["hourly #2"]}),
        (("--keep-hourly", "4"), {"a": ["hourly #1"], "c": ["hourly #2"], "d": ["hourly #3"],
                                  "e": ["hourly #4"]}),
        (("--keep-daily", "3"), {"a": ["daily #1"], "d": ["daily #2"], "e": ["daily #3"]}),
        (("--keep-weekly", "3"), {"a": ["weekly #1"], "e": ["weekly #2"], "g": ["weekly #3"]}),
        (("--keep-monthly", "3"), {"a": ["monthly #1"], "h": ["monthly #2"],
                                   "i": ["monthly #3"]}),
        # Fewer periods than asked for: every period's newest.
        (("--keep-monthly", "12"), {"a": ["monthly #1"], "h": ["monthly #2"],
                                    "i": ["monthly #3"]}),
        # Rules on their own: a snapshot counts for each rule that keeps it.
        (("--keep-last", "1", "--keep-daily", "2", "--keep-monthly", "2"),
         {"a": ["last #1", "daily #1", "monthly #1"], "d": ["daily #2"], "h": ["monthly #2"]}),
    ]
    for args, want in cases:
        kept, gone = prune_plan(store, *args)
        c.check_eq(kept, want, f"kept by {' '.join(args)}")
        c.check_eq(sorted(gone), sorted(set(times) - set(want)), f"removed by {' '.join(args)}")
    c.snapfs("prune", store, "--keep-weekly", "3")
    c.check_eq(c.snapshot_names(store), ["a", "e", "g"], "after prune --keep-weekly 3")


def case_prune_within(ctx):
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    ago = {"h1": datetime.timedelta(hours=1), "h13": datetime.timedelta(hours=13),
           "d6": datetime.timedelta(days=6, hours=12), "d8": datetime.timedelta(days=8),
           "d20": datetime.timedelta(days=20), "d40": datetime.timedelta(days=40),
           "d400": datetime.timedelta(days=400)}
    times = {n: iso(now - d) for n, d in ago.items()}
    times["future"] = iso(now + datetime.timedelta(days=2))
    store = store_with(ctx, times)
    for dur, want in (("12h", {"future", "h1"}), ("1d", {"future", "h1", "h13"}),
                      ("7d", {"future", "h1", "h13", "d6"}), ("1w", {"future", "h1", "h13", "d6"}),
                      ("2w", {"future", "h1", "h13", "d6", "d8"}),
                      ("1m", {"future", "h1", "h13", "d6", "d8", "d20"}),
                      ("1y", set(times) - {"d400"}), ("2y", set(times))):
        kept, _ = prune_plan(store, "--keep-within", dur)
        c.check_eq(set(kept), want, f"kept by --keep-within {dur}")
        c.check(all(r == [f"within {dur}"] for r in kept.values()), f"reasons: {kept}")
    c.snapfs("prune", store, "--keep-within", "7d")
    c.check_eq(sorted(c.snapshot_names(store)), ["d6", "future", "h1", "h13"],
               "after prune --keep-within 7d")


def case_prune_selection(ctx):
    times = {"web-1": "2026-03-01T00:00:00Z", "web-2": "2026-03-02T00:00:00Z",
             "web-3": "2026-03-03T00:00:00Z", "db-1": "2026-03-01T00:00:00Z",
             "db-2": "2026-03-02T00:00:00Z", "webdb": "2026-02-01T00:00:00Z"}
    store = store_with(ctx, times)
    kept, gone = prune_plan(store, "--keep-last", "1", "--prefix", "web-")
    c.check_eq((set(kept), set(gone)), ({"web-3"}, {"web-1", "web-2"}), "--prefix web-")
    kept, gone = prune_plan(store, "--keep-last", "1", "--glob", "*db*")
    c.check_eq((set(kept), set(gone)), ({"db-2"}, {"db-1", "webdb"}), "--glob '*db*'")
    kept, gone = prune_plan(store, "--keep-last", "1", "--glob", "nothing-*")
    c.check_eq((kept, gone), ({}, []), "a glob that selects nothing")
    c.snapfs("prune", store, "--keep-last", "1", "--glob", "db-?")
    c.check_eq(c.snapshot_names(store), ["db-2", "web-1", "web-2", "web-3", "webdb"],
               "after prune --glob db-?")


def case_prune_parent(ctx):
    # Children stay readable when their parent goes (rm's rules).
    store, a, b = parent_and_child(ctx)
    set_times(store, {"a": "2026-03-01T00:00:00Z", "b": "2026-03-02T00:00:00Z"})
    c.snapfs("prune", store, "--keep-last", "1")
    c.check_eq(c.snapshot_names(store), ["b"], "after pruning the parent")
    c.check_eq(c.sql_value(store, "SELECT parent_id FROM snapshots WHERE name = 'b'"), None,
               "the child's parent_id")
    c.snapfs("gc", store)
    c.snapfs("verify", store)
    c.snapfs("restore", store, "b", ctx.path("b.out"))
    c.cmp_files(b, ctx.path("b.out"))


def case_prune_unreadable_time(ctx):
    store = store_with(ctx, {"x": "2026-03-01T00:00:00Z", "y": "2026-03-02T00:00:00Z"})
    c.sql(store, "UPDATE snapshots SET created_at = 'yesterday' WHERE name = 'x'")
    kept, gone = prune_plan(store, "--keep-last", "1")
    c.check_eq((kept, gone), ({"x": ["created_at unreadable"], "y": ["last #1"]}, []),
               "a snapshot whose created_at cannot be read is kept")


def case_prune_json(ctx):
    # The schema of prune --json, pinned.
    store = store_with(ctx, {"p": "2026-03-01T00:00:00Z", "q": "2026-03-02T00:00:00Z"})
    js = c.parse_json(c.snapfs("prune", store, "--keep-last", "1", "--json").stdout, "json")
    c.check_eq(js, {"store": str(store), "dry_run": False, "kept": 1, "removed": 1,
                    "snapshots": [
                        {"action": "keep", "name": "q", "created_at": "2026-03-02T00:00:00Z",
                         "reasons": ["last #1"]},
                        {"action": "remove", "name": "p", "created_at": "2026-03-01T00:00:00Z",
                         "reasons": []}]}, "prune --json")
    c.check_eq(c.snapshot_names(store), ["q"], "after prune --json")


def case_prune_errors(ctx):
    store = store_with(ctx, {"s1": "2026-03-01T00:00:00Z", "s2": "2026-03-02T00:00:00Z"})
    before = c.store_state(store)
    c.expect_error(["prune", store], c.EXIT_USAGE, "prune", "no --keep-*", "refusing",
                   what="no --keep-* rule")
    c.expect_error(["prune", store, "--dry-run", "--prefix", "s"], c.EXIT_USAGE, "no --keep-*",
                   what="no --keep-* rule, dry run")
    for bad in ("7", "d", "0d", "-1d", "7days", "1.5d", "7D", "", "100001d", "7d1h"):
        c.expect_error(["prune", store, "--keep-within", bad], c.EXIT_USAGE, "--keep-within",
                       f"'{bad}'", "not a duration", what=f"bad duration {bad!r}")
    for opt in ("--keep-last", "--keep-hourly", "--keep-daily", "--keep-weekly",
                "--keep-monthly"):
        for bad in ("0", "-1", "x", "2.5", "1000001"):
            c.expect_error(["prune", store, opt, bad], c.EXIT_USAGE, opt, f"'{bad}'",
                           "whole number", what=f"{opt} {bad}")
    c.expect_error(["prune", store, "--keep-last", "1", "--prefix", "s", "--glob", "s*"],
                   c.EXIT_USAGE, "--prefix", "--glob", what="both selections")
    c.expect_error(["prune", store, "--keep-last", "1", "--bogus"], c.EXIT_USAGE, "--bogus",
                   what="unknown option")
    c.expect_error(["prune", "--keep-last", "1"], c.EXIT_USAGE, "missing STORE",
                   what="no STORE")
    c.expect_error(["prune", store, store, "--keep-last", "1"], c.EXIT_USAGE,
                   f"unexpected argument '{store}'",
                   what="two STOREs")
    c.expect_error(["prune", ctx.path("nostore"), "--keep-last", "1"], c.EXIT_USAGE,
                   "not a store", what="not a store")
    c.check_state_unchanged(store, before, "after refused prunes")
    out = c.snapfs("prune", "--help").stdout
    for opt in ("--keep-last", "--keep-within", "--keep-hourly", "--keep-daily",
                "--keep-weekly", "--keep-monthly", "--prefix", "--glob", "--dry-run", "--json"):
        c.check(opt in out, f"prune --help lacks {opt}: {out!r}")


if __name__ == "__main__":
    c.main()
