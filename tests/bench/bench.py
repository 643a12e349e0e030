#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""snapfs against its peers, side by side on the same data in the same run.

Run it through tests/bench/run.sh (root, Debian 12), which installs the peers,
builds snapfs and the two helpers (nullfs, randread) and then runs

    bench.py --snapfs BIN --nullfs BIN --randread BIN --replay BIN --dir DIR
             [--quick] [--only PHASE,...]

--only runs some phases: save, restore, reads (each image), dedup, replay,
uffd, remote (reads needs the stores that save makes; replay, uffd and
remote make their own, from the core image, made if DIR has none).

The corpus is made here, on the fly, in DIR/corpus:

  core      a real process image: a python3 process fills a few hundred MiB
            with mixed data (text, random bytes, explicitly written zeros,
            C-struct arrays, Python objects) and is dumped with gcore; the core
            file is saved as a raw memory file.
  sparse    a 4 GiB sparse image with ~300 MiB of data in extents of
            16 KiB - 4 MiB (text-like, random, C-struct arrays, page-level
            mixes, explicitly written zero pages, a few repeated extents);
            holes elsewhere.
  pairs     copies of `sparse` with 0 %, 1 % and 100 % of its non-zero pages
            changed at random places (a random 16 - 512 byte span of each
            chosen page overwritten).

Peers: squashfuse_ll over mksquashfs images (-comp zstd, -comp lz4), borg
(create / mount / extract, repo made with `borg init -e none`), zstd -3 of the
raw image, the plain file on disk, and nullfs (a FUSE server that answers every
read with constant bytes, mounted with snapfs's options: the FUSE ceiling).
Every FUSE mount gets the same readahead window, READ_AHEAD_KB: snapfs and
nullfs through `-o read_ahead_kb=N`, squashfuse_ll and borg by writing
/sys/class/bdi/MAJ:MIN/read_ahead_kb once they are mounted.

Working set replay (phase replay, core image): a fault trace that mimics a
guest resume (about 10 % of the image's data pages in 40 hot regions,
touched in bursts that interleave a few regions at a time) is replayed by
replay.c through a MAP_PRIVATE mapping, cold, on snapfs without a working
set (-o noprefetch), on snapfs with the working set recorded by one replay
under -o record (prefetch on; the open waits for it, and again with -o
prefetch_wait=0, where the faults race the prefetch), on the plain file
and on squashfuse_ll (zstd), 5 runs each. The time runs from open() to
the last first touch.

userfaultfd page server (phase uffd, core image): `snapfs uffd` serving
uffd_client.c (a VMM's side of Firecracker's handler protocol) next to the
FUSE mount (replay.c through MAP_PRIVATE) and the plain file, cold: the
first-touch latency (p50 / p99) of 1000 random data pages without any
prefetch, and the time to touch the replay phase's trace once it is
recorded as the working set, in its order (uffd and the mount prefetch it;
uffd's prefetch races the touches), 3 runs (5 without --quick).

A store in an S3 bucket (phase remote, core image): a throwaway radosgw
(tests/remote/ceph-cluster.sh); one store directory saves, a second on the
same bucket reads through its mount with its pack cache emptied, cold:
random 4 KiB reads and a sequential read against ranged GETs through the
same S3 client (s3_client_test: 4 KiB GETs of a pack; the raw image as one
object in 1 MiB GETs), the replay phase's trace with and without the
working set, and what a child with 1 % of its pages changed uploads.

Every timing is repeated (3 runs, 5 for the cheap ones); the tables give
medians and ratios. Cold means: fresh mount (new daemon), then `sync; echo 3 >
/proc/sys/vm/drop_caches`, then the measurement. Raw samples go to
DIR/results.json, the tables to DIR/results.md and standard output.

Standard library only.
"""

import argparse
import json
import math
import os
import platform
import random
import resource
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import time

KiB = 1 << 10
MiB = 1 << 20
GiB = 1 << 30
PAGE = 4096
ZERO_PAGE = bytes(PAGE)
# The readahead window of every FUSE mount, in KiB (the kernel's default is
# 128): snapfs and nullfs get it as -o read_ahead_kb, the other peers by
# set_read_ahead() after mounting, so that all read with the same requests.
READ_AHEAD_KB = 1024
# The working set replay: hot regions of the trace, runs of each system.
REPLAY_REGIONS = 40
REPLAY_RUNS = 5
# The uffd phase: random data pages whose cold fault latency it measures.
UFFD_RANDOM_PAGES = 1000


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, env=None, cwd=None, check=True, capture=False):
    """Run a command quietly; returns CompletedProcess."""
    res = subprocess.run(cmd, env=env, cwd=cwd, stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE if capture else subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(map(str, cmd))}: exit {res.returncode}: "
                           f"{res.stderr.strip()[-2000:]}")
    return res


def drop_caches():
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def block_device(path):
    """(major, minor) of the block device that holds path, as /proc/diskstats
    lists it: a whole disk (vda, a virtio disk without partitions), a
    partition (sda1, nvme0n1p2: diskstats counts partitions on their own)
    or a device-mapper node (dm-0). st_dev names it, except on file systems
    whose st_dev is an anonymous device (btrfs, overlay): then the mount's
    source device, from findmnt. None if neither is a block device."""
    st = os.stat(path)
    dev = (os.major(st.st_dev), os.minor(st.st_dev))
    if os.path.exists(f"/sys/dev/block/{dev[0]}:{dev[1]}"):
        return dev
    try:
        src = subprocess.run(["findmnt", "-n", "-o", "SOURCE", "-T", path],
                             capture_output=True, text=True).stdout.strip()
        rdev = os.stat(src).st_rdev
        return (os.major(rdev), os.minor(rdev))
    except (OSError, ValueError):
        return None


def disk_stats(dev):
    """(read requests completed, sectors read) so far on block device dev,
    from /proc/diskstats (fields 4 and 6), or None when it is not listed."""
    if dev is None:
        return None
    with open("/proc/diskstats") as f:
        for line in f:
            p = line.split()
            if (int(p[0]), int(p[1])) == dev:
                return int(p[3]), int(p[5])
    return None


def cpu_seconds(pid):
    """User + system CPU seconds of a process so far (all its threads),
    from /proc/PID/stat; None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is the state (field 3): utime, stime are fields 14, 15.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def timed(cmd, env=None, cwd=None, sync=False):
    """Wall time of a command (plus a sync, when asked, so that what it wrote
    is on disk: the same rule for every system)."""
    t0 = time.perf_counter()
    run(cmd, env=env, cwd=cwd)
    if sync:
        os.sync()
    return time.perf_counter() - t0


def tree_bytes(path):
    """Bytes of all files under path (apparent sizes), or of one file."""
    if os.path.isfile(path):
        return os.path.getsize(path)
    total = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except FileNotFoundError:
                pass
    return total


def data_ranges(fd, size):
    """The data ranges of a file (SEEK_DATA / SEEK_HOLE)."""
    out, off = [], 0
    while off < size:
        try:
            start = os.lseek(fd, off, os.SEEK_DATA)
        except OSError:
            break
        end = os.lseek(fd, start, os.SEEK_HOLE)
        out.append((start, end))
        off = end
    return out


def same_content(a, b):
    """True if files a and b hold the same bytes. Only the union of their
    data ranges is read: elsewhere both are holes, which read as zeros."""
    if os.path.getsize(a) != os.path.getsize(b):
        return False
    size = os.path.getsize(a)
    fa, fb = os.open(a, os.O_RDONLY), os.open(b, os.O_RDONLY)
    try:
        ranges = sorted(data_ranges(fa, size) + data_ranges(fb, size))
        pos = 0
        for start, end in ranges:
            start = max(start, pos)
            while start < end:
                n = min(end - start, 8 * MiB)
                if os.pread(fa, n, start) != os.pread(fb, n, start):
                    return False
                start += n
            pos = max(pos, end)
        return True
    finally:
        os.close(fa)
        os.close(fb)


def rmtree(path):
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)


# ----------------------------------------------------------------------------
# Content generators (deterministic for a seed)
# ----------------------------------------------------------------------------

class Gen:
    """Memory-like content: text, random bytes, C-struct arrays, page mixes."""

    LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARN", "ERROR")
    MODULES = ("http", "db.pool", "scheduler", "auth", "cache", "rpc.client",
               "gc", "net.tcp", "storage", "metrics")

    def __init__(self, seed):
        self.r = random.Random(seed)
        r = self.r
        letters = "etaoinshrdlcumwfgypbvkjxqz"
        lw = [12.7, 9.1, 8.2, 7.5, 7.0, 6.7, 6.3, 6.1, 6.0, 4.3, 4.0, 2.8, 2.8,
              2.4, 2.4, 2.2, 2.0, 2.0, 1.9, 1.5, 1.0, 0.8, 0.2, 0.2, 0.1, 0.1]
        words = set()
        while len(words) < 6000:
            n = max(1, min(14, int(r.gauss(6, 2.5))))
            words.add("".join(r.choices(letters, weights=lw, k=n)))
        words = sorted(words)
        r.shuffle(words)
        extra = ["the", "of", "and", "to", "in", "is", "for", "on", "with",
                 "null", "true", "false", "error", "request", "user", "id",
                 "/usr/lib/x86_64-linux-gnu/libc.so.6", "0x7ffd3a2c1000",
                 "\n", "\n", ".", ",", ":"]
        vocab = extra + words
        cum, acc = [], 0.0
        for i in range(len(vocab)):
            acc += 1.0 / (i + 1) ** 1.07
            cum.append(acc)
        self.vocab, self.cum = vocab, cum
        self.ts = 1_790_000_000.0

    def words(self, k):
        return " ".join(self.r.choices(self.vocab, cum_weights=self.cum, k=k))

    def _prose(self, n):
        return self.words(max(1, n // 6)).encode()

    def _logs(self, n):
        r, out, size = self.r, [], 0
        while size < n:
            self.ts += r.expovariate(200.0)
            t = time.gmtime(self.ts)
            line = (f"{time.strftime('%Y-%m-%dT%H:%M:%S', t)}.{int(self.ts * 1e6) % 1000000:06d}Z "
                    f"{r.choice(self.LEVELS)} {r.choice(self.MODULES)}[{r.randint(1000, 1200)}]: "
                    f"{self.words(r.randint(3, 12))} req={r.getrandbits(48):012x} "
                    f"took={r.randint(1, 99999)}us\n")
            out.append(line)
            size += len(line)
        return "".join(out).encode()

    def _json(self, n):
        r, out, size = self.r, [], 0
        while size < n:
            w = self.words(2).split(" ")
            line = (f'{{"id": {r.randint(1, 10**7)}, "name": "{w[0]}", '
                    f'"email": "{w[-1]}@example.com", "active": {r.choice(("true", "false"))}, '
                    f'"score": {r.random() * 100:.2f}, "tags": ["{self.words(1)}", "{self.words(1)}"], '
                    f'"created": {int(self.ts) - r.randint(0, 10**7)}}}\n')
            out.append(line)
            size += len(line)
        return "".join(out).encode()

    def text(self, n):
        parts, size = [], 0
        while size < n:
            k = self.r.randint(16, 64) * KiB
            style = self.r.random()
            if style < 0.5:
                b = self._prose(k)
            elif style < 0.8:
                b = self._logs(k)
            else:
                b = self._json(k)
            parts.append(b)
            size += len(b)
        return b"".join(parts)[:n]

    def random(self, n):
        return self.r.randbytes(n)

    REC = struct.Struct("<QQIIqI4x16sQ")   # 64 bytes: a heap object of a C program

    def structs(self, n):
        r, rec = self.r, self.REC
        base = 0x5555_0000_0000 + r.getrandbits(28) * PAGE
        first_id = r.randint(1, 10**6)
        flags = (0, 1, 1, 3, 0x80)
        names = [w.encode()[:16] for w in self.vocab[:400]]
        out = []
        for i in range(n // rec.size + 1):
            out.append(rec.pack(base + (i + 1) * 64, base + (i - 1) * 64 if i else 0,
                                first_id + i, r.choice(flags), r.randint(0, 4096),
                                r.randint(1, 4), r.choice(names), r.getrandbits(64)))
        return b"".join(out)[:n]

    def mixed(self, n):
        """Page-level mix, as in a heap: runs of 1-4 pages of one kind."""
        parts, size = [], 0
        while size < n:
            k = self.r.randint(1, 4) * PAGE
            x = self.r.random()
            if x < 0.35:
                b = self.text(k)
            elif x < 0.65:
                b = self.structs(k)
            elif x < 0.85:
                b = self.random(k)
            else:
                b = bytes(k)
            parts.append(b)
            size += k
        return b"".join(parts)[:n]


# Share of the data bytes of the sparse image per extent kind.
SPARSE_KINDS = (("text", 0.30), ("structs", 0.22), ("random", 0.20),
                ("mixed", 0.15), ("zero", 0.08), ("repeat", 0.05))


def make_sparse(path, file_size, data_bytes, seed):
    """The sparse synthetic image; returns its extents [(start, length, kind)]."""
    r = random.Random(seed)
    gen = Gen(seed + 1)
    kinds = [k for k, _ in SPARSE_KINDS]
    weights = [w for _, w in SPARSE_KINDS]
    lo, hi = math.log(16 * KiB), math.log(4 * MiB)
    exts, total = [], 0
    while total < data_bytes:
        n = max(16 * KiB, int(math.exp(r.uniform(lo, hi))) // PAGE * PAGE)
        exts.append([0, n, r.choices(kinds, weights=weights)[0]])
        total += n
    free_pages = (file_size - total) // PAGE
    cuts = sorted(r.randrange(free_pages + 1) for _ in exts)
    pos, prev = 0, 0
    for e, c in zip(exts, cuts):
        pos += (c - prev) * PAGE
        prev = c
        e[0] = pos
        pos += e[1]
    assert pos <= file_size
    written = []
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        os.ftruncate(fd, file_size)
        for start, n, kind in exts:
            if kind == "repeat":
                # The same content elsewhere (page cache of one file in two
                # places, copied buffers): page-aligned, a multiple of pages.
                cands = [w for w in written if len(w) >= n]
                if cands:
                    src = r.choice(cands)
                    off = r.randrange((len(src) - n) // PAGE + 1) * PAGE
                    data = src[off:off + n]
                else:
                    data = gen.text(n)
            elif kind == "zero":
                data = bytes(n)
            else:
                data = getattr(gen, kind)(n)
            assert len(data) == n
            os.pwrite(fd, data, start)
            if kind not in ("zero", "repeat"):
                written.append(data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return [tuple(e) for e in exts]


def nonzero_pages(path, extents):
    """Page numbers of the non-zero pages of an image (within extents)."""
    pages = []
    with open(path, "rb") as f:
        for start, n, _kind in extents:
            f.seek(start)
            data = f.read(n)
            for i in range(0, n, PAGE):
                if data[i:i + PAGE] != ZERO_PAGE:
                    pages.append((start + i) // PAGE)
    return pages


def make_changed(src, dst, pages, fraction, seed):
    """dst: a copy of src with `fraction` of `pages` changed (a random span of
    16-512 bytes of each chosen page overwritten with random bytes)."""
    r = random.Random(seed)
    run(["cp", "--sparse=always", "--reflink=never", src, dst])
    k = round(len(pages) * fraction)
    chosen = r.sample(pages, k) if k < len(pages) else list(pages)
    fd = os.open(dst, os.O_RDWR)
    try:
        for p in chosen:
            n = r.randint(16, 512)
            off = r.randrange(PAGE - n + 1)
            os.pwrite(fd, r.randbytes(n), p * PAGE + off)
        os.fsync(fd)
    finally:
        os.close(fd)
    return k


def fill_memory(mib, seed):
    """--fill mode: hold `mib` MiB of mixed data in this process until stdin
    closes (the benchmark gcores us meanwhile)."""
    gen = Gen(seed)
    r = random.Random(seed + 7)
    keep = []
    target = mib * MiB
    share = {"text": 0.28, "random": 0.20, "zero": 0.12, "structs": 0.15, "objects": 0.25}
    for kind, frac in share.items():
        todo = int(target * frac)
        while todo > 0:
            n = min(todo, r.randint(64, 4096) * KiB)
            if kind == "text":
                keep.append(gen.text(n))
            elif kind == "random":
                keep.append(gen.random(n))
            elif kind == "zero":
                keep.append(b"\0" * n)            # memset: written zero pages
            elif kind == "structs":
                keep.append(bytearray(gen.structs(n)))
            else:
                # Python objects: dicts, strings, floats, tuples (~400 B each).
                objs = []
                for i in range(n // 400):
                    w = gen.words(3).split(" ")
                    objs.append({"id": i, "name": w[0], "email": f"{w[-1]}@example.org",
                                 "score": r.random() * 100, "tags": (w[1], i % 17),
                                 "seen": [r.randint(0, 1 << 40) for _ in range(3)]})
                keep.append(objs)
            todo -= n
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()
    return keep


def make_core(path, mib, seed, workdir):
    """Start a python3 process that fills `mib` MiB, gcore it into path."""
    proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--fill", str(mib),
                             "--seed", str(seed)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if line.strip() != "ready":
            raise RuntimeError("memory filler did not start")
        prefix = os.path.join(workdir, "gcore")
        run(["gcore", "-o", prefix, str(proc.pid)])
        os.replace(f"{prefix}.{proc.pid}", path)
    finally:
        proc.stdin.close()
        proc.wait()


# ----------------------------------------------------------------------------
# Mounts
# ----------------------------------------------------------------------------

def set_read_ahead(mnt, kb):
    """Set the readahead window of the filesystem mounted on mnt, as
    snapfs's -o read_ahead_kb does: /sys/class/bdi/MAJ:MIN/read_ahead_kb of
    its device."""
    st = os.stat(mnt)
    path = f"/sys/class/bdi/{os.major(st.st_dev)}:{os.minor(st.st_dev)}/read_ahead_kb"
    with open(path, "w") as f:
        f.write(f"{kb}\n")


class Mount:
    """One FUSE daemon in the foreground (so that its pid is ours to watch).
    read_ahead_kb: set the mount's readahead window once it is up, for
    daemons that have no option for it."""

    def __init__(self, cmd, mnt, path, env=None, stats_file=None, read_ahead_kb=None):
        self.cmd, self.mnt, self.path, self.env = cmd, mnt, path, env
        self.read_ahead_kb = read_ahead_kb
        self.proc = None

    def __enter__(self):
        os.makedirs(self.mnt, exist_ok=True)
        if os.path.ismount(self.mnt):
            run(["fusermount3", "-uz", self.mnt], check=False)
        self.errf = open(self.mnt + ".log", "w")
        self.proc = subprocess.Popen(self.cmd, env=self.env, stdin=subprocess.DEVNULL,
                                     stdout=self.errf, stderr=self.errf)
        deadline = time.monotonic() + 120
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.cmd)}: exited {self.proc.returncode}: "
                                   f"{open(self.mnt + '.log').read()[-2000:]}")
            if os.path.ismount(self.mnt) and os.path.exists(self.path):
                if self.read_ahead_kb is not None:
                    set_read_ahead(self.mnt, self.read_ahead_kb)
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"{' '.join(self.cmd)}: not mounted after 120 s")
            time.sleep(0.02)

    def hwm_kib(self):
        try:
            with open(f"/proc/{self.proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        return int(line.split()[1])
        except OSError:
            pass
        return None

    def __exit__(self, *exc):
        run(["fusermount3", "-u", self.mnt], check=False)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            run(["fusermount3", "-uz", self.mnt], check=False)
            self.proc.kill()
            self.proc.wait()
        self.errf.close()
        return False


# ----------------------------------------------------------------------------
# A real resume: a QEMU guest whose RAM is mmap'd from the memory file
# ----------------------------------------------------------------------------

RESUME_WS_SECONDS = 2     # the resume's working set: its first seconds
RESUME_RAM_MIB = 512
# What the guest does: fill ~200 MiB of a tmpfs (128 MiB of random bytes,
# 69 MiB of text: numbers 1 to 9,000,000; random bytes do not compress, so
# the stored size is mostly theirs), print its checksum and
# "ready", wait for a line on the serial console; once resumed print
# "resumed" first, then the checksum again (reading every page of the data
# back: each first touch is a page fault on the memory file), then power off.
GUEST_INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o size=400m tmpfs /mnt
dd if=/dev/urandom of=/mnt/random bs=1M count=128
seq 1 9000000 > /mnt/text
echo "sum-before $(cat /mnt/random /mnt/text | md5sum)"
echo ready
read line
echo resumed
echo "sum-after $(cat /mnt/random /mnt/text | md5sum)"
poweroff -f
"""


def cpio_newc(entries):
    """An uncompressed initramfs (cpio "newc"): entries of (name, mode,
    data, rdev (major, minor))."""
    out = bytearray()

    def pad4():
        out.extend(b"\0" * (-len(out) % 4))

    for ino, (name, mode, data, rdev) in enumerate(entries + [("TRAILER!!!", 0, b"", (0, 0))], 1):
        nb = name.encode() + b"\0"
        fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(nb), 0]
        out.extend(b"070701" + b"".join(b"%08X" % f for f in fields))
        out.extend(nb)
        pad4()
        out.extend(data)
        pad4()
    return bytes(out)


def make_guest(gdir):
    """The guest's kernel (Debian's linux-image-amd64, downloaded with
    apt-get download and unpacked with dpkg-deb, never installed) and its
    initramfs (busybox-static and GUEST_INIT). Returns (kernel, initrd)."""
    os.makedirs(gdir, exist_ok=True)
    kernels = sorted(f for f in os.listdir(gdir) if f.startswith("vmlinuz-"))
    if not kernels:
        dep = run(["apt-cache", "depends", "linux-image-amd64"], capture=True).stdout
        pkg = next(l.split()[1] for l in dep.splitlines()
                   if l.strip().startswith("Depends: linux-image-"))
        run(["apt-get", "download", pkg], cwd=gdir)
        deb = next(f for f in os.listdir(gdir) if f.startswith(pkg) and f.endswith(".deb"))
        run(["sh", "-c", f"dpkg-deb --fsys-tarfile {deb} | tar -x --wildcards "
             "--strip-components=2 './boot/vmlinuz-*' && rm -f {deb}"], cwd=gdir)
        kernels = sorted(f for f in os.listdir(gdir) if f.startswith("vmlinuz-"))
    kernel = os.path.join(gdir, kernels[-1])
    initrd = os.path.join(gdir, "initrd.cpio")
    busybox = open("/bin/busybox", "rb").read()
    d, f, c = 0o040755, 0o100755, 0o020600
    with open(initrd, "wb") as fh:
        fh.write(cpio_newc([("bin", d, b"", (0, 0)), ("dev", d, b"", (0, 0)),
                            ("dev/console", c, b"", (5, 1)), ("proc", d, b"", (0, 0)),
                            ("mnt", d, b"", (0, 0)), ("bin/busybox", f, busybox, (0, 0)),
                            ("init", f, GUEST_INIT.encode(), (0, 0))]))
    return kernel, initrd


class Qmp:
    """A QMP client on a unix socket: commands and the events seen."""

    def __init__(self, path, proc, timeout=60):
        import socket
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                self.sock.close()
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"QMP socket {path}: no QEMU")
                time.sleep(0.002)
        self.f = self.sock.makefile("rw")
        self.events = []
        json.loads(self.f.readline())                   # greeting
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            msg = json.loads(self.f.readline())
            if "event" in msg:
                self.events.append(msg)
                continue
            if "error" in msg:
                raise RuntimeError(f"QMP {name}: {msg['error']}")
            return msg.get("return")

    def wait_event(self, name, timeout):
        self.sock.settimeout(timeout)
        while not any(e["event"] == name for e in self.events):
            line = self.f.readline()
            if not line:
                raise RuntimeError(f"QMP: QEMU went away before {name}")
            msg = json.loads(line)
            if "event" in msg:
                self.events.append(msg)
        self.sock.settimeout(None)

    def close(self):
        try:
            self.f.close()
            self.sock.close()
        except OSError:
            pass


class Qemu:
    """qemu-system-x86_64 (TCG), guest RAM from a memory-backend-file, the
    serial console on stdin/stdout, QMP on a unix socket. .lines: the
    console's lines with the time (since start) each arrived."""

    def __init__(self, kernel, initrd, mem_path, share, workdir, incoming=None,
                 readonly=False):
        import threading
        self.qmp_path = os.path.join(workdir, "qmp.sock")
        rmtree(self.qmp_path)
        backend = (f"memory-backend-file,id=mem,size={RESUME_RAM_MIB}M,mem-path={mem_path},"
                   f"share={'on' if share else 'off'}" + (",readonly=on" if readonly else ""))
        cmd = ["qemu-system-x86_64", "-accel", "tcg", "-smp", "1",
               "-machine", "pc,memory-backend=mem", "-m", f"{RESUME_RAM_MIB}M",
               "-object", backend, "-kernel", kernel, "-initrd", initrd,
               "-append", "console=ttyS0 quiet panic=-1", "-no-reboot",
               "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
               "-qmp", f"unix:{self.qmp_path},server=on,wait=off"]
        if incoming:
            cmd += ["-incoming", "defer"]
        self.cmd = cmd
        self.lines = []
        self.cond = threading.Condition()
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        try:
            self.qmp = Qmp(self.qmp_path, self.proc)
        except (RuntimeError, OSError, ValueError):
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError("QEMU did not start: " +
                               self.proc.stderr.read().decode(errors="replace").strip()[-600:])
        if incoming:
            self.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "x-ignore-shared", "state": True}])
            self.qmp.cmd("migrate-incoming", uri=f"exec:cat {incoming}")

    def _read(self):
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace").strip()
            with self.cond:
                self.lines.append((time.perf_counter() - self.t0, line))
                self.cond.notify_all()
        with self.cond:
            self.lines.append((time.perf_counter() - self.t0, None))     # EOF
            self.cond.notify_all()

    def wait_line(self, prefix, timeout):
        """(seconds since start, line) of the first line starting with prefix."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for t, line in self.lines:
                    if line is None:
                        raise RuntimeError(f"QEMU exited before '{prefix}': "
                                           f"{self.proc.stderr.read().decode()[-1500:]}")
                    if line.startswith(prefix):
                        return t, line
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError(f"no '{prefix}' from the guest in {timeout} s; "
                                       f"last lines {self.lines[-5:]}")
                self.cond.wait(left)

    def send(self, text):
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def stop(self, timeout=60):
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.qmp.close()


# ----------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------

# The workloads, as --only names them ("size" is measured by "save").
WORKLOADS = ("save", "restore", "seq", "rand1", "rand8", "cp", "dedup", "replay", "resume",
             "uffd", "remote")

SYSTEM_LABELS = {
    "snapfs": "snapfs (zstd)",
    "snapfs-lz4": "snapfs (lz4)",
    "sqfs-zstd": "squashfuse_ll zstd",
    "sqfs-lz4": "squashfuse_ll lz4",
    "borg": "borg",
    "zstd3": "zstd -3 file",
    "plain": "plain file",
    "null": "null FUSE",
}


class Bench:
    def __init__(self, a):
        self.a = a
        self.dir = os.path.abspath(a.dir)
        self.corpus = os.path.join(self.dir, "corpus")
        self.art = os.path.join(self.dir, "artefacts")
        self.out = os.path.join(self.dir, "out")
        self.mnt = os.path.join(self.dir, "mnt")
        self.snapfs = os.path.abspath(a.snapfs)
        self.results = {"config": {}, "images": {}, "dedup": {}, "machine": {}}
        self.t_start = time.monotonic()
        if a.quick:
            self.sparse_size, self.sparse_data, self.core_mib = 512 * MiB, 32 * MiB, 32
            self.runs, self.runs_cheap = 1, 2
            self.rand_n, self.rand8_n = 300, 800
            self.uffd_runs = 3
        else:
            self.sparse_size, self.sparse_data, self.core_mib = 4 * GiB, 300 * MiB, 200
            self.runs, self.runs_cheap = 3, 5
            self.rand_n, self.rand8_n = 1000, 4000
            self.uffd_runs = 5
        if a.runs:
            self.runs = self.runs_cheap = a.runs
        self.systems = ["snapfs", "snapfs-lz4", "sqfs-zstd", "sqfs-lz4", "borg"]
        self.readers = ["plain", "null"]          # read-only peers: no save
        if a.no_borg:
            self.systems.remove("borg")
        if a.systems:
            keep = set(a.systems.split(","))
            unknown = keep - set(self.systems) - set(self.readers) - {"zstd3"}
            if unknown:
                raise SystemExit(f"bench.py: --systems: unknown {', '.join(sorted(unknown))} "
                                 f"(known: {', '.join(self.systems + self.readers + ['zstd3'])})")
            self.systems = [x for x in self.systems if x in keep]
            self.readers = [x for x in self.readers if x in keep]
        self.with_zstd3 = not a.systems or "zstd3" in a.systems.split(",")
        self.only = set(a.only.split(",")) if a.only else set(WORKLOADS)
        self.only = {"save" if w == "size" else w for w in self.only}
        if self.only - set(WORKLOADS):
            raise SystemExit(f"bench.py: --only: unknown {', '.join(sorted(self.only - set(WORKLOADS)))} "
                             f"(known: {', '.join(WORKLOADS)}, size = save)")
        self.disk = block_device(self.dir)
        # --snapfs-variant NAME=OPTS: system "snapfs+NAME" reads the snapfs
        # store through a mount with -o OPTS added (e.g. a working-set mode).
        self.variants = {}
        for v in a.snapfs_variant or []:
            name, sep, opts = v.partition("=")
            if not sep or not name or not opts:
                raise SystemExit(f"bench.py: --snapfs-variant {v!r}: expected NAME=OPTS")
            self.variants[name] = opts
        if "snapfs" in self.systems:
            at = self.systems.index("snapfs") + 1
            self.systems[at:at] = [f"snapfs+{n}" for n in self.variants]

    def nruns(self, phase, image):
        """Runs of one measure: 5 where cheap (the core image's restores,
        sequential reads and copies; single-reader random reads) and for
        the sparse image's sequential reads (the least stable figure: see
        BENCHMARKS.md), else 3."""
        if phase == "save" or phase == "rand8":
            return self.runs
        if phase in ("rand1", "seq") or image == "core":
            return self.runs_cheap
        return self.runs

    # --- environment --------------------------------------------------------

    def borg_env(self, home):
        env = dict(os.environ)
        env.update(BORG_BASE_DIR=home, BORG_FUSE_IMPL="pyfuse3",
                   BORG_RELOCATED_REPO_ACCESS_IS_OK="yes",
                   BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK="yes",
                   BORG_DISPLAY_PASSPHRASE="no")
        return env

    def machine(self):
        def out(cmd):
            try:
                return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
            except OSError:
                return ""
        lscpu = out(["lscpu"])
        model = next((l.split(":", 1)[1].strip() for l in lscpu.splitlines()
                      if l.startswith("Model name")), platform.processor())
        mem = next((int(l.split()[1]) for l in open("/proc/meminfo")
                    if l.startswith("MemTotal")), 0)
        dev = out(["findmnt", "-n", "-o", "SOURCE,FSTYPE", "-T", self.dir])
        disk = out(["lsblk", "-dno", "NAME,SIZE,ROTA,MODEL"])
        src_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        head = out(["git", "-C", src_root, "log", "-1", "--format=%h %cI %s"])
        dirty = len(out(["git", "-C", src_root, "status", "--porcelain", "--", "include", "src", "fs",
                         "schema", "meson.build"]).splitlines())
        st = os.stat(self.snapfs)
        vers = {
            "snapfs": out([self.snapfs, "--version"]).splitlines()[0:1],
            "snapfs_binary": f"{self.snapfs}, built {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime(st.st_mtime))}",
            "tree_at_run": f"{head}" + (f" + {dirty} uncommitted paths in src/ fs/ schema/"
                                        if dirty else ""),
            "mksquashfs": out(["mksquashfs", "-version"]).splitlines()[0:1],
            "squashfuse": out(["dpkg-query", "-W", "-f=${Version}", "squashfuse"]),
            "borg": out(["borg", "--version"]),
            "zstd": out(["zstd", "--version"]),
            "libfuse3": out(["pkg-config", "--modversion", "fuse3"]),
            "gdb": out(["gdb", "--version"]).splitlines()[0:1],
        }
        self.results["machine"] = {
            "cpu": model, "cores": os.cpu_count(), "mem_gib": round(mem / 2**20, 1),
            "kernel": platform.release(), "os": out(["sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"]),
            "fs": dev, "disks": disk, "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
            "versions": vers,
        }

    # --- corpus ---------------------------------------------------------------

    def make_corpus(self):
        os.makedirs(self.corpus, exist_ok=True)
        params = {"sparse_size": self.sparse_size, "sparse_data": self.sparse_data,
                  "core_mib": self.core_mib, "seed": self.a.seed, "v": 3}
        pfile = os.path.join(self.corpus, "params.json")
        if self.a.reuse_corpus and os.path.exists(pfile):
            old = json.load(open(pfile))
            if old.get("params") == params:
                log("corpus: reusing " + self.corpus)
                self.layout = old
                return
        for name in os.listdir(self.corpus):
            rmtree(os.path.join(self.corpus, name))
        seed = self.a.seed
        t0 = time.perf_counter()
        log(f"corpus: python3 filling {self.core_mib} MiB, gcore ...")
        core = os.path.join(self.corpus, "core.raw")
        make_core(core, self.core_mib, seed, self.corpus)
        log(f"corpus: core.raw {os.path.getsize(core) / MiB:.0f} MiB "
            f"({time.perf_counter() - t0:.0f} s)")
        t0 = time.perf_counter()
        sparse = os.path.join(self.corpus, "sparse.img")
        exts = make_sparse(sparse, self.sparse_size, self.sparse_data, seed + 100)
        log(f"corpus: sparse.img {self.sparse_size / GiB:.2f} GiB, {len(exts)} extents, "
            f"{sum(e[1] for e in exts) / MiB:.0f} MiB data ({time.perf_counter() - t0:.0f} s)")
        pages = nonzero_pages(sparse, exts)
        changed = {}
        for pct in (1, 100):
            dst = os.path.join(self.corpus, f"sparse-{pct}pct.img")
            changed[pct] = make_changed(sparse, dst, pages, pct / 100, seed + 200 + pct)
        log(f"corpus: pairs made, {len(pages)} non-zero pages; changed {changed}")
        self.layout = {"params": params, "extents": exts, "nonzero_pages": len(pages),
                       "changed": changed}
        json.dump(self.layout, open(pfile, "w"))

    def images(self):
        return [("core", os.path.join(self.corpus, "core.raw")),
                ("sparse", os.path.join(self.corpus, "sparse.img"))]

    def offsets_file(self, image, path, n, run_i):
        """n random page offsets of the image's data (the same for every
        system within a run; new ones each run)."""
        r = random.Random(f"{self.a.seed}-{image}-{n}-{run_i}")
        if image == "sparse":
            exts = self.layout["extents"]
            lens = [e[1] for e in exts]
            chosen = r.choices(exts, weights=lens, k=n)
            offs = [e[0] + r.randrange(e[1] // PAGE) * PAGE for e in chosen]
        else:
            pages = os.path.getsize(path) // PAGE
            offs = [r.randrange(pages) * PAGE for _ in range(n)]
        f = os.path.join(self.out, f"offsets-{image}-{n}-{run_i}.txt")
        with open(f, "w") as fh:
            fh.write("".join(f"{o}\n" for o in offs))
        return f

    # --- save and size --------------------------------------------------------

    def checkpoint_size(self, store):
        """The store's bytes on disk, as `snapfs info STORE` counts them:
        snapfs.db and its WAL plus the allocated blocks of packs/*.pack
        (where the blobs are, since schema version 2)."""
        db = os.path.join(store, "snapfs.db")
        run(["sqlite3", db, "PRAGMA wal_checkpoint(TRUNCATE);"])
        wal = db + "-wal"
        size = os.path.getsize(db) + (os.path.getsize(wal) if os.path.exists(wal) else 0)
        packs = os.path.join(store, "packs")
        if os.path.isdir(packs):
            for n in os.listdir(packs):
                if n.endswith(".pack"):
                    size += os.stat(os.path.join(packs, n)).st_blocks * 512
        return size

    def save_one(self, system, image, src, run_i):
        """One timed save into a fresh target; returns (seconds, stored bytes, extra)."""
        name = os.path.basename(src)
        d = os.path.join(self.art, image)
        os.makedirs(d, exist_ok=True)
        extra = {}
        if system.startswith("snapfs"):
            store = os.path.join(d, system)
            rmtree(store)
            run([self.snapfs, "init", store, "--quiet"])
            before = self.checkpoint_size(store)
            codec = "lz4" if system == "snapfs-lz4" else "zstd"
            drop_caches()
            t0 = time.perf_counter()
            res = run([self.snapfs, "save", store, "img", src, "--format", "raw", "--codec", codec,
                       "--quiet", "--json"], capture=True)
            os.sync()
            secs = time.perf_counter() - t0
            extra = json.loads(res.stdout)
            size = self.checkpoint_size(store) - before
            # What a cold random read decodes: one blob, on average this big.
            row = run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
                       "SELECT avg(page_count), avg(stored_size), count(*) FROM blobs;"],
                      capture=True).stdout.strip().split("|")
            extra["blob_pages_avg"] = float(row[0] or 0)
            extra["blob_stored_avg"] = float(row[1] or 0)
            extra["blobs"] = int(row[2] or 0)
        elif system.startswith("sqfs"):
            img = os.path.join(d, f"{system}.sqfs")
            rmtree(img)
            comp = system.split("-")[1]
            drop_caches()
            secs = timed(["mksquashfs", src, img, "-comp", comp, "-noappend", "-quiet",
                          "-no-progress"], sync=True)
            size = os.path.getsize(img)
        elif system == "borg":
            repo, home = os.path.join(d, "borg"), os.path.join(d, "borg.home")
            rmtree(repo)
            rmtree(home)
            env = self.borg_env(home)
            run(["borg", "init", "-e", "none", repo], env=env)
            before = tree_bytes(repo)
            drop_caches()
            secs = timed(["borg", "create", "--compression", "zstd,3", f"{repo}::img", name],
                         env=env, cwd=os.path.dirname(src), sync=True)
            size = tree_bytes(repo) - before
        elif system == "zstd3":
            out = os.path.join(d, "zstd3.zst")
            rmtree(out)
            drop_caches()
            secs = timed(["zstd", "-3", "-q", "-f", src, "-o", out], sync=True)
            size = os.path.getsize(out)
        else:
            raise ValueError(system)
        return secs, size, extra

    def phase_save(self, image, src):
        res = self.results["images"][image]
        systems = [s for s in self.systems if "+" not in s] + (["zstd3"] if self.with_zstd3 else [])
        n = self.nruns("save", image)
        for run_i in range(n):
            for system in systems:
                secs, size, extra = self.save_one(system, image, src, run_i)
                res.setdefault("save_s", {}).setdefault(system, []).append(secs)
                res.setdefault("size", {})[system] = size
                if extra:
                    res.setdefault("save_json", {})[system] = extra
            log(f"{image}: save run {run_i + 1}/{n}: " + ", ".join(
                f"{s} {res['save_s'][s][-1]:.1f}s" for s in systems))
        log(f"{image}: sizes " + ", ".join(f"{s} {v / MiB:.1f} MiB" for s, v in res["size"].items()))

    # --- restore --------------------------------------------------------------

    def phase_restore(self, image, src):
        res = self.results["images"][image]
        d = os.path.join(self.art, image)
        name = os.path.basename(src)
        outdir = os.path.join(self.out, "restore")
        n = self.nruns("restore", image)
        cmds = {
            "snapfs": lambda o: [self.snapfs, "restore", os.path.join(d, "snapfs"), "img", o,
                                 "--force", "--quiet"],
            "snapfs-lz4": lambda o: [self.snapfs, "restore", os.path.join(d, "snapfs-lz4"), "img",
                                     o, "--force", "--quiet"],
            "zstd3": lambda o: ["zstd", "-d", "-q", "-f", os.path.join(d, "zstd3.zst"), "-o", o],
            "sqfs-zstd": lambda o: ["unsquashfs", "-f", "-q", "-n", "-d", o,
                                    os.path.join(d, "sqfs-zstd.sqfs")],
            "sqfs-lz4": lambda o: ["unsquashfs", "-f", "-q", "-n", "-d", o,
                                   os.path.join(d, "sqfs-lz4.sqfs")],
            "borg": lambda o: ["borg", "extract", "--sparse", f"{os.path.join(d, 'borg')}::img"],
        }
        order = [s for s in self.systems + (["zstd3"] if self.with_zstd3 else []) if s in cmds]
        for run_i in range(n):
            for system in order:
                rmtree(outdir)
                os.makedirs(outdir)
                target = os.path.join(outdir, "out.img")
                env, cwd = None, None
                if system.startswith("sqfs"):
                    target = os.path.join(outdir, "x")
                if system == "borg":
                    env, cwd = self.borg_env(os.path.join(d, "borg.home")), outdir
                drop_caches()
                secs = timed(cmds[system](target), env=env, cwd=cwd, sync=True)
                res.setdefault("restore_s", {}).setdefault(system, []).append(secs)
                if run_i == 0:
                    got = {"sqfs-zstd": os.path.join(outdir, "x", name),
                           "sqfs-lz4": os.path.join(outdir, "x", name),
                           "borg": os.path.join(outdir, name)}.get(system, target)
                    same = same_content(src, got)
                    res.setdefault("restore_ok", {})[system] = same
                    if not same:
                        log(f"{image}: WARNING: {system} restore differs from the source")
            log(f"{image}: restore run {run_i + 1}/{n}: " + ", ".join(
                f"{s} {res['restore_s'][s][-1]:.1f}s" for s in order))
        rmtree(outdir)

    # --- reads through mounts -----------------------------------------------

    def mount_for(self, system, image, src, snapfs_opts=()):
        """A Mount for system (None for the plain file) and the file to read.
        "snapfs+NAME" is the snapfs store mounted with the extra options of
        --snapfs-variant NAME=OPTS; snapfs_opts are added to every snapfs
        mount (the resume's -o private_rw)."""
        d = os.path.join(self.art, image)
        mnt = os.path.join(self.mnt, system)
        name = os.path.basename(src)
        if system == "plain":
            return None, src
        # snapfs and nullfs: the same options, the rule for the ceiling.
        ra_opts = ["-o", f"read_ahead_kb={READ_AHEAD_KB}"]
        if system.startswith("snapfs"):
            path = os.path.join(mnt, "img", "memory")
            store, _, variant = system.partition("+")
            extra = ["-o", self.variants[variant]] if variant else []
            return Mount([self.snapfs, "mount", os.path.join(d, store), mnt, "-f", *ra_opts,
                          *snapfs_opts, *extra], mnt, path), path
        if system.startswith("sqfs"):
            path = os.path.join(mnt, name)
            return Mount(["squashfuse_ll", "-f", os.path.join(d, f"{system}.sqfs"), mnt],
                         mnt, path, read_ahead_kb=READ_AHEAD_KB), path
        if system == "borg":
            path = os.path.join(mnt, name)
            env = self.borg_env(os.path.join(d, "borg.home"))
            return Mount(["borg", "mount", "-f", f"{os.path.join(d, 'borg')}::img", mnt],
                         mnt, path, env=env, read_ahead_kb=READ_AHEAD_KB), path
        if system == "null":
            path = os.path.join(mnt, "memory")
            return Mount([self.a.nullfs, mnt, "-f", "-o", f"size={os.path.getsize(src)}",
                          *ra_opts], mnt, path), path
        raise ValueError(system)

    def measure_read(self, system, image, src, metric, run_i):
        m, path = self.mount_for(system, image, src)
        value, hwm = None, None
        ctx = m if m else _Null()
        with ctx:
            drop_caches()
            if metric == "seq":
                cpu0 = cpu_seconds(m.proc.pid) if m else None
                ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
                t = timed(["dd", f"if={path}", "of=/dev/null", "bs=1M", "status=none"])
                ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
                value = os.path.getsize(src) / t / 1e6          # MB/s
                # The reader's own CPU (dd: the copy out of the page cache
                # and the faults of the file's pages): with the daemon's,
                # what two cores must share.
                self.results["images"][image].setdefault("seq_reader_cpu_s_per_gb", {}).setdefault(
                    system, []).append((ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime)
                                       / (os.path.getsize(src) / 1e9))
                if cpu0 is not None:
                    cpu1 = cpu_seconds(m.proc.pid)
                    if cpu1 is not None:
                        self.results["images"][image].setdefault("seq_cpu_s_per_gb", {}).setdefault(
                            system, []).append((cpu1 - cpu0) / (os.path.getsize(src) / 1e9))
            elif metric in ("rand1", "rand8"):
                n = self.rand_n if metric == "rand1" else self.rand8_n
                threads = 1 if metric == "rand1" else 8
                offs = self.offsets_file(image, src, n, run_i)
                before = disk_stats(self.disk)
                out = run([self.a.randread, path, offs, str(threads)], capture=True).stdout
                value = json.loads(out)
                after = disk_stats(self.disk)
                if before is not None and after is not None:
                    # Everything the data's disk served meanwhile, readahead
                    # included, per 4 KiB read asked for.
                    value["disk_reqs_per_read"] = (after[0] - before[0]) / value["count"]
                    value["disk_kib_per_read"] = (after[1] - before[1]) * 512 / KiB / value["count"]
                if system == "null":
                    value["hash"] = None
            elif metric == "cp":
                dst = os.path.join(self.out, "cp.img")
                rmtree(dst)
                t = timed(["cp", "--sparse=always", "--reflink=never", path, dst])
                value = t
                if run_i == 0:
                    same = same_content(src, dst)
                    if not same:
                        log(f"{image}: WARNING: cp from {system} differs from the source")
                    self.results["images"][image].setdefault("cp_ok", {})[system] = same
                    st = os.stat(dst)
                    self.results["images"][image].setdefault("cp_blocks", {})[system] = st.st_blocks * 512
                rmtree(dst)
            if m:
                hwm = m.hwm_kib()
        return value, hwm

    def phase_reads(self, image, src):
        res = self.results["images"][image]
        systems = self.readers + [s for s in self.systems]
        metrics = [w for w in ("seq", "rand1", "rand8", "cp") if w in self.only]
        for s in self.systems:
            d = os.path.join(self.art, image)
            stored = os.path.join(d, {"sqfs-zstd": "sqfs-zstd.sqfs",
                                      "sqfs-lz4": "sqfs-lz4.sqfs"}.get(s, s.split("+")[0]))
            if metrics and not os.path.exists(stored):
                raise SystemExit(f"bench.py: {stored} is missing: run the save workload first "
                                 f"(--only save,...)")
        for metric in metrics:
            n = self.nruns(metric, image)
            for run_i in range(n):
                for system in systems:
                    if metric == "cp" and system == "null":
                        continue       # all data: a 4 GiB copy of constants, no meaning
                    value, hwm = self.measure_read(system, image, src, metric, run_i)
                    res.setdefault(metric, {}).setdefault(system, []).append(value)
                    if hwm:
                        res.setdefault("hwm_kib", {}).setdefault(system, {}).setdefault(
                            metric, []).append(hwm)
                log(f"{image}: {metric} run {run_i + 1}/{n}: " + ", ".join(
                    f"{s} {_brief(res[metric][s][-1], metric)}" for s in systems if s in res[metric]))
            if metric == "rand1" and "snapfs" in systems and self.a.readcost:
                self.measure_own_cost(image, src, n)
            if metric.startswith("rand") and "plain" in res[metric]:
                ref = {v["hash"] for v in res[metric]["plain"]}
                for s in systems:
                    got = {v["hash"] for v in res[metric].get(s, []) if v.get("hash")}
                    if s != "null" and got and not got <= ref:
                        log(f"{image}: WARNING: {metric}: {s} returned other bytes than the file")
                        res.setdefault("rand_ok", {})[s] = False

    def measure_own_cost(self, image, src, n):
        """snapfs's own work per random 4 KiB read, for the floor beside the
        random-read targets: each run's offsets read through libsnapfs
        (tests/bench/readcost.c) with the packs in the page cache and no
        FUSE in between."""
        store = os.path.join(self.art, image, "snapfs")
        res = self.results["images"][image]
        for run_i in range(n):
            offs = self.offsets_file(image, src, self.rand_n, run_i)
            out = run([self.a.readcost, store, "img", offs], capture=True).stdout
            res.setdefault("rand1_own", {}).setdefault("snapfs", []).append(json.loads(out))
        log(f"{image}: snapfs's own work per random read (no disk, no FUSE): p50 " +
            ", ".join(f"{v['p50_us']:.1f}" for v in res["rand1_own"]["snapfs"]) + " us")

    # --- working set replay ----------------------------------------------------

    def replay_trace(self, src):
        """A fault trace of a guest resume: ~10 % of the image's data pages,
        in REPLAY_REGIONS hot regions (a random stretch of data pages each,
        about two thirds of them touched, in ascending order), touched in
        bursts of 1-16 pages from one of a few regions active at a time.
        Returns page numbers in fault order."""
        r = random.Random(f"{self.a.seed}-replay")
        size = os.path.getsize(src)
        fd = os.open(src, os.O_RDONLY)
        try:
            pages = [p for a, b in data_ranges(fd, size)
                     for p in range(a // PAGE, (b + PAGE - 1) // PAGE)]
        finally:
            os.close(fd)
        per = max(1, len(pages) // 10 // REPLAY_REGIONS)
        used, regions = set(), []
        for _ in range(REPLAY_REGIONS):
            i = r.randrange(len(pages))
            span = pages[i:i + per * 3 // 2]
            chosen = [p for p in sorted(r.sample(span, min(per, len(span)))) if p not in used]
            used.update(chosen)
            if chosen:
                regions.append(chosen)
        r.shuffle(regions)
        order, active = [], []
        while regions or active:
            while len(active) < 4 and regions:
                active.append(regions.pop())
            reg = r.choice(active)
            k = r.randint(1, 16)
            order += reg[:k]
            del reg[:k]
            if not reg:
                active.remove(reg)
        return order, len(pages)

    def replay_once(self, path, trace):
        out = run([self.a.replay, path, trace], capture=True).stdout
        return json.loads(out)

    def phase_replay(self, image, src):
        """(a) snapfs without a working set, (b) snapfs with the working
        set that one replay under -o record left (b': the open not held
        while it is prefetched), (c) the plain file, (d)
        squashfuse_ll zstd: the same trace, cold, REPLAY_RUNS runs each."""
        d = os.path.join(self.art, image)
        os.makedirs(d, exist_ok=True)
        store = os.path.join(d, "snapfs-ws")
        sqfs = os.path.join(d, "sqfs-zstd.sqfs")
        # A store left by an earlier run is used again if this snapfs can
        # read it (an older schema is made again).
        if (not os.path.exists(os.path.join(store, "snapfs.db")) or
                subprocess.run([self.snapfs, "list", store, "--quiet"],
                               stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL).returncode != 0):
            rmtree(store)
            run([self.snapfs, "init", store, "--quiet"])
            run([self.snapfs, "save", store, "img", src, "--format", "raw", "--quiet"])
        if not os.path.exists(sqfs):
            run(["mksquashfs", src, sqfs, "-comp", "zstd", "-noappend", "-quiet", "-no-progress"])
        order, data_pages = self.replay_trace(src)
        trace = os.path.join(self.out, f"replay-{image}.txt")
        with open(trace, "w") as f:
            f.write("".join(f"{p}\n" for p in order))
        res = self.results.setdefault("replay", {})
        res.update(image=image, trace_pages=len(order), data_pages=data_pages,
                   regions=REPLAY_REGIONS, runs=REPLAY_RUNS)
        log(f"replay: trace of {len(order)} pages ({len(order) / data_pages * 100:.1f} % "
            f"of {data_pages} data pages)")
        mnt = os.path.join(self.mnt, "snapfs-ws")
        mem = os.path.join(mnt, "img", "memory")
        ra = ["-o", f"read_ahead_kb={READ_AHEAD_KB}"]

        def snapfs_mount(*opts):
            return Mount([self.snapfs, "mount", store, mnt, "-f", *ra, *opts], mnt, mem)

        # The record: one cold replay under -o record, saved at unmount,
        # without readahead, so that it holds the pages touched and not
        # the windows read around them.
        with Mount([self.snapfs, "mount", store, mnt, "-f", "-o", "record=60,read_ahead_kb=0"],
                   mnt, mem):
            drop_caches()
            self.replay_once(mem, trace)
        rows = run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"),
                    "SELECT count(*), coalesce(sum(page_count), 0) FROM working_set"],
                   capture=True).stdout.strip().split("|")
        res["ws_runs"], res["ws_pages"] = int(rows[0]), int(rows[1])
        log(f"replay: working set recorded, {rows[1]} pages in {rows[0]} runs")
        # The same store with the record laid out in first-touch order.
        laid = store + "-laid"
        rmtree(laid)
        shutil.copytree(store, laid, symlinks=True)
        out = run([self.snapfs, "workingset", laid, "img", "--lay-out", "--json"],
                  capture=True).stdout
        res["layout"] = json.loads(out)
        log(f"replay: working set laid out: {res['layout']}")
        laid_mnt = os.path.join(self.mnt, "snapfs-ws-laid")
        laid_mem = os.path.join(laid_mnt, "img", "memory")
        base = os.path.basename(src)
        sq_mnt = os.path.join(self.mnt, "sqfs-zstd")
        systems = {
            "snapfs": lambda: (snapfs_mount("-o", "noprefetch"), mem),
            "snapfs-ws": lambda: (snapfs_mount(), mem),
            "snapfs-ws-nowait": lambda: (snapfs_mount("-o", "prefetch_wait=0"), mem),
            "snapfs-ws-laid": lambda: (Mount([self.snapfs, "mount", laid, laid_mnt, "-f", *ra],
                                             laid_mnt, laid_mem), laid_mem),
            "plain": lambda: (None, src),
            "sqfs-zstd": lambda: (Mount(["squashfuse_ll", "-f", sqfs, sq_mnt], sq_mnt,
                                        os.path.join(sq_mnt, base),
                                        read_ahead_kb=READ_AHEAD_KB),
                                  os.path.join(sq_mnt, base)),
        }
        for run_i in range(REPLAY_RUNS):
            for system, make in systems.items():
                m, path = make()
                with (m if m else _Null()):
                    drop_caches()
                    v = self.replay_once(path, trace)
                if system.startswith("snapfs-ws"):
                    log_text = open((laid_mnt if system == "snapfs-ws-laid" else mnt)
                                    + ".log").read()
                    v["prefetch_log"] = [l for l in log_text.splitlines() if "prefetched" in l]
                res.setdefault("samples", {}).setdefault(system, []).append(v)
            log(f"replay run {run_i + 1}/{REPLAY_RUNS}: " + ", ".join(
                f"{s} {res['samples'][s][-1]['seconds'] * 1e3:.0f} ms" for s in systems))
        hashes = {v["hash"] for v in res["samples"]["plain"]}
        for system in systems:
            got = {v["hash"] for v in res["samples"][system]}
            res.setdefault("bytes_ok", {})[system] = got == hashes
            if got != hashes:
                log(f"replay: WARNING: {system} returned other bytes than the file")

    # --- userfaultfd page server -----------------------------------------------

    def uffd_once(self, store, src, order_file, *server_opts):
        """One cold run of uffd_client against `snapfs uffd STORE img`:
        the touches' p50 / p99 and the time from the first touch to the
        last, with every byte compared to src; the server's -v figures."""
        sock = os.path.join(self.out, "uffd.sock")
        drop_caches()
        srv = subprocess.Popen([self.snapfs, "uffd", store, "img", "--socket", sock, "-v",
                                *server_opts], stdin=subprocess.DEVNULL,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            out = run([self.a.uffd_client, "--socket", sock, "--expect", src, "--order",
                       f"list:{order_file}", "--timing"], capture=True).stdout
            _, err = srv.communicate(timeout=60)
        finally:
            if srv.poll() is None:
                srv.kill()
                srv.wait()
        t = out.split("timing ", 1)[1].split()
        v = {"count": int(t[1]), "p50_us": float(t[3]), "p99_us": float(t[5]),
             "seconds": float(t[7]) / 1e3, "ok": "sigbus_pages 0 wrong_pages 0" in out,
             "server": [l for l in err.splitlines() if "faults" in l]}
        return v

    def phase_uffd(self, image, src):
        """`snapfs uffd` next to the FUSE mount (mmap MAP_PRIVATE) and the
        plain file, cold: (1) the fault latency of random single pages
        (uffd --no-prefetch, mount -o noprefetch, plain), as p50 / p99 of
        the first touches; (2) touching the recorded working set (the
        replay phase's trace, recorded by one replay under -o record) in
        its order: uffd with its prefetch (racing the touches, as a VMM
        that starts the guest at once), the mount with its prefetch, the
        plain file."""
        d = os.path.join(self.art, image)
        os.makedirs(d, exist_ok=True)
        store = os.path.join(d, "snapfs-uffd")
        rmtree(store)
        run([self.snapfs, "init", store, "--quiet"])
        run([self.snapfs, "save", store, "img", src, "--format", "raw", "--quiet"])
        order, data_pages = self.replay_trace(src)
        r = random.Random(f"{self.a.seed}-uffd")
        size = os.path.getsize(src)
        fd = os.open(src, os.O_RDONLY)
        try:
            pages = [p for a, b in data_ranges(fd, size)
                     for p in range(a // PAGE, (b + PAGE - 1) // PAGE)]
        finally:
            os.close(fd)
        rand = r.sample(pages, min(len(pages), UFFD_RANDOM_PAGES))
        traces = {}
        for name, pl in (("rand", rand), ("ws", order)):
            traces[name] = (os.path.join(self.out, f"uffd-{name}.txt"),
                            os.path.join(self.out, f"uffd-{name}.ranges"))
            with open(traces[name][0], "w") as f:
                f.write("".join(f"{p}\n" for p in pl))
            with open(traces[name][1], "w") as f:
                f.write("".join(f"{p * PAGE:#x} {(p + 1) * PAGE:#x}\n" for p in pl))
        mnt = os.path.join(self.mnt, "snapfs-uffd")
        mem = os.path.join(mnt, "img", "memory")
        with Mount([self.snapfs, "mount", store, mnt, "-f", "-o", "record=60,read_ahead_kb=0"],
                   mnt, mem):
            drop_caches()
            self.replay_once(mem, traces["ws"][0])
        res = self.results.setdefault("uffd", {})
        res.update(image=image, rand_pages=len(rand), ws_pages=len(order),
                   data_pages=data_pages, runs=self.uffd_runs)
        ra = ["-o", f"read_ahead_kb={READ_AHEAD_KB}"]

        def mounted(trace, *opts, ra=ra):
            with Mount([self.snapfs, "mount", store, mnt, "-f", *ra, *opts], mnt, mem):
                drop_caches()
                return self.replay_once(mem, trace)

        def plain(trace):
            drop_caches()
            return self.replay_once(src, trace)

        cases = {
            ("rand", "uffd"): lambda: self.uffd_once(store, src, traces["rand"][1],
                                                     "--no-prefetch"),
            ("rand", "mount"): lambda: mounted(traces["rand"][0], "-o", "noprefetch"),
            ("rand", "mount-ra0"): lambda: mounted(traces["rand"][0], "-o", "noprefetch",
                                                   ra=["-o", "read_ahead_kb=0"]),
            ("rand", "plain"): lambda: plain(traces["rand"][0]),
            ("ws", "uffd"): lambda: self.uffd_once(store, src, traces["ws"][1]),
            ("ws", "uffd-noprefetch"): lambda: self.uffd_once(store, src, traces["ws"][1],
                                                              "--no-prefetch"),
            ("ws", "mount"): lambda: mounted(traces["ws"][0]),
            ("ws", "plain"): lambda: plain(traces["ws"][0]),
        }
        for run_i in range(self.uffd_runs):
            for (what, system), fn in cases.items():
                v = fn()
                res.setdefault(what, {}).setdefault(system, []).append(v)
            log(f"uffd run {run_i + 1}/{self.uffd_runs}: " + ", ".join(
                f"{w}/{s} {res[w][s][-1]['seconds'] * 1e3:.1f} ms "
                f"(p50 {res[w][s][-1]['p50_us']:.0f} us, p99 {res[w][s][-1]['p99_us']:.0f} us)"
                for w, s in cases))
        res["bytes_ok"] = all(v.get("ok", True) for w in ("rand", "ws")
                              for vs in res[w].values() for v in vs)
        for w in ("rand", "ws"):
            hashes = {v["hash"] for v in res[w]["plain"]}
            for system, vs in res[w].items():
                if "hash" in vs[0] and {v["hash"] for v in vs} != hashes:
                    res["bytes_ok"] = False
        if not res["bytes_ok"]:
            log("uffd: WARNING: some system returned other bytes than the file")

    # --- a real resume ---------------------------------------------------------

    def phase_resume(self):
        """Boot a QEMU guest (TCG) with its RAM in a file on /dev/shm
        (share=on), let it fill memory, migrate its device state out with
        x-ignore-shared (RAM is not in the stream), quit; save the RAM file
        into a snapfs store and a squashfs image, copy it to the disk as the
        plain file; then, cold, resume from each with -incoming and the RAM
        mapped share=off from the file, and time the guest's first output
        ("resumed") and its checksum of the memory it filled."""
        res = self.results.setdefault("resume", {"runs": {}, "failed": {}})
        rdir = os.path.join(self.art, "resume")
        rmtree(rdir)
        os.makedirs(rdir)
        kernel, initrd = make_guest(os.path.join(self.dir, "guest"))
        shm = "/dev/shm/snapfs-bench-guest-ram"
        state = os.path.join(rdir, "state")
        ram = os.path.join(rdir, "memory")
        rmtree(shm)
        log(f"resume: booting the guest ({RESUME_RAM_MIB} MiB, TCG), filling its memory ...")
        q = Qemu(kernel, initrd, shm, True, rdir)
        try:
            t_ready, _ = q.wait_line("ready", 1800)
            _, line = q.wait_line("sum-before", 1)
            res["sum"] = line.split()[1]
            res["boot_fill_s"] = t_ready
            q.qmp.cmd("migrate-set-capabilities", capabilities=[
                {"capability": "x-ignore-shared", "state": True}])
            q.qmp.cmd("migrate", uri=f"exec:cat > {state}")
            while True:
                st = q.qmp.cmd("query-migrate").get("status")
                if st == "completed":
                    break
                if st in ("failed", "cancelled"):
                    raise RuntimeError(f"resume: migration to {state}: {st}")
                time.sleep(0.05)
            q.qmp.cmd("quit")
        finally:
            q.stop()
        run(["cp", "--sparse=always", shm, ram])
        rmtree(shm)
        os.sync()
        res["state_bytes"] = os.path.getsize(state)
        res["ram_alloc"] = os.stat(ram).st_blocks * 512
        log(f"resume: guest ready after {t_ready:.0f} s, checksum {res['sum']}; state "
            f"{res['state_bytes'] / KiB:.0f} KiB, RAM file {res['ram_alloc'] / MiB:.0f} MiB allocated")
        sizes = res.setdefault("size", {})
        if any(s.startswith("snapfs") for s in self.systems):
            store = os.path.join(rdir, "snapfs")
            run([self.snapfs, "init", store, "--quiet"])
            before = self.checkpoint_size(store)
            run([self.snapfs, "save", store, "img", ram, "--format", "raw", "--quiet"])
            sizes["snapfs"] = self.checkpoint_size(store) - before
        if "sqfs-zstd" in self.systems:
            run(["mksquashfs", ram, os.path.join(rdir, "sqfs-zstd.sqfs"), "-comp", "zstd",
                 "-noappend", "-quiet", "-no-progress"])
            sizes["sqfs-zstd"] = os.path.getsize(os.path.join(rdir, "sqfs-zstd.sqfs"))
        # snapfs twice: without a working set (-o noprefetch) and with the
        # one an untimed resume recorded in its first RESUME_WS_SECONDS
        # (the pages the guest's resume touches, not the whole checksum).
        systems = [x for x in ["plain"] + self.systems
                   if x == "plain" or x == "sqfs-zstd" or x.startswith("snapfs+")]
        if "snapfs" in self.systems:
            self.variants.update({"noprefetch": "noprefetch", "ws": "read_ahead_kb=1024",
                                  "record": f"record={RESUME_WS_SECONDS},read_ahead_kb=0"})
            systems[1:1] = ["snapfs+noprefetch", "snapfs+ws"]
            rec = self.resume_one("snapfs+record", kernel, initrd, ram, state, rdir)
            pages = run([self.snapfs, "workingset", os.path.join(rdir, "snapfs"), "img", "--json"],
                        capture=True, check=False).stdout
            try:
                res["ws_pages"] = sum((r["end"] - r["start"]) // PAGE for r in json.loads(pages))
            except (ValueError, KeyError, TypeError):
                res["ws_pages"] = None
            log(f"resume: recorded working set: {res['ws_pages']} pages "
                f"({'ok' if 'error' not in rec else rec['error']})")
        for run_i in range(self.runs_cheap):
            for system in systems:
                if system in res["failed"]:
                    continue
                value = self.resume_one(system, kernel, initrd, ram, state, rdir)
                if "error" in value:
                    res["failed"][system] = value
                    log(f"resume: {system}: {value['error']}")
                    continue
                res["runs"].setdefault(system, []).append(value)
            log(f"resume run {run_i + 1}/{self.runs_cheap}: " + ", ".join(
                f"{x} resumed {v[-1]['resumed_s']:.2f}s sum {v[-1]['sum_s']:.2f}s"
                for x, v in res["runs"].items() if v))

    def resume_one(self, system, kernel, initrd, ram, state, rdir):
        """One cold resume; a dict of times, or {"error": why}."""
        m, path = self.mount_for(system, "resume", ram, snapfs_opts=["-o", "private_rw"])
        try:
            return self._resume_mounted(system, kernel, initrd, path, state, rdir, m)
        except RuntimeError as e:
            return {"error": str(e)[-800:]}

    def _resume_mounted(self, system, kernel, initrd, path, state, rdir, m):
        readonly = False
        with (m or _Null()):
            if system.startswith("sqfs"):
                # squashfuse_ll mounts read-only: QEMU's O_RDWR open of the
                # file fails with EROFS. Show it, then try readonly=on.
                try:
                    os.close(os.open(path, os.O_RDWR))
                    why = None
                except OSError as e:
                    why = f"open(O_RDWR) of the file: {e.strerror}"
                if why:
                    out = self._resume_try(kernel, initrd, path, state, rdir, False, m)
                    if "error" not in out:
                        return out
                    readonly = True
                    out = self._resume_try(kernel, initrd, path, state, rdir, True, m)
                    if "error" in out:
                        out["error"] = (f"share=off: {why}; with readonly=on: {out['error']}")
                    else:
                        out["mode"] = "readonly=on"
                    return out
            return self._resume_try(kernel, initrd, path, state, rdir, readonly, m)

    def _resume_try(self, kernel, initrd, path, state, rdir, readonly, m):
        drop_caches()
        before = disk_stats(self.disk)
        cpu0 = cpu_seconds(m.proc.pid) if m else None
        try:
            q = Qemu(kernel, initrd, path, False, rdir, incoming=state, readonly=readonly)
        except RuntimeError as e:
            return {"error": str(e)}
        out = {}
        try:
            q.qmp.wait_event("RESUME", 300)
            out["running_s"] = time.perf_counter() - q.t0
            q.send("\n")
            out["resumed_s"], _ = q.wait_line("resumed", 120)
            out["sum_s"], line = q.wait_line("sum-after", 1800)
            out["ok"] = line.split()[1] == self.results["resume"]["sum"]
            if not out["ok"]:
                log(f"resume: WARNING: checksum after resume {line.split()[1]} differs")
        except (RuntimeError, OSError, ValueError) as e:
            q.proc.kill()
            q.proc.wait()
            err = q.proc.stderr.read().decode(errors="replace").strip()
            return {"error": (str(e) + (" / " + err[-400:] if err and err not in str(e) else ""))[:800]}
        finally:
            q.stop()
        after = disk_stats(self.disk)
        if before and after:
            out["disk_reqs"] = after[0] - before[0]
            out["disk_mib"] = (after[1] - before[1]) * 512 / MiB
        if cpu0 is not None:
            cpu1 = cpu_seconds(m.proc.pid)
            if cpu1 is not None:
                out["daemon_cpu_s"] = cpu1 - cpu0
        return out

    # --- a store in an object store ---------------------------------------------

    def s3_tool(self, env, *args):
        """tests/remote/s3_client_test (the core's S3 client): its output."""
        return run([self.a.s3_client, *args], env=env, capture=True).stdout

    def phase_remote(self, image, src):
        """The core image in a remote store on a throwaway radosgw
        (tests/remote/ceph-cluster.sh: one monitor, one memstore OSD,
        radosgw on 127.0.0.1). Host A (a store directory) saves; host B (a
        second directory on the same bucket) reads, cold: its pack cache
        emptied, the page cache dropped and a fresh mount for every run.
        References from the same radosgw through the same S3 client
        (s3_client_test): random 4 KiB ranged GETs of a pack object (p50,
        p99), and the raw image as one object read in 1 MiB ranged GETs one
        after the other (the plain ranged-GET stream of the same bytes).
        Then the replay phase's trace through B's mount with the working
        set that one replay under -o record recorded and without it, and
        the upload of a child with 1 % of its data pages changed."""
        res = self.results.setdefault("remote", {})
        work = os.path.join(self.dir, "remote")
        rmtree(work)
        os.makedirs(work)
        remote_tests = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "remote")
        cluster = os.path.join(remote_tests, "ceph-cluster.sh")
        sys.path.insert(0, remote_tests)
        from test_ceph_cluster import free_port   # the port pair the cluster needs
        port = free_port()
        text = run(["bash", cluster, "start", os.path.join(work, "ceph"), str(port)],
                   capture=True).stdout
        env = dict(os.environ)
        env.update(l.split("=", 1) for l in text.splitlines() if "=" in l)
        try:
            self.remote_runs(image, src, work, env, res)
        finally:
            run(["bash", cluster, "stop", os.path.join(work, "ceph")], check=False)

    def remote_runs(self, image, src, work, env, res):
        url = "s3://snapfs-bench/core"
        self.s3_tool(env, "mkbucket", "s3://snapfs-bench")
        a, b = os.path.join(work, "host-a"), os.path.join(work, "host-b")
        run([self.snapfs, "init", a, "--remote", url, "--quiet"], env=env)
        t = timed([self.snapfs, "save", a, "img", src, "--format", "raw", "--quiet"], env=env)
        first = self.remote_du(env, url)
        res.update(image=image, save_s=t, first_bytes=first, file_size=os.path.getsize(src))
        run([self.snapfs, "init", b, "--remote", url, "--quiet"], env=env)
        # The references: ranged GETs of the first pack, the raw image streamed.
        pack_key = self.remote_first_pack(env, url)
        out = self.s3_tool(env, "bench", url, pack_key, str(self.rand_n))
        m = out.split("p50 ", 1)[1].split()
        res["get_p50_us"] = float(m[0]) * 1e3
        res["get_p99_us"] = float(out.split("p99 ", 1)[1].split()[0]) * 1e3
        self.s3_tool(env, "putfile", "s3://snapfs-bench/plain", "core.raw", src)
        mnt = os.path.join(self.mnt, "snapfs-remote")
        mem = os.path.join(mnt, "img", "memory")
        order, _ = self.replay_trace(src)
        trace = os.path.join(self.out, "remote-trace.txt")
        with open(trace, "w") as f:
            f.write("".join(f"{p}\n" for p in order))
        cache = os.path.join(b, "cache")

        def mounted(*opts):
            rmtree(cache)
            return Mount([self.snapfs, "mount", b, mnt, "-f", *opts], mnt, mem, env=env)

        with mounted("-o", "record=60,read_ahead_kb=0"):
            drop_caches()
            self.replay_once(mem, trace)
        ra = ["-o", f"read_ahead_kb={READ_AHEAD_KB}"]
        for run_i in range(self.runs):
            offs = self.offsets_file(image, src, self.rand_n, run_i)
            with mounted(*ra, "-o", "noprefetch"):
                drop_caches()
                v = json.loads(run([self.a.randread, mem, offs, "1"], capture=True).stdout)
            res.setdefault("rand1", []).append(v)
            with mounted(*ra, "-o", "noprefetch"):
                drop_caches()
                res.setdefault("seq_mb_s", []).append(
                    os.path.getsize(src) / timed(["dd", f"if={mem}", "of=/dev/null", "bs=1M",
                                                  "status=none"]) / 1e6)
            line = self.s3_tool(env, "stream", "s3://snapfs-bench/plain", "core.raw", str(MiB))
            w = line.split("stream ", 1)[1].split()
            res.setdefault("stream_mb_s", []).append(int(w[0]) / float(w[3]) / 1e6)
            for system, opts in (("ws", ()), ("nows", ("-o", "noprefetch"))):
                with mounted(*ra, *opts):
                    drop_caches()
                    res.setdefault(f"replay_{system}", []).append(self.replay_once(mem, trace))
            log(f"remote run {run_i + 1}/{self.runs}: random p50 {res['rand1'][-1]['p50_us']:.0f} us "
                f"(GET {res['get_p50_us']:.0f} us), sequential {res['seq_mb_s'][-1]:.0f} MB/s "
                f"(stream {res['stream_mb_s'][-1]:.0f}), replay {res['replay_ws'][-1]['seconds'] * 1e3:.0f} "
                f"/ {res['replay_nows'][-1]['seconds'] * 1e3:.0f} ms")
        child = os.path.join(self.out, "core-1pct.raw")
        changed = change_data_pages(src, child, 0.01, f"{self.a.seed}-remote")
        before = self.remote_du(env, url)
        t = timed([self.snapfs, "save", b, "img2", child, "--format", "raw", "--parent", "img",
                   "--quiet"], env=env)
        res.update(child_bytes=self.remote_du(env, url) - before, child_save_s=t,
                   child_changed_pages=changed)
        os.unlink(child)
        hashes = {v["hash"] for v in res["rand1"]}
        res["bytes_ok"] = all(v.get("ok", True) for k in ("replay_ws", "replay_nows")
                              for v in res.get(k, []))
        log(f"remote: first snapshot {fmt_bytes(first)} up, 1 % child {fmt_bytes(res['child_bytes'])}; "
            f"{len(hashes)} distinct random-read hashes over {len(res['rand1'])} runs")

    def remote_du(self, env, url):
        """Bytes of pack objects in the bucket (what saves uploaded)."""
        out = self.s3_tool(env, "ls", url, "packs/")
        return sum(int(l.split()[1]) for l in out.splitlines() if l.startswith("packs/"))

    def remote_first_pack(self, env, url):
        """The key of the biggest pack object, relative to the URL's prefix."""
        out = self.s3_tool(env, "ls", url, "packs/")
        best = max((l.split() for l in out.splitlines() if l.startswith("packs/")),
                   key=lambda w: int(w[1]))
        return best[0]

    # --- dedup ------------------------------------------------------------------

    def phase_dedup(self):
        d = os.path.join(self.art, "sparse")
        base_store = os.path.join(d, "snapfs")
        first_snapfs = self.results["images"]["sparse"]["size"]["snapfs"]
        res = self.results["dedup"]
        res["first_snapfs"] = first_snapfs
        if "borg" in self.systems:
            res["first_borg"] = self.results["images"]["sparse"]["size"]["borg"]
        for pct in (0, 1, 100):
            src = os.path.join(self.corpus, "sparse.img" if pct == 0 else f"sparse-{pct}pct.img")
            # snapfs: a copy of the store that holds the first snapshot.
            store = os.path.join(self.art, f"dedup-snapfs-{pct}")
            rmtree(store)
            shutil.copytree(base_store, store)
            before = self.checkpoint_size(store)
            drop_caches()
            t0 = time.perf_counter()
            out = run([self.snapfs, "save", store, "img2", src, "--format", "raw", "--parent", "img",
                       "--quiet", "--json"], capture=True).stdout
            os.sync()
            secs = time.perf_counter() - t0
            added = self.checkpoint_size(store) - before
            res[f"snapfs_{pct}"] = {"added": added, "save_s": secs, "json": json.loads(out)}
            rmtree(store)
            if "borg" in self.systems:
                repo = os.path.join(self.art, f"dedup-borg-{pct}")
                home = repo + ".home"
                rmtree(repo)
                rmtree(home)
                shutil.copytree(os.path.join(d, "borg"), repo)
                shutil.copytree(os.path.join(d, "borg.home"), home)
                env = self.borg_env(home)
                before = tree_bytes(repo)
                drop_caches()
                secs = timed(["borg", "create", "--compression", "zstd,3", f"{repo}::img2",
                              os.path.basename(src)], env=env, cwd=self.corpus, sync=True)
                added = tree_bytes(repo) - before
                res[f"borg_{pct}"] = {"added": added, "save_s": secs}
                rmtree(repo)
                rmtree(home)
            log(f"dedup {pct}%: snapfs +{res[f'snapfs_{pct}']['added'] / MiB:.2f} MiB"
                + (f", borg +{res[f'borg_{pct}']['added'] / MiB:.2f} MiB" if f"borg_{pct}" in res else ""))

    # --- driver -------------------------------------------------------------------

    def note_load(self, phase):
        """How busy the rest of the machine was: at each phase boundary, the
        share of all CPUs that went to processes other than this benchmark
        and its children (their CPU time, daemons included) since the last
        boundary, from /proc/stat and os.times()."""
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        total = sum(v[:8])
        t = os.times()
        ours = (t.user + t.system + t.children_user + t.children_system) * os.sysconf("SC_CLK_TCK")
        prev = getattr(self, "_load_prev", None)
        if prev:
            d_total = total - prev["total"]
            d_busy = (total - idle) - (prev["total"] - prev["idle"])
            others = max(0.0, d_busy - (ours - prev["ours"])) / max(1, d_total)
            self.results.setdefault("load", []).append(
                {"phase": prev["phase"], "seconds": round(time.monotonic() - prev["t"]),
                 "machine_busy": round(d_busy / max(1, d_total), 3), "others": round(others, 3)})
        self._load_prev = {"phase": phase, "total": total, "idle": idle, "ours": ours,
                           "t": time.monotonic()}

    def go(self):
        for p in (self.art, self.out, self.mnt):
            os.makedirs(p, exist_ok=True)
        self.machine()
        image_work = self.only - {"resume", "replay", "uffd", "remote"}
        if image_work or (self.only & {"uffd", "remote"} and
                          not os.path.exists(os.path.join(self.corpus, "core.raw"))):
            self.make_corpus()
        else:
            self.layout = {"nonzero_pages": None, "changed": None, "extents": []}
        self.results["config"] = {
            "quick": self.a.quick, "runs": self.runs, "runs_cheap": self.runs_cheap,
            "rand_n": self.rand_n, "rand8_n": self.rand8_n, "seed": self.a.seed,
            "sparse_size": self.sparse_size, "sparse_data": self.sparse_data,
            "core_mib": self.core_mib, "layout_nonzero_pages": self.layout["nonzero_pages"],
            "changed_pages": self.layout["changed"], "extents": len(self.layout["extents"]),
        }
        self.results["config"]["only"] = sorted(self.only)
        self.results["config"]["systems"] = self.readers + self.systems
        for image, src in (self.images() if image_work else []):
            self.results["images"][image] = {"file_size": os.path.getsize(src),
                                             "alloc": os.stat(src).st_blocks * 512}
            if "save" in self.only:
                self.note_load(f"{image} save")
                self.phase_save(image, src)
            if "restore" in self.only:
                self.note_load(f"{image} restore")
                self.phase_restore(image, src)
            self.note_load(f"{image} reads")
            self.phase_reads(image, src)
            self.dump()
        if "dedup" in self.only and "snapfs" in self.systems and "save" in self.only:
            self.note_load("dedup")
            self.phase_dedup()
        if "replay" in self.only and "snapfs" in self.systems:
            self.note_load("replay")
            self.phase_replay("core", os.path.join(self.corpus, "core.raw"))
            self.dump()
        if "uffd" in self.only and "snapfs" in self.systems:
            if not self.a.uffd_client:
                raise SystemExit("bench.py: the uffd phase needs --uffd-client (run.sh builds it)")
            self.note_load("uffd")
            self.phase_uffd("core", os.path.join(self.corpus, "core.raw"))
            self.dump()
        if "remote" in self.only and "snapfs" in self.systems:
            if not self.a.s3_client:
                raise SystemExit("bench.py: the remote phase needs --s3-client (run.sh builds it)")
            self.note_load("remote")
            self.phase_remote("core", os.path.join(self.corpus, "core.raw"))
            self.dump()
        if "resume" in self.only:
            self.note_load("resume")
            self.phase_resume()
            self.dump()
        self.note_load("end")
        self.results["elapsed_s"] = time.monotonic() - self.t_start
        self.dump()
        md = report(self.results)
        with open(os.path.join(self.dir, "results.md"), "w") as f:
            f.write(md)
        print(md)

    def dump(self):
        with open(os.path.join(self.dir, "results.json"), "w") as f:
            json.dump(self.results, f, indent=1)


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _brief(v, metric):
    if metric == "seq":
        return f"{v:.0f}MB/s"
    if metric in ("rand1", "rand8"):
        return (f"p50 {v['p50_us']:.0f}us p99 {v['p99_us']:.0f}us"
                if metric == "rand1" else f"{v['count'] / v['wall_s']:.0f}/s")
    return f"{v:.2f}s"


# ----------------------------------------------------------------------------
# Report
# ----------------------------------------------------------------------------

def change_data_pages(src, dst, fraction, seed):
    """dst: src with fraction of its non-zero pages changed (a random 16 -
    512 byte span of each overwritten, as a running guest changes them).
    Returns how many pages changed."""
    r = random.Random(seed)
    shutil.copyfile(src, dst)
    size = os.path.getsize(src)
    fd = os.open(dst, os.O_RDWR)
    try:
        pages = [p for a, b in data_ranges(fd, size)
                 for p in range(a // PAGE, (b + PAGE - 1) // PAGE)
                 if os.pread(fd, PAGE, p * PAGE) != ZERO_PAGE]
        chosen = r.sample(pages, max(1, int(len(pages) * fraction)))
        for p in chosen:
            n = r.randint(16, 512)
            os.pwrite(fd, r.randbytes(n), p * PAGE + r.randrange(PAGE - n))
    finally:
        os.close(fd)
    return len(chosen)


def med(xs):
    return statistics.median(xs) if xs else None


def fmt_bytes(b):
    if b is None:
        return "-"
    if b >= GiB:
        return f"{b / GiB:.2f} GiB"
    if b >= MiB:
        return f"{b / MiB:.1f} MiB"
    return f"{b / KiB:.0f} KiB"


def fmt_s(s):
    if s is None:
        return "-"
    return f"{s:.2f} s" if s < 10 else f"{s:.1f} s"


def fmt_us(u):
    if u is None:
        return "-"
    return f"{u:.0f} µs" if u < 10000 else f"{u / 1000:.1f} ms"


def metric_values(img, key):
    """{system: median} for one measure of one image, and its formatter and
    whether higher is better."""
    if key == "size":
        return {s: v for s, v in img.get("size", {}).items()}, fmt_bytes, False
    if key in ("save_s", "restore_s", "cp"):
        return {s: med(v) for s, v in img.get(key, {}).items()}, fmt_s, False
    if key == "seq":
        return ({s: med(v) for s, v in img.get("seq", {}).items()},
                lambda x: "-" if x is None else f"{x:.0f} MB/s", True)
    if key in ("rand1_p50", "rand1_p99", "rand1_first_fifth_p50"):
        p = key.split("_", 1)[1]
        return ({s: med([x[f"{p}_us"] for x in v if f"{p}_us" in x])
                 for s, v in img.get("rand1", {}).items()}, fmt_us, False)
    if key == "rand1_own":
        return ({s: med([x["p50_us"] for x in v]) for s, v in img.get("rand1_own", {}).items()},
                fmt_us, False)
    if key in ("rand1_disk_reqs", "rand8_disk_reqs"):
        m = key.split("_")[0]
        return ({s: med([x["disk_reqs_per_read"] for x in v if "disk_reqs_per_read" in x])
                 for s, v in img.get(m, {}).items() if s != "null"},
                lambda x: "-" if x is None else f"{x:.2f}", False)
    if key == "blob_kib":
        return ({s: j["blob_pages_avg"] * PAGE for s, j in img.get("save_json", {}).items()
                 if j.get("blob_pages_avg")}, fmt_bytes, False)
    if key == "seq_cpu":
        return ({s: med(v) for s, v in img.get("seq_cpu_s_per_gb", {}).items()},
                lambda x: "-" if x is None else f"{x:.2f} s/GB", False)
    if key == "seq_reader_cpu":
        return ({s: med(v) for s, v in img.get("seq_reader_cpu_s_per_gb", {}).items()},
                lambda x: "-" if x is None else f"{x:.2f} s/GB", False)
    if key == "rand1_disk":
        return ({s: med([x["disk_kib_per_read"] for x in v if "disk_kib_per_read" in x])
                 for s, v in img.get("rand1", {}).items() if s != "null"},
                lambda x: "-" if x is None else f"{x:.0f} KiB", False)
    if key == "rand8":
        return ({s: med([x["count"] / x["wall_s"] for x in v]) for s, v in img.get("rand8", {}).items()},
                lambda x: "-" if x is None else f"{x:.0f} reads/s ({x * 4096 / 1e6:.1f} MB/s)", True)
    if key == "rand8_p99":
        return ({s: med([x["p99_us"] for x in v]) for s, v in img.get("rand8", {}).items()},
                fmt_us, False)
    if key == "hwm":
        out = {}
        for s, per in img.get("hwm_kib", {}).items():
            out[s] = max(max(v) for v in per.values()) * KiB
        return out, fmt_bytes, False
    if key == "hwm_seq":
        return ({s: max(per["seq"]) * KiB for s, per in img.get("hwm_kib", {}).items()
                 if per.get("seq")}, fmt_bytes, False)
    raise KeyError(key)


ROWS = [
    ("size", "store size"),
    ("save_s", "save time (+ sync)"),
    ("restore_s", "restore time, cold (+ sync)"),
    ("seq", "sequential read, cold (dd bs=1M)"),
    ("rand1_p50", "random 4 KiB read, cold, p50 (1 reader)"),
    ("rand1_p99", "random 4 KiB read, cold, p99 (1 reader)"),
    ("rand1_first_fifth_p50", "random 4 KiB read, cold, p50 of the first fifth (1 reader)"),
    ("rand1_own", "snapfs's own work per random 4 KiB read, p50 (packs in the page cache, "
     "no FUSE: tests/bench/readcost.c)"),
    ("rand1_disk", "disk read per random 4 KiB read (1 reader)"),
    ("rand1_disk_reqs", "disk read requests per random 4 KiB read (1 reader)"),
    ("blob_kib", "decoded per cold random read (mean blob size)"),
    ("seq_cpu", "daemon CPU (user+sys) per GB of the cold sequential read"),
    ("seq_reader_cpu", "reader (dd) CPU per GB of the same read"),
    ("rand8", "random 4 KiB reads, cold, 8 readers"),
    ("rand8_p99", "random 4 KiB read, cold, p99 (8 readers)"),
    ("rand8_disk_reqs", "disk read requests per random 4 KiB read (8 readers)"),
    ("cp", "cp --sparse=always out of the mount, cold"),
    ("hwm", "daemon peak RSS (VmHWM)"),
    ("hwm_seq", "daemon peak RSS (VmHWM), sequential read only"),
]
COLS = ["snapfs", "snapfs-lz4", "sqfs-zstd", "sqfs-lz4", "borg", "zstd3", "plain", "null"]


def image_table(name, img):
    cols = [c for c in COLS if any(c in metric_values(img, k)[0] for k, _ in ROWS)]
    lines = [f"| {name} | " + " | ".join(SYSTEM_LABELS[c] for c in cols) + " |",
             "|---|" + "---|" * len(cols)]
    for key, label in ROWS:
        vals, fmt, higher = metric_values(img, key)
        if not vals:
            continue
        base = vals.get("snapfs")
        cells = []
        for c in cols:
            v = vals.get(c)
            if v is None:
                cells.append("-")
                continue
            cell = fmt(v)
            if c != "snapfs" and base is not None and v:
                cell += f" ({base / v:.2f}×)"
            cells.append(cell)
        lines.append(f"| {label}{' ↑' if higher else ' ↓'} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def random_floor(img, p, sqfs):
    """What a cold random read through the mount is made of, measured apart
    in this run: a FUSE round trip (the null server's p50), a disk read
    (the plain file's p50; the packs' layout on disk is not the file's, so
    this is an estimate) and snapfs's own decode and checks (readcost's
    p50). Their sum, as text for the p50 target; "" when a part is
    missing."""
    parts = [metric_values(img, "rand1_p50")[0].get("null"),
             metric_values(img, "rand1_p50")[0].get("plain"),
             metric_values(img, "rand1_own")[0].get("snapfs")]
    if p != "p50" or None in parts or not sqfs:
        return ""
    floor = sum(parts)
    return (f"; parts: null {parts[0]:.0f} + plain {parts[1]:.0f} + own {parts[2]:.0f} = "
            f"{floor:.0f} µs = {floor / sqfs:.2f}×")


def targets(res):
    """[(target, snapfs, reference, ratio text, met)]"""
    out = []
    sp = res["images"].get("sparse", {})
    co = res["images"].get("core", {})

    def v(img, key, system):
        return metric_values(img, key)[0].get(system)

    for iname, img in (("sparse", sp), ("core", co)):
        s, q, n = v(img, "seq", "snapfs"), v(img, "seq", "sqfs-zstd"), v(img, "seq", "null")
        if s and q:
            out.append((f"{iname}: sequential cold read ≥ 1.5× squashfuse_ll-zstd",
                        f"{s:.0f} MB/s", f"{q:.0f} MB/s", f"{s / q:.2f}× (need ≥ 1.50×)", s >= 1.5 * q))
        if s and n:
            out.append((f"{iname}: sequential cold read ≥ 0.8× null FUSE",
                        f"{s:.0f} MB/s", f"{n:.0f} MB/s", f"{s / n:.2f}× (need ≥ 0.80×)", s >= 0.8 * n))
        for p in ("p50", "p99"):
            s, q = v(img, f"rand1_{p}", "snapfs"), v(img, f"rand1_{p}", "sqfs-zstd")
            if s and q:
                out.append((f"{iname}: random 4 KiB cold {p} ≤ ½ squashfuse_ll-zstd",
                            fmt_us(s), fmt_us(q), f"{s / q:.2f}× (need ≤ 0.50×)"
                            + random_floor(img, p, q), s <= 0.5 * q))
        s, q = v(img, "size", "snapfs"), v(img, "size", "sqfs-zstd")
        if s and q:
            out.append((f"{iname}: store size ≤ squashfs-zstd image", fmt_bytes(s), fmt_bytes(q),
                        f"{s / q:.2f}× (need ≤ 1.00×)", s <= q))
        s, q = v(img, "save_s", "snapfs"), v(img, "save_s", "sqfs-zstd")
        if s and q:
            out.append((f"{iname}: save at least as fast as mksquashfs -comp zstd", fmt_s(s),
                        fmt_s(q), f"{s / q:.2f}× time (need ≤ 1.00×)", s <= q))
        s, q = v(img, "restore_s", "snapfs"), v(img, "restore_s", "zstd3")
        if s and q:
            out.append((f"{iname}: restore at least as fast as zstd -d of zstd -3", fmt_s(s),
                        fmt_s(q), f"{s / q:.2f}× time (need ≤ 1.00×)", s <= q))
    s, q = v(sp, "cp", "snapfs"), v(sp, "cp", "sqfs-zstd")
    if s and q:
        out.append(("sparse: cp --sparse ≥ 10× faster than through squashfuse", fmt_s(s), fmt_s(q),
                    f"{q / s:.1f}× faster (need ≥ 10×)", q >= 10 * s))
    hwm = metric_values(sp, "hwm")[0].get("snapfs")
    if hwm:
        limit = 128 * MiB + 64 * MiB
        out.append(("sparse: daemon RSS ≤ cache size (128 MiB default) + 64 MiB", fmt_bytes(hwm),
                    fmt_bytes(limit), f"{hwm / limit:.2f}× of the limit", hwm <= limit))
    rp = res.get("replay")
    if rp and rp.get("samples"):
        m = replay_medians(rp)
        a, b, c = m.get("snapfs"), m.get("snapfs-ws"), m.get("plain")
        if a and b:
            out.append(("replay: with the working set ≥ 2× faster than without",
                        f"{b * 1e3:.1f} ms", f"{a * 1e3:.1f} ms",
                        f"{a / b:.2f}× faster (need ≥ 2×)", a >= 2 * b))
        if b and c:
            out.append(("replay: with the working set faster than the plain file",
                        f"{b * 1e3:.1f} ms", f"{c * 1e3:.1f} ms",
                        f"{b / c:.2f}× time (need < 1.00×)", b < c))
    out += remote_targets(res.get("remote"))
    d = res.get("dedup", {})
    if "snapfs_1" in d and d.get("first_snapfs"):
        frac = d["snapfs_1"]["added"] / d["first_snapfs"]
        out.append(("dedup: 1 % of pages changed adds ≤ 2 % of the first snapshot",
                    f"{fmt_bytes(d['snapfs_1']['added'])} ({frac * 100:.2f} %)",
                    f"{fmt_bytes(d['first_snapfs'] * 0.02)} (2 %)", f"{frac / 0.02:.2f}× of the limit",
                    frac <= 0.02))
    return out


def remote_medians(r):
    return {
        "rand_p50": med([v["p50_us"] for v in r.get("rand1", [])]),
        "rand_p99": med([v["p99_us"] for v in r.get("rand1", [])]),
        "seq": med(r.get("seq_mb_s", [])), "stream": med(r.get("stream_mb_s", [])),
        "ws": med([v["seconds"] for v in r.get("replay_ws", [])]),
        "nows": med([v["seconds"] for v in r.get("replay_nows", [])]),
    }


def remote_lines(r):
    """The remote phase's table: medians of its runs."""
    if not r or not r.get("rand1"):
        return []
    m = remote_medians(r)
    return [f"### A store in an S3 bucket: the core image on a throwaway radosgw (127.0.0.1, "
            f"memstore), read from a second host's store directory, cold", "",
            "| measure | snapfs (host B's mount) | radosgw through the same S3 client | ratio |",
            "|---|---|---|---|",
            f"| random 4 KiB read p50 ↓ | {fmt_us(m['rand_p50'])} | {fmt_us(r['get_p50_us'])} "
            f"(ranged 4 KiB GET) | {m['rand_p50'] / r['get_p50_us']:.2f}× |",
            f"| random 4 KiB read p99 ↓ | {fmt_us(m['rand_p99'])} | {fmt_us(r['get_p99_us'])} "
            f"| {m['rand_p99'] / r['get_p99_us']:.2f}× |",
            f"| sequential read ↑ | {m['seq']:.0f} MB/s | {m['stream']:.0f} MB/s (the raw image "
            f"in 1 MiB ranged GETs) | {m['seq'] / m['stream']:.2f}× |",
            f"| working-set replay ↓ | {m['ws'] * 1e3:.1f} ms with it | {m['nows'] * 1e3:.1f} ms "
            f"without | {m['nows'] / m['ws']:.2f}× faster |",
            f"| uploaded ↓ | child with 1 % of pages changed: {fmt_bytes(r['child_bytes'])} | first "
            f"snapshot: {fmt_bytes(r['first_bytes'])} | {r['child_bytes'] / r['first_bytes'] * 100:.2f} % |",
            "", f"Save of the first snapshot (host A, upload included): {fmt_s(r['save_s'])}; of "
            f"the child (host B): {fmt_s(r['child_save_s'])}. Host B's pack cache emptied and the "
            f"page cache dropped before every run; medians of {len(r['rand1'])} runs. "
            + ("Every byte compared right." if r.get("bytes_ok") else
               "**Some read returned wrong bytes.**"), ""]


def remote_targets(r):
    if not r or not r.get("rand1"):
        return []
    m = remote_medians(r)
    frac = r["child_bytes"] / r["first_bytes"]
    return [
        ("remote: random 4 KiB cold p50 ≤ 1.5× radosgw's ranged GET p50", fmt_us(m["rand_p50"]),
         fmt_us(r["get_p50_us"]), f"{m['rand_p50'] / r['get_p50_us']:.2f}× (need ≤ 1.50×)",
         m["rand_p50"] <= 1.5 * r["get_p50_us"]),
        ("remote: sequential ≥ 0.7× a ranged-GET stream of the same bytes", f"{m['seq']:.0f} MB/s",
         f"{m['stream']:.0f} MB/s", f"{m['seq'] / m['stream']:.2f}× (need ≥ 0.70×)",
         m["seq"] >= 0.7 * m["stream"]),
        ("remote: replay with the working set ≥ 3× faster than without", f"{m['ws'] * 1e3:.1f} ms",
         f"{m['nows'] * 1e3:.1f} ms", f"{m['nows'] / m['ws']:.2f}× faster (need ≥ 3×)",
         m["nows"] >= 3 * m["ws"]),
        ("remote: a 1 %-changed child uploads ≤ 2 % of the first", fmt_bytes(r["child_bytes"]),
         fmt_bytes(r["first_bytes"]), f"{frac * 100:.2f} % (need ≤ 2 %)", frac <= 0.02),
    ]


UFFD_LABELS = {
    "uffd": "snapfs uffd (userfaultfd, Firecracker's protocol)",
    "uffd-noprefetch": "snapfs uffd --no-prefetch",
    "mount": "snapfs mount, mmap MAP_PRIVATE",
    "mount-ra0": "snapfs mount, the same with -o read_ahead_kb=0",
    "plain": "plain file, mmap MAP_PRIVATE",
}


def uffd_lines(u):
    """The uffd phase's table: medians of its runs."""
    if not u or not u.get("rand"):
        return []
    lines = [f"### userfaultfd page server: {u['rand_pages']} random pages, and the working "
             f"set ({u['ws_pages']} pages) in recorded order, cold", "",
             "| system | random: p50 | p99 | working set: time | p50 | p99 |",
             "|---|---|---|---|---|---|"]
    for system, label in UFFD_LABELS.items():
        rv, wv = u["rand"].get(system, []), u.get("ws", {}).get(system, [])
        row = [label]
        row += ([fmt_us(med([v["p50_us"] for v in rv])), fmt_us(med([v["p99_us"] for v in rv]))]
                if rv else ["-", "-"])
        row += ([f"{med([v['seconds'] for v in wv]) * 1e3:.1f} ms",
                 fmt_us(med([v["p50_us"] for v in wv])), fmt_us(med([v["p99_us"] for v in wv]))]
                if wv else ["-", "-", "-"])
        lines.append("| " + " | ".join(row) + " |")
    lines += ["", "uffd and the mount prefetch the working set where shown (uffd's prefetch "
              "races the touches); times run from the first touch to the last (the mount and "
              "the plain file: from open()). The mount's and the plain file's random p50 is "
              "mostly pages their readahead (1 MiB windows) brought in; uffd brings in 4 "
              "pages around a fault. "
              + ("Every byte compared right." if u.get("bytes_ok") else
                 "**Some system returned wrong bytes.**"), ""]
    return lines


REPLAY_LABELS = {
    "snapfs": "(a) snapfs, no working set",
    "snapfs-ws": "(b) snapfs, working set prefetched (the open waits for it)",
    "snapfs-ws-nowait": "(b') the same, the open not held (-o prefetch_wait=0)",
    "snapfs-ws-laid": "(b'') the same, laid out (snapfs workingset --lay-out)",
    "plain": "(c) plain file",
    "sqfs-zstd": "(d) squashfuse_ll zstd",
}


def replay_medians(rp):
    return {s: med([v["seconds"] for v in vs]) for s, vs in rp["samples"].items()}


def replay_lines(rp):
    m = replay_medians(rp)
    lines = [f"### Working set replay: {rp['trace_pages']} first touches through MAP_PRIVATE, "
             f"cold ({rp['trace_pages'] / rp['data_pages'] * 100:.1f} % of the {rp['image']} "
             f"image's {rp['data_pages']} data pages, {rp['regions']} hot regions)", "",
             f"Working set recorded by one replay under -o record: {rp.get('ws_pages')} pages "
             f"in {rp.get('ws_runs')} runs (recorded with read_ahead_kb=0)"
             + (f"; its {rp['layout']['blobs']} blobs lay in {rp['layout']['stretches_before']} "
                f"stretches of the pack, {rp['layout']['stretches_after']} after "
                "`snapfs workingset --lay-out`" if rp.get("layout") else "")
             + f". Time from open() to the last first touch; medians of {rp['runs']} runs.", "",
             "| system | time | ÷ (a) | ÷ plain file | bytes |", "|---|---|---|---|---|"]
    for s, label in REPLAY_LABELS.items():
        if m.get(s) is None:
            continue
        ok = rp.get("bytes_ok", {}).get(s, True)
        lines.append(f"| {label} | {m[s] * 1e3:.1f} ms | {m[s] / m['snapfs']:.2f}× | "
                     f"{m[s] / m['plain']:.2f}× | {'same' if ok else '**differ**'} |")
    return lines + [""]


def resume_lines(res):
    r = res.get("resume")
    if not r or not (r.get("runs") or r.get("failed")):
        return []
    systems = list(r.get("runs", {}))
    label = lambda x: SYSTEM_LABELS.get(x, x.replace("snapfs+", "snapfs -o "))
    lines = ["### Resume of a QEMU guest with its RAM mapped from the file", "",
             f"QEMU 7.2 (TCG, 1 vCPU), {RESUME_RAM_MIB} MiB of guest RAM in a "
             "memory-backend-file (share=off, so MAP_PRIVATE) on the file, device state "
             f"({fmt_bytes(r.get('state_bytes'))}, saved with x-ignore-shared) read with "
             "-incoming; the guest had filled 128 MiB with random bytes and 69 MiB with "
             f"text ({fmt_bytes(r.get('ram_alloc'))} of the RAM file non-zero). Cold: page "
             "cache dropped, fresh mount (snapfs with -o private_rw). Medians; times from "
             "QEMU's start." + (f" snapfs -o ws: the working set that one untimed resume under "
                                f"-o record={RESUME_WS_SECONDS},read_ahead_kb=0 recorded "
                                f"({r.get('ws_pages')} pages), prefetched; snapfs -o noprefetch: "
                                "none." if r.get("ws_pages") is not None else ""), ""]
    if systems:
        lines += ["| | " + " | ".join(label(x) for x in systems) + " |",
                  "|---|" + "---|" * len(systems)]
        rows = [("stored size", lambda x: fmt_bytes(r.get("size", {}).get(x.split("+")[0]))
                 if x != "plain" else fmt_bytes(r.get("ram_alloc"))),
                ("guest running (QMP RESUME event)", lambda x: fmt_s(med([v["running_s"] for v in r["runs"][x]]))),
                ("first output after resume (\"resumed\")", lambda x: fmt_s(med([v["resumed_s"] for v in r["runs"][x]]))),
                ("checksum of its memory printed", lambda x: fmt_s(med([v["sum_s"] for v in r["runs"][x]]))),
                ("checksum equal to the one before saving", lambda x: "yes" if all(v.get("ok") for v in r["runs"][x]) else "**no**"),
                ("disk read (MiB, requests)", lambda x: f"{med([v.get('disk_mib', 0) for v in r['runs'][x]]):.0f} MiB, "
                 f"{med([v.get('disk_reqs', 0) for v in r['runs'][x]]):.0f}"),
                ("daemon CPU", lambda x: fmt_s(med([v["daemon_cpu_s"] for v in r["runs"][x] if "daemon_cpu_s" in v]))
                 if any("daemon_cpu_s" in v for v in r["runs"][x]) else "-"),
                ("runs", lambda x: str(len(r["runs"][x])))]
        for name, f in rows:
            lines.append(f"| {name} | " + " | ".join(f(x) for x in systems) + " |")
        lines.append("")
    for x, v in r.get("failed", {}).items():
        lines += [f"**{label(x)}: could not resume** — {v['error']}", ""]
    return lines


def load_line(res):
    loads = res.get("load", [])
    if not loads:
        return ""
    return ("Share of the machine's CPU (2 cores) used by other processes during each phase: "
            + ", ".join(f"{x['phase']} {x.get('others', 0) * 100:.0f} %" for x in loads)
            + " (the machine is shared; 0 % would be a quiet machine).")


def report(res):
    m = res["machine"]
    c = res["config"]
    lines = ["## Results", "",
             f"{m.get('date')}; {m.get('cpu')}, {m.get('cores')} cores, {m.get('mem_gib')} GiB, "
             f"kernel {m.get('kernel')}, {m.get('os')}; data on {m.get('fs')}. "
             f"{'QUICK (smoke) run. ' if c.get('quick') else ''}"
             f"Medians of {c.get('runs')} runs ({c.get('runs_cheap')} for the cheap ones: the core "
             f"image's restores, sequential reads and copies, single-reader random reads, the sparse "
             f"image's sequential reads); whole run {res.get('elapsed_s', 0) / 60:.0f} min.",
             "",
             load_line(res), "",
             "In each peer's cell, (r×) is snapfs ÷ that peer: for ↓ rows (time, size, latency, "
             "memory) below 1 means snapfs is better; for ↑ rows (throughput) above 1 means "
             "snapfs is better.", ""]
    for iname, img in res["images"].items():
        desc = (f"core image: {fmt_bytes(img['file_size'])} gcore of a python3 process"
                if iname == "core" else
                f"sparse image: {fmt_bytes(img['file_size'])}, {fmt_bytes(img['alloc'])} allocated, "
                f"{c.get('extents')} extents")
        lines += [f"### {desc}", "", image_table(iname, img), ""]
        bad = [f"{k}: {s}" for k in ("restore_ok", "cp_ok", "rand_ok")
               for s, ok in img.get(k, {}).items() if not ok]
        if bad:
            lines += ["**Wrong bytes:** " + ", ".join(bad), ""]
    d = res.get("dedup", {})
    if d:
        lines += ["### Dedup: what a second snapshot of the sparse image adds", "",
                  "| pages changed | snapfs added | of first | borg added | of first | "
                  "snapfs save | borg create |", "|---|---|---|---|---|---|---|"]
        for pct in (0, 1, 100):
            s = d.get(f"snapfs_{pct}")
            b = d.get(f"borg_{pct}")
            if not s:
                continue
            row = [f"{pct} %", fmt_bytes(s["added"]),
                   f"{s['added'] / d['first_snapfs'] * 100:.2f} %"]
            if b:
                row += [fmt_bytes(b["added"]), f"{b['added'] / d['first_borg'] * 100:.2f} %"]
            else:
                row += ["-", "-"]
            row += [fmt_s(s["save_s"]), fmt_s(b["save_s"]) if b else "-"]
            lines.append("| " + " | ".join(row) + " |")
        lines += ["", f"First snapshot: snapfs {fmt_bytes(d.get('first_snapfs'))}, "
                  f"borg {fmt_bytes(d.get('first_borg'))}. "
                  f"Changed pages: {c.get('changed_pages')} of {c.get('layout_nonzero_pages')} non-zero.", ""]
    rp = res.get("replay")
    if rp and rp.get("samples"):
        lines += replay_lines(rp)
    lines += uffd_lines(res.get("uffd"))
    lines += remote_lines(res.get("remote"))
    lines += resume_lines(res)
    t = targets(res)
    if t:
        lines += ["### Targets", "", "| target | snapfs | reference | ratio | |", "|---|---|---|---|---|"]
        for name, s, r, ratio, ok in t:
            lines.append(f"| {name} | {s} | {r} | {ratio} | {'met' if ok else '**missed**'} |")
        lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--snapfs")
    p.add_argument("--nullfs")
    p.add_argument("--randread")
    p.add_argument("--replay")
    p.add_argument("--readcost", help="tests/bench/readcost (built by meson): snapfs's own "
                   "work per random read, for the floor beside the random-read targets")
    p.add_argument("--uffd-client", help="tests/uffd/uffd_client.c built (the uffd phase)")
    p.add_argument("--s3-client", help="tests/remote/s3_client_test built (the remote phase)")
    p.add_argument("--dir", default="/var/tmp/snapfs-bench")
    p.add_argument("--quick", action="store_true", help="small corpus, 1 run: a smoke test")
    p.add_argument("--runs", type=int, default=0, help="override the number of runs")
    p.add_argument("--seed", type=int, default=20261127)
    p.add_argument("--no-borg", action="store_true")
    p.add_argument("--only", metavar="LIST",
                   help="run only these workloads, comma-separated: " + ", ".join(WORKLOADS)
                   + " (size = save; reads need the stores a save made, in this run or an "
                   "earlier one in the same DIR)")
    p.add_argument("--snapfs-variant", metavar="NAME=OPTS", action="append",
                   help="also measure the snapfs store through a mount with -o OPTS added, "
                   "as system snapfs+NAME (repeatable)")
    p.add_argument("--systems", metavar="LIST",
                   help="only these systems, comma-separated: snapfs, snapfs-lz4, sqfs-zstd, "
                   "sqfs-lz4, borg, zstd3, plain, null")
    p.add_argument("--reuse-corpus", action="store_true",
                   help="keep DIR/corpus if it was made with the same parameters")
    p.add_argument("--report", metavar="RESULTS_JSON", help="only print the tables of a results.json")
    p.add_argument("--fill", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.fill:
        fill_memory(a.fill, a.seed)
        return 0
    if a.report:
        print(report(json.load(open(a.report))))
        return 0
    if os.geteuid() != 0:
        print("bench.py: must run as root (drop_caches, mounts)", file=sys.stderr)
        return 2
    for need in ("snapfs", "nullfs", "randread", "replay"):
        if not getattr(a, need):
            print(f"bench.py: --{need} is required (use tests/bench/run.sh)", file=sys.stderr)
            return 2
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    Bench(a).go()
    return 0


if __name__ == "__main__":
    sys.exit(main())
