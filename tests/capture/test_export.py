# SPDX-License-Identifier: MIT
"""snapfs export: a raw snapshot saved with a usage file (kinds, memcgs,
committed and uncommitted ranges) written out as a gVisor checkpoint
(--format gvisor: pages_meta.img + pages.img) is read back by snapfs's own
gVisor import with the same segments, kinds, memcgs and committed flags and
the same bytes (compared with cmp on restored files and through the
mount); --format raw writes what restore writes. Errors: an existing
output, an unknown or missing format, a memcg gVisor cannot hold."""

import os
import struct
import subprocess

import common
from common import PAGE, check, snapfs

GIB = 1 << 30

USAGE = """# start end kind memcg committed
0 0x8000 anonymous 0 1
0x8000 0xc000 pagecache 7 1
0xc000 0x10000 tmpfs 3 0
0x20000 0x30000 mapped 4294967295 1
0x30000 0x31000 system 1 1
"""


def make_raw(ctx):
    """A 0x31000-byte memory file: data in every committed range, one zero
    page inside a committed range, data in the uncommitted one (not saved)."""
    size = 0x31000
    mem = bytearray(size)
    for start, end in ((0, 0x8000), (0x8000, 0xc000), (0xc000, 0x10000),
                       (0x20000, 0x30000), (0x30000, 0x31000)):
        mem[start:end] = common.pattern(end - start, start // PAGE + 3)
    mem[0x2000:0x3000] = bytes(PAGE)
    path = ctx.dir / "vm.src"
    path.write_bytes(mem)
    usage = ctx.dir / "usage.txt"
    usage.write_text(USAGE)
    return path, usage, size


def seg_rows(store, name):
    return [row[:5] for row in common.segments(store, name)]


def segments_differ(store, a, b):
    """Segments (start, end, kind, memcg, committed) of snapshot a without
    a twin in b and of b without one in a, counted by the sqlite3 shell."""
    seg = ("SELECT start, end, kind, memcg_id, committed FROM segments WHERE snapshot_id = "
           "(SELECT id FROM snapshots WHERE name = '{}')")
    sa, sb = seg.format(a), seg.format(b)
    out = common.sqlite3_shell(store, f"SELECT count(*) FROM (SELECT * FROM ({sa} EXCEPT {sb}) "
                               f"UNION ALL SELECT * FROM ({sb} EXCEPT {sa}));")
    return int(out)


def case_gvisor_round_trip(ctx):
    store = ctx.store()
    src, usage, size = make_raw(ctx)
    snapfs("save", store, "vm", src, "--usage", usage, "--quiet")
    out = ctx.dir / "ckpt"
    snapfs("export", store, "vm", "--format", "gvisor", out)
    check(sorted(os.listdir(out)) == ["pages.img", "pages_meta.img"],
          f"export wrote {sorted(os.listdir(out))}")
    meta = (out / "pages_meta.img").read_bytes()
    check(struct.unpack("<Q", meta[:8])[0] == len(meta) - 8, "metadata length header")
    committed = sum(end - start for start, end, _, _, c in seg_rows(store, "vm") if c)
    check(os.path.getsize(out / "pages.img") == committed,
          "pages.img is not the committed ranges back to back")
    # Re-import, detected as a gVisor checkpoint.
    snapfs("save", store, "back", out, "--quiet")
    row = common.snapshot_row(store, "back")
    check(row["format"] == "gvisor" and row["file_size"] == GIB,
          f"re-import: {row['format']} {row['file_size']}")
    check(seg_rows(store, "back") == seg_rows(store, "vm"),
          f"segments differ: {seg_rows(store, 'back')} vs {seg_rows(store, 'vm')}")
    # The same through the sqlite3 shell: no segment of one without its
    # twin (start, end, kind, memcg, committed) in the other.
    check(segments_differ(store, "vm", "back") == 0, "sqlite3: segments differ")
    check(segments_differ(store, "vm", "vm") == 0, "sqlite3: a snapshot differs from itself")
    q = ("SELECT kind, bytes, committed_bytes FROM kind_usage WHERE name = ? ORDER BY kind")
    check(common.query(store, q, ("vm",)) == common.query(store, q, ("back",)),
          "kind_usage differs")
    q = ("SELECT segment_count, committed_bytes, data_bytes FROM snapshot_summary "
         "WHERE name = ?")
    check(common.query(store, q, ("vm",)) == common.query(store, q, ("back",)),
          "snapshot_summary figures differ")
    # The bytes, restored and compared with cmp, and through the mount.
    snapfs("restore", store, "vm", ctx.dir / "vm.out")
    snapfs("restore", store, "back", ctx.dir / "back.out")
    p = subprocess.run(["cmp", "-n", str(size), ctx.dir / "vm.out", ctx.dir / "back.out"])
    check(p.returncode == 0, "cmp: the re-imported bytes differ")
    with open(ctx.dir / "back.out", "rb") as f:
        f.seek(size)
        tail = f.read(1 << 20)
    check(tail == bytes(len(tail)), "bytes past the snapshot's size are not zeros")
    os.unlink(ctx.dir / "vm.out")
    os.unlink(ctx.dir / "back.out")
    a = common.read_memory(ctx, store, "vm", [(0, size)])[0]
    b = common.read_memory(ctx, store, "back", [(0, size)])[0]
    check(a == b, "the mount shows other bytes for the re-import")
    # Export of the re-import gives the same files again.
    again = ctx.dir / "again"
    snapfs("export", store, "back", "--format", "gvisor", again, "--quiet")
    for n in ("pages_meta.img", "pages.img"):
        check((again / n).read_bytes() == (out / n).read_bytes(), f"{n} differs on a second trip")
    # An existing output is refused, --force replaces it.
    p = snapfs("export", store, "vm", "--format", "gvisor", out, expect=1)
    check("exists" in p.stderr and "--force" in p.stderr, p.stderr)
    snapfs("export", store, "vm", "--format", "gvisor", out, "--force", "--quiet")
    check(not common.leftovers(out), f"temporary files left: {os.listdir(out)}")


def case_raw(ctx):
    store = ctx.store()
    src, usage, size = make_raw(ctx)
    snapfs("save", store, "vm", src, "--usage", usage, "--quiet")
    snapfs("export", store, "vm", "--format", "raw", ctx.dir / "x.raw")
    snapfs("restore", store, "vm", ctx.dir / "x.restored")
    p = subprocess.run(["cmp", ctx.dir / "x.raw", ctx.dir / "x.restored"])
    check(p.returncode == 0, "export --format raw differs from restore")
    check(os.path.getsize(ctx.dir / "x.raw") == size, "raw export size")


def case_errors(ctx):
    store = ctx.store()
    src, usage, _ = make_raw(ctx)
    snapfs("save", store, "vm", src, "--usage", usage, "--quiet")
    p = snapfs("export", store, "vm", ctx.dir / "o", expect=2)
    check("--format" in p.stderr, p.stderr)
    p = snapfs("export", store, "vm", "--format", "qcow", ctx.dir / "o", expect=2)
    check("format 'qcow': unknown" in p.stderr, p.stderr)
    p = snapfs("export", store, "nosuch", "--format", "gvisor", ctx.dir / "o", expect=1)
    check("nosuch" in p.stderr, p.stderr)
    (ctx.dir / "big.usage").write_text("0 0x8000 anonymous 4294967296 1\n")
    snapfs("save", store, "big", src, "--usage", ctx.dir / "big.usage", "--quiet")
    check(segments_differ(store, "vm", "big") == 6, "the sqlite3 comparison sees no change")
    p = snapfs("export", store, "big", "--format", "gvisor", ctx.dir / "o2", expect=1)
    check("memcg 4294967296" in p.stderr, p.stderr)
    check(not os.path.exists(ctx.dir / "o2" / "pages.img") and
          not common.leftovers(ctx.dir / "o2"), "a failed export left files")
    (ctx.dir / "afile").write_text("x")
    p = snapfs("export", store, "vm", "--format", "gvisor", ctx.dir / "afile", expect=1)
    check("not a directory" in p.stderr, p.stderr)


if __name__ == "__main__":
    common.main()
