# SPDX-License-Identifier: MIT
"""Helpers for the mount tests: run the real snapfs binary, make memory
images, mount a store with `snapfs mount`, and always unmount again.

The tests are plain scripts (stdlib only). They exit 0 on success, 1 on
failure (with a diagnostic on stderr), and 77 (meson's "skipped") only when
/dev/fuse is missing and the CI variable is not set.
"""
import errno
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

# Where a blob's bytes live and how to damage them in its pack file: the
# helpers of the e2e tests (tests/e2e/common.py), shared by every folder.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "e2e"))
from common import blob_place, damage_blob, pack_files, pack_path  # noqa: E402,F401

PAGE = 4096
SNAPFS = os.environ.get("SNAPFS", "")
SKIP = 77


class TestFailure(Exception):
    pass


def check(cond, msg):
    """Fail the test with msg unless cond holds."""
    if not cond:
        raise TestFailure(msg)


def log(msg):
    print(msg, flush=True)


def require_fuse():
    """Skip (exit 77) without /dev/fuse, or fail when CI is set."""
    problem = None
    if not SNAPFS or not os.access(SNAPFS, os.X_OK):
        print(f"FAIL: SNAPFS={SNAPFS!r} is not an executable snapfs binary",
              file=sys.stderr)
        sys.exit(1)
    if not os.path.exists("/dev/fuse"):
        problem = "/dev/fuse is missing"
    elif shutil.which("fusermount3") is None:
        problem = "fusermount3 is not installed"
    if problem:
        if os.environ.get("CI"):
            print(f"FAIL: {problem}, and CI is set: mount tests may not skip",
                  file=sys.stderr)
            sys.exit(1)
        print(f"SKIP: {problem}")
        sys.exit(SKIP)


def as_root(what):
    """True when running as root. Parts of a test that need root (setpriv,
    mount(8), remount) run only then: elsewhere they are reported as not
    run, and fail the test when CI is set."""
    if os.geteuid() == 0:
        return True
    check(not os.environ.get("CI"), f"{what} needs root, and CI is set")
    log(f"NOT RUN (needs root): {what}")
    return False


def main(test):
    """Run test(workdir) and turn its outcome into an exit status."""
    require_fuse()
    work = tempfile.mkdtemp(prefix="snapfs-mount-",
                            dir=os.environ.get("SNAPFS_TEST_TMP", "/tmp"))
    os.chmod(work, 0o755)
    ok = False
    try:
        test(work)
        ok = True
    except TestFailure as e:
        print(f"FAIL: {e}", file=sys.stderr)
    except Exception:  # noqa: BLE001 - a crash is a failure with a trace
        traceback.print_exc()
    finally:
        unmount_all_under(work)
        if ok or not os.environ.get("SNAPFS_KEEP_FAILED"):
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}", file=sys.stderr)
    if ok:
        log("PASS")
    sys.exit(0 if ok else 1)


# --- running commands ---------------------------------------------------

def run(argv, expect=0, env=None, stdin=None, timeout=600):
    """Run argv; check its exit status (None: any). Returns CompletedProcess."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       encoding="utf-8", errors="replace", env=env,
                       stdin=stdin, timeout=timeout)
    if expect is not None and p.returncode != expect:
        raise TestFailure(
            f"{' '.join(map(str, argv))}: exit {p.returncode}, expected "
            f"{expect}\n--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
    return p


def snapfs(*args, expect=0, env=None):
    return run([SNAPFS, *map(str, args)], expect=expect, env=env)


def init_store(path):
    snapfs("init", path)
    return path


def save(store, name, source, *opts):
    snapfs("save", store, name, source, "--quiet", *opts)
    return info_json(store, name)


def info_json(store, name):
    return json.loads(snapfs("info", store, name, "--json").stdout)


# --- memory images --------------------------------------------------------

def random_page(rng):
    return rng.randbytes(PAGE)


def text_page(rng):
    words = [b"alpha", b"beta", b"kernel", b"snapshot", b"page", b"/usr/lib",
             b"0xdeadbeef", b"memory", b"\n", b"  "]
    out = bytearray()
    while len(out) < PAGE:
        out += rng.choice(words) + b" "
    return bytes(out[:PAGE])


def sparse_page(rng):
    """A mostly-zero page with a few non-zero bytes (still data)."""
    page = bytearray(PAGE)
    for _ in range(rng.randint(1, 4)):
        page[rng.randrange(PAGE)] = rng.randint(1, 255)
    return bytes(page)


def make_image(path, pages, seed, tail=0, weights=None):
    """Write a memory image of `pages` pages plus `tail` bytes.

    Each page is a hole (never written), an explicit zero page, random,
    text-like or nearly zero. The tail (a last partial page) is random.
    Returns the image's bytes (holes as zeros)."""
    rng = random.Random(seed)
    kinds = ["hole", "zero", "random", "text", "sparse"]
    weights = weights or [3, 2, 3, 2, 1]
    data = bytearray((pages * PAGE) + tail)
    with open(path, "wb") as f:
        f.truncate(len(data))
        for i in range(pages):
            kind = rng.choices(kinds, weights)[0]
            if kind == "hole":
                continue
            page = {"zero": lambda: bytes(PAGE), "random": random_page,
                    "text": text_page, "sparse": sparse_page}[kind]
            page = page(rng) if kind != "zero" else page()
            f.seek(i * PAGE)
            f.write(page)
            data[i * PAGE:(i + 1) * PAGE] = page
        if tail:
            t = rng.randbytes(tail)
            f.seek(pages * PAGE)
            f.write(t)
            data[pages * PAGE:] = t
    return bytes(data)


def data_extents(data):
    """[(start, end)] of the non-zero pages of data, merged, end clamped to
    the size: what SEEK_DATA/SEEK_HOLE must report."""
    size = len(data)
    out = []
    zero = bytes(PAGE)
    for off in range(0, size, PAGE):
        chunk = data[off:off + PAGE]
        if chunk == zero[:len(chunk)]:
            continue
        end = min(off + PAGE, size)
        if out and out[-1][1] == off:
            out[-1] = (out[-1][0], end)
        else:
            out.append((off, end))
    return out


def seek_extents(path):
    """[(start, end)] of data as lseek SEEK_DATA/SEEK_HOLE report it."""
    fd = os.open(path, os.O_RDONLY)
    try:
        size = os.fstat(fd).st_size
        out = []
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == errno.ENXIO:
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            check(end > start, f"{path}: SEEK_HOLE({start}) = {end}")
            out.append((start, end))
            off = end
        return out
    finally:
        os.close(fd)


def drop_cache(path):
    """Drop the kernel's cached pages of path so reads go to the daemon."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


# --- mounts --------------------------------------------------------------

def mounted_fs(mnt):
    """(fstype, source) of the topmost mount on mnt, or None."""
    mnt = os.path.realpath(mnt)
    found = None
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            point = left.split()[4].encode().decode("unicode_escape")
            if point == mnt:
                fields = right.split()
                found = (fields[0], fields[1])
    return found


def is_snapfs_mount(mnt):
    m = mounted_fs(mnt)
    return m is not None and m[0] == "fuse.snapfs"


def wait_for(cond, timeout, step=0.02):
    deadline = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(step)


def fusermount_u(mnt, expect=0):
    return run(["fusermount3", "-u", mnt], expect=expect)


class Mount:
    """`snapfs mount STORE MNT [args] -f` in the background, as a context
    manager that always unmounts. .proc is the daemon, .stderr() its log,
    .mount_seconds the time until the mount was in place."""

    def __init__(self, store, mnt, *args, timeout=20):
        self.store, self.mnt, self.args = store, mnt, list(args)
        os.makedirs(mnt, exist_ok=True)
        self.errpath = os.path.join(os.path.dirname(os.path.abspath(mnt)),
                                    os.path.basename(mnt) + ".stderr")
        self.errfile = open(self.errpath, "w+")
        argv = [SNAPFS, "mount", store, mnt, *self.args, "-f"]
        t0 = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL,
                                     stderr=self.errfile)
        ok = wait_for(lambda: is_snapfs_mount(mnt) or
                      self.proc.poll() is not None, timeout)
        self.mount_seconds = time.monotonic() - t0
        if not ok or not is_snapfs_mount(mnt):
            err = self.stderr()
            self.close()
            raise TestFailure(f"mount of '{store}' on '{mnt}' failed "
                              f"(exit {self.proc.returncode}):\n{err}")

    def stderr(self):
        self.errfile.flush()
        with open(self.errpath, encoding="utf-8", errors="replace") as f:
            return f.read()

    def unmount(self, expect_exit=0):
        """fusermount3 -u, then wait for the daemon and check its status."""
        fusermount_u(self.mnt)
        try:
            rc = self.proc.wait(20)
        except subprocess.TimeoutExpired:
            raise TestFailure(f"daemon for '{self.mnt}' did not exit "
                              "after fusermount3 -u")
        check(rc == expect_exit,
              f"daemon exit status {rc} after unmount, expected "
              f"{expect_exit}; stderr:\n{self.stderr()}")
        check(wait_for(lambda: not is_snapfs_mount(self.mnt), 10),
              f"'{self.mnt}' still mounted after fusermount3 -u")

    def close(self):
        if is_snapfs_mount(self.mnt):
            subprocess.run(["fusermount3", "-u", "-z", self.mnt],
                           stderr=subprocess.DEVNULL)
        if self.proc.poll() is None:
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.errfile.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


def unmount_all_under(work):
    """Last-resort cleanup: lazily unmount every mount below work."""
    work = os.path.realpath(work)
    points = []
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == work or point.startswith(work + "/"):
                points.append(point)
    for point in reversed(points):
        subprocess.run(["fusermount3", "-u", "-z", point],
                       stderr=subprocess.DEVNULL)
        if os.path.ismount(point):
            subprocess.run(["umount", "-l", point], stderr=subprocess.DEVNULL)


def daemon_pids(mnt, cwd=None):
    """pids of snapfs processes whose command line names mnt (relative
    arguments taken from cwd, by default ours)."""
    mnt_abs, pids = os.path.abspath(mnt), []
    cwd = cwd or os.getcwd()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if argv and os.path.basename(argv[0]) == b"snapfs" and \
                any(os.path.abspath(os.path.join(
                    cwd, a.decode(errors="replace"))) == mnt_abs
                    for a in argv[1:] if a):
            pids.append(int(pid))
    return pids


def expect_errno(err, fn, *args, what=None):
    """fn(*args) must raise OSError with errno err."""
    what = what or f"{fn.__name__}{args}"
    try:
        fn(*args)
    except OSError as e:
        check(e.errno == err, f"{what}: got {errno.errorcode.get(e.errno)} "
              f"({e}), expected {errno.errorcode[err]}")
        return
    raise TestFailure(f"{what}: succeeded, expected "
                      f"{errno.errorcode[err]}")


def pread_all(path, off, size):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, size, off)
    finally:
        os.close(fd)
