#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A 64 GiB snapshot holding a few MiB of data copies in seconds.

The image is a sparse 64 GiB file with data at a few spread offsets (the
first and last pages included). Through the mount: its SEEK_DATA/SEEK_HOLE
map equals the source's; st_blocks counts only the stored pages; random
reads inside holes give zeros; and `cp --sparse=always` of the memory file
makes a copy that is identical to the source (same size, same data map,
every data extent compared with cmp; the rest is holes in both, so zeros)
and sparse (its st_blocks cover about the data only). The copy time is
printed, not asserted.
"""
import os
import random
import time

from mountlib import (PAGE, Mount, check, log, main, run, save,
                      seek_extents)

SIZE = 64 << 30


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    src = os.path.join(work, "big.img")
    rng = random.Random(64)
    with open(src, "wb") as f:
        f.truncate(SIZE)
        offsets = [0] + [rng.randrange(SIZE // PAGE - 256) * PAGE
                         for _ in range(14)]
        for off in sorted(offsets):
            n = rng.choice([1, 3, 16, 64, 256]) * PAGE
            f.seek(off)
            f.write(rng.randbytes(n))
        # The very last page, too.
        f.seek(SIZE - PAGE)
        f.write(rng.randbytes(PAGE))
    extents = seek_extents(src)
    data_bytes = sum(e - s for s, e in extents)
    log(f"source: {SIZE} bytes, {len(extents)} data extents, "
        f"{data_bytes} data bytes")
    check(data_bytes < 16 << 20, "the source should hold a few MiB only")

    t0 = time.monotonic()
    info = save(store, "big", src)
    log(f"save: {time.monotonic() - t0:.2f} s")
    check(info["file_size"] == SIZE and info["data_bytes"] == data_bytes,
          f"info: file_size {info['file_size']} data_bytes "
          f"{info['data_bytes']}, expected {SIZE} {data_bytes}")

    mnt = os.path.join(work, "mnt")
    out = os.path.join(work, "copy.img")
    with Mount(store, mnt) as m:
        mem = os.path.join(mnt, "big", "memory")
        st = os.stat(mem)
        check(st.st_size == SIZE, f"st_size {st.st_size}")
        check(st.st_blocks == (data_bytes + 511) // 512,
              f"st_blocks {st.st_blocks}, expected {(data_bytes + 511) // 512}")
        got = seek_extents(mem)
        check(got == extents, f"SEEK map through the mount differs:\n"
              f"  got  {got}\n  want {extents}")
        # Holes read as zeros, data as data.
        fd = os.open(mem, os.O_RDONLY)
        sfd = os.open(src, os.O_RDONLY)
        try:
            probes = [rng.randrange(SIZE - 8192) for _ in range(100)]
            probes += [s - 100 for s, e in extents if s >= 100]
            probes += [e - 100 for s, e in extents]
            for off in probes:
                buf = os.pread(fd, 8192, off)
                want = os.pread(sfd, 8192, off)
                check(buf == want, f"8 KiB at {off} differ from the source")
        finally:
            os.close(sfd)
            os.close(fd)

        t0 = time.monotonic()
        run(["cp", "--sparse=always", mem, out])
        took = time.monotonic() - t0
        log(f"cp --sparse=always of the 64 GiB memory file: {took:.2f} s")
        m.unmount()

    st = os.stat(out)
    check(st.st_size == SIZE, f"copy size {st.st_size}")
    check(st.st_blocks * 512 <= data_bytes + (4 << 20),
          f"copy is not sparse: {st.st_blocks * 512} bytes allocated for "
          f"{data_bytes} data bytes")
    copy_extents = seek_extents(out)
    check(copy_extents == extents,
          f"copy's data map differs:\n  got  {copy_extents}\n  "
          f"want {extents}")
    # Same size, same data map, same bytes in every data extent: equal.
    # (A whole-file cmp would read 128 GiB of holes.)
    for s, e in extents:
        run(["cmp", "-i", f"{s}:{s}", "-n", str(e - s), src, out])
    log("copy identical to the source and sparse")


if __name__ == "__main__":
    main(test)
