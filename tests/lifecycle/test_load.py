# SPDX-License-Identifier: MIT
"""Load: 16 concurrent readers (random 4 KiB and sequential 1 MiB, every
byte checked) on several snapshots through one mount, for a bounded time,
while saves, rm and gc run on the same store. Zero errors, zero
mismatches, and the daemon's peak RSS stays within its cache setting plus
64 MiB."""

import os
import random
import threading
import time

from lifelib import MIB, PAGE, check, common, log, random_pages, snapfs, write_pages

DURATION = 20.0     # seconds of load
CACHE_MIB = 32      # -o cache_size
READERS = 16


def peak_rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


def case_readers_while_store_changes(ctx):
    store = ctx.store()
    rng = random.Random(21)
    images = {}
    for i in range(3):
        p = ctx.path(f"img{i}")
        write_pages(p, 8192 * PAGE, random_pages(rng, 8192, 0.7))  # 32 MiB
        snapfs("save", store, f"s{i}", p, "--quiet")
        images[f"s{i}"] = p.read_bytes()
    churn = ctx.path("churn")
    write_pages(churn, 4096 * PAGE, random_pages(rng, 4096, 0.8))

    mnt = ctx.path("mnt")
    mnt.mkdir()
    daemon = ctx.track(__import__("subprocess").Popen(
        [common.SNAPFS, "mount", str(store), str(mnt), "-f", "-o", f"cache_size={CACHE_MIB}"],
        stderr=__import__("subprocess").PIPE, text=True))
    for _ in range(200):
        if os.path.ismount(mnt):
            break
        time.sleep(0.05)
    check(os.path.ismount(mnt), "mounted")

    stop = threading.Event()
    errors, reads = [], [0]
    lock = threading.Lock()

    def reader(n):
        r = random.Random(n)
        name = f"s{n % 3}"
        expected = images[name]
        fd = os.open(mnt / name / "memory", os.O_RDONLY)
        try:
            while not stop.is_set():
                if n % 2:
                    off = r.randrange(len(expected) // PAGE) * PAGE
                    got = os.pread(fd, PAGE, off)
                    want = expected[off:off + PAGE]
                else:
                    off = r.randrange(len(expected) // MIB) * MIB
                    got = os.pread(fd, MIB, off)
                    want = expected[off:off + MIB]
                if got != want:
                    with lock:
                        errors.append(f"{name}: wrong bytes at {off}")
                    return
                with lock:
                    reads[0] += 1
        except OSError as e:
            with lock:
                errors.append(f"{name}: {e}")
        finally:
            os.close(fd)

    threads = [threading.Thread(target=reader, args=(i,)) for i in range(READERS)]
    for t in threads:
        t.start()
    t0 = time.monotonic()
    rounds = 0
    try:
        while time.monotonic() - t0 < DURATION:
            snapfs("save", store, f"churn{rounds}", churn, "--quiet", quiet=True)
            with open(churn, "r+b") as f:  # new content next round
                f.seek(rng.randrange(4096) * PAGE)
                f.write(rng.randbytes(PAGE * 16))
            if rounds:
                snapfs("rm", store, f"churn{rounds - 1}", quiet=True)
            if rounds % 3 == 2:
                snapfs("gc", store, "--quiet", quiet=True)
            rounds += 1
    finally:
        stop.set()
        for t in threads:
            t.join()
    hwm = peak_rss_kib(daemon.pid)
    log(f"{reads[0]} reads by {READERS} readers in {DURATION:.0f} s during {rounds} "
        f"save/rm(/gc) rounds; daemon peak RSS {hwm / 1024:.1f} MiB (cache {CACHE_MIB} MiB)")
    check(not errors, f"reader errors: {errors[:5]}")
    check(reads[0] > 100, "the readers made progress")
    if os.environ.get("SNAPFS_SANITIZED") == "1":
        log("sanitizer build: the RSS bound is not checked (shadow memory, quarantine)")
    else:
        check(hwm <= (CACHE_MIB + 64) * 1024, f"daemon peak RSS {hwm} KiB > cache + 64 MiB")
    common.run(["fusermount3", "-u", mnt])
    daemon.wait(timeout=20)
    check(daemon.returncode == 0, f"daemon exit {daemon.returncode}: {daemon.stderr.read()}")
    snapfs("verify", store)


common.main()
