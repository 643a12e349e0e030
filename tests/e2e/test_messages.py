#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The shape of every message of the command line (issue 15, point 4).

Walks every command through every error it can meet here: a missing store,
a directory that is not a store, an unknown snapshot, a bad name, an
unknown option, a missing and an unexpected argument, a busy store (an
sqlite3 connection holds the write lock, --lock-wait 0) and a store the
user cannot write (root's store, the command run as nobody with setpriv).
Each must exit as SPEC.md says and print one line that starts with
`snapfs: COMMAND`, names the store or the snapshot it acted on, and says
why in the user's terms (no SQLite text). Warnings start with
`snapfs: warning:`; verify names the store and snapshot it checked."""

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

# SQLite's own words must not reach the user.
SQLITE_WORDS = ("readonly database", "database is locked", "disk image is malformed",
                "unable to open database", "sqlite", "SQLITE")

# Commands that act on one store, with the arguments that follow it in a
# call that would work (NAME is the saved snapshot 'keep').
STORE_CMDS = {
    "list": [], "info": [], "gc": [], "verify": [],
    "prune": ["--keep-last", "1"],
}
# Commands that act on a snapshot: (arguments with {name} for the
# snapshot, {img} for the image, {out} for an output; its exit code when
# the snapshot is unknown).
SNAP_CMDS = {
    "info": ["{name}"],
    "restore": ["{name}", "{out}"],
    "rm": ["{name}"],
    "rename": ["{name}", "fresh"],
    "diff": ["keep", "{name}"],
    "verify": ["{name}"],
    "workingset": ["{name}"],
}
# Writers and their arguments (busy and read-only stores).
WRITERS = {
    "save": ["new", "{img}"],
    "rm": ["keep"],
    "rename": ["keep", "other"],
    "prune": ["--keep-last", "1"],
    "gc": [],
    "workingset": ["keep", "--clear"],
}


def fill(args, **kw):
    return [str(a).format(**kw) for a in args]


def check_shape(cp, cmd, code, *mentions, what):
    """Exit code, one line `snapfs: CMD...` naming every mention."""
    err = c.stderr_text(cp)
    c.check(cp.returncode == code,
            f"{what}: exit {cp.returncode}, expected {code}; stderr {err!r}")
    line = c.check_error_message(cp, *mentions, what=what)
    c.check(line.startswith(f"snapfs: {cmd}"), f"{what}: must start with "
            f"'snapfs: {cmd}': {line!r}")
    c.check(not line.endswith("."), f"{what}: ends with a full stop: {line!r}")
    for w in SQLITE_WORDS:
        c.check(w not in line, f"{what}: SQLite's text {w!r} reached the user: {line!r}")
    return line


class Walk:
    def __init__(self):
        self.problems = []
        self.count = 0

    def one(self, what, fn):
        self.count += 1
        try:
            fn()
        except AssertionError as e:
            self.problems.append(f"{what}: {e}")

    def finish(self):
        c.log(f"{self.count} messages checked")
        if self.problems:
            c.fail(f"{len(self.problems)} problem(s):\n" + "\n".join(self.problems))


def setup(ctx):
    img = c.standard_image(ctx.path("keep.img"), seed=151)
    store = ctx.store()
    c.snapfs("save", store, "keep", img.path, "--quiet")
    return store, img


def case_missing_and_not_a_store(ctx):
    _, img = setup(ctx)
    empty = ctx.path("empty")
    empty.mkdir()
    missing = ctx.path("missing")
    w = Walk()
    for store in (missing, empty):
        calls = [(cmd, [store] + fill(rest)) for cmd, rest in STORE_CMDS.items()]
        calls += [("save", [store, "x", img.path]),
                  ("mount", [store, ctx.path("mnt")])]
        calls += [(cmd, [store] + fill(rest, name="keep", out=ctx.path("o")))
                  for cmd, rest in SNAP_CMDS.items()]
        for cmd, args in calls:
            def one(cmd=cmd, args=args, store=store):
                cp = c.snapfs(cmd, *args, expect=None)
                line = check_shape(cp, cmd, c.EXIT_USAGE, f"'{store}'", "snapfs init",
                                   what=f"{cmd} on {store.name}")
                c.check("not a store" in line, f"says 'not a store': {line!r}")
            w.one(f"{cmd} {store.name}", one)
    w.finish()
    c.check(not missing.exists(), "a missing store was created")
    c.check_eq(os.listdir(empty), [], "files made in a directory that is not a store")


def case_unknown_snapshot(ctx):
    store, img = setup(ctx)
    before = c.store_state(store)
    out = ctx.path("o")
    w = Walk()
    for cmd, rest in SNAP_CMDS.items():
        def one(cmd=cmd, rest=rest):
            cp = c.snapfs(cmd, store, *fill(rest, name="nope", out=out), expect=None)
            line = check_shape(cp, cmd, c.EXIT_FAILED, "'nope'", f"'{store}'",
                               what=f"{cmd} nope")
            c.check(line.endswith("no such snapshot"), f"ends 'no such snapshot': {line!r}")
        w.one(cmd, one)
    # The form of the issue, exactly.
    w.one("restore exact", lambda: c.check_eq(
        c.stderr_text(c.snapfs("restore", store, "nope", out, expect=1)),
        f"snapfs: restore 'nope' from '{store}': no such snapshot\n", "restore's message"))
    w.one("rm exact", lambda: c.check_eq(
        c.stderr_text(c.snapfs("rm", store, "nope", expect=1)),
        f"snapfs: rm 'nope' from '{store}': no such snapshot\n", "rm's message"))
    w.one("save --parent", lambda: check_shape(
        c.snapfs("save", store, "x", img.path, "--parent", "nope", expect=None), "save",
        c.EXIT_FAILED, "'nope'", "'x'", f"'{store}'", what="save --parent nope"))
    # With several names the message says which one is missing.
    w.one("rm of three", lambda: check_shape(
        c.snapfs("rm", store, "keep", "nope", "keep", expect=None), "rm", c.EXIT_FAILED,
        "'nope'", f"'{store}'", what="rm keep nope keep"))
    w.one("name taken", lambda: check_shape(
        c.snapfs("save", store, "keep", img.path, expect=None), "save", c.EXIT_FAILED,
        "'keep'", f"'{store}'", "taken", what="save of a taken name"))
    w.finish()
    c.check(not out.exists(), "a failed restore made its output")
    c.check_state_unchanged(store, before, "commands on unknown snapshots")


def case_usage_errors(ctx):
    store, img = setup(ctx)
    before = c.store_state(store)
    w = Walk()
    good = {
        "init": [ctx.path("new-store")],
        "save": [store, "x", img.path],
        "list": [store], "info": [store, "keep"],
        "restore": [store, "keep", ctx.path("o")],
        "rm": [store, "keep"], "rename": [store, "keep", "other"],
        "prune": [store, "--keep-last", "1"],
        "diff": [store, "keep", "keep"], "gc": [store], "verify": [store],
        "workingset": [store, "keep"], "mount": [store, ctx.path("mnt")],
    }
    for cmd, args in good.items():
        w.one(f"{cmd} --bogus", lambda cmd=cmd, args=args: check_shape(
            c.snapfs(cmd, *args, "--bogus", expect=None), cmd, c.EXIT_USAGE, "--bogus",
            what=f"{cmd} --bogus"))
    # An option that takes a value, given none (the last argument): one
    # line naming the option, exit 2, whichever command's table it is in.
    for cmd, opt in (("save", "--level"), ("save", "--parent"), ("prune", "--keep-daily"),
                     ("gc", "--lock-wait")):
        w.one(f"{cmd} {opt}", lambda cmd=cmd, opt=opt: check_shape(
            c.snapfs(cmd, *good[cmd], opt, expect=None), cmd, c.EXIT_USAGE,
            f"option '{opt}' needs a value", what=f"{cmd} {opt} without a value"))
    # An -o option that libfuse does not know: one line of ours, naming it.
    w.one("mount -o bogus", lambda: check_shape(
        c.snapfs("mount", *good["mount"], "-o", "bogus", expect=None), "mount",
        c.EXIT_USAGE, "bogus", what="mount -o bogus"))
    # An argument too many: "unexpected argument 'extra'".
    for cmd in ("init", "save", "list", "info", "restore", "rename", "prune", "diff", "gc",
                "workingset", "mount"):
        def extra(cmd=cmd):
            line = check_shape(c.snapfs(cmd, *good[cmd], "extra", expect=None), cmd,
                               c.EXIT_USAGE, "unexpected argument 'extra'",
                               what=f"{cmd} ... extra")
            c.check("usage" in line or "--help" in line, f"points to the usage: {line!r}")
        w.one(f"{cmd} extra", extra)
    # An argument too few: "missing WHAT".
    for cmd, args in good.items():
        positional = [a for a in args if not str(a).startswith("-")]
        if cmd == "prune":
            args = ["--keep-last", "1"]
        elif cmd == "info":             # info STORE describes the store
            args = []
        else:
            args = positional[:-1]
        w.one(f"{cmd} short", lambda cmd=cmd, args=args: check_shape(
            c.snapfs(cmd, *args, expect=None), cmd, c.EXIT_USAGE, "missing",
            what=f"{cmd} without its last argument"))
    # Bad names, everywhere a name goes.
    for cmd, rest in list(SNAP_CMDS.items()) + [("save", ["{name}", img.path])]:
        w.one(f"{cmd} ../x", lambda cmd=cmd, rest=rest: check_shape(
            c.snapfs(cmd, store, *fill(rest, name="../x", out=ctx.path("o")), expect=None),
            cmd, c.EXIT_USAGE, "'../x'", "invalid name", what=f"{cmd} ../x"))
    w.one("rename to a bad name", lambda: check_shape(
        c.snapfs("rename", store, "keep", "a/b", expect=None), "rename", c.EXIT_USAGE,
        "'a/b'", "invalid name", what="rename keep a/b"))
    # Option values.
    for codec, top in (("zstd", 22), ("lz4", 12)):
        w.one(f"--level 99 {codec}", lambda codec=codec, top=top: check_shape(
            c.snapfs("save", store, "x", img.path, "--codec", codec, "--level", "99",
                     expect=None), "save", c.EXIT_USAGE, "'x'", codec, f"1 to {top}",
            what=f"--codec {codec} --level 99"))
    w.one("--codec none --level 3", lambda: check_shape(
        c.snapfs("save", store, "x", img.path, "--codec", "none", "--level", "3",
                 expect=None), "save", c.EXIT_USAGE, "none", "no level", what="none level"))
    w.one("--level abc", lambda: check_shape(
        c.snapfs("save", store, "x", img.path, "--level", "abc", expect=None), "save",
        c.EXIT_USAGE, "'abc'", "1 to 22", what="--level abc"))
    w.one("--lock-wait -1", lambda: check_shape(
        c.snapfs("gc", store, "--lock-wait", "-1", expect=None), "gc", c.EXIT_USAGE,
        "--lock-wait", "'-1'", what="--lock-wait -1"))
    w.one("init ''", lambda: check_shape(
        c.snapfs("init", "", expect=None), "init", c.EXIT_USAGE, "''", what="init ''"))
    w.one("list extra exact", lambda: c.check(
        "unexpected argument 'extra'" in c.stderr_text(
            c.snapfs("list", store, "extra", expect=2)), "list STORE extra"))
    w.finish()
    c.check_state_unchanged(store, before, "refused commands")
    c.check(not ctx.path("new-store").exists(), "a refused init made its store")


def case_busy_store(ctx):
    store, img = setup(ctx)
    before = c.store_state(store)
    w = Walk()
    con = sqlite3.connect(str(store / "snapfs.db"), isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        for cmd, rest in WRITERS.items():
            def one(cmd=cmd, rest=rest):
                cp = c.snapfs(cmd, store, *fill(rest, img=img.path), "--lock-wait", "0",
                              expect=None)
                line = check_shape(cp, cmd, c.EXIT_FAILED, f"'{store}'", "store is busy",
                                   "--lock-wait", what=f"{cmd} on a busy store")
                c.check(" from " in line or " into " in line or " in " in line
                        or line.startswith(f"snapfs: {cmd} '{store}'"),
                        f"names what it acted on: {line!r}")
            w.one(cmd, one)
        w.one("rm exact start", lambda: c.check(
            c.stderr_text(c.snapfs("rm", store, "keep", "--lock-wait", "0", expect=1))
            .startswith(f"snapfs: rm 'keep' from '{store}': store is busy"), "rm's message"))
        con.execute("ROLLBACK")
    finally:
        con.close()
    w.finish()
    c.check_state_unchanged(store, before, "commands refused by a busy store")


def case_read_only_store(ctx):
    """A user who may read the store but not write it (root's store, the
    command run as nobody): every writer is refused with 'permission
    denied' and 'read-only store'; readers read it (SQLite opens the
    database immutable when it cannot make its -shm file), bytes equal;
    and with a writer's log left pending (a writer killed before its
    checkpoint, the -shm gone), readers are told why and what folds it in."""
    prefix = c.setpriv_prefix()
    if prefix is None:
        raise c.Skip("cannot run snapfs as an unprivileged user here")
    store, img = setup(ctx)
    os.chmod(img.path, 0o644)
    before = c.store_state(store)
    w = Walk()
    for cmd, rest in WRITERS.items():
        def one(cmd=cmd, rest=fill(rest, img=img.path)):
            cp = c.run(prefix + [c.SNAPFS, cmd, store, *rest], expect=None)
            line = check_shape(cp, cmd, c.EXIT_FAILED, f"'{store}'", what=f"{cmd} as nobody")
            c.check("permission denied" in line and "read-only store" in line,
                    f"says 'permission denied' and 'read-only store': {line!r}")
        w.one(cmd, one)
    for cmd, rest in (("list", []), ("info", ["keep"]), ("verify", []), ("diff", ["keep", "keep"])):
        w.one(f"{cmd} as nobody", lambda cmd=cmd, rest=rest: c.run(
            prefix + [c.SNAPFS, cmd, store, *rest], expect=0))

    def restore():
        cp = subprocess.run(prefix + [c.SNAPFS, "restore", store, "keep", "-"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        c.check(cp.returncode == 0, f"restore as nobody: exit {cp.returncode} {cp.stderr!r}")
        c.check(cp.stdout == img.path.read_bytes(), "restore as nobody: other bytes")
    w.one("restore as nobody", restore)

    def mount():
        mnt = ctx.path("mnt-nobody")
        os.makedirs(mnt)
        os.chown(mnt, c.NOBODY, c.NOBODY)
        daemon = subprocess.Popen(prefix + [c.SNAPFS, "mount", store, str(mnt), "-f"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        # (Not os.path.ismount: without allow_other, root may not stat it.)
        def mounted():
            with open("/proc/self/mounts") as f:
                return any(line.split()[1] == str(mnt) for line in f)
        try:
            for _ in range(200):
                if mounted() or daemon.poll() is not None:
                    break
                time.sleep(0.05)
            c.check(mounted(), f"mount as nobody: not mounted "
                    f"({daemon.poll()}, {daemon.stderr.read() if daemon.poll() is not None else ''!r})")
            cp = subprocess.run(prefix + ["cat", os.path.join(mnt, "keep", "memory")],
                                stdout=subprocess.PIPE)
            c.check(cp.stdout == img.path.read_bytes(), "mount as nobody: other bytes")
        finally:
            subprocess.run(["fusermount3", "-u", str(mnt)], stderr=subprocess.DEVNULL)
            daemon.wait(timeout=30)
    w.one("mount as nobody", mount)
    w.finish()
    c.check_state_unchanged(store, before, "commands of a user without write access")
    db = os.path.join(store, "snapfs.db")
    c.check(not os.path.exists(db + "-shm") and not os.path.exists(db + "-wal"),
            "a reader without write access left -wal/-shm files")
    # A writer killed with its log pending, its -shm gone.
    writer = subprocess.Popen([sys.executable, "-c", (
        "import sqlite3, sys, time\n"
        f"con = sqlite3.connect({db!r}, isolation_level=None)\n"
        "con.execute('PRAGMA wal_autocheckpoint = 0')\n"
        "con.execute(\"INSERT INTO store_info (key, value) VALUES ('test-pending', 1)\")\n"
        "print('ok', flush=True)\n"
        "time.sleep(60)\n")], stdout=subprocess.PIPE)
    writer.stdout.readline()
    writer.kill()
    writer.wait()
    os.unlink(db + "-shm")
    c.check(os.path.getsize(db + "-wal") > 0, "the killed writer left no log")
    cp = c.run(prefix + [c.SNAPFS, "list", store], expect=None)
    line = check_shape(cp, "list", c.EXIT_FAILED, f"'{store}'", what="list with a log pending")
    c.check("write-ahead log" in line and "read-only store" in line,
            f"says the log is pending and the store read-only: {line!r}")
    c.snapfs("list", store)          # root folds it in; then nobody reads again
    c.run(prefix + [c.SNAPFS, "list", store], expect=0)


def case_claims_file_missing(ctx):
    """A store whose claims file is gone (copied without it, say): root
    makes it again and reads; a user who may read the store but not make
    the file is told what to do, not just 'permission denied'."""
    prefix = c.setpriv_prefix()
    if prefix is None:
        raise c.Skip("cannot run snapfs as an unprivileged user here")
    store, img = setup(ctx)
    os.chmod(img.path, 0o644)
    claims = os.path.join(store, "claims")
    os.unlink(claims)
    # A connection of root's keeps the -wal and -shm files in place: with
    # them there, SQLite lets a user who cannot write the directory read.
    con = sqlite3.connect(os.path.join(store, "snapfs.db"))
    try:
        con.execute("SELECT count(*) FROM snapshots").fetchall()
        cp = c.run(prefix + [c.SNAPFS, "restore", store, "keep", "/dev/null", "--force"],
                   expect=None)
    finally:
        con.close()
    line = check_shape(cp, "restore", c.EXIT_FAILED, f"'{store}'", what="restore as nobody")
    c.check("claims: missing" in line and f"snapfs gc {store}" in line,
            f"says the claims file is missing and what makes it: {line!r}")
    c.check(not os.path.exists(claims), "a failed reader made the claims file")
    c.snapfs("restore", store, "keep", ctx.path("out.img"), "--quiet")
    c.check(os.path.exists(claims), "root's restore did not make the claims file again")
    c.check(ctx.path("out.img").read_bytes() == img.path.read_bytes(), "restored bytes")


def case_verify_and_warnings(ctx):
    store, img = setup(ctx)
    cp = c.snapfs("verify", store, "keep")
    c.check_eq(cp.stdout, f"verify '{store}' 'keep': ok\n", "verify of one snapshot")
    cp = c.snapfs("verify", store)
    c.check_eq(cp.stdout, f"verify '{store}': ok\n", "verify of the store")
    # A usage file that leaves data out: a warning that says what happened.
    usage = ctx.path("usage.txt")
    usage.write_text(f"0 {c.PAGE} anonymous 0 1\n")
    cp = c.snapfs("save", store, "part", img.path, "--usage", usage)
    lines = c.stderr_text(cp).splitlines()
    c.check_eq(len(lines), 1, f"one warning line: {lines!r}")
    c.check(lines[0].startswith(f"snapfs: warning: save 'part' into '{store}': "),
            f"warning shape: {lines[0]!r}")
    c.check("zeros" in lines[0], f"the warning says what the snapshot reads: {lines[0]!r}")


if __name__ == "__main__":
    c.main()
