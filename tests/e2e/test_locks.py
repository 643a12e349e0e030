#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The store lock: a writer that finds the store busy says at once on
standard error whom it waits for (PID and what it does, from the store's
lock-holder file), waits up to --lock-wait SECONDS (default 5, 0: not at
all), then fails with exit 1 and a message naming the holder; --quiet
leaves out the waiting line. The holder is a real second process: a
`snapfs save` stopped with SIGSTOP while it holds the lock, or the sqlite3
shell inside BEGIN IMMEDIATE (then the holder is "another process")."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB  # noqa: E402

WAITING = "waiting for the store lock held by"


def small_image(ctx, name="small.img"):
    p = ctx.path(name)
    p.write_bytes(os.urandom(64 * 1024))
    return p


def stopped_save(ctx, store, name="vm1"):
    """A `snapfs save STORE NAME` stopped (SIGSTOP) while it holds the store
    lock; returns the process. Tries a few times: a save may finish before
    it is caught."""
    big = ctx.path("big.img")
    if not big.exists():
        with open(big, "wb") as f:
            for _ in range(48):
                f.write(os.urandom(MIB))
    holder = Path(store) / "lock-holder"
    for attempt in range(10):
        p = ctx.track(subprocess.Popen([c.SNAPFS, "save", str(store), f"{name}", str(big),
                                        "--quiet"], stdin=subprocess.DEVNULL,
                                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
        want = f"{p.pid} save '{name}'\n"
        t0 = time.monotonic()
        while time.monotonic() - t0 < 20 and p.poll() is None:
            try:
                if holder.read_text() == want:
                    p.send_signal(signal.SIGSTOP)
                    break
            except OSError:
                pass
            time.sleep(0.001)
        if p.poll() is None and holder.read_text() == want:
            c.log(f"save '{name}' (PID {p.pid}) stopped holding the lock")
            return p
        if p.poll() is None:
            p.send_signal(signal.SIGCONT)
        p.wait()
        c.snapfs("rm", store, name, expect=(0, 1), quiet=True)
        name_attempt = attempt
        c.log(f"save finished before it was stopped (attempt {name_attempt + 1}); again")
    c.fail("could not catch a save holding the store lock")


def finish(p):
    p.send_signal(signal.SIGCONT)
    _, err = p.communicate(timeout=120)
    c.check_eq(p.returncode, 0, f"the stopped save, continued: {err!r}")


def timed(args, **kw):
    t0 = time.monotonic()
    cp = c.snapfs(*args, **kw)
    return cp, time.monotonic() - t0


def case_waits_and_names_holder(ctx):
    store = ctx.store()
    img = small_image(ctx)
    c.snapfs("save", store, "base", img, "--quiet")
    holder = stopped_save(ctx, store)
    try:
        # The waiting line comes at once, then the failure after 1 s.
        p = subprocess.Popen([c.SNAPFS, "save", str(store), "vm2", str(img), "--lock-wait", "1"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        t0 = time.monotonic()
        first = p.stderr.readline()
        at = time.monotonic() - t0
        c.check_eq(first, f"snapfs: save 'vm2' into '{store}': {WAITING} PID {holder.pid} (save 'vm1')...\n",
                   "the waiting line")
        c.check(at < 0.8, f"the waiting line came after {at:.2f} s, not at once")
        rest = p.stderr.read()
        p.wait()
        took = time.monotonic() - t0
        c.check_eq(p.returncode, c.EXIT_FAILED, "exit status after --lock-wait 1")
        c.check(0.9 <= took < 3, f"--lock-wait 1 gave up after {took:.2f} s")
        lines = rest.splitlines()
        c.check_eq(len(lines), 1, f"one failure line: {rest!r}")
        for m in (f"snapfs: save 'vm2' into '{store}': ", "busy", f"PID {holder.pid}", "(save 'vm1')",
                  "--lock-wait"):
            c.check(m in lines[0], f"failure message lacks {m!r}: {lines[0]!r}")
        # --quiet: no waiting line, the same failure.
        cp, took = timed(["save", store, "vm2", img, "--lock-wait", "1", "--quiet"],
                         expect=c.EXIT_FAILED)
        line = c.check_error_message(cp, "save 'vm2'", f"PID {holder.pid}", "(save 'vm1')",
                                     what="--quiet")
        c.check(WAITING not in line, f"--quiet printed the waiting line: {line!r}")
        c.check(0.9 <= took < 3, f"--lock-wait 1 --quiet gave up after {took:.2f} s")
        # --lock-wait 0: at once, no waiting line.
        cp, took = timed(["save", store, "vm2", img, "--lock-wait", "0"], expect=c.EXIT_FAILED)
        line = c.check_error_message(cp, "save 'vm2'", f"PID {holder.pid}", "--lock-wait 0",
                                     what="--lock-wait 0")
        c.check(took < 0.8, f"--lock-wait 0 took {took:.2f} s")
        # Every writing command takes --lock-wait and names the holder.
        # The lines name the command, its snapshots and the store.
        for args, doing in ((["rm", store, "base"], f"rm 'base' from '{store}'"),
                            (["rm", store, "base", "x", "y"], f"rm 3 snapshots from '{store}'"),
                            (["rename", store, "base", "x"], f"rename 'base' in '{store}'"),
                            (["prune", store, "--keep-last", "1"], f"prune '{store}'"),
                            (["gc", store], f"gc '{store}'"),
                            (["workingset", store, "base", "--clear"],
                             f"workingset 'base' in '{store}'")):
            cp, took = timed([*args, "--lock-wait", "1"], expect=c.EXIT_FAILED)
            lines = c.stderr_text(cp).splitlines()
            c.check_eq(len(lines), 2, f"{args[0]}: waiting line and failure: {lines!r}")
            c.check_eq(lines[0], f"snapfs: {doing}: {WAITING} PID {holder.pid} (save 'vm1')...",
                       f"{args[0]}: waiting line")
            c.check(lines[1].startswith(f"snapfs: {doing}: ") and f"PID {holder.pid}" in lines[1],
                    f"{args[0]}: failure line: {lines[1]!r}")
            c.check(0.9 <= took < 3, f"{args[0]} --lock-wait 1 gave up after {took:.2f} s")
        # The default is 5 s.
        cp, took = timed(["rm", store, "base"], expect=c.EXIT_FAILED)
        c.check(4.8 <= took < 8, f"the default wait took {took:.2f} s, not 5")
        c.check("gave up after 5" in c.stderr_text(cp), f"default: {c.stderr_text(cp)!r}")
        # A writer that waits long enough gets the lock once the holder is done.
        waiter = subprocess.Popen([c.SNAPFS, "save", str(store), "vm2", str(img),
                                   "--lock-wait", "60"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        c.check(WAITING in waiter.stderr.readline(), "the waiter's waiting line")
        time.sleep(0.3)
        c.check(waiter.poll() is None, "the waiter must still wait while the holder is stopped")
    finally:
        finish(holder)
    out, err = waiter.communicate(timeout=120)
    c.check_eq(waiter.returncode, 0, f"the waiter after the holder finished: {err!r}")
    c.check_eq(c.snapshot_names(store), ["base", "vm1", "vm2"], "both saves")
    c.check_eq((store / "lock-holder").read_text(), "", "lock-holder after the writers left")
    c.snapfs("verify", store)


def case_sqlite_shell_holder(ctx):
    # A holder that is not snapfs: the sqlite3 shell in BEGIN IMMEDIATE.
    store = ctx.store()
    img = small_image(ctx)
    c.snapfs("save", store, "a", img)
    before = c.store_state(store)
    shell = ctx.track(subprocess.Popen([c.SQLITE3, str(store / "snapfs.db")],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                       stderr=subprocess.PIPE, text=True))
    shell.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n")
    shell.stdin.flush()
    c.check_eq(shell.stdout.readline(), "locked\n", "the sqlite3 shell took the lock")
    try:
        # A stale line from a process that is gone names nobody.
        (store / "lock-holder").write_text("999999999 save 'ghost'\n")
        cp, took = timed(["save", store, "b", img, "--lock-wait", "1"], expect=c.EXIT_FAILED)
        lines = c.stderr_text(cp).splitlines()
        c.check_eq(lines[0], f"snapfs: save 'b' into '{store}': {WAITING} another process...", "waiting line")
        c.check(len(lines) == 2 and "another process" in lines[1] and "ghost" not in lines[1],
                f"failure line: {lines!r}")
        # SIGINT while waiting: stops at once, exit 130.
        p = subprocess.Popen([c.SNAPFS, "rm", str(store), "a", "--lock-wait", "60"],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
        c.check(WAITING in p.stderr.readline(), "rm's waiting line")
        t0 = time.monotonic()
        p.send_signal(signal.SIGINT)
        p.wait(timeout=30)
        c.check_eq(p.returncode, 130, "exit status of a wait stopped by SIGINT")
        c.check(time.monotonic() - t0 < 2, "SIGINT must stop the wait at once")
    finally:
        shell.stdin.write("ROLLBACK;\n.quit\n")
        shell.stdin.flush()
        shell.wait(timeout=30)
    c.check_state_unchanged(store, before, "after the refused writers")
    c.snapfs("save", store, "b", img, "--lock-wait", "0")


def case_lock_wait_errors(ctx):
    store = ctx.store()
    img = small_image(ctx)
    before = c.store_state(store)
    for cmd in (["save", store, "a", img], ["rm", store, "a"], ["gc", store],
                ["rename", store, "a", "b"], ["prune", store, "--keep-last", "1"],
                ["workingset", store, "a", "--clear"]):
        for bad in ("-1", "x", "1.5", "", "1000001"):
            c.expect_error([*cmd, "--lock-wait", bad], c.EXIT_USAGE, "--lock-wait", f"'{bad}'",
                           what=f"{cmd[0]} --lock-wait {bad!r}")
        out = c.snapfs(cmd[0], "--help").stdout
        c.check("--lock-wait" in out, f"{cmd[0]} --help lacks --lock-wait: {out!r}")
    for cmd in (["list", store], ["info", store], ["verify", store]):
        c.expect_error([*cmd, "--lock-wait", "1"], c.EXIT_USAGE, "--lock-wait",
                       what=f"{cmd[0]} takes no --lock-wait")
    c.check_state_unchanged(store, before, "after refused --lock-wait values")


if __name__ == "__main__":
    c.main()
