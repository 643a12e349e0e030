#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The throwaway Ceph cluster that the remote-store tests run against
(tests/remote/ceph-cluster.sh), checked on its own: it starts (one monitor,
one memstore OSD, radosgw on 127.0.0.1) within a bound, speaks the S3 API
with AWS Signature Version 4 as curl signs it (bucket create, PUT, ranged
GET, 404 for a missing key, 403 for a wrong secret), and `stop` leaves no
daemon and no directory behind. No mock: the real radosgw of Debian 12.

    test_ceph_cluster.py
"""
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CLUSTER = os.path.join(HERE, "ceph-cluster.sh")
START_BOUND_S = 60


def check(cond, what):
    if not cond:
        print(f"FAIL: {what}", file=sys.stderr)
        sys.exit(1)


def free_port():
    """A port with the next one free too (the monitor takes PORT + 1)."""
    for _ in range(100):
        port = random.randrange(20000, 60000)
        ok = True
        for p in (port, port + 1):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
        if ok:
            return port
    raise RuntimeError("no free port pair")


def pids_of(path):
    pids = []
    d = os.path.join(path, "pids")
    for name in os.listdir(d) if os.path.isdir(d) else []:
        with open(os.path.join(d, name)) as f:
            pids.append(int(f.read().strip()))
    return pids


def alive(pid):
    """Running (a zombie that init has yet to reap has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def s3(env, *args, secret=None, out=None):
    """curl with SigV4 signing; returns (HTTP status, body)."""
    user = f"{env['AWS_ACCESS_KEY_ID']}:{secret or env['AWS_SECRET_ACCESS_KEY']}"
    cmd = ["curl", "-s", "-o", out or "-", "-w", "\n%{http_code}",
           "--aws-sigv4", f"aws:amz:{env['AWS_DEFAULT_REGION']}:s3", "--user", user,
           "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD", *args]
    p = subprocess.run(cmd, stdout=subprocess.PIPE, check=True, timeout=60)
    body, _, code = p.stdout.rpartition(b"\n")
    return int(code), body


# For the fault tests: radosgw killed under a reader, and started again.

def rgw_pid(path):
    with open(os.path.join(path, "pids", "client.rgw.a.pid")) as f:
        return int(f.read().strip())


def kill_rgw(path):
    pid = rgw_pid(path)
    os.kill(pid, signal.SIGKILL)
    for _ in range(100):
        if not alive(pid):
            return
        time.sleep(0.05)
    check(False, f"radosgw {pid} still alive after SIGKILL")


def start_rgw(path, port, *extra):
    """radosgw again, from the cluster's own ceph.conf (it rewrites its pid
    file, so that ceph-cluster.sh stop stops it)."""
    subprocess.run(["radosgw", "-c", os.path.join(path, "ceph.conf"), "-n", "client.rgw.a",
                    *extra], check=True, timeout=60)
    for _ in range(300):
        if subprocess.run(["curl", "-s", "-o", "/dev/null", f"http://127.0.0.1:{port}/"]
                          ).returncode == 0:
            return
        time.sleep(0.1)
    check(False, "radosgw did not come back")


def main():
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "curl"):
        check(shutil.which(tool), f"{tool} not found: run scripts/install-deps.sh test")
    work = tempfile.mkdtemp(prefix="snapfs-ceph-", dir="/var/tmp")
    path = os.path.join(work, "cluster")
    port = free_port()
    started = False
    try:
        t0 = time.monotonic()
        p = subprocess.run(["bash", CLUSTER, "start", path, str(port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding="utf-8", timeout=START_BOUND_S)
        started = True
        took = time.monotonic() - t0
        check(p.returncode == 0, f"start: exit {p.returncode}: {p.stderr[-2000:]}")
        env = dict(line.split("=", 1) for line in p.stdout.split())
        check(env.get("AWS_ENDPOINT_URL") == f"http://127.0.0.1:{port}",
              f"start printed {p.stdout!r}")
        print(f"cluster up in {took:.1f} s on port {port}")
        url = env["AWS_ENDPOINT_URL"]

        code, _ = s3(env, "-X", "PUT", f"{url}/snapfs-test")
        check(code == 200, f"create bucket: HTTP {code}")
        data = random.Random(7).randbytes(1 << 20)
        obj = os.path.join(work, "obj")
        with open(obj, "wb") as f:
            f.write(data)
        code, _ = s3(env, "-T", obj, f"{url}/snapfs-test/packs/00000001.pack")
        check(code == 200, f"PUT: HTTP {code}")
        times = []
        for i in range(21):
            off = random.Random(i).randrange(0, (1 << 20) - 4096)
            t = time.monotonic()
            code, body = s3(env, "-r", f"{off}-{off + 4095}",
                            f"{url}/snapfs-test/packs/00000001.pack")
            times.append(time.monotonic() - t)
            check(code == 206, f"ranged GET: HTTP {code}")
            check(body == data[off:off + 4096], f"ranged GET at {off}: other bytes")
        times.sort()
        print(f"4 KiB ranged GET through curl (a process each): p50 {times[10] * 1e3:.1f} ms")
        code, _ = s3(env, f"{url}/snapfs-test/no-such-key")
        check(code == 404, f"GET of a missing key: HTTP {code}")
        code, _ = s3(env, f"{url}/snapfs-test/packs/00000001.pack", secret="wrong")
        check(code == 403, f"GET with a wrong secret: HTTP {code}")

        pids = pids_of(path)
        check(len(pids) == 3, f"expected 3 daemons (mon, osd, rgw), pid files: {pids}")
        t0 = time.monotonic()
        subprocess.run(["bash", CLUSTER, "stop", path], check=True, timeout=60)
        started = False
        print(f"stopped in {time.monotonic() - t0:.1f} s")
        check(not any(alive(pid) for pid in pids),
              f"daemons left after stop: {[pid for pid in pids if alive(pid)]}")
        check(not os.path.exists(path), "stop left the cluster directory")
        print("PASS")
    finally:
        if started:
            subprocess.run(["bash", CLUSTER, "stop", path], timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
