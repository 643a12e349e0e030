#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Mount startup: errors are clear and come before the daemon detaches;
options and the forms mount(8) uses work.

Errors (each exit status checked, each message "snapfs: mount 'STORE': ..."
where a store was named, no daemon left behind, nothing mounted): not a
store (2), a store of a newer schema (2), missing arguments (2), an extra
argument (2), an unknown -o option (2), a bad cache_size (2), a missing
mountpoint directory (1), a mountpoint that is a file (1), a mountpoint
already carrying a snapfs mount (1) -- all also without -f -- and a dead
mount (daemon killed) in the way (1).

Working forms: --help and --version (0); -d (debug); -o cache_size=1 (a
tiny cache still reads right); -o ro; -o rw (warned about, mount stays
read-only); the bare `snapfs STORE MNT -o ro` form; and
`mount -t fuse.snapfs STORE MNT -o ro,cache_size=8` through mount.fuse3
(as from fstab; the built binary named by the PROGRAM#SOURCE form, since
mount(8) drops PATH) and mount.fuse3 -t fuse.snapfs with snapfs on PATH,
both unmounted with umount.
"""
import errno
import os
import subprocess
import time

from mountlib import (SNAPFS, Mount, as_root, check, daemon_pids,
                      is_snapfs_mount, log, main, make_image, mounted_fs,
                      run, save, wait_for)


def expect_fail(argv, status, *needles, store=None):
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       encoding="utf-8", errors="replace", timeout=30)
    err = p.stderr
    check(p.returncode == status, f"{' '.join(argv)}: exit {p.returncode}, "
          f"expected {status}; stderr:\n{err}")
    last = err.strip().splitlines()[-1] if err.strip() else ""
    prefix = f"snapfs: mount '{store}': " if store else "snapfs: mount"
    check(last.startswith(prefix), f"{' '.join(argv)}: last stderr line "
          f"{last!r} does not start with {prefix!r}")
    for needle in needles:
        check(needle in err, f"{' '.join(argv)}: stderr lacks {needle!r}:"
              f"\n{err}")
    return err


def test(work):
    store = os.path.join(work, "store")
    run([SNAPFS, "init", store])
    src = os.path.join(work, "vm.img")
    make_image(src, 256, 5, 17)
    save(store, "vm", src)
    mnt = os.path.join(work, "mnt")
    os.mkdir(mnt)

    # --- errors -----------------------------------------------------------
    notstore = os.path.join(work, "notstore")
    os.mkdir(notstore)
    newer = os.path.join(work, "newer")
    run(["cp", "-a", store, newer])
    run(["sqlite3", os.path.join(newer, "snapfs.db"),
         "PRAGMA user_version = 99"])
    afile = os.path.join(work, "afile")
    open(afile, "w").close()
    cases = [
        ([notstore, mnt], 2, notstore, ["snapfs init"]),
        ([os.path.join(work, "nowhere"), mnt], 2,
         os.path.join(work, "nowhere"), []),
        ([newer, mnt], 2, newer, ["newer"]),
        ([], 2, None, ["missing"]),
        ([store], 2, store, ["MOUNTPOINT"]),
        ([store, mnt, "extra"], 2, store, ["extra"]),
        ([store, mnt, "-o", "bogus_option"], 2, store, ["bogus_option"]),
        ([store, mnt, "-o", "cache_size=lots"], 2, store, ["cache_size"]),
        ([store, mnt, "-o", "cache_size=-5"], 2, store, ["cache_size"]),
        ([store, os.path.join(work, "nomnt")], 1, store,
         ["nomnt", "no such file"]),
        ([store, afile], 1, store, ["not a directory"]),
    ]
    for args, status, named, needles in cases:
        for fg in (["-f"], []):
            expect_fail([SNAPFS, "mount", *args, *fg], status, *needles,
                        store=named)
            check(not is_snapfs_mount(mnt), f"{args}: something mounted")
            check(not daemon_pids(mnt), f"{args}: a daemon was left behind")
    log(f"{len(cases)} startup errors reported, foreground and background")

    with Mount(store, mnt) as m:
        for fg in (["-f"], []):
            err = expect_fail([SNAPFS, "mount", store, mnt, *fg], 1,
                              "already mounted", store=store)
        check(len(daemon_pids(mnt)) == 1, "a second daemon is running")
        run(["cmp", src, os.path.join(mnt, "vm", "memory")])
        log(f"already mounted: {err.strip()}")
        m.unmount()

    # A dead mount (daemon killed): ENOTCONN, named as such.
    m = Mount(store, mnt)
    try:
        m.proc.kill()
        m.proc.wait()

        def dead():   # once the root's cached attributes expire
            try:
                os.stat(mnt)
                return False
            except OSError as e:
                check(e.errno == errno.ENOTCONN, f"dead mount: stat: {e}")
                return True
        check(wait_for(dead, 5), "stat of a dead mount still succeeds")
        expect_fail([SNAPFS, "mount", store, mnt, "-f"], 1,
                    "not connected", "fusermount3 -u", store=store)
    finally:
        m.close()
    check(not is_snapfs_mount(mnt), "dead mount not cleaned up")
    log("dead mount in the way: reported")

    # --- working forms --------------------------------------------------------
    p = run([SNAPFS, "mount", "--help"])
    check("cache_size" in p.stdout and "-f" in p.stdout,
          f"--help does not describe the options:\n{p.stdout}")
    p = run([SNAPFS, "mount", "--version"])
    check(p.stdout.startswith("snapfs "), f"--version: {p.stdout!r}")

    with Mount(store, mnt, "-d", "-o", "cache_size=1") as m:
        run(["cmp", src, os.path.join(mnt, "vm", "memory")])
        m.unmount()
        check("LOOKUP" in m.stderr() or "lookup" in m.stderr(),
              "-d printed no request trace")
    log("-d and -o cache_size=1: ok")

    with Mount(store, mnt, "-o", "rw") as m:
        check("rw" in m.stderr() and "ignored" in m.stderr(),
              f"-o rw not warned about: {m.stderr()!r}")
        opts = [ln.split()[5] for ln in open("/proc/self/mountinfo")
                if ln.split()[4] == os.path.realpath(mnt)]
        check(opts and opts[-1].split(",")[0] == "ro",
              f"-o rw mount options: {opts}")
        m.unmount()

    # The bare form mount.fuse3 uses, in the foreground and as a daemon.
    p = subprocess.Popen([SNAPFS, store, mnt, "-o", "ro", "-f"],
                         stderr=subprocess.PIPE, text=True)
    try:
        check(wait_for(lambda: is_snapfs_mount(mnt), 10),
              "bare form did not mount")
        run(["cmp", src, os.path.join(mnt, "vm", "memory")])
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
    check(p.wait(20) == 0, f"bare form exit status {p.returncode}")
    run([SNAPFS, store, mnt, "-o", "ro,allow_other"])
    try:
        check(is_snapfs_mount(mnt), "bare daemon form did not mount")
        check(mounted_fs(mnt) == ("fuse.snapfs", os.path.realpath(store)),
              f"mount table says {mounted_fs(mnt)}")
        run(["cmp", src, os.path.join(mnt, "vm", "memory")])
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
    log("bare 'snapfs STORE MNT -o ro' form: ok")

    # As from fstab: mount(8) -> mount.fuse3 -> `snapfs STORE MNT -o OPTS`.
    # mount(8) drops PATH, so /bin/sh finds `snapfs` only where it is
    # installed (/usr/local/bin, /usr/bin); the test names the built
    # binary with the "PROGRAM#SOURCE" form of type fuse instead, and runs
    # mount.fuse3 -t fuse.snapfs itself with the binary on PATH.
    if not as_root("mount(8) and mount.fuse3"):
        return
    env = dict(os.environ)
    env["PATH"] = os.path.dirname(os.path.abspath(SNAPFS)) + ":" + \
        env.get("PATH", "")
    for argv, how in (
            (["mount", "-t", "fuse", f"{os.path.abspath(SNAPFS)}#{store}",
              mnt, "-o", "ro,cache_size=8,nofail"], "mount -t fuse"),
            (["mount.fuse3", store, mnt, "-t", "fuse.snapfs", "-o",
              "ro,noauto,cache_size=8"], "mount.fuse3 -t fuse.snapfs")):
        t0 = time.monotonic()
        run(argv, env=env)
        try:
            log(f"{how}: mounted in {time.monotonic() - t0:.3f} s")
            check(is_snapfs_mount(mnt), f"{how}: not mounted")
            check(mounted_fs(mnt) == ("fuse.snapfs",
                                      os.path.realpath(store)),
                  f"{how}: mount table says {mounted_fs(mnt)}")
            run(["cmp", src, os.path.join(mnt, "vm", "memory")])
            pids = daemon_pids(mnt)
        finally:
            run(["umount", mnt], expect=None)
        check(wait_for(lambda: not is_snapfs_mount(mnt), 10),
              f"{how}: still mounted after umount")
        check(pids and wait_for(lambda: not any(
            os.path.exists(f"/proc/{p}") for p in pids), 10),
              f"{how}: daemon {pids} still running after umount")
        log(f"{how}: served, umount stopped the daemon")


if __name__ == "__main__":
    main(test)
