#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Hostile stores: a store handed over by someone else is untrusted input.

Each case builds a store with snapfs, then crafts it with the real sqlite3
shell (planted triggers, a redefined or recursive view, a table replaced
by a view, an extra table or index, a changed or dropped column
constraint, a missing index). Every snapfs command must refuse it before
running any statement of its own: exit 2, one line naming the first
difference, promptly (a recursive view never runs), and snapfs.db
byte-for-byte unchanged (sha256 before and after, no WAL content left).

A store whose schema differs only in comments and spacing is accepted.
And a long legitimate command (verify of a large store, save, gc) stops
within a second of SIGINT / SIGTERM with exit 130 / 143, leaving the
store as it was.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB  # noqa: E402


def good_store(ctx):
    """A store with snapshots a and b (b a child of a)."""
    store = ctx.store()
    img = c.standard_image(ctx.path("a.img"), seed=14)
    c.snapfs("save", store, "a", img.path, "--quiet")
    with open(img.path, "r+b") as f:
        f.seek(5 * 4096)
        f.write(b"changed in b")
    c.snapfs("save", store, "b", img.path, "--parent", "a", "--quiet")
    return store, img


def db_fingerprint(store):
    """snapfs.db's bytes, and what a WAL beside it holds."""
    db = c.db_path(store)
    wal = Path(str(db) + "-wal")
    return (c.sha_file(db), wal.stat().st_size if wal.exists() else 0)


def craft(store, script):
    """Edit the store with the sqlite3 shell (which checkpoints the WAL
    into snapfs.db when it exits)."""
    c.run([c.SQLITE3, "-bail", "-batch", c.db_path(store), script], expect=0)


def commands(store, img, out):
    """Every command that opens a store, with arguments."""
    return [
        ["list", store],
        ["list", store, "--json"],
        ["info", store, "a"],
        ["info", store],
        ["verify", store],
        ["verify", store, "a"],
        ["restore", store, "a", out],
        ["diff", store, "a", "b"],
        ["save", store, "new", img.path, "--quiet"],
        ["rm", store, "b"],
        ["gc", store],
    ]


def refused_everywhere(ctx, script, *mentions):
    """Craft a good store with script; every command refuses it with exit
    2 and a message naming mentions; the database stays as it was."""
    store, img = good_store(ctx)
    craft(store, script)
    before = db_fingerprint(store)
    out = ctx.path("out.mem")
    for args in commands(store, img, out):
        t0 = time.monotonic()
        cp = c.expect_error(args, c.EXIT_USAGE, str(store), "schema", *mentions,
                            what=args[0], timeout=30)
        took = time.monotonic() - t0
        c.check(took < 5, f"{args[0]} took {took:.1f} s to refuse a crafted store")
        c.check(not out.exists(), f"{args[0]} wrote {out}")
        c.check_eq(db_fingerprint(store), before, f"snapfs.db after {args[0]}")
    return store, cp


def case_control_untouched_store_works(ctx):
    # The same commands on the store as snapfs made it all succeed (so the
    # refusals below are caused by the crafting, nothing else).
    store, img = good_store(ctx)
    out = ctx.path("out.mem")
    for args in commands(store, img, out):
        c.snapfs(*args)


def case_trigger_after_insert(ctx):
    refused_everywhere(
        ctx, "CREATE TRIGGER planted_ins AFTER INSERT ON snapshots "
             "BEGIN DELETE FROM page_map; END;",
        "trigger 'planted_ins'", "snapshots")


def case_trigger_after_delete(ctx):
    refused_everywhere(
        ctx, "CREATE TRIGGER planted_del AFTER DELETE ON snapshots "
             "BEGIN INSERT INTO store_info VALUES ('pwned', 1); END;",
        "trigger 'planted_del'", "snapshots")


def case_trigger_on_page_map(ctx):
    refused_everywhere(
        ctx, "CREATE TRIGGER zz BEFORE INSERT ON page_map BEGIN SELECT 1; END;",
        "trigger 'zz'", "page_map")


def case_summary_view_redefined(ctx):
    # The figures verify compares would come from the attacker.
    refused_everywhere(
        ctx, "DROP VIEW snapshot_summary; CREATE VIEW snapshot_summary AS "
             "SELECT name, file_size, segment_count, committed_bytes, data_bytes, "
             "stored_bytes FROM snapshots;",
        "view 'snapshot_summary'", "not defined as expected")


def case_summary_view_recursive(ctx):
    # Used to make verify spin forever: now never run at all.
    refused_everywhere(
        ctx, "DROP VIEW snapshot_summary; CREATE VIEW snapshot_summary AS "
             "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n) "
             "SELECT 'a' AS name, x AS file_size, 0 AS segment_count, "
             "0 AS committed_bytes, 0 AS data_bytes, 0 AS stored_bytes FROM n;",
        "view 'snapshot_summary'")


def case_extra_recursive_view(ctx):
    refused_everywhere(
        ctx, "CREATE VIEW spin AS WITH RECURSIVE n(x) AS "
             "(SELECT 1 UNION ALL SELECT x + 1 FROM n) SELECT x FROM n;",
        "view 'spin' is not part of it")


def case_snapshots_replaced_by_view(ctx):
    refused_everywhere(
        ctx, "PRAGMA foreign_keys = OFF; PRAGMA legacy_alter_table = ON; "
             "ALTER TABLE snapshots RENAME TO real_snapshots; "
             "CREATE VIEW snapshots AS SELECT * FROM real_snapshots;",
        "table 'real_snapshots' is not part of it")


def case_snapshots_dropped_for_view(ctx):
    # The view alone, the table gone: "table 'snapshots' is missing".
    refused_everywhere(
        ctx, "PRAGMA foreign_keys = OFF; CREATE TABLE keep AS SELECT * FROM snapshots; "
             "DROP VIEW snapshot_summary; DROP VIEW kind_usage; DROP VIEW page_runs; "
             "DROP TABLE snapshots; CREATE VIEW snapshots AS SELECT * FROM keep;",
        "table 'keep' is not part of it")


def case_extra_table(ctx):
    refused_everywhere(ctx, "CREATE TABLE extra (x);", "table 'extra' is not part of it")


def case_extra_index(ctx):
    refused_everywhere(ctx, "CREATE INDEX extra_idx ON snapshots(created_at);",
                       "index 'extra_idx' on 'snapshots' is not part of it")


def case_missing_index(ctx):
    refused_everywhere(ctx, "DROP INDEX page_map_by_blob;",
                       "index 'page_map_by_blob' is missing")


def case_added_column(ctx):
    refused_everywhere(ctx, "ALTER TABLE snapshots ADD COLUMN evil TEXT;",
                       "table 'snapshots' is not defined as expected")


def case_changed_column(ctx):
    # A CHECK constraint dropped from a column, through writable_schema.
    refused_everywhere(
        ctx, "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = "
             "replace(sql, 'CHECK (file_size >= 0)', '') WHERE name = 'snapshots';",
        "table 'snapshots' is not defined as expected")


def case_changed_kind_check(ctx):
    refused_everywhere(
        ctx, "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = "
             "replace(sql, '''mapped''', '''mapped'', ''evil''') WHERE name = 'segments';",
        "table 'segments' is not defined as expected")


def case_mount_refuses(ctx):
    # The mount opens the store the same way: refused before mounting.
    store, _ = good_store(ctx)
    craft(store, "CREATE TRIGGER t AFTER INSERT ON blobs BEGIN SELECT 1; END;")
    before = db_fingerprint(store)
    mnt = ctx.path("mnt")
    mnt.mkdir()
    c.expect_error(["mount", store, mnt, "-f"], c.EXIT_USAGE, "trigger 't'", timeout=30)
    c.check_eq(db_fingerprint(store), before, "snapfs.db after mount")


def case_comments_and_spacing_accepted(ctx):
    # Only comments and spacing differ: the same schema, accepted.
    store, img = good_store(ctx)
    craft(store, "PRAGMA writable_schema = ON; UPDATE sqlite_schema SET sql = "
                 "replace(replace(sql, ' AS', '   -- a comment\n  AS'), ',', ' ,  ') "
                 "WHERE name = 'kind_usage';")
    c.check("a comment" in c.sql_value(store, "SELECT sql FROM sqlite_schema "
                                              "WHERE name = 'kind_usage'"),
            "the crafting did not change the text")
    c.snapfs("verify", store)
    c.snapfs("restore", store, "a", ctx.path("a.out"), "--quiet")
    c.check(ctx.path("a.out").stat().st_size > 0, "restore wrote nothing")


# --- interruption ------------------------------------------------------------


def big_store(ctx, mib):
    """A store holding one snapshot of mib MiB of random (incompressible)
    pages, saved uncompressed so that making it is quick."""
    store = ctx.store()
    img = ctx.path("big.img")
    with open(img, "wb") as f:
        for _ in range(mib):
            f.write(os.urandom(MIB))
    c.snapfs("save", store, "big", img, "--codec", "none", "--quiet")
    return store, img


def stop_with(args, sig, delay):
    """Start snapfs args, send sig after delay seconds; (exit status,
    seconds from the signal to the exit, stderr)."""
    p = subprocess.Popen([c.SNAPFS, *map(str, args)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    time.sleep(delay)
    if p.poll() is not None:
        return None, 0.0, p.communicate()[1]
    t0 = time.monotonic()
    p.send_signal(sig)
    try:
        err = p.communicate(timeout=30)[1]
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        c.fail(f"{args[0]} ignored signal {sig} for 30 s")
    return p.returncode, time.monotonic() - t0, err


def case_interrupt_verify(ctx):
    store, _ = big_store(ctx, 384)
    t0 = time.monotonic()
    c.snapfs("verify", store, "--quiet")
    whole = time.monotonic() - t0
    c.log(f"an uninterrupted verify takes {whole:.2f} s")
    before = db_fingerprint(store)
    stopped = 0
    for sig, code in ((signal.SIGTERM, 143), (signal.SIGINT, 130)):
        # Well inside the run: a signal that lands after verify's last
        # check finds the work done (exit 0), which is no interruption.
        for delay in (whole * 0.2, whole * 0.4, whole * 0.6):
            rc, took, err = stop_with(["verify", store], sig, delay)
            if rc is None:
                continue  # finished before the signal: nothing to time
            c.log(f"verify, {sig.name} after {delay:.2f} s: exit {rc} {took:.3f} s later; {err!r}")
            c.check_eq(rc, code, f"exit status of verify stopped by {sig.name}")
            c.check(took < 1.0, f"verify took {took:.2f} s to stop after {sig.name}")
            c.check("interrupted" in err and "problem" not in err,
                    f"verify stopped by {sig.name} must say so, not report damage: {err!r}")
            stopped += 1
    c.check(stopped >= 2, "verify always finished before the signal: store too small")
    c.check_eq(db_fingerprint(store), before, "snapfs.db after interrupted verifies")
    c.snapfs("verify", store, "--quiet")


def case_interrupt_save_and_gc(ctx):
    store, img = big_store(ctx, 160)
    before = c.store_state(store)
    rc, took, err = stop_with(["save", store, "again", img, "--codec", "zstd"],
                              signal.SIGINT, 0.3)
    c.check(rc == 130 and took < 1.0 and "interrupted" in err,
            f"save stopped by SIGINT: exit {rc} after {took:.2f} s: {err!r}")
    c.check_state_unchanged(store, before, "an interrupted save")
    c.snapfs("rm", store, "big")
    rc, took, err = stop_with(["gc", store], signal.SIGTERM, 0.1)
    if rc is not None:
        # A gc past its last cancellation point when the signal lands
        # finishes (exit 0) instead: either way, at once.
        c.check(rc in (143, 0) and took < 1.0,
                f"gc stopped by SIGTERM: exit {rc} after {took:.2f} s")
    c.integrity_ok(store)
    c.snapfs("gc", store, "--quiet")
    c.snapfs("verify", store, "--quiet")


if __name__ == "__main__":
    c.main()
