#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Write a demo memory image for scripts/demo.sh.

    make-demo-image.py DIR

makes, in DIR:
  memory.img     a 256 MiB sparse memory file laid out like a small VM's
                 memory: kernel text, a heap of strings and random data,
                 explicitly written zero pages, a page cache holding the
                 same file twice, tmpfs, and holes where nothing was
                 ever touched
  usage.txt      its usage set for `snapfs save --usage`: one range a line,
                 `start end kind memcg committed`
  memory2.img    the same image some seconds later: 64 heap pages changed
  layout.txt     where everything is, for the reader
"""

import os
import random
import sys

PAGE = 4096
MIB = 1 << 20
SIZE = 256 * MIB

WORDS = ("the of and to in is for on that with kernel page memory sandbox "
         "runsc gvisor firecracker qemu snapshot restore heap stack mmap "
         "/usr/lib/x86_64-linux-gnu/libc.so.6 /etc/passwd PATH=/usr/bin "
         "HOME=/root GET /index.html HTTP/1.1 200 OK Content-Type: text/html "
         "error warning info debug malloc free struct task_struct SELECT "
         "FROM users WHERE id session token user-agent Mozilla/5.0").split()


def text(rng, n):
    out = bytearray()
    while len(out) < n:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 12)))
        out += f"{line} {rng.randint(0, 99999)}\n".encode()
    return bytes(out[:n])


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: make-demo-image.py DIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = random.Random(2024)
    path = os.path.join(out, "memory.img")
    layout = []
    with open(path, "wb") as f:
        f.truncate(SIZE)

        def put(off, data, what):
            f.seek(off)
            f.write(data)
            layout.append((off, off + len(data), what))

        # 0 - 16 MiB: "kernel": text, compresses well.
        put(0, text(rng, 16 * MIB), "kernel text and data (text-like)")
        # 16 - 64 MiB: never touched: a hole.
        # 64 - 96 MiB: heap: strings, random (encrypted/compressed) data,
        # and pages the guest zeroed (freed memory).
        heap = bytearray()
        for i in range(32 * MIB // PAGE):
            kind = i % 8
            if kind < 4:
                heap += text(rng, PAGE)
            elif kind < 6:
                heap += rng.randbytes(PAGE)
            else:
                heap += bytes(PAGE)
        put(64 * MIB, bytes(heap), "heap: text, random and zeroed pages")
        # 96 - 104 MiB: explicitly written zero pages (committed, all zero).
        put(96 * MIB, bytes(8 * MIB), "zeroed memory (written zeros)")
        # 128 - 144 MiB and 144 - 160 MiB: the page cache holds the same
        # 16 MiB file twice (two containers reading one library).
        lib = text(rng, 8 * MIB) + rng.randbytes(8 * MIB)
        put(128 * MIB, lib, "page cache: a file")
        put(144 * MIB, lib, "page cache: the same file again (dedup)")
        # 160 - 176 MiB: tmpfs.
        put(160 * MIB, text(rng, 16 * MIB), "tmpfs files")
        # 192 - 200 MiB: reserved, never touched: the usage file lists it
        # as uncommitted, so snapfs keeps the range and stores no data.
        # the last page: a stack canary
        put(SIZE - PAGE, b"STACK-END" + rng.randbytes(PAGE - 9), "the last page")
        f.flush()
        os.fsync(f.fileno())

    with open(os.path.join(out, "usage.txt"), "w") as u:
        u.write("0x0 0x1000000 system 0 1\n"
                "0x4000000 0x6000000 anonymous 1 1\n"
                "0x6000000 0x6800000 anonymous 1 1\n"
                "0x8000000 0xa000000 pagecache 1 1\n"
                "0xa000000 0xb000000 tmpfs 2 1\n"
                "0xc000000 0xc800000 anonymous 2 0\n"
                f"{SIZE - 16 * MIB:#x} {SIZE:#x} anonymous 2 1\n")

    # The second image: a sparse copy (data ranges only, so holes stay
    # holes and written zeros stay written) with 64 heap pages changed.
    path2 = os.path.join(out, "memory2.img")
    with open(path, "rb") as src, open(path2, "wb") as dst:
        dst.truncate(SIZE)
        for start, end, _ in layout:
            src.seek(start)
            dst.seek(start)
            dst.write(src.read(end - start))
        for p in rng.sample(range(64 * MIB // PAGE, 96 * MIB // PAGE), 64):
            dst.seek(p * PAGE)
            dst.write(rng.randbytes(PAGE))
        dst.flush()
        os.fsync(dst.fileno())

    with open(os.path.join(out, "layout.txt"), "w") as lt:
        for start, end, what in sorted(layout):
            lt.write(f"0x{start:08x} 0x{end:08x}  {(end - start) // MIB:4d} MiB  {what}\n")
    print(f"wrote {path} ({SIZE // MIB} MiB, sparse), {path2} (64 heap pages changed), "
          f"usage.txt, layout.txt in {out}")


if __name__ == "__main__":
    main()
