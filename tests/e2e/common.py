# SPDX-License-Identifier: MIT
"""Shared helpers of the snapfs end-to-end tests.

The tests drive the real `snapfs` binary (path in $SNAPFS), the real
`sqlite3` shell ($SQLITE3, default `sqlite3`), `cmp` and `dd`. This module
gives them: memory-image generation (holes, committed zero pages, text-like
and random pages), a command runner that logs every command and checks exit
codes and stderr, sqlite3 queries, store-state snapshots for "the store is
unchanged" checks, and a tiny case runner.

A test script defines functions named case_*(ctx) and ends with
`common.main()`. Each case runs in a temporary directory of its own (under
$SNAPFS_TEST_TMPDIR, default /var/tmp), removed afterwards; ctx gives paths,
a store factory and tmpfs mounts that are undone at the end. `python3
test_x.py NAME...` runs only the named cases. Exit status: 0 all passed,
1 something failed, 77 (meson's "skipped") when every case skipped.
"""

import json
import os
import random
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

PAGE = 4096
MIB = 1 << 20
GIB = 1 << 30

SNAPFS = os.environ.get("SNAPFS") or str(
    Path(__file__).resolve().parents[2] / "build" / "src" / "cli" / "snapfs")
SQLITE3 = os.environ.get("SQLITE3") or shutil.which("sqlite3") or "sqlite3"
SOURCE_ROOT = Path(os.environ.get("SNAPFS_SOURCE_ROOT")
                   or Path(__file__).resolve().parents[2])
TMPROOT = os.environ.get("SNAPFS_TEST_TMPDIR") or (
    "/var/tmp" if os.path.isdir("/var/tmp") else tempfile.gettempdir())

# What a sanitizer prints when it finds something: such output fails a
# command whatever its exit status.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: ThreadSanitizer",
                   "ERROR: MemorySanitizer")

# Exit codes (SPEC: "Exit status").
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_DAMAGE = 3


class Skip(Exception):
    """Raised by a case that cannot run here (the message says why)."""


class TestFailure(AssertionError):
    pass


def log(*args):
    print(*args, flush=True)


def fail(msg):
    raise TestFailure(msg)


def check(cond, msg):
    if not cond:
        fail(msg)


def check_eq(got, expected, what):
    if got != expected:
        fail(f"{what}: expected {expected!r}, got {got!r}")


def page_up(x):
    return (x + PAGE - 1) // PAGE * PAGE


# --------------------------------------------------------------------------
# Running commands


def _short(data, limit=4000):
    if data is None:
        return ""
    if isinstance(data, bytes):
        data = data.decode("utf-8", "replace")
    if len(data) > limit:
        return data[:limit] + f"... [{len(data) - limit} more characters]"
    return data


def run(args, *, expect=None, input=None, stdin=None, stdout=None,
        timeout=1800, env=None, text=True, quiet=False):
    """Run args (a list), log it, return the CompletedProcess.

    expect: an exit code (or a tuple of them) that the command must end
    with; None: anything. stdout: None to capture, or a file object.
    """
    args = [str(a) for a in args]
    if not quiet:
        log("$ " + shlex.join(args))
    kwargs = dict(timeout=timeout, env=env)
    if text:
        # A damaged store may hold any bytes, and a message may quote
        # them: show them (as U+FFFD) rather than fail to decode.
        kwargs["errors"] = "replace"
    if input is not None:
        kwargs["input"] = input
    elif stdin is not None:
        kwargs["stdin"] = stdin
    else:
        kwargs["stdin"] = subprocess.DEVNULL
    t0 = time.monotonic()
    try:
        cp = subprocess.run(args, stdout=stdout if stdout is not None else subprocess.PIPE,
                            stderr=subprocess.PIPE, text=text, **kwargs)
    except subprocess.TimeoutExpired:
        fail(f"command timed out after {timeout} s: {shlex.join(args)}")
    elapsed = time.monotonic() - t0
    err = cp.stderr if isinstance(cp.stderr, str) else (cp.stderr or b"").decode("utf-8", "replace")
    if not quiet:
        log(f"  -> exit {cp.returncode} in {elapsed:.2f} s"
            + (f"; stderr: {_short(err, 600)!r}" if err else ""))
    for mark in SANITIZER_MARKS:
        if mark in err:
            fail(f"sanitizer report from {shlex.join(args)}:\n{_short(err, 20000)}")
    if expect is not None:
        codes = expect if isinstance(expect, tuple) else (expect,)
        if cp.returncode not in codes:
            fail(f"command {shlex.join(args)}\n  expected exit {' or '.join(map(str, codes))}, "
                 f"got {cp.returncode}\n  stdout: {_short(cp.stdout)!r}\n  stderr: {_short(err)!r}")
    return cp


def snapfs(*args, expect=0, **kw):
    """Run the snapfs binary; by default it must succeed."""
    return run([SNAPFS, *args], expect=expect, **kw)


def stderr_text(cp):
    err = cp.stderr
    return err if isinstance(err, str) else (err or b"").decode("utf-8", "replace")


def check_error_message(cp, *mentions, what=""):
    """stderr must be one line 'snapfs: ...' naming every string in
    mentions (case-sensitive; a tuple inside mentions means any of them)."""
    err = stderr_text(cp)
    lines = err.splitlines()
    where = f" ({what})" if what else ""
    check(len(lines) == 1,
          f"stderr must be exactly one line{where}, got {len(lines)}: {err!r}")
    line = lines[0]
    check(line.startswith("snapfs: "), f"stderr must start with 'snapfs: '{where}: {line!r}")
    for m in mentions:
        alts = m if isinstance(m, tuple) else (m,)
        check(any(a in line for a in alts),
              f"error message must name {' or '.join(map(repr, alts))}{where}: {line!r}")
    return line


def expect_error(args, code, *mentions, what="", **kw):
    """Run snapfs with args, expecting exit `code` and a one-line message."""
    cp = snapfs(*args, expect=code, **kw)
    check_error_message(cp, *mentions, what=what)
    return cp


def cmp_files(a, b):
    """The two files must be byte-identical (checked with cmp)."""
    cp = run(["cmp", a, b])
    if cp.returncode != 0:
        fail(f"{a} and {b} differ: {cp.stdout.strip()} {cp.stderr.strip()}")


def sha_file(path):
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MIB), b""):
            h.update(chunk)
    return h.hexdigest()


# --------------------------------------------------------------------------
# sqlite3


def db_path(store):
    return Path(store) / "snapfs.db"


def sql(store, query, *, expect=0):
    """Rows of query run by the sqlite3 shell on the store's database, as
    dicts (from sqlite3 -json)."""
    cp = run([SQLITE3, "-bail", "-batch", "-json", db_path(store), query],
             expect=expect, quiet=True)
    log(f"$ sqlite3 {db_path(store)} {query!r} -> exit {cp.returncode}")
    if cp.returncode != 0:
        return cp
    out = cp.stdout.strip()
    if not out:
        return []
    try:
        return json.loads(out)
    except json.JSONDecodeError:
        # Pragmas that print one value come out as JSON too; anything else
        # is a surprise worth seeing.
        fail(f"sqlite3 -json printed something that is not JSON: {out[:500]!r}")


def sql_value(store, query):
    rows = sql(store, query)
    check(len(rows) == 1, f"{query!r}: expected one row, got {rows!r}")
    return next(iter(rows[0].values()))


def integrity_ok(store):
    rows = sql(store, "PRAGMA integrity_check")
    values = [next(iter(r.values())) for r in rows]
    check(values == ["ok"], f"PRAGMA integrity_check: {values!r}")
    fk = sql(store, "PRAGMA foreign_key_check")
    check(fk == [], f"PRAGMA foreign_key_check reports rows: {fk!r}")


TABLE_COUNTS = ("snapshots", "segments", "page_map", "blobs", "page_index")


def store_state(store):
    """What 'the store is unchanged' compares: `snapfs list` and the row
    counts and checksums of the tables."""
    lst = snapfs("list", store, "--bytes").stdout
    counts = {}
    for t in TABLE_COUNTS:
        counts[t] = sql_value(store, f"SELECT count(*) FROM {t}")
    counts["stored"] = sql_value(store, "SELECT coalesce(sum(stored_size), 0) FROM blobs")
    counts["snapshot_rows"] = sql(
        store, "SELECT id, name, created_at, parent_id, file_size, data_bytes, "
               "stored_bytes FROM snapshots ORDER BY id")
    return {"list": lst, **counts}


def check_state_unchanged(store, before, what):
    after = store_state(store)
    for k in before:
        if before[k] != after[k]:
            fail(f"store changed by {what}: {k}: before {before[k]!r}, after {after[k]!r}")


# --------------------------------------------------------------------------
# Pack files (schema version 2: blob bytes live in STORE/packs/NNNNNNNN.pack)


SCHEMA_VERSION = 5
# The entries of a store directory: the database, its WAL files, packs/.
STORE_ENTRIES = {"snapfs.db", "snapfs.db-wal", "snapfs.db-shm", "packs", "claims", "lock-holder"}
PACK_NAME = re.compile(r"^[0-9]{8}\.pack$")


def pack_path(store, pack_id):
    """The file of pack pack_id (its name comes from the id alone)."""
    return Path(store) / "packs" / f"{int(pack_id):08d}.pack"


def pack_files(store):
    """Names of the files in STORE/packs (sorted; [] without the folder)."""
    d = Path(store) / "packs"
    return sorted(os.listdir(d)) if d.is_dir() else []


def check_pack_files(store, what=""):
    """packs/ holds exactly the files of the packs table's rows, each at
    least as long as its committed length, and nothing else."""
    where = f" ({what})" if what else ""
    rows = sql(store, "SELECT id, length FROM packs ORDER BY id")
    names = pack_files(store)
    check_eq(names, sorted(pack_path(store, r["id"]).name for r in rows),
             f"files in packs/ vs the packs table{where}")
    for r in rows:
        size = os.path.getsize(pack_path(store, r["id"]))
        check(size >= r["length"], f"pack {r['id']} is {size} bytes, shorter than its "
                                   f"committed length {r['length']}{where}")


def blob_place(store, blob_id):
    """(pack file, offset, stored_size) of a blob's stored bytes."""
    rows = sql(store, "SELECT pack_id, pack_offset, stored_size FROM blobs "
                      f"WHERE id = {int(blob_id)}")
    check(len(rows) == 1, f"blob {blob_id}: expected one blobs row, got {rows!r}")
    r = rows[0]
    return pack_path(store, r["pack_id"]), r["pack_offset"], r["stored_size"]


def blob_bytes(store, blob_id):
    """The stored (compressed) bytes of a blob, read from its pack."""
    path, off, size = blob_place(store, blob_id)
    with open(path, "rb") as f:
        f.seek(off)
        data = f.read(size)
    check_eq(len(data), size, f"bytes of blob {blob_id} in {path}")
    return data


def damage_blob(store, blob_id, how="zero", at=None):
    """Damage a blob's stored bytes in its pack file, as a disk or a
    careless hand would; the database is not touched. how:
      'zero'      overwrite all its stored_size bytes with zeros;
      'flip'      invert one byte: byte `at` of the blob (default: the
                  middle; negative counts from its end);
      'truncate'  cut the pack file inside the blob, `at` bytes into it
                  (default: half of it). Every blob after it in the same
                  pack loses its bytes too.
    Returns (pack file, offset, stored_size). Fails if nothing changed."""
    path, off, size = blob_place(store, blob_id)
    check(size > 0, f"blob {blob_id} has no stored bytes")
    old = blob_bytes(store, blob_id)
    log(f"damage blob {blob_id} ({how}): {size} bytes at {off} of {path}")
    fd = os.open(path, os.O_RDWR)
    try:
        if how == "zero":
            check(old != bytes(size), f"blob {blob_id} is all zeros already")
            os.pwrite(fd, bytes(size), off)
        elif how == "flip":
            i = size // 2 if at is None else at % size
            os.pwrite(fd, bytes([old[i] ^ 0xFF]), off + i)
        elif how == "truncate":
            i = size // 2 if at is None else at
            check(0 <= i < size, f"truncate at {i}: not inside blob {blob_id} ({size} bytes)")
            os.ftruncate(fd, off + i)
        else:
            raise ValueError(f"damage_blob: unknown way {how!r}")
        os.fsync(fd)
    finally:
        os.close(fd)
    if how != "truncate":
        check(blob_bytes(store, blob_id) != old, f"damage of blob {blob_id} changed nothing")
    else:
        check_eq(os.path.getsize(path), off + i, f"size of {path} after truncation")
    return path, off, size


def store_file_bytes(store):
    """What snapfs counts as the store's size on disk (`snapfs info
    STORE`'s file_bytes, gc's figures): the sizes of snapfs.db and its WAL
    plus the allocated blocks of the pack files (gc punches holes)."""
    store = Path(store)
    total = 0
    for name in ("snapfs.db", "snapfs.db-wal"):
        if (store / name).exists():
            total += os.path.getsize(store / name)
    for name in pack_files(store):
        if PACK_NAME.match(name):
            total += allocated_bytes(store / "packs" / name)
    return total


def snapshot_names(store):
    return [r["name"] for r in parse_list(snapfs("list", store, "--bytes").stdout)]


# --------------------------------------------------------------------------
# Images

_WORDS = ("the of and to in is was for on that with as by at from kernel page "
          "memory sandbox runsc gvisor firecracker qemu snapshot restore heap "
          "stack mmap /usr/lib/x86_64-linux-gnu/libc.so.6 /etc/passwd PATH= "
          "HOME=/root GET /index.html HTTP/1.1 200 OK Content-Type: text/html "
          "error warning info debug 0x7ffd1234 malloc free struct task_struct "
          "SELECT * FROM users WHERE id = ? {\"key\": \"value\"} <div class=\"x\">"
          ).split()

_corpus = None


def text_corpus():
    """About 1 MiB of text-like bytes (compresses well, like heaps of
    strings, page cache of text files, logs)."""
    global _corpus
    if _corpus is None:
        rng = random.Random(1234)
        parts, size = [], 0
        while size < MIB + 2 * PAGE:
            n = rng.randint(4, 14)
            line = " ".join(rng.choice(_WORDS) for _ in range(n))
            line += f" {rng.randint(0, 99999)}\n"
            parts.append(line)
            size += len(line)
        _corpus = "".join(parts).encode()
    return _corpus


def text_page(rng, tag=0):
    """A text-like page, unique through tag."""
    corpus = text_corpus()
    off = rng.randrange(0, len(corpus) - PAGE)
    page = bytearray(corpus[off:off + PAGE])
    stamp = f"<page {tag} {rng.getrandbits(32):08x}>".encode()
    page[:len(stamp)] = stamp
    return bytes(page)


def random_page(rng):
    return rng.randbytes(PAGE)


ZERO_PAGE = bytes(PAGE)


class Image:
    """A memory image file written page by page, sparse where nothing is
    written. Keeps the page contents it wrote so tests know what to
    expect (None: hole)."""

    def __init__(self, path, size):
        self.path = Path(path)
        self.size = size
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        os.ftruncate(self.fd, size)
        self.written = {}  # page number -> kind written ('text', 'random', 'zero', ...)

    def write(self, offset, data):
        view = memoryview(data)
        done = 0
        while done < len(view):
            done += os.pwrite(self.fd, view[done:], offset + done)

    def pages(self, first, count, kind, rng, tag_base=0):
        """Write count pages from page `first`: kind 'text', 'random',
        'zero' (explicitly written zeros) or 'mixed' (text, random, zero in
        turn)."""
        buf = bytearray()
        for i in range(count):
            k = kind
            if kind == "mixed":
                k = ("text", "random", "zero")[i % 3]
            if k == "text":
                buf += text_page(rng, tag_base + first + i)
            elif k == "random":
                buf += random_page(rng)
            elif k == "zero":
                buf += ZERO_PAGE
            else:
                raise ValueError(kind)
            self.written[first + i] = k
            if len(buf) >= MIB:
                self.write((first + i + 1) * PAGE - len(buf), buf)
                buf = bytearray()
        if buf:
            self.write((first + count) * PAGE - len(buf), buf)

    def close(self):
        os.fsync(self.fd)
        os.close(self.fd)
        self.fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.fd >= 0:
            self.close()


def standard_image(path, seed=1, end_in_data=False):
    """The mixed image most tests use (about 1.2 MiB of data in 1.25 MiB
    + holes): text, random, explicitly written zero pages, a mixed stretch
    and holes. Returns the Image (closed)."""
    rng = random.Random(seed)
    pages_total = 320
    img = Image(path, pages_total * PAGE)
    img.pages(0, 16, "text", rng)          # 0..15 text
    #                                        16..31 hole
    img.pages(32, 16, "random", rng)       # 32..47 random
    img.pages(48, 16, "zero", rng)         # 48..63 committed zero pages
    img.pages(64, 18, "mixed", rng)        # 64..81 text/random/zero
    #                                        82..255 hole
    img.pages(256, 16, "text", rng)        # 256..271 text
    img.pages(272, 8, "zero", rng)         # 272..279 zero pages
    if end_in_data:
        img.pages(280, 40, "random", rng)  # ... up to the end
    img.close()
    return img


def data_ranges(path):
    """The file's data ranges as the filesystem reports them
    (SEEK_DATA/SEEK_HOLE), [(start, end)]."""
    out = []
    size = os.path.getsize(path)
    fd = os.open(path, os.O_RDONLY)
    try:
        off = 0
        while off < size:
            try:
                start = os.lseek(fd, off, os.SEEK_DATA)
            except OSError as e:
                if e.errno == 6:  # ENXIO: no more data
                    break
                raise
            end = os.lseek(fd, start, os.SEEK_HOLE)
            out.append((start, end))
            off = end
    finally:
        os.close(fd)
    return out


def expected_segments(path):
    """What snapfs save makes of a raw file without --usage: its data
    ranges widened to whole pages (touching ranges merged), the last one
    ending at most at file_size rounded up to a page."""
    size = os.path.getsize(path)
    limit = page_up(size)
    segs = []
    for start, end in data_ranges(path):
        s, e = start // PAGE * PAGE, min(page_up(end), limit)
        if segs and s <= segs[-1][1]:
            segs[-1][1] = max(segs[-1][1], e)
        else:
            segs.append([s, e])
    return [tuple(x) for x in segs]


def page_stats(path, ranges=None):
    """(non-zero pages, data_bytes) of the file, only within ranges if
    given; data_bytes counts a partial last page by its length."""
    size = os.path.getsize(path)
    if ranges is None:
        ranges = data_ranges(path)
    pages = set()
    with open(path, "rb") as f:
        for start, end in ranges:
            p = start // PAGE
            while p * PAGE < min(end, size):
                f.seek(p * PAGE)
                chunk = f.read(PAGE)
                if chunk.strip(b"\0"):
                    pages.add(p)
                p += 1
    data = sum(min(PAGE, size - p * PAGE) for p in pages)
    return pages, data


def allocated_bytes(path):
    return os.stat(path).st_blocks * 512


def is_hole(path, offset, length):
    """True if [offset, offset+length) of the file holds no data extent."""
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            nxt = os.lseek(fd, offset, os.SEEK_DATA)
        except OSError as e:
            if e.errno == 6:
                return True
            raise
        return nxt >= offset + length
    finally:
        os.close(fd)


def compare_sparse(a, b):
    """Compare two (possibly huge, sparse) files without reading their
    holes: same size, and equal bytes over the union of both files' data
    ranges (outside it, both read zeros)."""
    sa, sb = os.path.getsize(a), os.path.getsize(b)
    check_eq(sb, sa, f"size of {b}")
    ranges = sorted(data_ranges(a) + data_ranges(b))
    merged = []
    for s, e in ranges:
        if merged and s <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], e)
        else:
            merged.append([s, e])
    with open(a, "rb") as fa, open(b, "rb") as fb:
        for s, e in merged:
            off = s
            while off < e:
                n = min(4 * MIB, e - off)
                fa.seek(off)
                fb.seek(off)
                x, y = fa.read(n), fb.read(n)
                if x != y:
                    for i in range(min(len(x), len(y))):
                        if x[i] != y[i]:
                            fail(f"{a} and {b} differ at byte {off + i} (0x{off + i:x})")
                    fail(f"{a} and {b} differ in length near {off}")
                off += n


# --------------------------------------------------------------------------
# snapfs output


LIST_FIELDS = ("name", "created_at", "file_size", "data_bytes", "stored_bytes", "parent",
               "comment")
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)$")


LIST_HEADER = ["name", "created_at", "file_size", "data_bytes", "stored_bytes", "parent",
               "comment"]


def parse_list(out):
    """`snapfs list --bytes` output as a list of dicts (fields per SPEC):
    a header naming the --json fields, then one snapshot a line, columns
    aligned with spaces, the comment (which may hold spaces) last."""
    rows = []
    lines = [line for line in out.splitlines() if line]
    if not lines:
        return rows
    check(lines[0].split() == LIST_HEADER, f"list header: {lines[0]!r}")
    for line in lines[1:]:
        f = line.split(None, 6)
        check(len(f) == 7, f"list line must have 7 fields: {line!r}")
        try:
            rows.append(dict(name=f[0], created_at=f[1], file_size=int(f[2]),
                             data_bytes=int(f[3]), stored_bytes=int(f[4]), parent=f[5],
                             comment=f[6]))
        except ValueError:
            fail(f"list line: file_size, data_bytes, stored_bytes must be integers: {line!r}")
    return rows


def parse_json(text, what):
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        fail(f"{what} is not valid JSON ({e}): {_short(text)!r}")


# --------------------------------------------------------------------------
# Pseudo-terminals


def run_on_pty(args, timeout=600):
    """Run args with standard error on a pseudo-terminal (stdout a pipe);
    returns (exit code, stdout bytes, bytes written to the terminal)."""
    args = [str(a) for a in args]
    log("$ " + shlex.join(args) + "   (stderr on a pty)")
    master, slave = os.openpty()
    chunks = []

    def reader():
        while True:
            try:
                b = os.read(master, 65536)
            except OSError:  # EIO: the other side is closed
                break
            if not b:
                break
            chunks.append(b)

    try:
        p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=slave, close_fds=True)
    finally:
        os.close(slave)
    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
        fail(f"command timed out: {shlex.join(args)}")
    t.join(10)
    os.close(master)
    tty = b"".join(chunks)
    log(f"  -> exit {p.returncode}; terminal got {len(tty)} bytes: {_short(tty, 300)!r}")
    for mark in SANITIZER_MARKS:
        if mark.encode() in tty:
            fail(f"sanitizer report from {shlex.join(args)}:\n{_short(tty, 20000)}")
    return p.returncode, out, tty


# --------------------------------------------------------------------------
# Privilege dropping


NOBODY = 65534


def setpriv_prefix():
    """The command prefix that runs a command as an unprivileged user, or
    None if that does not work here (no setpriv, not root, or the snapfs
    binary is not reachable for that user)."""
    if os.geteuid() != 0 or not shutil.which("setpriv"):
        return None
    prefix = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
    try:
        cp = subprocess.run(prefix + [SNAPFS, "--version"], stdin=subprocess.DEVNULL,
                            capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if cp.returncode != 0:
        log(f"setpriv as {NOBODY} cannot run snapfs: exit {cp.returncode} {cp.stderr!r}")
        return None
    return prefix


# --------------------------------------------------------------------------
# Case runner


class Ctx:
    """One case's working area."""

    def __init__(self, tmp, name):
        self.tmp = Path(tmp)
        self.name = name
        self._mounts = []
        self._procs = []

    def path(self, *parts):
        return self.tmp.joinpath(*parts)

    def store(self, name="store"):
        """A new, initialised store."""
        p = self.path(name)
        snapfs("init", p)
        return p

    def mount_tmpfs(self, name, size):
        """Mount a tmpfs of size (e.g. '8m') at a new directory; Skip if
        mounting is not possible here."""
        d = self.path(name)
        d.mkdir()
        cp = run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", d])
        if cp.returncode != 0:
            raise Skip(f"cannot mount a tmpfs here (needs root / CAP_SYS_ADMIN): {cp.stderr.strip()}")
        self._mounts.append(d)
        return d

    def track(self, proc):
        self._procs.append(proc)
        return proc

    def cleanup(self):
        for p in self._procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for d in reversed(self._mounts):
            if subprocess.run(["umount", d], capture_output=True).returncode != 0:
                subprocess.run(["umount", "-l", d], capture_output=True)
        # Make everything removable (cases chmod files to 000).
        for root, dirs, files in os.walk(self.tmp):
            for n in dirs:
                try:
                    os.chmod(os.path.join(root, n), 0o755)
                except OSError:
                    pass


def main():
    import __main__
    cases = [(n, f) for n, f in vars(__main__).items()
             if n.startswith("case_") and callable(f)]
    wanted = sys.argv[1:]
    if wanted:
        unknown = [w for w in wanted if f"case_{w}" not in dict(cases) and w not in dict(cases)]
        if unknown:
            log(f"unknown cases: {unknown}; known: {[n[5:] for n, _ in cases]}")
            sys.exit(2)
        cases = [(n, f) for n, f in cases if n in wanted or n[5:] in wanted]
    if not os.path.exists(SNAPFS):
        log(f"snapfs binary not found at {SNAPFS} (set $SNAPFS)")
        sys.exit(1)
    log(f"snapfs: {SNAPFS}\nsqlite3: {SQLITE3}\ntemporary files under {TMPROOT}")
    passed, failed, skipped = [], [], []
    for name, fn in cases:
        short = name[5:]
        log(f"\n=== {short} ===")
        t0 = time.monotonic()
        tmp = tempfile.mkdtemp(prefix=f"snapfs-e2e-{short}-", dir=TMPROOT)
        os.chmod(tmp, 0o755)
        ctx = Ctx(tmp, short)
        try:
            fn(ctx)
        except Skip as e:
            log(f"--- {short}: SKIPPED: {e}")
            skipped.append(short)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            if isinstance(e, AssertionError):
                log(f"--- {short}: FAILED: {e}")
            else:
                log(f"--- {short}: FAILED with an exception:")
            traceback.print_exc(file=sys.stdout)
            failed.append(short)
        else:
            log(f"--- {short}: ok ({time.monotonic() - t0:.1f} s)")
            passed.append(short)
        finally:
            try:
                ctx.cleanup()
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
    log(f"\n{len(passed)} passed, {len(failed)} failed, {len(skipped)} skipped")
    if failed:
        log("failed: " + " ".join(failed))
    if skipped:
        log("skipped: " + " ".join(skipped))
    sys.stdout.flush()
    if failed:
        sys.exit(1)
    if skipped and not passed:
        sys.exit(77)
    sys.exit(0)
