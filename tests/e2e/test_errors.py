#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Every error case of the command line: the exit code the SPEC gives, one
line `snapfs: ...` on standard error naming the file, snapshot or store
concerned, and a store left exactly as it was (`snapfs list` and the
sqlite3 row counts compared before and after)."""

import os
import random
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB, PAGE  # noqa: E402


def store_with_one(ctx, name="keep"):
    img = c.standard_image(ctx.path(f"{name}.img"), seed=61)
    store = ctx.store()
    c.snapfs("save", store, name, img.path)
    return store, img


def collect(problems, what, fn):
    """Run fn, adding its failure (if any) to problems: many sub-cases
    are reported together instead of stopping at the first."""
    try:
        fn()
    except AssertionError as e:
        problems.append(f"{what}: {e}")


def finish(problems):
    if problems:
        c.fail(f"{len(problems)} problem(s):\n" + "\n".join(problems))


# --- sources -----------------------------------------------------------------

def case_missing_source(ctx):
    store, _ = store_with_one(ctx)
    before = c.store_state(store)
    missing = ctx.path("no-such-file.img")
    c.expect_error(["save", store, "x", missing], c.EXIT_FAILED, str(missing))
    c.check_state_unchanged(store, before, "save of a missing source")


def case_directory_source(ctx):
    store, _ = store_with_one(ctx)
    before = c.store_state(store)
    d = ctx.path("a-directory")
    d.mkdir()
    c.expect_error(["save", store, "x", d], c.EXIT_FAILED, str(d))
    c.check_state_unchanged(store, before, "save of a directory")


def chown_tree(path, uid):
    for root, dirs, files in os.walk(path):
        os.chown(root, uid, uid)
        for f in files:
            os.chown(os.path.join(root, f), uid, uid)


def case_unreadable_source(ctx):
    prefix = c.setpriv_prefix()
    if prefix is None:
        raise c.Skip("cannot run snapfs as an unprivileged user here (root bypasses chmod 000)")
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    src = ctx.path("secret.img")
    shutil.copyfile(img.path, src)
    os.chmod(src, 0)
    # The store belongs to the unprivileged user, so only the source fails.
    chown_tree(store, c.NOBODY)
    cp = c.run(prefix + [c.SNAPFS, "save", store, "x", src], expect=c.EXIT_FAILED)
    c.check_error_message(cp, str(src))
    c.check_state_unchanged(store, before, "save of an unreadable source")
    # The same user can save it once it is readable: the failure was the
    # permission, nothing else.
    os.chmod(src, 0o644)
    chown_tree(store, c.NOBODY)
    c.run(prefix + [c.SNAPFS, "save", store, "x", src], expect=0)
    chown_tree(store, 0)
    out = ctx.path("x.out")
    c.snapfs("restore", store, "x", out)
    c.cmp_files(src, out)


def case_unreadable_source_device(ctx):
    # A character device is not a memory file.
    store, _ = store_with_one(ctx)
    before = c.store_state(store)
    c.expect_error(["save", store, "x", "/dev/null"], c.EXIT_FAILED, "/dev/null")
    c.check_state_unchanged(store, before, "save of /dev/null")


# --- stores ------------------------------------------------------------------

def case_not_a_store(ctx):
    img = c.standard_image(ctx.path("x.img"), seed=62)
    empty = ctx.path("empty-dir")
    empty.mkdir()
    missing = ctx.path("missing-dir")
    plainfile = ctx.path("plain-file")
    plainfile.write_text("hello\n")
    other_db = ctx.path("other-db")
    other_db.mkdir()
    c.run([c.SQLITE3, other_db / "snapfs.db", "CREATE TABLE t(x); INSERT INTO t VALUES (1)"], expect=0)
    other_before = c.sha_file(other_db / "snapfs.db")
    problems = []
    for label, store in (("empty directory", empty), ("missing directory", missing),
                         ("regular file", plainfile), ("other sqlite db", other_db)):
        for args in (["list", store], ["list", store, "--json"], ["info", store, "a"],
                     ["save", store, "a", img.path], ["restore", store, "a", ctx.path("out")],
                     ["rm", store, "a"]):
            def one(args=args, store=store):
                cp = c.snapfs(*args, expect=c.EXIT_USAGE)
                c.check_error_message(cp, str(store), "snapfs init")
            collect(problems, f"{label}: snapfs {' '.join(map(str, args[:1]))}", one)
    collect(problems, "no output file", lambda: c.check(not ctx.path("out").exists(),
                                                        "restore from a non-store created its output"))
    collect(problems, "empty dir untouched", lambda: c.check_eq(os.listdir(empty), [],
                                                                "files in the empty directory"))
    collect(problems, "missing dir not created", lambda: c.check(not missing.exists(),
                                                                 "a missing store directory was created"))
    collect(problems, "other db untouched",
            lambda: c.check_eq(c.sha_file(other_db / "snapfs.db"), other_before,
                               "the other sqlite database's bytes"))
    finish(problems)


def case_newer_schema(ctx):
    store, img = store_with_one(ctx)
    c.sql(store, "PRAGMA user_version = 99")
    db = store / "snapfs.db"
    before = c.sha_file(db)
    packs_before = {n: c.sha_file(store / "packs" / n) for n in c.pack_files(store)}
    c.check(packs_before, "the store has a pack file")
    problems = []
    for args in (["list", store], ["info", store, "keep"], ["save", store, "new", img.path],
                 ["restore", store, "keep", ctx.path("out")], ["rm", store, "keep"]):
        def one(args=args):
            cp = c.snapfs(*args, expect=c.EXIT_USAGE)
            c.check_error_message(cp, str(store))
            line = c.stderr_text(cp).lower()
            c.check("newer" in line or "version" in line,
                    f"message should say the store is of a newer version: {line!r}")
        collect(problems, f"snapfs {args[0]} on a newer store", one)
    collect(problems, "snapfs.db byte-identical",
            lambda: c.check_eq(c.sha_file(db), before, "sha256 of snapfs.db after refused commands"))
    collect(problems, "pack files byte-identical",
            lambda: c.check_eq({n: c.sha_file(store / "packs" / n) for n in c.pack_files(store)},
                               packs_before, "sha256 of the pack files after refused commands"))
    collect(problems, "no output", lambda: c.check(not ctx.path("out").exists(),
                                                   "restore from a newer store wrote its output"))
    finish(problems)
    c.check_eq(c.sql_value(store, "PRAGMA user_version"), 99, "user_version left as it was")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM snapshots"), 1, "snapshots left as they were")


def case_init_existing_store(ctx):
    store, _ = store_with_one(ctx)
    before = c.store_state(store)
    c.expect_error(["init", store], c.EXIT_FAILED, str(store))
    c.check_state_unchanged(store, before, "init on an existing store")


def case_init_on_a_file(ctx):
    f = ctx.path("file")
    f.write_text("data\n")
    cp = c.snapfs("init", f, expect=(1, 2))
    c.check_error_message(cp, str(f))
    c.check_eq(f.read_text(), "data\n", "the file given to init")


# --- names -------------------------------------------------------------------

BAD_NAMES = ["../x", ".hidden", "-x", "a" * 129, "", "a/b", "a b", "caf\u00e9", "a*", "..", "."]


def case_bad_names(ctx):
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    problems = []
    for name in BAD_NAMES:
        def one(name=name):
            cp = c.snapfs("save", store, name, img.path, expect=c.EXIT_USAGE)
            mention = () if name in ("", "-x") else (name,)
            c.check_error_message(cp, *mention)
            c.check_state_unchanged(store, before, f"save with the bad name {name!r}")
        collect(problems, f"save name {name!r}", one)
    for args in (["info", store, "../x"], ["restore", store, "a/b", ctx.path("out")],
                 ["rm", store, ".hidden"], ["save", store, "ok", img.path, "--parent", "../x"]):
        def one(args=args):
            cp = c.snapfs(*args, expect=c.EXIT_USAGE)
            c.check_error_message(cp)
            c.check_state_unchanged(store, before, f"snapfs {args[0]} with a bad name")
        collect(problems, f"snapfs {' '.join(map(str, args))}", one)
    # 128 characters is still a good name.
    collect(problems, "128-character name",
            lambda: c.snapfs("save", store, "b" * 128, img.path))
    finish(problems)


def case_duplicate_name(ctx):
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    c.expect_error(["save", store, "keep", img.path], c.EXIT_FAILED, "keep")
    c.check_state_unchanged(store, before, "save of a taken name")


def case_unknown_snapshot(ctx):
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    problems = []
    out = ctx.path("out.img")
    for args in (["info", store, "nope"], ["info", store, "nope", "--json"],
                 ["restore", store, "nope", out], ["restore", store, "nope", "-"],
                 ["rm", store, "nope"], ["save", store, "new", img.path, "--parent", "nope"]):
        def one(args=args):
            cp = c.snapfs(*args, expect=c.EXIT_FAILED)
            c.check_error_message(cp, "nope")
            c.check_eq(cp.stdout, "", "standard output of the failed command")
            c.check_state_unchanged(store, before, f"snapfs {args[0]} of an unknown snapshot")
        collect(problems, f"snapfs {' '.join(map(str, args))}", one)
    collect(problems, "no output", lambda: c.check(not out.exists(), "restore of an unknown "
                                                   "snapshot created its output"))
    finish(problems)


# --- restore outputs -----------------------------------------------------------

def case_output_exists(ctx):
    store, img = store_with_one(ctx)
    out = ctx.path("existing.img")
    out.write_bytes(b"precious\n")
    os.utime(out, (1_000_000_000, 1_000_000_000))
    cp = c.expect_error(["restore", store, "keep", out], c.EXIT_FAILED, str(out))
    c.check_eq(out.read_bytes(), b"precious\n", "existing output after restore without --force")
    c.check_eq(os.stat(out).st_mtime, 1_000_000_000, "mtime of the existing output")
    c.check_eq(sorted(os.listdir(ctx.path())), sorted(["store", "keep.img", "existing.img"]),
               "files next to the output (no temporary files)")
    c.snapfs("restore", store, "keep", out, "--force")
    c.cmp_files(img.path, out)
    c.check_eq(sorted(os.listdir(ctx.path())), sorted(["store", "keep.img", "existing.img"]),
               "files next to the output after restore --force")


def case_output_directory_missing(ctx):
    store, _ = store_with_one(ctx)
    out = ctx.path("no-such-dir", "out.img")
    c.expect_error(["restore", store, "keep", out], c.EXIT_FAILED, str(out))


def case_restore_stdout_full(ctx):
    store, _ = store_with_one(ctx)
    with open("/dev/full", "wb") as full:
        cp = c.snapfs("restore", store, "keep", "-", stdout=full, expect=c.EXIT_FAILED)
    c.check_error_message(cp)


# --- arguments -----------------------------------------------------------------

def case_bad_arguments(ctx):
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    problems = []
    cases = [
        (["frobnicate"], "unknown command"),
        (["frobnicate", store], "unknown command with an argument"),
        (["--bogus"], "unknown global option"),
        (["list", store, "--bogus"], "unknown list option"),
        (["save", store, "x", img.path, "--bogus"], "unknown save option"),
        (["save", store, "x", img.path, "--codec", "bogus"], "unknown codec"),
        (["save", store, "x", img.path, "--codec"], "--codec without a value"),
        (["save", store, "x", img.path, "--kind", "bogus"], "unknown kind"),
        (["save", store, "x", img.path, "--level", "abc"], "non-numeric level"),
        (["save", store, "x", img.path, "--level", "999"], "level out of range"),
        (["save", store, "x", img.path, "--format", "bogus"], "unknown format"),
        (["save", store, "x"], "save without a source"),
        (["save", store], "save without a name"),
        (["save", store, "x", img.path, "extra"], "save with an extra argument"),
        (["list"], "list without a store"),
        (["list", store, "extra"], "list with an extra argument"),
        (["restore", store, "keep"], "restore without an output"),
        (["restore", store, "keep", ctx.path("o"), "extra"], "restore with an extra argument"),
        (["rm", store], "rm without a name"),
        (["init"], "init without a store"),
        (["init", store, "extra"], "init with an extra argument"),
    ]
    # No command at all: the usage text may follow, but on stderr, exit 2.
    def no_command():
        cp = c.snapfs(expect=c.EXIT_USAGE)
        c.check_eq(cp.stdout, "", "standard output of snapfs without a command")
        c.check(c.stderr_text(cp).strip(), "snapfs without a command says nothing on stderr")
    collect(problems, "no command", no_command)
    for args, what in cases:
        def one(args=args):
            cp = c.snapfs(*args, expect=c.EXIT_USAGE)
            c.check_error_message(cp)
            c.check_eq(cp.stdout, "", "standard output")
        collect(problems, f"{what} (snapfs {' '.join(map(str, args))})", one)
    collect(problems, "store unchanged",
            lambda: c.check_state_unchanged(store, before, "refused commands"))
    collect(problems, "no output", lambda: c.check(not ctx.path("o").exists(),
                                                   "a refused restore created its output"))
    finish(problems)


# --- disk full -------------------------------------------------------------------

def case_save_enospc(ctx):
    fs = ctx.mount_tmpfs("small-fs", "8m")
    store = fs / "store"
    c.snapfs("init", store)
    rng = random.Random(63)
    small = c.Image(ctx.path("small.img"), 1 * MIB)
    small.pages(0, 64, "random", rng)
    small.close()
    c.snapfs("save", store, "small", small.path)
    before = c.store_state(store)
    big = c.Image(ctx.path("big.img"), 32 * MIB)
    big.pages(0, 32 * MIB // PAGE, "random", rng)
    big.close()
    cp = c.snapfs("save", store, "big", big.path, expect=c.EXIT_FAILED)
    line = c.check_error_message(cp, "big")
    c.check("space" in line.lower(), f"message should say the disk is full: {line!r}")
    c.check_state_unchanged(store, before, "a save that ran out of space")
    c.integrity_ok(store)
    out = ctx.path("small.out")
    c.snapfs("restore", store, "small", out)
    c.cmp_files(small.path, out)
    extra = sorted(set(os.listdir(store)) - c.STORE_ENTRIES)
    c.check_eq(extra, [], "files left in the store directory")
    c.check_eq(c.pack_files(store), ["00000001.pack"], "files left in packs/")
    c.check_pack_files(store, "after the failed save")
    pack = c.pack_path(store, 1)
    c.log(f"pack 1 after the failed save: {pack.stat().st_size} bytes, committed "
          f"{c.sql_value(store, 'SELECT length FROM packs WHERE id = 1')}")
    # The space of the failed save came back: a small save fits again.
    small2 = c.Image(ctx.path("small2.img"), 1 * MIB)
    small2.pages(0, 64, "random", rng)
    small2.close()
    c.snapfs("save", store, "small2", small2.path)
    # ... and cut off whatever the failed save had appended to the pack.
    c.check_pack_files(store, "after the next save")
    c.check_eq(pack.stat().st_size, c.sql_value(store, "SELECT length FROM packs WHERE id = 1"),
               "size of pack 1 after the next save (its committed length)")
    out2 = ctx.path("small2.out")
    c.snapfs("restore", store, "small2", out2)
    c.cmp_files(small2.path, out2)


def case_restore_enospc(ctx):
    store = ctx.store()
    rng = random.Random(64)
    img = c.Image(ctx.path("big.img"), 24 * MIB)
    img.pages(0, 16 * MIB // PAGE, "random", rng)
    img.close()
    c.snapfs("save", store, "big", img.path)
    fs = ctx.mount_tmpfs("small-fs", "8m")
    out = fs / "restored.img"
    cp = c.snapfs("restore", store, "big", out, expect=c.EXIT_FAILED)
    line = c.check_error_message(cp, str(out))
    c.check("space" in line.lower(), f"message should say the disk is full: {line!r}")
    c.check_eq(os.listdir(fs), [], "files left on the full filesystem (output or temporary files)")
    # An existing output is not harmed by a failed --force restore.
    out.write_bytes(b"keep me\n")
    cp = c.snapfs("restore", store, "big", out, "--force", expect=c.EXIT_FAILED)
    c.check_error_message(cp, str(out))
    c.check_eq(out.read_bytes(), b"keep me\n", "existing output after a failed --force restore")
    c.check_eq(os.listdir(fs), ["restored.img"], "files on the full filesystem after --force")


# --- a second writer -------------------------------------------------------------

def case_store_busy(ctx):
    # Another connection holds the write lock: the save says at once that
    # it waits, waits a while and then fails with exit 1 ("store busy"),
    # leaving the store as it was; once the lock is gone, saving works
    # (test_locks.py has the rest).
    import sqlite3
    store, img = store_with_one(ctx)
    before = c.store_state(store)
    con = sqlite3.connect(str(store / "snapfs.db"), isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        cp = c.snapfs("save", store, "new", img.path, expect=c.EXIT_FAILED, timeout=300)
        lines = c.stderr_text(cp).splitlines()
        c.check_eq(lines[:1], [f"snapfs: save 'new' into '{store}': waiting for the store lock held by "
                               "another process..."], "the waiting line")
        cp.stderr = "\n".join(lines[1:]) + "\n"
        c.check_error_message(cp, "save 'new'", "busy")
        con.execute("ROLLBACK")
    finally:
        con.close()
    c.check_state_unchanged(store, before, "a save refused because the store was busy")
    c.snapfs("save", store, "new", img.path)


if __name__ == "__main__":
    c.main()
