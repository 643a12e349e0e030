#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Remote stores (issue 18) against a real radosgw: starts a throwaway
cluster (ceph-cluster.sh), then two store directories ("hosts" A and B) on
one bucket: save on A, list/mount/restore/verify on B with every byte
equal (cmp); a child saved on B with --parent uploads only its changed
pages (bytes of the new pack object measured); saves from A and B at the
same time both survive; radosgw killed under a mount: EIO within
SNAPFS_S3_TIMEOUT, right bytes again once it is back; a save killed
midway leaves nothing a reader sees (and its lock is taken over after its
lease; gc deletes what it left); a damaged object is EIO (never wrong bytes) and verify names it; a
damaged cached copy is fetched again; the cache stays within
SNAPFS_CACHE_SIZE (and the mount's -o cache_dir=, cache_dir_size=); no credential in errors, the store's files or
/proc/PID/cmdline. Measures a cold random 4 KiB read through the mount
against a raw ranged GET, and a sequential read against one GET of the
same stored bytes. Stops exactly the cluster it started.

    SNAPFS=build/src/cli/snapfs S3_CLIENT_TEST=build/tests/remote/s3_client_test \\
        test_remote_store.py
"""
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from test_ceph_cluster import (CLUSTER, check, free_port, kill_rgw, rgw_pid,  # noqa: E402
                               s3, start_rgw)

SNAPFS = os.environ.get("SNAPFS", "")
PROG = os.environ.get("S3_CLIENT_TEST", "")
BUCKET = "snapfs-remote-store"
URL = f"s3://{BUCKET}/fleet"
SECRET = "snapfs-test-secret"
PAGE = 4096
MIB = 1 << 20


def sh(env, *args, expect=0, timeout=180):
    p = subprocess.run([SNAPFS, *args], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, encoding="utf-8", timeout=timeout)
    out = p.stdout + p.stderr
    print(f"$ snapfs {' '.join(args)} -> {p.returncode}")
    if p.returncode != expect:
        sys.stdout.write(out)
    check(SECRET not in out, f"snapfs {args[0]}: the secret in its output")
    if expect is not None:
        check(p.returncode == expect, f"snapfs {' '.join(args)}: exit {p.returncode}, "
              f"expected {expect}: {out[-1500:]}")
    return p.returncode, out


def make_image(path, size, seed):
    rng = random.Random(seed)
    pages = []
    for i in range(size // PAGE):
        kind = i % 8
        if kind == 0:
            pages.append(bytes(PAGE))
        elif kind < 4:
            pages.append(rng.randbytes(PAGE))
        else:
            word = rng.randbytes(16)
            pages.append(word * (PAGE // 16))
    with open(path, "wb") as f:
        f.write(b"".join(pages))


def change_pages(src, dst, fraction, seed):
    rng = random.Random(seed)
    data = bytearray(open(src, "rb").read())
    n = len(data) // PAGE
    # A few bytes in each changed page, as a running guest changes them.
    for p in rng.sample([i for i in range(n) if any(data[i * PAGE:i * PAGE + 64])],
                        max(1, int(n * fraction))):
        off = p * PAGE + rng.randrange(PAGE - 64)
        data[off:off + 64] = rng.randbytes(64)
    with open(dst, "wb") as f:
        f.write(data)


def same(a, b):
    return subprocess.run(["cmp", a, b]).returncode == 0


def objects(env, prefix):
    """{key: size} of the bucket's objects under fleet/PREFIX."""
    code, body = s3(env, f"{env['AWS_ENDPOINT_URL']}/{BUCKET}?list-type=2&prefix=fleet%2F{prefix.replace('/', '%2F')}")
    check(code == 200, f"list {prefix}: HTTP {code}")
    text = body.decode()
    keys = re.findall(r"<Key>([^<]*)</Key>", text)
    sizes = re.findall(r"<Size>(\d+)</Size>", text)
    return dict(zip(keys, map(int, sizes)))


def mount(env, store, mnt, *opts):
    os.makedirs(mnt, exist_ok=True)
    sh(env, "mount", store, mnt, *opts)


def umount(mnt):
    subprocess.run(["fusermount3", "-u", mnt], check=False)


def pread_page(path, off):
    fd = os.open(path, os.O_RDONLY)
    try:
        return os.pread(fd, PAGE, off)
    finally:
        os.close(fd)


def p50(values):
    values = sorted(values)
    return values[len(values) // 2]


def main():
    check(SNAPFS and os.access(SNAPFS, os.X_OK), "SNAPFS: the snapfs program")
    check(PROG and os.access(PROG, os.X_OK), "S3_CLIENT_TEST: the s3_client_test program")
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "curl", "fusermount3"):
        check(shutil.which(tool), f"{tool} not found: run scripts/install-deps.sh test")
    work = tempfile.mkdtemp(prefix="snapfs-remote-", dir="/var/tmp")
    path = os.path.join(work, "cluster")
    port = free_port()
    mounts = []
    started = False
    try:
        started = True
        p = subprocess.run(["bash", CLUSTER, "start", path, str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding="utf-8", timeout=60)
        check(p.returncode == 0, f"start: exit {p.returncode}: {p.stderr[-2000:]}")
        s3env = dict(line.split("=", 1) for line in p.stdout.split())
        home = os.path.join(work, "home")
        os.mkdir(home)
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("AWS_") and not k.startswith("SNAPFS_S3_")
                and not k.startswith("SNAPFS_CACHE")}
        base["HOME"] = home
        env = dict(base, **s3env)
        A, B, C = (os.path.join(work, h) for h in ("A", "B", "C"))

        img1, img2 = os.path.join(work, "vm1.img"), os.path.join(work, "vm2.img")
        make_image(img1, 16 * MIB, 1)
        change_pages(img1, img2, 0.01, 2)

        print("# host A: init on an empty bucket, save vm1")
        sh(env, "init", A, "--remote", URL)
        check(not os.path.exists(os.path.join(A, "packs")) or
              not os.listdir(os.path.join(A, "packs")), "A has pack files after init")
        sh(env, "save", A, "vm1", img1)
        first = objects(env, "packs/")
        check(len(first) == 1, f"one pack object after the first save: {first}")
        first_bytes = sum(first.values())
        check("fleet/index/0000000000000002.db" in objects(env, "index/"),
              "generation 2 published")
        check(not [f for f in os.listdir(os.path.join(A, "packs")) if f.endswith(".pack")],
              "A keeps its staged pack after the upload")

        print("# host B: init on the same bucket; list, restore, verify, mount: every byte")
        sh(env, "init", B, "--remote", URL)
        _, out = sh(env, "list", B)
        check("vm1" in out, f"B lists vm1: {out}")
        out1 = os.path.join(work, "out1")
        sh(env, "restore", B, "vm1", out1)
        check(same(out1, img1), "restore on B: bytes differ")
        sh(env, "verify", B)
        mb = os.path.join(work, "mb")
        mount(env, B, mb)
        mounts.append(mb)
        check(same(os.path.join(mb, "vm1", "memory"), img1), "mount on B: bytes differ")

        print("# a child on B (--parent vm1, 1 % of pages changed): only its pages go up")
        sh(env, "save", B, "vm2", img2, "--parent", "vm1")
        after = objects(env, "packs/")
        new = {k: v for k, v in after.items() if k not in first}
        check(len(new) == 1, f"one new pack object: {new}")
        up = sum(new.values())
        print(f"child upload: {up} bytes of pages, {up / first_bytes * 100:.2f} % of the "
              f"first snapshot's {first_bytes}")
        check(up <= 0.02 * first_bytes, f"child uploaded {up} bytes > 2 % of {first_bytes}")

        print("# the running mount on B sees vm2 (installed into the same file)")
        time.sleep(1.5)
        check(same(os.path.join(mb, "vm2", "memory"), img2), "mount on B: vm2 differs")

        print("# A pulls and mounts vm2")
        _, out = sh(env, "pull", A)
        check("generation 3" in out, f"pull: {out}")
        ma = os.path.join(work, "ma")
        mount(env, A, ma)
        mounts.append(ma)
        check(same(os.path.join(ma, "vm2", "memory"), img2), "mount on A: vm2 differs")
        umount(ma)
        mounts.remove(ma)

        print("# saves from A and B at the same time: both survive")
        imga, imgb = os.path.join(work, "a.img"), os.path.join(work, "b.img")
        make_image(imga, 4 * MIB, 11)
        make_image(imgb, 4 * MIB, 12)
        procs = [subprocess.Popen([SNAPFS, "save", A, "from-a", imga], env=env),
                 subprocess.Popen([SNAPFS, "save", B, "from-b", imgb], env=env)]
        for pr in procs:
            check(pr.wait(timeout=180) == 0, "a concurrent save failed")
        sh(env, "init", C, "--remote", URL)
        _, out = sh(env, "list", C)
        for name in ("vm1", "vm2", "from-a", "from-b"):
            check(name in out, f"C does not list {name}: {out}")
        for name, img in (("from-a", imga), ("from-b", imgb), ("vm2", img2)):
            o = os.path.join(work, f"c-{name}")
            sh(env, "restore", C, name, o)
            check(same(o, img), f"C restores {name} wrong")

        print("# numbers: cold random 4 KiB reads through the mount (no disk cache)")
        umount(mb)
        mounts.remove(mb)
        nocache = dict(env, SNAPFS_CACHE_SIZE="0")
        mount(nocache, B, mb)
        mounts.append(mb)
        mem = os.path.join(mb, "vm1", "memory")
        data = open(img1, "rb").read()
        rng = random.Random(5)
        blobs = rng.sample([i for i in range(len(data) // PAGE // 4)], 150)
        times = []
        fd = os.open(mem, os.O_RDONLY)
        for b in blobs:
            off = (b * 4 + rng.randrange(4)) * PAGE
            t = time.monotonic()
            got = os.pread(fd, PAGE, off)
            times.append((time.monotonic() - t) * 1e3)
            check(got == data[off:off + PAGE], f"mount: page at {off} wrong")
        os.close(fd)
        mount_p50 = p50(times)
        obj = sorted(first)[0][len("fleet/"):]
        p = subprocess.run([PROG, "bench", URL, obj, "300"], env=env, stdout=subprocess.PIPE,
                           encoding="utf-8", timeout=120)
        m = re.search(r"p50 ([0-9.]+) ms", p.stdout)
        check(p.returncode == 0 and m, f"s3_client_test bench: {p.stdout}")
        raw_p50 = float(m.group(1))
        print(f"cold random 4 KiB read through the mount: p50 {mount_p50:.2f} ms; raw "
              f"ranged GET (s3.c, keep-alive): p50 {raw_p50:.2f} ms; "
              f"ratio {mount_p50 / raw_p50:.2f}")
        check(mount_p50 <= 3 * raw_p50 + 1, "cold random read far slower than a ranged GET")

        print("# numbers: sequential read through the mount vs one GET of the stored bytes")
        umount(mb)
        mounts.remove(mb)
        mount(nocache, B, mb)
        mounts.append(mb)
        t = time.monotonic()
        check(same(os.path.join(mb, "vm1", "memory"), img1), "sequential read differs")
        seq_s = time.monotonic() - t
        t = time.monotonic()
        code, body = s3(env, f"{env['AWS_ENDPOINT_URL']}/{BUCKET}/{sorted(first)[0]}")
        get_s = time.monotonic() - t
        check(code == 200 and len(body) == first_bytes, "GET of the pack")
        print(f"sequential: mount {len(data) / seq_s / MIB:.1f} MiB/s of memory "
              f"({seq_s * 1e3:.0f} ms); one GET of the {first_bytes} stored bytes "
              f"{get_s * 1e3:.0f} ms; ratio {get_s / seq_s:.2f}")

        print("# radosgw killed under the mount: EIO in time, right bytes when it is back")
        umount(mb)
        mounts.remove(mb)
        quick = dict(nocache, SNAPFS_S3_TIMEOUT="2")
        mount(quick, B, mb)
        mounts.append(mb)
        mem = os.path.join(mb, "vm2", "memory")
        check(pread_page(mem, 0) == data[:PAGE] or True, "warm the file")
        kill_rgw(path)
        t = time.monotonic()
        try:
            pread_page(mem, 3 * MIB + PAGE)
            check(False, "a read with radosgw down succeeded")
        except OSError as e:
            check(e.errno == 5, f"read with radosgw down: {e}")
        took = time.monotonic() - t
        print(f"EIO after {took:.2f} s (SNAPFS_S3_TIMEOUT=2)")
        check(took < 10, f"EIO took {took:.1f} s")
        start_rgw(path, port)
        check(same(mem, img2), "after radosgw came back: bytes differ")

        print("# a damaged cached copy is fetched again")
        umount(mb)
        mounts.remove(mb)
        shutil.rmtree(os.path.join(B, "cache"))
        out2 = os.path.join(work, "out2")
        sh(env, "restore", B, "vm1", out2, "--force")
        datas = [f for f in os.listdir(os.path.join(B, "cache")) if f.endswith(".data")]
        check(datas, "no cache files after a restore")
        for f in datas:
            fp = os.path.join(B, "cache", f)
            size = os.path.getsize(fp)
            with open(fp, "r+b") as fh:
                for off in range(0, size, 64 * 1024):
                    fh.seek(off + 100)
                    fh.write(b"\xff" * 16)
        sh(env, "restore", B, "vm1", out2, "--force")
        check(same(out2, img1), "restore from a damaged cache: bytes differ")

        print("# the cache stays within SNAPFS_CACHE_SIZE")
        shutil.rmtree(os.path.join(B, "cache"))
        small = dict(env, SNAPFS_CACHE_SIZE="2M")
        sh(small, "restore", B, "vm1", out2, "--force")
        check(same(out2, img1), "restore with a small cache: bytes differ")
        used = sum(os.stat(os.path.join(B, "cache", f)).st_blocks * 512
                   for f in os.listdir(os.path.join(B, "cache")) if f.endswith(".data"))
        print(f"cache after a restore of {first_bytes} stored bytes: {used} bytes (bound 2 MiB)")
        check(used <= 2 * MIB + 4 * MIB, f"cache holds {used} bytes")

        print("# the mount's -o cache_dir= and -o cache_dir_size= do the same for a mount")
        shutil.rmtree(os.path.join(B, "cache"), ignore_errors=True)
        mcache = os.path.join(work, "mount-cache")
        mount(env, B, mb, "-o", f"cache_dir={mcache},cache_dir_size=2M")
        mounts.append(mb)
        check(same(os.path.join(mb, "vm1", "memory"), img1), "mount with cache_dir: bytes differ")
        umount(mb)
        mounts.remove(mb)
        datas = [f for f in os.listdir(mcache) if f.endswith(".data")] if os.path.isdir(mcache) else []
        check(datas, f"-o cache_dir: nothing cached in {mcache}")
        check(not os.path.exists(os.path.join(B, "cache")) or
              not [f for f in os.listdir(os.path.join(B, "cache")) if f.endswith(".data")],
              "-o cache_dir: the mount cached in STORE/cache all the same")
        used = sum(os.stat(os.path.join(mcache, f)).st_blocks * 512 for f in datas)
        print(f"-o cache_dir: {used} bytes cached (bound 2 MiB)")
        check(used <= 2 * MIB + 4 * MIB, f"-o cache_dir_size=2M: the cache holds {used} bytes")
        rc, out = sh(env, "mount", B, mb, "-o", "cache_dir_size=lots", expect=None)
        check(rc == 2 and "cache_dir_size=lots" in out, f"-o cache_dir_size=lots: {rc} {out}")

        print("# a damaged object in the bucket: EIO, never wrong bytes; verify names it")
        key = sorted(first)[0]
        code, orig = s3(env, f"{env['AWS_ENDPOINT_URL']}/{BUCKET}/{key}")
        check(code == 200, "GET the pack")
        bad = bytearray(orig)
        for off in range(0, len(bad), 4096):
            bad[off] ^= 0x5a
        badf = os.path.join(work, "bad.pack")
        open(badf, "wb").write(bad)
        code, _ = s3(env, "-T", badf, f"{env['AWS_ENDPOINT_URL']}/{BUCKET}/{key}")
        check(code == 200, f"PUT the damaged pack: {code}")
        shutil.rmtree(os.path.join(B, "cache"), ignore_errors=True)
        rc, out = sh(env, "restore", B, "vm1", out2, "--force", expect=None)
        check(rc != 0, "restore of a damaged object succeeded")
        rc, out = sh(env, "verify", B, expect=None)
        check(rc != 0 and "damaged" in out, f"verify of a damaged object: {rc} {out}")
        mount(nocache, B, mb)
        mounts.append(mb)
        try:
            pread_page(os.path.join(mb, "vm1", "memory"), 8 * PAGE + 1 * PAGE)
            check(False, "mount read of a damaged object succeeded")
        except OSError as e:
            check(e.errno == 5, f"mount read of a damaged object: {e}")
        umount(mb)
        mounts.remove(mb)
        origf = os.path.join(work, "orig.pack")
        open(origf, "wb").write(orig)
        code, _ = s3(env, "-T", origf, f"{env['AWS_ENDPOINT_URL']}/{BUCKET}/{key}")
        check(code == 200, "PUT the pack back")
        shutil.rmtree(os.path.join(B, "cache"))
        sh(env, "verify", B)

        print("# a save killed midway: nothing a reader sees; its lock taken over after its lease")
        gens = objects(env, "index/")
        img3 = os.path.join(work, "vm3.img")
        make_image(img3, 24 * MIB, 3)
        leased = dict(env, SNAPFS_S3_LOCK_LEASE="3")
        pr = subprocess.Popen([SNAPFS, "save", A, "vm3", img3], env=leased)
        for _ in range(200):
            if "fleet/lock" in objects(env, "lock"):
                break
            time.sleep(0.02)
        os.kill(rgw_pid(path), signal.SIGSTOP)
        time.sleep(0.3)
        pr.kill()
        pr.wait()
        os.kill(rgw_pid(path), signal.SIGCONT)
        check(objects(env, "index/") == gens, "a killed save published an index")
        _, out = sh(env, "list", B)
        check("vm3" not in out, "B lists the killed save's snapshot")
        _, out = sh(env, "list", A)
        check("vm3" not in out, "A still lists the killed save's snapshot")
        time.sleep(3.5)
        sh(leased, "save", A, "vm3", img3)
        sh(env, "restore", B, "vm3", out2, "--force")
        check(same(out2, img3), "vm3 after the lock was taken over")
        check("fleet/lock" not in objects(env, "lock"), "the lock is left behind")

        print("# a working set recorded on B, laid out and published; C resumes with it")
        ws_pages = random.Random(9).sample(range(len(data) // PAGE), 300)
        mount(env, B, mb, "-o", "record=2,read_ahead_kb=0")
        fd = os.open(os.path.join(mb, "vm1", "memory"), os.O_RDONLY)
        for pg in ws_pages:
            os.pread(fd, PAGE, pg * PAGE)
        os.close(fd)
        time.sleep(2.5)
        umount(mb)
        before = objects(env, "packs/")
        _, out = sh(env, "workingset", B, "vm1", "--lay-out")
        check("moved" in out and len(objects(env, "packs/")) == len(before) + 1,
              f"lay-out on a remote store: {out}")
        sh(env, "pull", C)
        _, out = sh(env, "workingset", C, "vm1")
        check(out.strip(), "C has no working set for vm1")
        resume = {}
        for label, opts in (("without", "noprefetch,read_ahead_kb=0"),
                            ("with", "prefetch_wait=5000,read_ahead_kb=0")):
            shutil.rmtree(os.path.join(C, "cache"), ignore_errors=True)
            mount(nocache, C, mb, "-o", opts)
            t = time.monotonic()
            fd = os.open(os.path.join(mb, "vm1", "memory"), os.O_RDONLY)
            for pg in ws_pages:
                check(os.pread(fd, PAGE, pg * PAGE) == data[pg * PAGE:(pg + 1) * PAGE],
                      f"C: page {pg} wrong")
            os.close(fd)
            resume[label] = time.monotonic() - t
            umount(mb)
        print(f"resume (300 recorded pages, cold): without the working set "
              f"{resume['without'] * 1e3:.0f} ms, with it {resume['with'] * 1e3:.0f} ms: "
              f"{resume['without'] / resume['with']:.1f}x")
        sh(env, "restore", C, "vm1", out2, "--force")
        check(same(out2, img1), "vm1 on C after the lay-out")

        print("# rm: refused on a remote store; gc deletes the pack objects no index names")
        sh(env, "rm", B, "vm2", expect=1)
        orphan = os.path.join(work, "orphan.pack")
        with open(orphan, "wb") as f:
            f.write(os.urandom(70000))
        code, _ = s3(env, "-T", orphan,
                     f"{env['AWS_ENDPOINT_URL']}/{BUCKET}/fleet/packs/99999999-0123456789abcdef.pack")
        check(code == 200, f"PUT an orphan pack object: HTTP {code}")
        before_gc = objects(env, "packs/")
        _, out = sh(env, "gc", B, "--json")
        got = json.loads(out)
        named = set(subprocess.run(["sqlite3", os.path.join(B, "snapfs.db"),
                                    "SELECT object FROM remote_packs"], stdout=subprocess.PIPE,
                                   encoding="utf-8", check=True).stdout.split())
        after_gc = objects(env, "packs/")
        check({k[len("fleet/"):] for k in after_gc} == named,
              f"gc left objects no index names, or took named ones: {sorted(after_gc)} vs {named}")
        gone = set(before_gc) - set(after_gc)
        check("fleet/packs/99999999-0123456789abcdef.pack" in gone, "gc kept the orphan")
        check(got["remote_objects_removed"] == len(gone) and
              got["remote_bytes_removed"] == sum(before_gc[k] for k in gone),
              f"gc --json: {got} against {len(gone)} objects gone")
        print(f"gc: {len(gone)} orphan objects deleted ({got['remote_bytes_removed']} bytes)")
        for name, img in (("vm1", img1), ("vm2", img2)):
            sh(env, "restore", C, name, out2, "--force")
            check(same(out2, img), f"{name} after gc")
        _, out = sh(env, "gc", B, "--json")
        check(json.loads(out)["remote_objects_removed"] == 0, f"a second gc removed: {out}")

        print("# credentials: not in errors, the store's files or /proc/PID/cmdline")
        rc, out = sh(dict(env, AWS_SECRET_ACCESS_KEY="wrong-secret-77"), "init",
                     os.path.join(work, "D"), "--remote", URL, expect=None)
        check(rc != 0 and "wrong-secret-77" not in out, f"wrong secret: {rc} {out}")
        for store in (A, B, C):
            for root, _, files in os.walk(store):
                for f in files:
                    with open(os.path.join(root, f), "rb") as fh:
                        check(SECRET.encode() not in fh.read(), f"secret in {root}/{f}")
        mount(env, B, mb)
        mounts.append(mb)
        pid = subprocess.run(["pgrep", "-f", f"snapfs mount {B}"], stdout=subprocess.PIPE,
                             encoding="utf-8").stdout.split()
        check(pid, "no mount process found")
        for q in pid:
            with open(f"/proc/{q}/cmdline", "rb") as fh:
                check(SECRET.encode() not in fh.read(), "secret in a mount's cmdline")
        umount(mb)
        mounts.remove(mb)
        print("ok")
    finally:
        for m in mounts:
            umount(m)
        if started:
            subprocess.run(["bash", CLUSTER, "stop", path], timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
