#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The mount is read-only and private.

Every call that would change something fails with EROFS: open O_WRONLY,
O_RDWR, O_TRUNC, O_CREAT; mkdir, mknod, rename, unlink, rmdir, symlink,
link, truncate, chmod, chown, utime, setxattr, removexattr; on the root, a
snapshot directory and the files. They are tried twice: on the read-only
mount (the kernel refuses) and, when the kernel lets root remount it
read-write, again (then the daemon itself must refuse). The content is
unchanged afterwards.

Private: another user (nobody, via setpriv) gets "Permission denied" on
the mount while reading a plain file next to it works; with
-o allow_other that user can read the snapshot (and still not write).
"""
import errno
import os
import shutil
import subprocess

from mountlib import (Mount, as_root, check, expect_errno, log, main,
                      make_image, run, save)

NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def try_writes(mnt, name):
    d = os.path.join(mnt, name)
    mem = os.path.join(d, "memory")
    info = os.path.join(d, "info")
    E = errno.EROFS
    for path in (mem, info, os.path.join(d, "segments")):
        for flags in (os.O_WRONLY, os.O_RDWR, os.O_RDONLY | os.O_TRUNC,
                      os.O_WRONLY | os.O_APPEND):
            expect_errno(E, os.open, path, flags,
                         what=f"open({path}, {flags:#o})")
    for parent in (mnt, d):
        new = os.path.join(parent, "new")
        expect_errno(E, os.open, new, os.O_CREAT | os.O_WRONLY, 0o644,
                     what=f"open({new}, O_CREAT)")
        expect_errno(E, os.open, new, os.O_CREAT | os.O_RDONLY, 0o644,
                     what=f"open({new}, O_CREAT|O_RDONLY)")
        expect_errno(E, os.mkdir, new)
        expect_errno(E, os.mknod, new, 0o600 | 0o010000)  # a FIFO
        expect_errno(E, os.symlink, "target", new)
    expect_errno(E, os.link, mem, os.path.join(d, "link"))
    expect_errno(E, os.rename, d, os.path.join(mnt, "renamed"))
    expect_errno(E, os.rename, mem, os.path.join(d, "renamed"))
    expect_errno(E, os.unlink, mem)
    expect_errno(E, os.unlink, info)
    expect_errno(E, os.rmdir, d)
    expect_errno(E, os.truncate, mem, 0)
    expect_errno(E, os.truncate, mem, 1 << 20)
    for path in (mnt, d, mem):
        expect_errno(E, os.chmod, path, 0o777)
        expect_errno(E, os.chown, path, 1, 1)
        expect_errno(E, os.utime, path, (1, 1))
        expect_errno(E, os.setxattr, path, "user.snapfs", b"1")
        expect_errno(E, os.removexattr, path, "user.snapfs")
    check(not os.access(mem, os.W_OK), "access(W_OK) allowed")
    check(os.access(mem, os.R_OK), "access(R_OK) refused")
    check(sorted(os.listdir(d)) == ["info", "map.svg", "memory", "regions", "segments"],
          f"snapshot dir changed: {os.listdir(d)}")


def as_nobody(*argv):
    return subprocess.run(NOBODY + list(argv), stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, encoding="utf-8",
                          errors="replace")


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    src = os.path.join(work, "vm.img")
    make_image(src, 500, 11, 100)
    os.chmod(src, 0o644)
    save(store, "vm", src)
    mnt = os.path.join(work, "mnt")
    mem = os.path.join(mnt, "vm", "memory")

    with Mount(store, mnt) as m:
        try_writes(mnt, "vm")
        log("read-only mount: every write refused with EROFS")
        rw = None
        if as_root("remount,rw"):
            rw = subprocess.run(["mount", "-i", "-o", "remount,rw", mnt],
                                stderr=subprocess.PIPE, text=True)
        if rw and rw.returncode == 0:
            opts = [ln for ln in open("/proc/self/mountinfo")
                    if f" {mnt} " in ln]
            log(f"remounted read-write: {opts[-1].split()[5]}")
            try_writes(mnt, "vm")
            log("read-write remount: the daemon refuses every write too")
        elif rw:
            log(f"kernel refused remount,rw ({rw.stderr.strip()}); "
                "daemon-side refusals not exercised")
        run(["cmp", src, mem])

        m.unmount()
    if not as_root("access as another user (setpriv)"):
        return

    with Mount(store, mnt) as m:
        # Private: nobody cannot get in; the control file proves it is
        # the mount that refuses, not the path to it.
        control = os.path.join(work, "control.txt")
        with open(control, "w") as f:
            f.write("readable\n")
        os.chmod(control, 0o644)
        p = as_nobody("cat", control)
        check(p.returncode == 0, f"nobody cannot read {control}: {p.stderr}")
        for argv in (["cat", mem], ["ls", mnt], ["stat", mnt],
                     ["ls", os.path.join(mnt, "vm")]):
            p = as_nobody(*argv)
            check(p.returncode != 0 and "Permission denied" in p.stderr,
                  f"as nobody, {' '.join(argv)}: exit {p.returncode}, "
                  f"stderr {p.stderr!r}; expected permission denied")
        log("private mount: another user gets permission denied")
        m.unmount()

    with Mount(store, mnt, "-o", "allow_other") as m:
        sopts = [ln.split(" - ")[1].split()[2] for ln in
                 open("/proc/self/mountinfo")
                 if ln.split()[4] == os.path.realpath(mnt)][-1].split(",")
        check("allow_other" in sopts and "default_permissions" in sopts,
              f"-o allow_other: kernel options {sopts}; the kernel must "
              "check permissions once others are let in")
        p = as_nobody("cmp", src, mem)
        check(p.returncode == 0,
              f"-o allow_other: nobody's cmp failed: {p.stderr}")
        p = as_nobody("ls", os.path.join(mnt, "vm"))
        check(p.stdout.split() == ["info", "map.svg", "memory", "regions", "segments"],
              f"-o allow_other: nobody's ls: {p.stdout!r} {p.stderr!r}")
        p = as_nobody("sh", "-c", f"echo x >> '{mem}'")
        check(p.returncode != 0, "-o allow_other: nobody could write")
        p = as_nobody("touch", os.path.join(mnt, "new"))
        check(p.returncode != 0, "-o allow_other: nobody could create")
        try_writes(mnt, "vm")
        run(["cmp", src, mem])
        log("-o allow_other: others read, nobody writes")
        m.unmount()


if __name__ == "__main__":
    if shutil.which("setpriv") is None:
        raise SystemExit("setpriv (util-linux) is needed")
    main(test)
