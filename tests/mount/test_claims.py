#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A reader is never cut off (issue 14, point 4).

- A VM-style reader maps a snapshot's memory file from the mount with
  MAP_PRIVATE and keeps reading it, every page compared with the saved
  image after dropping its mapped pages and the kernel's page cache (so
  the bytes come from the daemon, whose blob cache is 1 MiB), while
  `snapfs rm` and `snapfs gc` run: rm makes the snapshot vanish from
  `snapfs list`, `info` and the mount's root at once and frees its name
  (a new snapshot of that name is saved, and removed outright: nobody
  reads it); gc says it kept the claimed pages, and the packs keep their
  allocated blocks.
- Once the reader closes the file (the mount lets go of the image), the
  next gc deletes the snapshot and the packs give the space back (st_blocks).
- A killed reader lets go: a mount reader killed with SIGKILL, and a
  `snapfs restore` to a pipe nobody reads (it holds the claim while it
  blocks) killed with SIGKILL; each time gc gives the space back.
- `snapfs verify` is clean and the snapshot kept aside reads right after
  all of it.
"""
import itertools
import json
import mmap
import os
import signal
import subprocess
import sys
import time

from mountlib import (PAGE, Mount, check, log, main, make_image, run, save,
                      snapfs, wait_for)

PAGES = 6144            # 24 MiB, mostly random: space that gc must give back
INCOMPRESSIBLE = [1, 1, 8, 1, 0]


def reader(mem, img):
    """The VM: map mem MAP_PRIVATE, answer "check" with "ok" after
    comparing every byte with img (read from the daemon, not from caches),
    "quit" by closing. A read the daemon fails kills it with SIGBUS."""
    fd = os.open(mem, os.O_RDONLY)
    size = os.fstat(fd).st_size
    m = mmap.mmap(fd, size, flags=mmap.MAP_PRIVATE, prot=mmap.PROT_READ)
    with open(img, "rb") as f:
        want = f.read()
    if size != len(want):
        print(f"bad size {size} != {len(want)}", flush=True)
        return 1
    checks = 0
    for line in itertools.chain(["check\n"], sys.stdin):
        cmd = line.strip()
        if cmd == "quit":
            break
        # Drop what is mapped and cached, so that every page comes back
        # from the mount's daemon.
        m.madvise(mmap.MADV_DONTNEED)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        for off in range(0, size, 1 << 20):
            if m[off:off + (1 << 20)] != want[off:off + (1 << 20)]:
                print(f"bad bytes at {off:#x}", flush=True)
                return 1
        checks += 1
        print(f"ok {checks}", flush=True)
    m.close()
    os.close(fd)
    return 0


class Reader:
    def __init__(self, mem, img):
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--reader", mem, img],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.expect_ok("first read")

    def expect_ok(self, what):
        line = self.proc.stdout.readline().strip()
        check(line.startswith("ok"),
              f"reader, {what}: {line!r} (exit {self.proc.poll()})")

    def check(self, what):
        self.proc.stdin.write("check\n")
        self.proc.stdin.flush()
        self.expect_ok(what)
        log(f"reader read every byte right {what}")

    def quit(self):
        self.proc.stdin.write("quit\n")
        self.proc.stdin.close()
        check(self.proc.wait(30) == 0, "reader exit status")

    def kill(self):
        self.proc.kill()
        self.proc.wait(30)
        self.proc.stdin.close()
        self.proc.stdout.close()


def pack_blocks(store):
    """Bytes allocated to the store's pack files."""
    d = os.path.join(store, "packs")
    return sum(os.stat(os.path.join(d, n)).st_blocks * 512 for n in os.listdir(d))


def listed(store):
    return [s["name"] for s in json.loads(snapfs("list", store, "--json").stdout)]


def sql(store, query):
    return run(["sqlite3", "-readonly", os.path.join(store, "snapfs.db"), query]).stdout


def gc_until_deleted(store, what):
    """Run gc until it deletes the removed snapshot (the daemon gets the
    kernel's release of the file shortly after close or death)."""
    out = []

    def once():
        out.append(snapfs("gc", store).stdout)
        return "deleted 1 removed snapshots" in out[-1]
    check(wait_for(once, 10, 0.2), f"gc after {what}: never deleted it: {out[-1]!r}")
    log(f"gc after {what}: {out[-1].strip()!r}")


def rm_claimed(store, mnt, name):
    """rm of a snapshot a reader holds: hidden at once, from everything."""
    p = snapfs("rm", store, name)
    check("still open by a reader" in p.stderr, f"rm stderr: {p.stderr!r}")
    check(name not in listed(store), f"'{name}' still in snapfs list")
    snapfs("info", store, name, expect=1)
    check(wait_for(lambda: name not in os.listdir(mnt), 1.5),
          f"'{name}' still in the mount's root: {os.listdir(mnt)}")
    check(sql(store, "SELECT count(*) FROM snapshot_summary WHERE name = "
                     f"'{name}'").strip() == "0", "snapshot_summary shows it")
    check(sql(store, "SELECT name FROM removed").split() == [name],
          "table removed")


def test(work):
    store = os.path.join(work, "store")
    snapfs("init", store)
    vm_img, keep_img = os.path.join(work, "vm.img"), os.path.join(work, "keep.img")
    make_image(vm_img, PAGES, 41, tail=777, weights=INCOMPRESSIBLE)
    keep = make_image(keep_img, 512, 42, weights=INCOMPRESSIBLE)
    save(store, "keep", keep_img)
    base = pack_blocks(store)
    save(store, "vm", vm_img)
    full = pack_blocks(store)
    check(full - base > 16 << 20, f"packs grew by {full - base} bytes only")
    mnt = os.path.join(work, "mnt")

    with Mount(store, mnt, "-o", "cache_size=1"):
        vm = Reader(os.path.join(mnt, "vm", "memory"), vm_img)
        rm_claimed(store, mnt, "vm")
        vm.check("after rm")
        # The name is free at once; that new snapshot nobody reads goes
        # outright.
        small = os.path.join(work, "small.img")
        make_image(small, 64, 43)
        save(store, "vm", small)
        p = snapfs("rm", store, "vm")
        check(p.stderr == "", f"rm of an unread snapshot: {p.stderr!r}")
        out = snapfs("gc", store).stdout
        log(f"gc while read: {out.strip()!r}")
        check("kept 1 removed snapshots still open" in out, f"gc output: {out!r}")
        kept = pack_blocks(store)
        check(kept >= full - (1 << 20),
              f"gc gave back claimed pages: packs {full} -> {kept} bytes")
        vm.check("after gc")
        out = snapfs("gc", store).stdout
        vm.check("after a second gc")
        vm.quit()
        gc_until_deleted(store, "the reader closed")
        after = pack_blocks(store)
        log(f"pack bytes: {full} with vm, {kept} while read, {after} after close")
        check(full - after > 16 << 20,
              f"space not given back after the reader closed: {full} -> {after}")
        check(sql(store, "SELECT count(*) FROM removed").strip() == "0",
              "removed row left")

        # A mount reader killed outright.
        save(store, "vm2", vm_img)
        full = pack_blocks(store)
        check(wait_for(lambda: "vm2" in os.listdir(mnt), 5),
              "'vm2' never appeared in the mount")
        vm2 = Reader(os.path.join(mnt, "vm2", "memory"), vm_img)
        rm_claimed(store, mnt, "vm2")
        snapfs("gc", store)
        check(pack_blocks(store) >= full - (1 << 20), "gc took vm2's pages")
        vm2.check("after rm and gc")
        vm2.kill()
        gc_until_deleted(store, "the reader was killed")
        check(full - pack_blocks(store) > 16 << 20, "space not given back after SIGKILL")

        # A restore blocked on a full pipe holds its claim; killed, it
        # lets go.
        save(store, "vm3", vm_img)
        full = pack_blocks(store)
        r, w = os.pipe()
        restore = subprocess.Popen([os.environ["SNAPFS"], "restore", store, "vm3", "-"],
                                   stdout=w, stderr=subprocess.DEVNULL)
        os.close(w)
        check(wait_for(lambda: len(os.read(r, 0) or b"") == 0 and
                       restore.poll() is None, 1), "restore gone early")
        time.sleep(0.5)         # it fills the pipe and blocks
        rm_claimed(store, mnt, "vm3")
        snapfs("gc", store)
        check(pack_blocks(store) >= full - (1 << 20), "gc took vm3's pages")
        restore.send_signal(signal.SIGKILL)
        restore.wait(30)
        os.close(r)
        gc_until_deleted(store, "restore was killed")
        check(full - pack_blocks(store) > 16 << 20,
              "space not given back after the restore was killed")

        with open(os.path.join(mnt, "keep", "memory"), "rb") as f:
            check(f.read() == keep, "'keep' reads back wrong")
    out = snapfs("verify", store).stdout
    check("ok" in out, f"verify: {out!r}")
    check(listed(store) == ["keep"], f"list: {listed(store)}")


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--reader":
        sys.exit(reader(sys.argv[2], sys.argv[3]))
    main(test)
