#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An interrupted save gives its space back at once, mounted or not
(issue 15, point 6).

With the store mounted and a snapshot's memory file held open (so SQLite
cannot delete the WAL when the save's connection closes):
- a save that completes leaves no WAL behind (snapfs.db-wal: 0 bytes);
- a reader that keeps a read transaction open (python's sqlite3, BEGIN
  and a SELECT) keeps the WAL: the save's checkpoint cannot truncate it
  and does not wait (measured and logged: this is the documented limit);
- then, that reader gone, a save killed with SIGINT and one killed with
  SIGTERM while they append to the pack (the pack file grown past its
  committed length is what the test waits for) exit 130 / 143, list no
  snapshot, cut the pack back to its committed length and leave the WAL
  at 0 bytes;
- the same without the mount.
The held-open file reads its bytes right all along; verify is clean.
"""
import os
import signal
import sqlite3
import subprocess
import time

from mountlib import (SNAPFS, Mount, check, log, main, make_image, snapfs,
                      wait_for)

BIG_MIB = 192


def wal_bytes(store):
    try:
        return os.path.getsize(os.path.join(store, "snapfs.db-wal"))
    except FileNotFoundError:
        return 0


def packs(store):
    """{pack file: (size on disk, committed length)}: every file in packs/,
    0 committed for a file no row names yet."""
    con = sqlite3.connect(f"file:{store}/snapfs.db?mode=ro", uri=True)
    try:
        rows = dict(con.execute("SELECT id, length FROM packs"))
    finally:
        con.close()
    out = {}
    d = os.path.join(store, "packs")
    for name in sorted(os.listdir(d)):
        path = os.path.join(d, name)
        try:
            out[path] = (os.path.getsize(path), rows.get(int(name.split(".")[0]), 0))
        except FileNotFoundError:
            pass
    return out


def grown(store):
    return any(size > length for size, length in packs(store).values())


def big_image(path):
    with open(path, "wb") as f:
        for _ in range(BIG_MIB):
            f.write(os.urandom(1 << 20))


def interrupted_save(store, img, name, sig):
    """Start a save of a new image (nothing to share with what is
    stored), wait until it has appended to a pack, send sig."""
    big_image(img)
    p = subprocess.Popen([SNAPFS, "save", store, name, img, "--quiet"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    try:
        check(wait_for(lambda: grown(store) or p.poll() is not None, 120, 0.01),
              "the save did not append to a pack")
        check(p.poll() is None, f"the save ended before the signal: {p.returncode}")
        peak = wal_bytes(store)
        t0 = time.monotonic()
        p.send_signal(sig)
        out, err = p.communicate(timeout=60)
        took = time.monotonic() - t0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    want = 128 + sig
    check(p.returncode == want, f"save stopped by {sig.name}: exit {p.returncode}, "
                                f"expected {want}; stderr {err!r}")
    check(err.startswith(f"snapfs: save '{name}' into '{store}': ") and "interrupted" in err,
          f"message after {sig.name}: {err!r}")
    log(f"{sig.name}: stopped in {took:.2f} s; WAL {peak} bytes at the signal, "
        f"{wal_bytes(store)} after; packs {packs(store)}")
    check(wal_bytes(store) == 0, f"WAL left after {sig.name}: {wal_bytes(store)} bytes")
    for path, (size, length) in packs(store).items():
        check(size == length, f"{path}: {size} bytes after {sig.name}, committed {length}: "
                              "the tail was not cut")
    names = [s["name"] for s in __import__("json").loads(snapfs("list", store, "--json").stdout)]
    check(name not in names, f"an interrupted save is listed: {names}")


def test(work):
    store = os.path.join(work, "store")
    mnt = os.path.join(work, "mnt")
    small = os.path.join(work, "small.img")
    big = os.path.join(work, "big.img")
    snapfs("init", store)
    want = make_image(small, 256, seed=15)
    snapfs("save", store, "small", small, "--quiet")
    big_image(big)

    with Mount(store, mnt) as m:
        held = open(os.path.join(mnt, "small", "memory"), "rb")
        try:
            check(held.read() == want, "the held-open file's bytes")
            # A save that completes: no WAL left though the mount is open.
            snapfs("save", store, "done", small, "--quiet", "--codec", "none")
            check(wal_bytes(store) == 0,
                  f"WAL after a save while mounted: {wal_bytes(store)} bytes")

            # A reader on an older snapshot keeps the WAL (and the save
            # does not wait for it).
            con = sqlite3.connect(f"file:{store}/snapfs.db?mode=ro", uri=True,
                                  isolation_level=None)
            con.execute("BEGIN")
            con.execute("SELECT count(*) FROM snapshots").fetchall()
            t0 = time.monotonic()
            snapfs("save", store, "while-read", big, "--quiet")
            took = time.monotonic() - t0
            kept = wal_bytes(store)
            log(f"a reader in a read transaction during a {BIG_MIB} MiB save: WAL "
                f"{kept} bytes left (save took {took:.2f} s)")
            check(kept > 0, "the WAL was cut under an open read transaction?")
            con.execute("COMMIT")
            con.close()

            # Interrupted saves: the WAL and the pack tail go at once.
            interrupted_save(store, big, "cut-int", signal.SIGINT)
            interrupted_save(store, big, "cut-term", signal.SIGTERM)
            held.seek(0)
            check(held.read() == want, "the held-open file after the interrupted saves")
        finally:
            held.close()
        m.unmount()

    # Not mounted: the same.
    interrupted_save(store, big, "cut-unmounted", signal.SIGINT)
    snapfs("verify", store)


if __name__ == "__main__":
    main(test)
