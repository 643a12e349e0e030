#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Sources that are not memory images: a FIFO with no writer, a socket, a
character device, files of procfs whose size (0) says nothing about what
they read. Each is refused at once (well under a second, no blocking
open), with exit 1, one line naming the source and what it is, and the
store unchanged. A 0-byte regular file is a valid, empty memory file."""

import os
import socket
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402


def store_with_one(ctx):
    img = c.standard_image(ctx.path("keep.img"), seed=5)
    store = ctx.store()
    c.snapfs("save", store, "keep", img.path, "--quiet")
    return store


def refused(ctx, store, source, *mentions, fmt=None, code=c.EXIT_FAILED):
    before = c.store_state(store)
    args = ["save", store, "x", source] + (["--format", fmt] if fmt else [])
    t0 = time.monotonic()
    c.expect_error(args, code, str(source), *mentions, timeout=20)
    took = time.monotonic() - t0
    c.check(took < 2.0, f"save of {source} took {took:.2f} s: it must not block")
    c.check_state_unchanged(store, before, f"save of {source}")


def case_fifo_without_writer(ctx):
    store = store_with_one(ctx)
    fifo = ctx.path("fifo")
    os.mkfifo(fifo)
    refused(ctx, store, fifo, "FIFO")
    # Named as raw and as elf: the same, no blocking open.
    refused(ctx, store, fifo, "FIFO", fmt="raw")
    refused(ctx, store, fifo, "FIFO", fmt="elf", code=(c.EXIT_FAILED, c.EXIT_USAGE))


def case_fifo_with_writer(ctx):
    # A writer that keeps the FIFO open: still refused, not read.
    store = store_with_one(ctx)
    fifo = ctx.path("fifo")
    os.mkfifo(fifo)
    writer = ctx.track(c.subprocess.Popen(["sh", "-c", f'exec 3>"{fifo}"; sleep 30']))
    time.sleep(0.2)
    refused(ctx, store, fifo, "FIFO")
    writer.kill()
    writer.wait()


def case_socket(ctx):
    store = store_with_one(ctx)
    path = ctx.path("sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    s.listen(1)
    try:
        refused(ctx, store, path, "socket")
    finally:
        s.close()


def case_character_devices(ctx):
    # /dev/zero would read forever, /dev/null reads nothing: both refused
    # (a character device has no size to be a memory file of).
    store = store_with_one(ctx)
    for dev in ("/dev/zero", "/dev/null", "/dev/urandom"):
        refused(ctx, store, dev, "character device")


def case_procfs(ctx):
    # Size 0 in stat, yet data (status) or EIO (mem at 0): never an empty
    # snapshot with success.
    store = store_with_one(ctx)
    for p in ("/proc/self/mem", "/proc/self/status", "/proc/self/maps"):
        refused(ctx, store, p, "procfs", "pid:N")
    c.check("x" not in c.snapshot_names(store), "a procfs source left a snapshot")


def case_procfs_in_criu_dir(ctx):
    # A CRIU directory whose pagemap image is a procfs file (a symlink):
    # refused, not read as empty.
    store = store_with_one(ctx)
    d = ctx.path("dump")
    d.mkdir()
    os.symlink("/proc/self/status", d / "pagemap-1.img")
    before = c.store_state(store)
    cp = c.snapfs("save", store, "x", d, expect=(c.EXIT_FAILED, c.EXIT_USAGE), timeout=20)
    c.check_error_message(cp, "pagemap-1.img", "procfs")
    c.check_state_unchanged(store, before, "save of a CRIU dir with a procfs image")


def case_empty_regular_file(ctx):
    # A 0-byte file on a real file system is an empty memory file: saved,
    # restored as 0 bytes.
    store = ctx.store()
    empty = ctx.path("empty")
    empty.write_bytes(b"")
    c.snapfs("save", store, "e", empty, "--quiet")
    out = ctx.path("e.out")
    c.snapfs("restore", store, "e", out, "--quiet")
    c.check_eq(out.stat().st_size, 0, "restored size of an empty source")


if __name__ == "__main__":
    c.main()
