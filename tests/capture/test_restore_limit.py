# SPDX-License-Identifier: MIT
"""Restoring a memory file larger than the output's file system allows (a
process's address space is ~128 TiB; ext4 stops at 16 TiB) fails before
anything is written, with one clear line, and leaves nothing behind; an
existing output named with --force stays as it was. The limit is met for
sure with RLIMIT_FSIZE (SIGXFSZ ignored, as a shell's `ulimit -f` would
leave it), and for real where the test directory is on ext2/3/4."""

import os
import resource
import signal
import struct
import subprocess

import common
from common import PAGE, check, snapfs
from test_gvisor import metadata, page

GIB = 1 << 30
CHUNKS = 20000                     # 20000 GiB: past ext4's 16 TiB
AT = (CHUNKS - 3) * GIB            # one committed range up there


def big_snapshot(ctx):
    d = ctx.dir / "ckpt"
    d.mkdir()
    m = metadata([(AT, AT + 2 * PAGE, 1, 0, True)], [False] * CHUNKS)
    (d / "pages_meta.img").write_bytes(struct.pack("<Q", len(m)) + m)
    (d / "pages.img").write_bytes(page(AT) + page(AT + PAGE))
    store = ctx.store()
    snapfs("save", store, "big", d)
    size = common.snapshot_row(store, "big")["file_size"]
    check(size == CHUNKS * GIB, f"file_size {size}")
    return store, size


def limited():
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (GIB, GIB))


def refused_restore(ctx, store, size, out, preexec=None, force=False):
    before = sorted(os.listdir(out.parent))
    args = [common.SNAPFS, "restore", str(store), "big", str(out)] + (["--force"] if force else [])
    print("+", " ".join(args))
    p = subprocess.run(args, capture_output=True, text=True, preexec_fn=preexec, timeout=120)
    print(p.stderr)
    want = f"snapfs: restore 'big' from '{store}': output '{out}': cannot make a file of {size} bytes: file too large"
    check(p.returncode == 1, f"exit {p.returncode}")
    check(p.stderr.strip() == want, f"message {p.stderr.strip()!r}, wanted {want!r}")
    check(sorted(os.listdir(out.parent)) == before, "the refused restore left files")


def case_rlimit(ctx):
    store, size = big_snapshot(ctx)
    out = ctx.dir / "outdir" / "memory"
    out.parent.mkdir()
    refused_restore(ctx, store, size, out, preexec=limited)
    # An existing output stays untouched.
    out.write_bytes(b"keep me")
    refused_restore(ctx, store, size, out, preexec=limited, force=True)
    check(out.read_bytes() == b"keep me", "--force output changed by a failed restore")
    # The snapshot itself is fine: its pages read back through a mount.
    if common.fuse_usable():
        m = common.Mount(store, ctx.dir / "mnt")
        try:
            check(m.read("big", AT, 2 * PAGE) == page(AT) + page(AT + PAGE), "pages wrong")
            check(m.read("big", AT - PAGE, PAGE) == bytes(PAGE), "hole not zeros")
        finally:
            m.close()


def case_ext4(ctx):
    fs = subprocess.run(["stat", "-f", "-c", "%T", str(ctx.dir)], capture_output=True,
                        text=True).stdout.strip()
    if not fs.startswith("ext"):
        raise common.Skip(f"{ctx.dir} is on {fs}, not ext2/3/4")
    store, size = big_snapshot(ctx)
    out = ctx.dir / "outdir" / "memory"
    out.parent.mkdir()
    refused_restore(ctx, store, size, out)


if __name__ == "__main__":
    common.main()
