#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""-o private_rw: a memory file opens O_RDWR for private mappings only.

A VMM that maps guest RAM MAP_PRIVATE from a file may still open it O_RDWR
(QEMU 7.2's memory-backend-file does, even with share=off). Without the
option that open fails with EROFS (the kernel refuses it on the read-only
mount); with it:

- open(O_RDWR) of a memory file succeeds; O_WRONLY, O_TRUNC and O_RDWR of
  info, segments and region files still fail with EROFS;
- write(2) and pwrite(2) on the O_RDWR descriptor fail with EROFS at once,
  as do ftruncate and fallocate;
- mmap(MAP_PRIVATE, PROT_READ|PROT_WRITE) works: the mapping reads the
  snapshot, takes writes, and the file does not change (checked through a
  second descriptor, through a fresh mount and with cmp against the source);
- mmap(MAP_SHARED) of the O_RDWR descriptor fails with ENODEV at mmap time,
  writable or not (no page of it could be dirtied and fail later at
  writeback); MAP_SHARED|PROT_READ of an O_RDONLY descriptor still works;
- every other change to the tree still fails with EROFS, and the store's
  database is byte-for-byte unchanged afterwards.
"""
import errno
import hashlib
import mmap
import os

from mountlib import (Mount, check, expect_errno, log, main, make_image, run,
                      save)

MiB = 1 << 20


def file_digest(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(MiB), b""):
            h.update(chunk)
    return h.hexdigest()


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    src = os.path.join(work, "vm.img")
    make_image(src, 600, 23, 40)
    save(store, "vm", src)
    db = os.path.join(store, "snapfs.db")
    db_before = file_digest(db)
    size = os.path.getsize(src)
    mnt = os.path.join(work, "mnt")
    mem = os.path.join(mnt, "vm", "memory")

    # Without the option: O_RDWR refused, as on every snapfs mount.
    with Mount(store, mnt) as m:
        expect_errno(errno.EROFS, os.open, mem, os.O_RDWR,
                     what="open(O_RDWR) without -o private_rw")
        m.unmount()
    log("without private_rw: open(O_RDWR) fails with EROFS")

    with Mount(store, mnt, "-o", "private_rw") as m:
        d = os.path.join(mnt, "vm")
        for path, flags in ((mem, os.O_WRONLY), (mem, os.O_RDWR | os.O_TRUNC),
                            (os.path.join(d, "info"), os.O_RDWR),
                            (os.path.join(d, "segments"), os.O_RDWR)):
            expect_errno(errno.EROFS, os.open, path, flags,
                         what=f"open({path}, {flags:#o}) with private_rw")
        regions = os.listdir(os.path.join(d, "regions"))
        check(regions, "no region files")
        expect_errno(errno.EROFS, os.open,
                     os.path.join(d, "regions", regions[0]), os.O_RDWR,
                     what="open(region, O_RDWR) with private_rw")
        expect_errno(errno.EROFS, os.open, os.path.join(d, "new"),
                     os.O_CREAT | os.O_RDWR, 0o644, what="open(O_CREAT)")
        expect_errno(errno.EROFS, os.truncate, mem, 0)
        expect_errno(errno.EROFS, os.chmod, mem, 0o666)
        expect_errno(errno.EROFS, os.unlink, mem)
        expect_errno(errno.EROFS, os.mkdir, os.path.join(mnt, "new"))

        fd = os.open(mem, os.O_RDWR)
        try:
            check(os.fstat(fd).st_size == size, "O_RDWR file has another size")
            check(os.pread(fd, 4096, 4096) == open(src, "rb").read(8192)[4096:],
                  "pread through the O_RDWR descriptor differs from the source")
            expect_errno(errno.EROFS, os.write, fd, b"x" * 4096,
                         what="write() on O_RDWR memory")
            expect_errno(errno.EROFS, os.pwrite, fd, b"y", 12345,
                         what="pwrite() on O_RDWR memory")
            expect_errno(errno.EROFS, os.ftruncate, fd, 0,
                         what="ftruncate() on O_RDWR memory")
            expect_errno(errno.EROFS, os.posix_fallocate, fd, 0, 4096,
                         what="fallocate() on O_RDWR memory")
            log("private_rw: open(O_RDWR) works; write, pwrite, ftruncate, "
                "fallocate fail with EROFS")

            for prot in (mmap.PROT_READ | mmap.PROT_WRITE, mmap.PROT_READ):
                expect_errno(errno.ENODEV, mmap.mmap, fd, size,
                             mmap.MAP_SHARED, prot,
                             what=f"mmap(MAP_SHARED, prot {prot}) of O_RDWR memory")
            log("private_rw: MAP_SHARED of the O_RDWR descriptor fails with "
                "ENODEV at mmap time")

            priv = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE,
                             prot=mmap.PROT_READ | mmap.PROT_WRITE)
            try:
                with open(src, "rb") as f:
                    want = f.read()
                check(priv[:] == want, "MAP_PRIVATE mapping differs from the source")
                for off in range(0, size, 7 * 4096 + 123):
                    priv[off:off + 16] = b"private write!!!"
                check(priv[7 * 4096 + 123:7 * 4096 + 139] == b"private write!!!",
                      "write through MAP_PRIVATE did not stick in the mapping")
                priv.flush()             # msync: nothing to write back
                fd2 = os.open(mem, os.O_RDONLY)
                try:
                    check(os.pread(fd2, size, 0) == want,
                          "the file changed after writes to a private mapping")
                    shared_ro = mmap.mmap(fd2, size, flags=mmap.MAP_SHARED,
                                          prot=mmap.PROT_READ)
                    check(shared_ro[:] == want, "MAP_SHARED read-only differs")
                    shared_ro.close()
                finally:
                    os.close(fd2)
            finally:
                priv.close()
            log("private_rw: MAP_PRIVATE writes stay in the mapping; "
                "MAP_SHARED|PROT_READ of an O_RDONLY descriptor still works")
        finally:
            os.close(fd)
        run(["cmp", src, mem])
        m.unmount()

    with Mount(store, mnt) as m:
        run(["cmp", src, mem])
        m.unmount()
    check(file_digest(db) == db_before, "snapfs.db changed under private_rw")
    log("after private_rw: a fresh mount reads the source; snapfs.db unchanged")


if __name__ == "__main__":
    main(test)
