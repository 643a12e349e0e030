#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""snapfs uffd: a userfaultfd page server speaking Firecracker's protocol.

The client (uffd_client.c, $UFFD_CLIENT) does what Firecracker's Uffd
memory backend does: anonymous guest memory in regions, a userfaultfd
with UFFD_FEATURE_EVENT_REMOVE registered for missing faults, the regions
as JSON and the userfaultfd in one message over the socket. It touches
pages and compares every byte with the file the snapshot was saved from.

Cases: every page right in sequential and random order over several
regions, with each of the page-size fields Firecracker has sent
(page_size and page_size_kib, page_size_kib alone, page_size alone) and a
memory file whose last page is partial; a damaged pack byte makes exactly
the pages of that blob raise SIGBUS (the client catches it and goes on,
or dies of it), never wrong bytes; a balloon's MADV_DONTNEED (REMOVE
event) makes the range read zeros and leaves its neighbours alone; a
recorded working set is copied in ahead of faults (no fault when the
client touches it after the prefetch; every page faults with
--no-prefetch); the snapshot stays claimed while served (rm hides it, gc
keeps its pages); bad handshakes, bad arguments and SIGTERM.
"""
import os
import re
import signal
import socket
import subprocess
import time

import common
from common import (PAGE, check, check_eq, damage_blob, fail, log, main, run, snapfs,
                    sql, standard_image)

CLIENT = os.environ.get("UFFD_CLIENT") or str(
    common.SOURCE_ROOT / "build" / "tests" / "uffd" / "uffd_client")
STATS = re.compile(r"regions (\d+), faults (\d+) \(copied (\d+), zero (\d+), present (\d+), "
                   r"around (\d+) pages\), "
                   r"prefetched (\d+) pages in \d+ ms \(present (\d+)\), removes (\d+) "
                   r"\((\d+) bytes\), poisoned (\d+)")
STAT_NAMES = ("regions", "faults", "copied", "zero", "present", "around", "prefetched",
              "prefetch_present", "removes", "removed_bytes", "poisoned")


def uffd_available():
    """userfaultfd needs root or vm.unprivileged_userfaultfd=1."""
    return os.geteuid() == 0 or _sysctl_unprivileged()


def _sysctl_unprivileged():
    try:
        with open("/proc/sys/vm/unprivileged_userfaultfd") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


class Server:
    """`snapfs uffd STORE NAME --socket PATH -v` in the background."""

    def __init__(self, ctx, store, name, *extra):
        self.sock = ctx.path(f"uffd-{time.monotonic_ns()}.sock")
        self.args = [common.SNAPFS, "uffd", str(store), name, "--socket", str(self.sock),
                     "-v", *extra]
        log("$ " + " ".join(self.args) + " &")
        self.proc = ctx.track(subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                               stdout=subprocess.PIPE,
                                               stderr=subprocess.PIPE, text=True))
        self.err = ""

    def wait(self, expect=0, timeout=30):
        try:
            out, self.err = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            out, self.err = self.proc.communicate()
            fail(f"snapfs uffd did not exit within {timeout} s; stderr: {self.err!r}")
        log(f"  snapfs uffd -> exit {self.proc.returncode}; stderr: {self.err!r}")
        for mark in common.SANITIZER_MARKS:
            check(mark not in self.err, f"sanitizer report from snapfs uffd:\n{self.err}")
        check_eq(self.proc.returncode, expect, "exit status of snapfs uffd")
        return self.err

    def stats(self):
        m = STATS.search(self.err)
        check(m, f"no stats line from snapfs uffd -v: {self.err!r}")
        return dict(zip(STAT_NAMES, map(int, m.groups())))


def client(server, image, *args, expect=0):
    cp = run([CLIENT, "--socket", server.sock, "--expect", image, *args], expect=expect,
             timeout=120)
    return cp.stdout


def sigbus_pages(out):
    return sorted(int(m) for m in re.findall(r"^sigbus (\d+)$", out, re.M))


def saved(ctx, seed=1, size=None):
    store = ctx.store()
    img = ctx.path("vm.img")
    standard_image(img, seed=seed, end_in_data=True)
    if size is not None:
        os.truncate(img, size)
    snapfs("save", store, "vm", img, "--quiet")
    return store, img


def setup():
    if not os.path.exists(CLIENT):
        fail(f"uffd_client not found at {CLIENT} (set $UFFD_CLIENT)")
    if not uffd_available():
        if os.environ.get("CI"):
            fail("userfaultfd is not available here (root or vm.unprivileged_userfaultfd)")
        raise common.Skip("userfaultfd is not available (root or vm.unprivileged_userfaultfd)")


def case_roundtrip(ctx):
    setup()
    # The last page is partial: it reads back with zeros past the end.
    store, img = saved(ctx, size=320 * PAGE - 1000)
    for order, regions, fields in (("seq", 1, "new"), ("random", 3, "new"),
                                   ("random", 2, "old"), ("seq", 4, "page_size")):
        # One page a fault, so that the counts below are exact.
        srv = Server(ctx, store, "vm", "--fault-around", "1")
        out = client(srv, img, "--order", order, "--regions", regions, "--fields", fields,
                     "--seed", regions)
        check("touched 320" in out and "sigbus_pages 0 wrong_pages 0" in out,
              f"{order}, {regions} regions, fields {fields}: {out!r}")
        srv.wait()
        st = srv.stats()
        check_eq(st["regions"], regions, "regions the server took")
        check_eq(st["faults"], 320, "faults served (one a page, no prefetch)")
        # Holes and zero pages come as zero pages: only data is copied.
        data_pages = len([p for p in range(320) if common.ZERO_PAGE != _page(img, p)])
        check_eq(st["copied"], data_pages, "pages answered with UFFDIO_COPY")
        check_eq(st["zero"], 320 - data_pages, "pages answered with UFFDIO_ZEROPAGE")
        check(not os.path.exists(srv.sock), "the socket file is left behind")
        log(f"{order} order, {regions} regions, fields {fields}: 320 pages right, {st}")
    # Fault-around (4 pages by default, 256 at most): fewer faults, the same bytes.
    for around in (None, "256"):
        srv = Server(ctx, store, "vm", *(("--fault-around", around) if around else ()))
        out = client(srv, img, "--order", "random", "--regions", "3")
        check("touched 320" in out and "sigbus_pages 0 wrong_pages 0" in out, f"{out!r}")
        srv.wait()
        st = srv.stats()
        check(st["around"] > st["copied"] and st["faults"] < 320,
              f"fault-around {around or 'default'} brought nothing in around: {st}")
        log(f"fault-around {around or 'default'}: {st}")
    for bad in ("0", "3", "512", "x"):
        common.expect_error(["uffd", store, "vm", "--socket", ctx.path("s"), "--fault-around",
                             bad], 2, "--fault-around")


def _page(img, p):
    with open(img, "rb") as f:
        f.seek(p * PAGE)
        return f.read(PAGE).ljust(PAGE, b"\0")


def case_damage(ctx):
    setup()
    store, img = saved(ctx)
    # The blob of page 40 (random data): a byte of it flipped in its pack.
    row = sql(store, "SELECT blob_id FROM page_map WHERE snapshot_id = (SELECT id FROM "
                     "snapshots WHERE name = 'vm') AND first_page <= 40 AND "
                     "first_page + page_count > 40")
    blob = row[0]["blob_id"]
    bad = set()
    for r in sql(store, f"SELECT first_page, page_count FROM page_map WHERE blob_id = {blob}"):
        bad |= set(range(r["first_page"], r["first_page"] + r["page_count"]))
    damage_blob(store, blob, "flip")
    srv = Server(ctx, store, "vm")
    out = client(srv, img, "--order", "random", "--regions", "2")
    srv.wait()
    check_eq(sigbus_pages(out), sorted(bad), "pages that raised SIGBUS")
    check("wrong_pages 0" in out, f"wrong bytes served: {out!r}")
    check_eq(srv.stats()["poisoned"], len(bad), "pages poisoned")
    # Touched again, a poisoned page raises SIGBUS again; uncaught, the
    # client dies of it at the first damaged page.
    srv = Server(ctx, store, "vm")
    # (A sanitized client: ASan must leave SIGBUS to the kernel.)
    env = dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") + ":handle_sigbus=0")
    cp = run([CLIENT, "--socket", srv.sock, "--expect", img, "--no-catch"], timeout=120, env=env)
    check_eq(cp.returncode, -signal.SIGBUS, "exit of a client that does not catch SIGBUS")
    check("wrong" not in cp.stdout, f"wrong bytes before the damage: {cp.stdout!r}")
    srv.wait()
    # With a working set over the damage the prefetch copies none of it in
    # (its read fails): the faults find it page by page, the same way.
    _working_set(store, [(min(bad) - 2, len(bad) + 4), (0, 8)])
    srv = Server(ctx, store, "vm")
    out = client(srv, img, "--order", "seq", "--delay-ms", "300")
    srv.wait()
    check_eq(sigbus_pages(out), sorted(bad), "pages that raised SIGBUS (working set over them)")
    check("wrong_pages 0" in out, f"wrong bytes served: {out!r}")
    log(f"damaged blob {blob}: pages {sorted(bad)} raised SIGBUS, the rest read right")


def case_remove(ctx):
    setup()
    store, img = saved(ctx)
    for around in ("1", "8"):
        srv = Server(ctx, store, "vm", "--fault-around", around)
        # Pages 258..265 hold text: after MADV_DONTNEED they read zeros,
        # their neighbours (257, 266: fault-around windows cut by the
        # removed range) the snapshot's bytes.
        out = client(srv, img, "--remove", "258:8", "--order", "random")
        srv.wait()
        check("removed 8" in out and "sigbus_pages 0 wrong_pages 0" in out, f"{out!r}")
        st = srv.stats()
        check(st["removes"] >= 1 and st["removed_bytes"] >= 8 * PAGE, f"REMOVE not seen: {st}")
        if around == "1":
            check_eq(st["faults"], 320 + 8, "faults: the pass, then the removed pages again")
            check_eq(st["zero"] - (320 - st["copied"]), 8, "removed pages answered with zeros")
        log(f"REMOVE, fault-around {around}: {st}")


def _working_set(store, runs):
    sql(store, "DELETE FROM working_set")
    values = ", ".join(f"((SELECT id FROM snapshots WHERE name = 'vm'), {i}, {f}, {n})"
                       for i, (f, n) in enumerate(runs))
    sql(store, f"INSERT INTO working_set (snapshot_id, seq, first_page, page_count) "
               f"VALUES {values}")


def case_prefetch(ctx):
    setup()
    store, img = saved(ctx)
    runs = [(256, 8), (0, 4), (40, 6), (20, 3), (300, 10)]
    _working_set(store, runs)
    pages = sum(n for _, n in runs)
    order = ctx.path("order.txt")
    order.write_text(snapfs("workingset", store, "vm").stdout)
    srv = Server(ctx, store, "vm")
    out = client(srv, img, "--order", f"list:{order}", "--delay-ms", "700")
    srv.wait()
    check(f"touched {pages}" in out and "wrong_pages 0" in out, f"{out!r}")
    st = srv.stats()
    check(st["prefetched"] + st["prefetch_present"] >= pages,
          f"the prefetch copied in fewer than the {pages} pages of the working set: {st}")
    check_eq(st["faults"], 0, "faults on a prefetched working set")
    # Without the prefetch every page of it faults.
    srv = Server(ctx, store, "vm", "--no-prefetch", "--fault-around", "1")
    out = client(srv, img, "--order", f"list:{order}")
    srv.wait()
    check_eq(srv.stats()["faults"], pages, "faults with --no-prefetch")
    # Prefetch racing the client (no delay): still every byte right.
    srv = Server(ctx, store, "vm")
    out = client(srv, img, "--order", "random")
    srv.wait()
    check("sigbus_pages 0 wrong_pages 0" in out, f"{out!r}")
    log(f"prefetch: {st}; racing: {srv.stats()}")


def case_claimed(ctx):
    setup()
    store, img = saved(ctx)
    srv = Server(ctx, store, "vm")
    c = ctx.track(subprocess.Popen([CLIENT, "--socket", str(srv.sock), "--expect", str(img),
                                    "--delay-ms", "1500", "--order", "random"],
                                   stdout=subprocess.PIPE, text=True))
    time.sleep(0.5)
    snapfs("rm", store, "vm")
    snapfs("gc", store)
    out, _ = c.communicate(timeout=60)
    check_eq(c.returncode, 0, f"client exit ({out!r})")
    check("sigbus_pages 0 wrong_pages 0" in out, f"{out!r}")
    srv.wait()
    log("rm and gc while served: every page still right")


def _raw_client(path, payload, fd=None):
    """Connect and send payload (bytes), with fd as SCM_RIGHTS if given."""
    for _ in range(500):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            s.connect(str(path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            s.close()
            time.sleep(0.01)
    else:
        fail(f"cannot connect to {path}")
    if fd is None:
        s.sendall(payload)
    else:
        socket.send_fds(s, [payload], [fd])
    return s


def case_errors(ctx):
    setup()
    store, img = saved(ctx)
    common.expect_error(["uffd", store, "vm"], 2, "--socket")
    common.expect_error(["uffd", store, "vm", "--socket", ctx.path("s"), "--bogus"], 2,
                        "--bogus")
    common.expect_error(["uffd", store, "-x", "--socket", ctx.path("s")], 2, "-x")
    common.expect_error(["uffd", store, "nope", "--socket", ctx.path("s")], 1, "nope")
    ctx.path("file").write_text("x")
    common.expect_error(["uffd", store, "vm", "--socket", ctx.path("file")], 1,
                        "not a socket")
    check_eq(ctx.path("file").read_text(), "x", "a file in the way is left alone")
    # Bad handshakes: one line naming what is wrong, exit 1.
    r, w = os.pipe()
    for payload, fd, why in ((b'[{"size":4096}]', r, "base_host_virt_addr"),
                             (b'not json', r, "expected '['"),
                             (b'[{"base_host_virt_addr":4096,"size":4096,"offset":0,'
                              b'"page_size":4096}]', None, "no file descriptor"),
                             (b'[{"base_host_virt_addr":4096,"size":4096,"offset":0,'
                              b'"page_size":4096}]', r, "not a userfaultfd"),
                             (b'[{"base_host_virt_addr":4096,"size":40960000,"offset":0,'
                              b'"page_size":4096}]', r, "past the end"),
                             (b'[{"base_host_virt_addr":4097,"size":4096,"offset":0,'
                              b'"page_size":4096}]', r, "not aligned")):
        srv = Server(ctx, store, "vm")
        s = _raw_client(srv.sock, payload, fd)
        err = srv.wait(expect=1)
        s.close()
        lines = [ln for ln in err.splitlines() if not ln.startswith("snapfs: uffd 'vm':")]
        check(len(lines) == 1 and lines[0].startswith("snapfs: uffd 'vm' in ") and
              why in lines[0], f"handshake {payload!r}: message {err!r} should name {why!r}")
    os.close(r)
    os.close(w)
    # --keep-listening: a bad client does not stop the server; SIGTERM does.
    srv = Server(ctx, store, "vm", "--keep-listening")
    _raw_client(srv.sock, b"[]", None).close()
    out = client(srv, img, "--order", "random")
    check("sigbus_pages 0 wrong_pages 0" in out, f"{out!r}")
    srv.proc.send_signal(signal.SIGTERM)
    srv.wait(expect=143)
    check(not os.path.exists(srv.sock), "SIGTERM left the socket file behind")


if __name__ == "__main__":
    main()
