#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""One database for the life of a mount.

Two stores hold a snapshot of the same name, size and layout (so the same
ids, the same page map shape) with different bytes. While a reader reads
the first store's memory file through a live mount, another store's
snapfs.db is moved over the mounted one with `mv`. Then, and again with
the store directory itself moved away and replaced by another store:

- no read ever returns a byte of the other store: each read is either the
  mounted store's exact bytes or fails with EIO;
- within about a second every read fails with EIO (kernel cache dropped,
  a new open too), and the daemon logs why, once ("moved or replaced");
- the daemon keeps running and unmounts cleanly.
"""
import errno
import os
import shutil
import threading
import time

from mountlib import (PAGE, Mount, check, drop_cache, log, main, make_image,
                      save, snapfs)

PAGES = 4096          # 16 MiB
CHUNK = 64 * 1024


def make_store(work, name, seed):
    store = os.path.join(work, name)
    snapfs("init", store)
    img = os.path.join(work, name + ".img")
    data = make_image(img, PAGES, seed)
    save(store, "m", img)
    return store, data


class Reader(threading.Thread):
    """Reads the file over and over, from a file opened once and from
    fresh opens, checking every byte; counts good reads and EIO."""

    def __init__(self, path, want, other):
        super().__init__(daemon=True)
        self.path, self.want, self.other = path, want, other
        self.stop = threading.Event()
        self.good = self.eio = 0
        self.wrong = []
        self.last_good = 0.0

    def check_chunk(self, off, got):
        if got == self.want[off:off + len(got)]:
            self.good += 1
            self.last_good = time.monotonic()
        else:
            from_other = got == self.other[off:off + len(got)]
            self.wrong.append((off, "other store's bytes" if from_other else "wrong bytes"))

    def run(self):
        fd = os.open(self.path, os.O_RDONLY)
        try:
            while not self.stop.is_set():
                for off in range(0, len(self.want), CHUNK):
                    if self.stop.is_set():
                        break
                    try:
                        got = os.pread(fd, CHUNK, off)
                    except OSError as e:
                        if e.errno != errno.EIO:
                            self.wrong.append((off, f"errno {e.errno}"))
                        self.eio += 1
                        continue
                    self.check_chunk(off, got)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def all_eio(path, size):
    """Every chunk of a fresh open (kernel cache dropped) fails with EIO."""
    try:
        drop_cache(path)
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        return e.errno == errno.EIO
    try:
        for off in range(0, size, CHUNK * 16):
            try:
                os.pread(fd, CHUNK, off)
                return False
            except OSError as e:
                if e.errno != errno.EIO:
                    return False
        return True
    finally:
        os.close(fd)


def replaced_under_reader(work, label, replace):
    store_a, data_a = make_store(work, f"{label}-a", seed=1)
    store_b, data_b = make_store(work, f"{label}-b", seed=2)
    check(data_a != data_b, "the two stores must differ")
    mnt = os.path.join(work, f"{label}-mnt")
    with Mount(store_a, mnt) as m:
        mem = os.path.join(mnt, "m", "memory")
        reader = Reader(mem, data_a, data_b)
        reader.start()
        time.sleep(0.5)
        check(reader.good > 0 and not reader.wrong,
              f"before the replacement: {reader.good} good reads, {reader.wrong[:3]}")
        replace(store_a, store_b)
        t0 = time.monotonic()
        os.listdir(mnt)
        deadline = t0 + 1.5
        while time.monotonic() < deadline and not all_eio(mem, len(data_a)):
            time.sleep(0.05)
        took = time.monotonic() - t0
        check(all_eio(mem, len(data_a)),
              f"{label}: reads still succeed {took:.1f} s after the replacement")
        time.sleep(0.3)
        reader.stop.set()
        reader.join(30)
        log(f"{label}: every read EIO {took:.2f} s after the replacement; reader: "
            f"{reader.good} good reads, {reader.eio} EIO, {len(reader.wrong)} wrong")
        check(not reader.wrong, f"{label}: a reader got {reader.wrong[:5]}")
        check(reader.eio > 0, f"{label}: the reader never saw EIO")
        check(m.proc.poll() is None, f"{label}: the daemon died")
        m.unmount()
        err = m.stderr()
        lines = [ln for ln in err.splitlines() if "moved or replaced" in ln]
        check(len(lines) == 1, f"{label}: expected one log line about the "
              f"replacement, got {len(lines)}:\n{err}")
        log(f"{label}: daemon said: {lines[0]}")


def mv_database(store_a, store_b):
    snapfs("list", store_b)   # a clean store B: no WAL left beside it
    os.rename(os.path.join(store_b, "snapfs.db"), os.path.join(store_a, "snapfs.db"))


def mv_directory(store_a, store_b):
    os.rename(store_a, store_a + ".moved")
    shutil.copytree(store_b, store_a)


def test(work):
    replaced_under_reader(work, "db", mv_database)
    replaced_under_reader(work, "dir", mv_directory)


if __name__ == "__main__":
    main(test)
