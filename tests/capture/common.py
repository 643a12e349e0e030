# SPDX-License-Identifier: MIT
"""Shared helpers of the capture tests.

The snapfs binary comes as the first argument (meson passes snapfs_exe) or
in $SNAPFS. Each test script defines case_*(ctx) functions and ends with
common.main(); every case gets a temporary directory of its own (removed
afterwards) and may raise Skip when a tool it needs is missing. Exit
status: 0 all passed, 1 something failed, 77 (meson's "skipped") when every
case skipped.

Reading a snapshot's memory: its file is as large as the address space
(~128 TiB for a process), more than ext4 allows (16 TiB). read_memory()
restores into the case directory when the file system takes the size,
checks the clean refusal when it does not, and then reads through a real
mount (snapfs mount + pread + fusermount3 -u).
"""

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

PAGE = 4096

SNAPFS = (sys.argv[1] if len(sys.argv) > 1 and not sys.argv[1].startswith("case_")
          else os.environ.get("SNAPFS")
          or str(Path(__file__).resolve().parents[2] / "build" / "src" / "cli" / "snapfs"))
TMPROOT = os.environ.get("SNAPFS_TEST_TMPDIR") or (
    "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir())
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:")


class Skip(Exception):
    """Raised by a case that cannot run here (the message says why)."""


class Failed(Exception):
    pass


def check(cond, what):
    if not cond:
        raise Failed(what)


def pattern(length, seed):
    """Bytes no page of which is zero and none equal to another's."""
    out = bytearray(length)
    for i in range(0, length, 8):
        v = (i * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 1) & (2**64 - 1)
        out[i:i + 8] = v.to_bytes(8, "little")[: min(8, length - i)]
    return bytes(out)


def run(args, expect=0, env=None, timeout=300, input=None):
    """Run a command; check its exit status (None: any) and that no
    sanitizer spoke. Returns the CompletedProcess."""
    print("+", " ".join(str(a) for a in args), flush=True)
    p = subprocess.run([str(a) for a in args], capture_output=True, text=True,
                       env=env, timeout=timeout, input=input)
    if p.stdout.strip():
        print(p.stdout.rstrip()[-3000:])
    if p.stderr.strip():
        print(p.stderr.rstrip()[-3000:])
    for mark in SANITIZER_MARKS:
        check(mark not in p.stderr, f"sanitizer report from {args[0]}")
    if expect is not None:
        check(p.returncode == expect,
              f"{' '.join(str(a) for a in args)}: exit {p.returncode}, wanted {expect}")
    return p


def snapfs(*args, expect=0, **kw):
    return run([SNAPFS, *args], expect=expect, **kw)


def query(store, sql, params=()):
    """Rows of a read-only query on STORE/snapfs.db."""
    db = sqlite3.connect(f"file:{store}/snapfs.db?mode=ro", uri=True)
    try:
        return db.execute(sql, params).fetchall()
    finally:
        db.close()


def sqlite3_shell(store, sql):
    """The output of the sqlite3 shell (read-only) running sql on
    STORE/snapfs.db: what a user would type."""
    shell = shutil.which("sqlite3")
    if not shell:
        raise Skip("the sqlite3 shell is not installed")
    return run([shell, "-readonly", f"{store}/snapfs.db", sql]).stdout


def segments(store, name):
    return query(store, "SELECT g.start, g.end, g.kind, g.memcg_id, g.committed, g.label "
                 "FROM segments g JOIN snapshots s ON s.id = g.snapshot_id "
                 "WHERE s.name = ? ORDER BY g.start", (name,))


def snapshot_row(store, name):
    rows = query(store, "SELECT file_size, format, source, notes FROM snapshots "
                 "WHERE name = ?", (name,))
    check(len(rows) == 1, f"snapshot {name} is not in the store")
    return dict(zip(("file_size", "format", "source", "notes"), rows[0]))


def fuse_usable():
    return os.path.exists("/dev/fuse") and shutil.which("fusermount3") is not None


def leftovers(directory):
    return [n for n in os.listdir(directory) if ".snapfs-" in n]


class Mount:
    """snapfs mount STORE MNT in the foreground process's background."""

    def __init__(self, store, mnt):
        self.store, self.mnt = store, mnt
        os.makedirs(mnt, exist_ok=True)
        snapfs("mount", store, mnt)
        for _ in range(100):
            if os.path.ismount(mnt):
                return
            time.sleep(0.05)
        raise Failed(f"{mnt}: not mounted")

    def read(self, name, offset, length):
        fd = os.open(os.path.join(self.mnt, name, "memory"), os.O_RDONLY)
        try:
            return os.pread(fd, length, offset)
        finally:
            os.close(fd)

    def close(self):
        for _ in range(50):
            if subprocess.run(["fusermount3", "-u", self.mnt]).returncode == 0:
                return
            time.sleep(0.1)
        raise Failed(f"{self.mnt}: could not unmount")


def read_memory(ctx, store, name, ranges):
    """The bytes of snapshot name at each (offset, length) of ranges, read
    from a restored file where the file system takes its size, and through
    a mount (when FUSE is here); both must agree. A refused restore must
    be the clean "file too large" error with nothing left behind."""
    size = snapshot_row(store, name)["file_size"]
    out = ctx.dir / f"{name}.mem"
    p = snapfs("restore", store, name, out, expect=None)
    results = []
    if p.returncode == 0:
        check(os.path.getsize(out) == size, "restored file has the wrong size")
        with open(out, "rb") as f:
            results = [os.pread(f.fileno(), n, off) for off, n in ranges]
        os.unlink(out)
    else:
        want = (f"snapfs: restore '{name}' from '{store}': output '{out}': cannot make a file of "
                f"{size} bytes: file too large")
        check(p.returncode == 1 and p.stderr.strip() == want,
              f"restore refused, but not as wanted: {p.stderr.strip()!r}")
        check(not out.exists() and not leftovers(ctx.dir), "a refused restore left files")
    if fuse_usable():
        m = Mount(store, ctx.dir / "mnt")
        try:
            via_mount = [m.read(name, off, n) for off, n in ranges]
        finally:
            m.close()
        if results:
            check(results == via_mount, "restore and mount disagree")
        results = via_mount
    if not results:
        raise Skip("the restore is too large for this file system and FUSE is missing")
    return results


def start_holder(extra_code="", threads=0):
    """A python3 process holding a bytearray of a known pattern; returns
    (process, address, pattern). It prints 'ADDR LEN' and then answers
    every line on its standard input with 'alive N'."""
    code = f"""
import ctypes, sys, threading, time
{extra_code}
def pat(length, seed):
    out = bytearray(length)
    for i in range(0, length, 8):
        v = (i * 0x9E3779B97F4A7C15 + seed * 0xBF58476D1CE4E5B9 + 1) & (2**64 - 1)
        out[i:i + 8] = v.to_bytes(8, "little")[: min(8, length - i)]
    return out
buf = pat(5 * 4096 + 123, 7)
addr = ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))
def spin():
    while True:
        time.sleep(0.01)
for _ in range({threads}):
    threading.Thread(target=spin, daemon=True).start()
print(hex(addr), len(buf), flush=True)
n = 0
for line in sys.stdin:
    n += 1
    print("alive", n, flush=True)
"""
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    addr, length = proc.stdout.readline().split()
    return proc, int(addr, 16), pattern(int(length), 7)


def ping(proc):
    """The holder answers: it runs and is not stopped."""
    proc.stdin.write("ping\n")
    proc.stdin.flush()
    line = proc.stdout.readline()
    check(line.startswith("alive"), f"the process did not answer: {line!r}")


def proc_state(pid):
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0]


def thread_states(pid):
    states = []
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                states.append(f.read().rsplit(")", 1)[1].split()[0])
        except FileNotFoundError:
            pass
    return states


def stop_holder(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait()


class Ctx:
    def __init__(self, directory):
        self.dir = Path(directory)
        self.n = 0

    def store(self):
        self.n += 1
        path = self.dir / f"store{self.n}"
        snapfs("init", path)
        return path


def main():
    cases = {k: v for k, v in sys.modules["__main__"].__dict__.items()
             if k.startswith("case_") and callable(v)}
    wanted = [a for a in sys.argv[1:] if a.startswith("case_")] or sorted(cases)
    passed = failed = skipped = 0
    for name in wanted:
        directory = tempfile.mkdtemp(prefix=f"snapfs-capture-{name}-", dir=TMPROOT)
        print(f"=== {name}", flush=True)
        try:
            cases[name](Ctx(directory))
            passed += 1
            print(f"--- {name}: ok", flush=True)
        except Skip as e:
            skipped += 1
            print(f"--- {name}: skipped: {e}", flush=True)
        except Exception:
            failed += 1
            traceback.print_exc()
            print(f"--- {name}: FAILED", flush=True)
        finally:
            mnt = Path(directory) / "mnt"
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)])
            shutil.rmtree(directory, ignore_errors=True)
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
    sys.exit(0)
