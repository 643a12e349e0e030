#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The mount follows the store while mounted, and stops cleanly.

- A snapshot saved while mounted appears in the root within about a second
  (asserted: 1.5 s, measured time printed) and reads back right.
- A snapshot removed with `snapfs rm` disappears (listing and lookup
  ENOENT) within about a second; a file already open on it either keeps
  returning the right bytes or fails with EIO, never wrong bytes.
- Removing a parent changes its child's `info` to "parent: -".
- The daemon exits 0 on fusermount3 -u, umount, SIGTERM and SIGINT, and
  the mount is gone afterwards.
- Without -f the command returns once mounted and leaves a daemon that
  serves the store from another directory (relative STORE and MOUNTPOINT)
  and exits after fusermount3 -u.
"""
import errno
import os
import signal
import subprocess
import time

from mountlib import (PAGE, Mount, as_root, check, daemon_pids,
                      is_snapfs_mount, log, main, make_image, run, save,
                      snapfs, wait_for)

LIMIT = 1.5  # seconds: "within about a second", with room for a busy box


def appear_time(mnt, name, present):
    t0 = time.monotonic()
    ok = wait_for(lambda: (name in os.listdir(mnt)) == present, 5, 0.01)
    return time.monotonic() - t0 if ok else None


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    imgs = {}
    for i, name in enumerate(("base", "child", "later", "doomed")):
        src = os.path.join(work, name + ".img")
        imgs[name] = (src, make_image(src, 300 + 50 * i, 100 + i, 77))
    save(store, "base", imgs["base"][0])
    save(store, "child", imgs["child"][0], "--parent", "base")
    save(store, "doomed", imgs["doomed"][0])
    mnt = os.path.join(work, "mnt")

    with Mount(store, mnt) as m:
        check(sorted(os.listdir(mnt)) == ["base", "child", "doomed"],
              f"root: {os.listdir(mnt)}")
        # Saved while mounted.
        save(store, "later", imgs["later"][0])
        took = appear_time(mnt, "later", True)
        log(f"saved snapshot appeared after "
            f"{'never' if took is None else f'{took:.3f} s'}")
        check(took is not None and took <= LIMIT,
              f"'later' did not appear within {LIMIT} s")
        run(["cmp", imgs["later"][0], os.path.join(mnt, "later", "memory")])

        # Removed while mounted, with a file open on it.
        doomed = os.path.join(mnt, "doomed", "memory")
        data = imgs["doomed"][1]
        fd = os.open(doomed, os.O_RDONLY)
        check(os.pread(fd, PAGE, 0) == data[:PAGE], "doomed: first page")
        snapfs("rm", store, "doomed")
        t0 = time.monotonic()
        took = appear_time(mnt, "doomed", False)
        log(f"removed snapshot left the listing after "
            f"{'never' if took is None else f'{took:.3f} s'}")
        check(took is not None and took <= LIMIT,
              f"'doomed' still listed after {LIMIT} s")

        def gone(path):
            try:
                os.stat(path)
                return False
            except OSError as e:
                check(e.errno == errno.ENOENT, f"stat({path}): {e}")
                return True
        # Lookups cached by the kernel expire too (entry timeout).
        for path in (os.path.join(mnt, "doomed"), doomed):
            check(wait_for(lambda: gone(path), LIMIT), f"stat({path}) "
                  f"still succeeds {LIMIT} s after rm")
        log(f"lookups of the removed snapshot fail with ENOENT after "
            f"{time.monotonic() - t0:.3f} s")
        # The open file: right bytes or EIO, never anything else.
        outcomes = set()
        for off in range(0, len(data), 7 * PAGE):
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
                got = os.pread(fd, 2 * PAGE, off)
                check(got == data[off:off + 2 * PAGE],
                      f"open file of a removed snapshot: wrong bytes at "
                      f"{off}")
                outcomes.add("bytes")
            except OSError as e:
                check(e.errno == errno.EIO, f"open removed file: {e}")
                outcomes.add("EIO")
        os.close(fd)
        log(f"open file of a removed snapshot: {sorted(outcomes)}")

        # A parent removed: the child's info says so.
        with open(os.path.join(mnt, "child", "info")) as f:
            check("parent: base\n" in f.read(), "child info names its parent")
        snapfs("rm", store, "base")
        check(appear_time(mnt, "base", False) is not None,
              "'base' not removed")

        def parent_gone():
            with open(os.path.join(mnt, "child", "info")) as f:
                return "parent: -\n" in f.read()
        check(wait_for(parent_gone, 3, 0.05),
              "child's info still names the removed parent after 3 s")
        run(["cmp", imgs["child"][0], os.path.join(mnt, "child", "memory")])
        m.unmount()
    log("fusermount3 -u: exit 0")

    stops = [signal.SIGTERM, signal.SIGINT]
    if as_root("umount(8)"):
        stops.insert(0, "umount")
    for how in stops:
        label = how if isinstance(how, str) else how.name
        with Mount(store, mnt) as m:
            run(["cmp", imgs["later"][0],
                 os.path.join(mnt, "later", "memory")])
            if how == "umount":
                run(["umount", mnt])
            else:
                m.proc.send_signal(how)
            try:
                rc = m.proc.wait(20)
            except subprocess.TimeoutExpired:
                raise AssertionError(f"daemon did not exit after {label}")
            check(rc == 0, f"exit status {rc} after {label}, expected 0; "
                  f"stderr:\n{m.stderr()}")
            check(wait_for(lambda: not is_snapfs_mount(mnt), 5),
                  f"still mounted after {label}")
            log(f"{label}: exit 0, unmounted")

    # Daemon mode, relative paths: the daemon chdirs to /, so it must have
    # made them absolute before.
    p = subprocess.run([os.environ["SNAPFS"], "mount", "store", "mnt"],
                       cwd=work, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=30)
    try:
        check(p.returncode == 0, f"daemon mount: exit {p.returncode}: "
              f"{p.stderr}")
        check(is_snapfs_mount(mnt), "daemon mode: not mounted on return")
        pids = daemon_pids(mnt, cwd=work)
        check(len(pids) == 1, f"daemon mode: daemons found: {pids}")
        run(["cmp", imgs["child"][0], os.path.join(mnt, "child", "memory")])
        save(store, "after-daemon", imgs["base"][0])
        check(wait_for(lambda: "after-daemon" in os.listdir(mnt), LIMIT),
              "daemon mode: new snapshot not seen")
        run(["cmp", imgs["base"][0],
             os.path.join(mnt, "after-daemon", "memory")])
    finally:
        subprocess.run(["fusermount3", "-u", mnt])
    check(wait_for(lambda: not any(os.path.exists(f"/proc/{p}")
                                   for p in pids), 10),
          f"daemon {pids} still running after fusermount3 -u")
    log(f"daemon mode: served, exited after unmount (pids {pids})")


if __name__ == "__main__":
    main(test)
