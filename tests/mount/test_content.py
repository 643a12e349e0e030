#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The mount serves exactly the saved bytes.

Several images are saved and mounted: holes, explicit zero pages, random,
text-like and nearly zero pages; sizes that are not a whole number of
pages; an empty and a 3-byte file; codecs zstd, lz4 and none; a usage file
(data outside committed segments reads as zeros); a --parent. Then, with
real tools and syscalls: cmp of every memory file against its source;
reads past the end; random unaligned preads after dropping the page cache;
SEEK_DATA/SEEK_HOLE maps equal to the source's non-zero page map (and
ENXIO at the end); st_size, st_blocks, modes, owners and inode numbers;
mmap (MAP_PRIVATE and MAP_SHARED) of random pages; 8 parallel readers with
content checks; the directory layout and order (with . and ..); the `info`
and `segments` texts against `snapfs info --json` and the usage file; an
unmount and a single-threaded (-s) remount read by 8 cmp processes at once.
"""
import errno
import mmap
import os
import random
import stat
import subprocess
import threading

from mountlib import (PAGE, Mount, check, data_extents, drop_cache, log,
                      main, make_image, run, save, seek_extents, snapfs)


def check_file(path, data, name):
    st = os.stat(path)
    check(st.st_size == len(data),
          f"{name}: st_size {st.st_size}, expected {len(data)}")
    # cmp: the whole file, byte for byte.
    with open(path, "rb") as f:
        got = f.read()
    check(got == data, f"{name}: content differs from the source")
    # Reads at and past the end give 0 bytes.
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in (len(data), len(data) + 1, len(data) + 10 * PAGE,
                    1 << 40):
            check(os.pread(fd, 4096, off) == b"",
                  f"{name}: pread at {off} (size {len(data)}) not empty")
        # SEEK_DATA/SEEK_HOLE at or past the end: ENXIO.
        for whence in (os.SEEK_DATA, os.SEEK_HOLE):
            try:
                os.lseek(fd, len(data), whence)
                raise AssertionError
            except OSError as e:
                check(e.errno == errno.ENXIO,
                      f"{name}: lseek(size, {whence}) gave {e}, not ENXIO")
            except AssertionError:
                check(False, f"{name}: lseek(size, {whence}) succeeded")
    finally:
        os.close(fd)


def check_seek_map(path, data, name):
    want = data_extents(data)
    got = seek_extents(path)
    check(got == want, f"{name}: SEEK_DATA/SEEK_HOLE map differs:\n"
          f"  got  {got[:8]}... ({len(got)} extents)\n"
          f"  want {want[:8]}... ({len(want)} extents)")
    # Every offset inside a page answers at page granularity.
    if data:
        fd = os.open(path, os.O_RDONLY)
        try:
            rng = random.Random(7)
            for _ in range(200):
                off = rng.randrange(len(data))
                nxt = [s for s, e in want if e > off]
                try:
                    pos = os.lseek(fd, off, os.SEEK_DATA)
                except OSError as e:
                    check(e.errno == errno.ENXIO and not nxt,
                          f"{name}: SEEK_DATA({off}): {e}")
                    continue
                check(nxt and pos == max(off, nxt[0]),
                      f"{name}: SEEK_DATA({off}) = {pos}, expected "
                      f"{max(off, nxt[0]) if nxt else 'ENXIO'}")
        finally:
            os.close(fd)


def check_random_reads(path, data, name, count=300, seed=1):
    drop_cache(path)
    rng = random.Random(seed)
    fd = os.open(path, os.O_RDONLY)
    try:
        for _ in range(count):
            off = rng.randrange(max(1, len(data) + PAGE))
            size = rng.choice([1, 100, PAGE, PAGE + 1, 3 * PAGE + 17,
                               128 * 1024, 1 << 20])
            got = os.pread(fd, size, off)
            check(got == data[off:off + size],
                  f"{name}: pread({size} at {off}) differs from the source")
    finally:
        os.close(fd)


def check_mmap(path, data, name):
    if not data:
        return
    rng = random.Random(3)
    for flags, prot, label in ((mmap.MAP_PRIVATE, mmap.PROT_READ, "PRIVATE"),
                               (mmap.MAP_SHARED, mmap.PROT_READ, "SHARED")):
        drop_cache(path)
        with open(path, "rb") as f:
            m = mmap.mmap(f.fileno(), len(data), flags=flags, prot=prot)
            try:
                pages = (len(data) + PAGE - 1) // PAGE
                for p in rng.sample(range(pages), min(pages, 64)):
                    got = m[p * PAGE:(p + 1) * PAGE]
                    check(got == data[p * PAGE:(p + 1) * PAGE],
                          f"{name}: mmap MAP_{label} page {p} differs")
                check(m[:] == data, f"{name}: mmap MAP_{label} whole differs")
            finally:
                m.close()


def check_parallel(path, data, name, threads=8, reads=250):
    drop_cache(path)
    errors = []

    def reader(seed):
        rng = random.Random(seed)
        fd = os.open(path, os.O_RDONLY)
        try:
            for _ in range(reads):
                off = rng.randrange(len(data))
                got = os.pread(fd, PAGE, off)
                if got != data[off:off + PAGE]:
                    errors.append(f"thread {seed}: 4 KiB at {off} differs")
                    return
        except OSError as e:
            errors.append(f"thread {seed}: {e}")
        finally:
            os.close(fd)

    ts = [threading.Thread(target=reader, args=(s,)) for s in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    check(not errors, f"{name}: parallel readers: {errors[:4]}")


def expected_segments_from_usage(usage):
    lines = []
    for line in usage.strip().splitlines():
        start, end, kind, memcg, committed = line.split()
        lines.append(f"0x{int(start, 0):x} 0x{int(end, 0):x} {kind} "
                     f"{int(memcg)} {int(committed)} -")
    return "\n".join(lines) + "\n"


def check_text_seek(path, name):
    """A text file is all data: SEEK_DATA stays, SEEK_HOLE goes to the
    end, both give ENXIO at the end."""
    size = os.stat(path).st_size
    fd = os.open(path, os.O_RDONLY)
    try:
        for off in (0, size // 2, size - 1):
            check(os.lseek(fd, off, os.SEEK_DATA) == off,
                  f"{name}: SEEK_DATA({off}) moved")
            check(os.lseek(fd, off, os.SEEK_HOLE) == size,
                  f"{name}: SEEK_HOLE({off}) is not the end")
        for whence in (os.SEEK_DATA, os.SEEK_HOLE):
            try:
                pos = os.lseek(fd, size, whence)
                check(False, f"{name}: lseek(size, {whence}) = {pos}")
            except OSError as e:
                check(e.errno == errno.ENXIO, f"{name}: lseek at end: {e}")
    finally:
        os.close(fd)


def check_info(mnt_dir, info, name):
    with open(os.path.join(mnt_dir, "info")) as f:
        text = f.read()
    st = os.stat(os.path.join(mnt_dir, "info"))
    check(st.st_size == len(text.encode()),
          f"{name}: info st_size {st.st_size} != {len(text.encode())}")
    keys = ["name", "id", "created_at", "parent", "file_size", "page_size",
            "format", "source", "segment_count", "committed_bytes",
            "data_bytes", "stored_bytes"]
    lines = text.splitlines()
    if info.get("notes") is not None:
        keys.append("notes")
    got_keys = [ln.split(": ", 1)[0] for ln in lines]
    check(got_keys == keys, f"{name}: info keys {got_keys}, expected {keys}")
    for ln in lines:
        k, v = ln.split(": ", 1)
        want = info[k]
        want = "-" if want is None else str(want)
        check(v == want, f"{name}: info '{k}: {v}', expected '{want}'")


def check_segments(mnt_dir, want_text, info, name):
    path = os.path.join(mnt_dir, "segments")
    with open(path) as f:
        text = f.read()
    check(os.stat(path).st_size == len(text.encode()),
          f"{name}: segments st_size != content length")
    if want_text is not None:
        check(text == want_text, f"{name}: segments text:\n{text}\n"
              f"expected:\n{want_text}")
    check(len(text.splitlines()) == info["segment_count"],
          f"{name}: {len(text.splitlines())} segment lines, info says "
          f"{info['segment_count']}")
    committed = 0
    for ln in text.splitlines():
        f = ln.split(" ", 5)
        check(len(f) == 6 and f[0].startswith("0x") and
              f[1].startswith("0x") and f[4] in ("0", "1"),
              f"{name}: malformed segments line {ln!r}")
        if f[4] == "1":
            committed += int(f[1], 16) - int(f[0], 16)
    check(committed == info["committed_bytes"],
          f"{name}: committed bytes in segments {committed} != info "
          f"{info['committed_bytes']}")


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    images = {}
    # (name, pages, tail, seed): names chosen so that save order is not
    # name order.
    for name, pages, tail, seed in (("vm-b", 600, 1234, 1),
                                    ("vm-a", 2048, 0, 2),
                                    ("Z.text", 64, 4095, 3),
                                    ("tiny", 0, 3, 4),
                                    ("empty", 0, 0, 5),
                                    ("holes_only", 300, 10, None),
                                    ("vm-a.2", 2048, 0, 2)):
        src = os.path.join(work, name + ".img")
        if seed is None:
            with open(src, "wb") as f:
                f.truncate(pages * PAGE + tail)
            data = bytes(pages * PAGE + tail)
        else:
            data = make_image(src, pages, seed, tail)
        images[name] = (src, data)

    usage = ("0x0 0x40000 anonymous 0 1\n"
             "0x40000 0x41000 pagecache 17 0\n"
             "0x41000 0x100000 tmpfs 3 1\n"
             "0x200000 0x259000 mapped 5 1\n")
    usage_path = os.path.join(work, "vm-b.usage")
    with open(usage_path, "w") as f:
        f.write(usage)

    # Only data inside committed segments is saved: the rest reads as
    # zeros. The expected bytes of vm-b are the source masked that way.
    src, data = images["vm-b"]
    masked = bytearray(len(data))
    for line in usage.splitlines():
        start, end, _, _, committed = line.split()
        start, end = int(start, 0), min(int(end, 0), len(data))
        if committed == "1":
            masked[start:end] = data[start:end]
    check(bytes(masked) != data, "vm-b: the usage set should drop data")
    expected_src = os.path.join(work, "vm-b.expected")
    with open(expected_src, "wb") as f:
        f.write(masked)

    infos = {}
    for name, (src, _) in images.items():
        opts = ["--usage", usage_path] if name == "vm-b" else []
        if name == "Z.text":
            opts += ["--codec", "lz4"]
        if name == "vm-a":
            opts += ["--codec", "none"]
        if name == "vm-a.2":
            opts += ["--parent", "vm-a"]
        infos[name] = save(store, name, src, *opts)
    images["vm-b"] = (expected_src, bytes(masked))

    mnt = os.path.join(work, "mnt")
    with Mount(store, mnt) as m:
        log(f"mounted in {m.mount_seconds:.3f} s")
        # Layout, order, modes, owners.
        names = os.listdir(mnt)
        check(names == sorted(images), f"root lists {names}, expected "
              f"{sorted(images)} in name order")
        ls = run(["ls", "-a1", os.path.join(mnt, "vm-a")]).stdout.split()
        check(ls == [".", "..", "info", "map.svg", "memory", "regions", "segments"],
              f"ls -a of a snapshot dir: {ls}")
        ls = run(["ls", "-a1", mnt]).stdout.split()
        check(ls[:2] == [".", ".."], f"ls -a of the root: {ls[:4]}")
        # map.svg: the bytes `snapfs map` prints (vm-a.2 with its parent's
        # shared pages marked); raw snapshots have no core.
        for name in ("vm-a", "vm-a.2"):
            with open(os.path.join(mnt, name, "map.svg"), "rb") as f:
                svg = f.read()
            printed = snapfs("map", store, name).stdout.encode()
            check(svg == printed and svg.startswith(b"<?xml") and b"</svg>" in svg,
                  f"{name}/map.svg ({len(svg)} bytes) is not snapfs map's output "
                  f"({len(printed)} bytes)")
            check(os.stat(os.path.join(mnt, name, "map.svg")).st_size == len(svg),
                  f"{name}/map.svg: st_size is not its length")
            check(not os.path.exists(os.path.join(mnt, name, "core")),
                  f"{name}: a raw snapshot has a core")
        st = os.stat(mnt)
        check(stat.S_IMODE(st.st_mode) == 0o555 and stat.S_ISDIR(st.st_mode),
              f"root mode {oct(st.st_mode)}")
        check(st.st_uid == os.getuid() and st.st_gid == os.getgid(),
              "root not owned by the mounting user")
        check(os.statvfs(mnt).f_flag & os.ST_RDONLY, "statvfs: not ST_RDONLY")

        check(infos["vm-a.2"]["parent"] == "vm-a",
              f"vm-a.2: parent {infos['vm-a.2']['parent']!r}")
        for name, (src, data) in images.items():
            d = os.path.join(mnt, name)
            info = infos[name]
            mem = os.path.join(d, "memory")
            st = os.stat(d)
            check(stat.S_IMODE(st.st_mode) == 0o555,
                  f"{name}/: mode {oct(st.st_mode)}")
            check(st.st_ino == (info["id"] << 32) | 1,
                  f"{name}/: inode {st.st_ino}, expected id<<32|1")
            for f in ("memory", "segments", "info"):
                st = os.stat(os.path.join(d, f))
                check(stat.S_ISREG(st.st_mode) and
                      stat.S_IMODE(st.st_mode) == 0o444,
                      f"{name}/{f}: mode {oct(st.st_mode)}")
                check(st.st_uid == os.getuid(), f"{name}/{f}: owner")
            st = os.stat(mem)
            check(info["file_size"] == len(data),
                  f"{name}: info file_size {info['file_size']}")
            want_data_bytes = sum(e - s for s, e in data_extents(data))
            check(info["data_bytes"] == want_data_bytes,
                  f"{name}: data_bytes {info['data_bytes']}, source has "
                  f"{want_data_bytes} bytes of non-zero pages")
            check(st.st_blocks == (info["data_bytes"] + 511) // 512,
                  f"{name}: st_blocks {st.st_blocks}, expected "
                  f"{(info['data_bytes'] + 511) // 512}")
            run(["cmp", src, mem])
            check_file(mem, data, name)
            check_seek_map(mem, data, name)
            check_random_reads(mem, data, name)
            check_mmap(mem, data, name)
            if len(data) > PAGE:
                check_parallel(mem, data, name)
            check_info(d, info, name)
            for f in ("info", "segments"):
                if os.stat(os.path.join(d, f)).st_size:
                    check_text_seek(os.path.join(d, f), f"{name}/{f}")
            check_segments(d, expected_segments_from_usage(usage)
                           if name == "vm-b" else None, info, name)
            log(f"{name}: {len(data)} bytes, {info['data_bytes']} data "
                "bytes: ok")

        # Unmount and remount: the same bytes again (single-threaded).
        m.unmount()
    with Mount(store, mnt, "-s") as m:
        for name, (src, data) in images.items():
            run(["cmp", src, os.path.join(mnt, name, "memory")])
        # Many processes reading at once (dd, cmp) against one daemon.
        src, data = images["vm-a"]
        procs = [subprocess.Popen(["cmp", src, os.path.join(mnt, "vm-a",
                                                            "memory")])
                 for _ in range(8)]
        check(all(p.wait() == 0 for p in procs),
              "parallel cmp through a single-threaded daemon failed")
        m.unmount()


if __name__ == "__main__":
    main(test)
