#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""SIGKILL during a save, at random moments: afterwards the database passes
PRAGMA integrity_check, no partial snapshot is listed or left in any table,
the earlier snapshot restores byte-identical, and a later save of the same
name works. The random delays come from a seeded generator (the seed is
printed; set SNAPFS_KILL_SEED to repeat a run)."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB, PAGE  # noqa: E402

ROUNDS = 8
BIG = 200 * MIB


def make_big(path, seed):
    """~200 MiB of random-ish data: random chunks, text chunks, zero
    chunks, holes; few pages repeat."""
    rng = random.Random(seed)
    corpus = c.text_corpus()
    with open(path, "wb") as f:
        f.truncate(BIG + 8 * MIB)
        off = 0
        i = 0
        while off < BIG:
            kind = i % 8
            if kind in (0, 1, 2, 4, 5):
                chunk = rng.randbytes(MIB)
            elif kind in (3, 6):
                start = rng.randrange(0, len(corpus) - MIB)
                chunk = bytearray(corpus[start:start + MIB])
                for p in range(0, MIB, PAGE):  # make every page unique
                    chunk[p:p + 16] = rng.randbytes(16)
                chunk = bytes(chunk)
            else:
                chunk = None  # a hole
            if chunk is not None:
                f.seek(off)
                f.write(chunk)
            off += MIB
            i += 1
        os.fsync(f.fileno())


def check_store(store, base_img, big, ctx, rnd):
    """After a kill: a sound database, 'base' intact, and 'victim' either
    absent without a trace or (when the kill came after the commit) whole.
    Returns True if 'victim' was there (it is removed again)."""
    # snapfs first, before the sqlite3 shell recovers the WAL.
    names = c.snapshot_names(store)
    c.check(names in (["base"], ["base", "victim"]),
            f"round {rnd}: snapshots listed after the kill: {names}")
    c.integrity_ok(store)
    rows = c.sql(store, "SELECT name FROM snapshots ORDER BY name")
    c.check_eq([r["name"] for r in rows], names, f"round {rnd}: rows in snapshots vs list")
    orphans = c.sql(store, """
        SELECT (SELECT count(*) FROM segments WHERE snapshot_id NOT IN (SELECT id FROM snapshots)) AS segs,
               (SELECT count(*) FROM page_map WHERE snapshot_id NOT IN (SELECT id FROM snapshots)) AS runs""")
    c.check_eq(orphans, [{"segs": 0, "runs": 0}], f"round {rnd}: rows of a partial snapshot")
    out = ctx.path("base.out")
    if out.exists():
        out.unlink()
    c.snapfs("restore", store, "base", out)
    c.cmp_files(base_img, out)
    if "victim" not in names:
        return False
    # Committed before the signal: it must be complete.
    out = ctx.path("victim.out")
    c.snapfs("restore", store, "victim", out)
    c.compare_sparse(big, out)
    out.unlink()
    c.snapfs("rm", store, "victim")
    return True


def case_sigkill_during_save(ctx):
    seed = int(os.environ.get("SNAPFS_KILL_SEED") or time.time_ns() % 1_000_000)
    c.log(f"seed {seed} (SNAPFS_KILL_SEED={seed} repeats this run)")
    rng = random.Random(seed)

    base = c.standard_image(ctx.path("base.img"), seed=71, end_in_data=True)
    big = ctx.path("big.img")
    make_big(big, seed=72)
    store = ctx.store()
    c.snapfs("save", store, "base", base.path)

    # How long a full save takes here, measured in a scratch store so that
    # the real store does not already hold the pages.
    # The faster of two runs, so that a cold first run does not push the
    # kills past the end of the saves.
    duration = None
    for i in range(2):
        scratch = ctx.store(f"scratch{i}")
        t0 = time.monotonic()
        c.snapfs("save", scratch, "calibrate", big, "--quiet")
        t = time.monotonic() - t0
        duration = t if duration is None else min(duration, t)
        c.run(["rm", "-rf", scratch], expect=0)
    c.log(f"a full save of {BIG // MIB} MiB takes {duration:.2f} s here")

    completed = 0
    for rnd in range(1, ROUNDS + 1):
        # Spread the kills over the whole save, from its start to its end.
        lo = (rnd - 1) / ROUNDS
        hi = rnd / ROUNDS
        delay = max(0.005, duration * rng.uniform(lo, hi) * 0.9)
        c.log(f"\nround {rnd}: SIGKILL after {delay:.3f} s")
        p = ctx.track(subprocess.Popen([c.SNAPFS, "save", store, "victim", big, "--quiet"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                       stderr=subprocess.PIPE))
        try:
            p.wait(timeout=delay)
            finished = True
        except subprocess.TimeoutExpired:
            p.send_signal(signal.SIGKILL)
            p.wait()
            # It may have ended on its own just before the signal.
            finished = p.returncode != -signal.SIGKILL
        err = p.stderr.read().decode("utf-8", "replace")
        p.stderr.close()
        if finished:
            # The save ended before the signal: it must be whole.
            completed += 1
            c.log(f"round {rnd}: the save finished first (exit {p.returncode}) {err!r}")
            c.check_eq(p.returncode, 0, f"round {rnd}: exit of the save that finished")
            c.check(check_store(store, base.path, big, ctx, rnd),
                    f"round {rnd}: the save exited 0 but 'victim' is not listed")
        else:
            c.check_eq(p.returncode, -signal.SIGKILL, f"round {rnd}: the save was killed")
            if check_store(store, base.path, big, ctx, rnd):
                c.log(f"round {rnd}: killed after its commit; the snapshot is whole")
                completed += 1
    midway = ROUNDS - completed
    c.log(f"{midway} of {ROUNDS} saves killed before their commit")
    c.check(midway >= 3,
            f"only {midway} of {ROUNDS} kills landed before the commit: the test did not "
            "exercise interrupted saves")

    c.snapfs("save", store, "victim", big)
    out = ctx.path("victim.out")
    c.snapfs("restore", store, "victim", out)
    c.cmp_files(big, out)
    c.integrity_ok(store)
    c.check_eq(c.snapshot_names(store), ["base", "victim"], "snapshots after the final save")


if __name__ == "__main__":
    c.main()
