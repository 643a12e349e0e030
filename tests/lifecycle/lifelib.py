# SPDX-License-Identifier: MIT
"""Helpers shared by the lifecycle tests (diff, gc, verify, crashes): the
e2e helpers (tests/e2e/common.py) plus image pairs with known changes,
page-by-page expectations, and a real mount for the cases that read while
the store changes."""

import os
import random
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
import common  # noqa: E402
from common import PAGE, MIB, check, check_eq, fail, log, run, snapfs, sql, sql_value  # noqa: E402,F401


def write_pages(path, size, pages):
    """A sparse file of size bytes holding pages {page number: bytes}."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, size)
        for p, data in pages.items():
            os.pwrite(fd, data, p * PAGE)
    finally:
        os.close(fd)


def make_page(rng, kind):
    if kind == "random":
        return rng.randbytes(PAGE)
    if kind == "zero":
        return bytes(PAGE)
    words = [b"kernel", b"heap", b"0xdeadbeef", b"stack", b"page", b"snapfs"]
    text = b" ".join(rng.choice(words) for _ in range(900))
    return text[:PAGE].ljust(PAGE, b".")


def random_pages(rng, total_pages, fill, extents=True):
    """{page: bytes} for about fill * total_pages pages, in extents of
    1..64 pages (as memory is laid out) or scattered."""
    pages = {}
    want = int(total_pages * fill)
    while len(pages) < want:
        start = rng.randrange(total_pages)
        length = rng.randint(1, 64) if extents else 1
        for p in range(start, min(start + length, total_pages)):
            pages[p] = make_page(rng, rng.choice(("random", "text", "text", "zero")))
    return pages


def mutate(rng, pages, total_pages, fraction):
    """A copy of pages where fraction of the non-zero pages changed, and a
    few pages were added, removed or zeroed."""
    out = dict(pages)
    data = [p for p, d in pages.items() if any(d)]
    for p in rng.sample(data, int(len(data) * fraction)):
        out[p] = make_page(rng, "random")
    for _ in range(max(1, int(len(data) * fraction / 4))):
        p = rng.randrange(total_pages)
        if p in out and rng.random() < 0.5:
            if rng.random() < 0.5:
                del out[p]
            else:
                out[p] = bytes(PAGE)
        else:
            out[p] = make_page(rng, "text")
    return out


def expected_diff(a_pages, b_pages, size):
    """What snapfs diff must print: [(start, end, status)] byte ranges."""
    def data(pages, p):
        d = pages.get(p)
        return d if d is not None and any(d) else None

    ranges = []
    for p in sorted(set(a_pages) | set(b_pages)):
        a, b = data(a_pages, p), data(b_pages, p)
        if a is None and b is None:
            continue
        if a is None:
            status = "added"
        elif b is None:
            status = "removed"
        elif a != b:
            status = "changed"
        else:
            continue
        start, end = p * PAGE, min((p + 1) * PAGE, size)
        if ranges and ranges[-1][1] == start and ranges[-1][2] == status:
            ranges[-1] = (ranges[-1][0], end, status)
        else:
            ranges.append((start, end, status))
    return ranges


def parse_diff(text):
    out = []
    for line in text.splitlines():
        s, e, status = line.split()
        check(s.startswith("0x") and e.startswith("0x"), f"diff offsets must be 0x hex: {line!r}")
        out.append((int(s, 16), int(e, 16), status))
    return out


def restore_equals(store, name, expected_path, tmpdir):
    out = Path(tmpdir) / f"restore-{name}-{time.monotonic_ns()}"
    snapfs("restore", store, name, out, "--quiet")
    try:
        common.cmp_files(out, expected_path)  # fails the case if they differ
        return True
    finally:
        out.unlink()


class Mount:
    """snapfs mount STORE MNT -f in the background, unmounted on exit."""

    def __init__(self, store, mnt):
        self.store, self.mnt = Path(store), Path(mnt)

    def __enter__(self):
        self.mnt.mkdir(exist_ok=True)
        self.proc = subprocess.Popen([common.SNAPFS, "mount", str(self.store), str(self.mnt), "-f"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(200):
            if os.path.ismount(self.mnt):
                return self
            if self.proc.poll() is not None:
                fail(f"snapfs mount exited {self.proc.returncode}: {self.proc.stderr.read()}")
            time.sleep(0.05)
        fail("mount did not appear within 10 s")

    def __exit__(self, *exc):
        subprocess.run(["fusermount3", "-u", str(self.mnt)], capture_output=True)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            subprocess.run(["fusermount3", "-uz", str(self.mnt)], capture_output=True)
