#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""The core's S3 client (src/lib/s3.c) against a real radosgw: starts a
throwaway cluster (ceph-cluster.sh), then drives s3_client_test (the C
program beside this file, path in $S3_CLIENT_TEST) through put/get/range/
head/list/delete, 404 and 403, credentials from AWS-style files, path-style
and virtual-hosted addressing,
conditional create (If-None-Match: *), radosgw killed (EIO within the
configured SNAPFS_S3_TIMEOUT, also when it is frozen) and restarted (reads work again; a read loop
that spans the outage returns every byte right, so do PUTs), and measures 4 KiB
ranged GETs through the client (keep-alive) against curl run once per
request. Stops exactly the cluster it started.

    S3_CLIENT_TEST=build/tests/remote/s3_client_test test_s3_client.py
"""
import os
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

PROG = os.environ.get("S3_CLIENT_TEST", "")
BUCKET = "snapfs-s3-client"
URL = f"s3://{BUCKET}/store"
SECRET = "snapfs-test-secret"


def run(env, *args, timeout=120, expect_ok=True):
    p = subprocess.run([PROG, *args], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, encoding="utf-8", timeout=timeout)
    out = p.stdout + p.stderr
    sys.stdout.write(out)
    if expect_ok:
        check(p.returncode == 0, f"s3_client_test {' '.join(args)}: exit {p.returncode}")
    return p.returncode, out


def curl_p50(env, url, size, n):
    times = []
    for i in range(n):
        off = (i * 7919 * 4096) % (size - 4096)
        t = time.monotonic()
        code, body = s3(env, "-r", f"{off}-{off + 4095}", url)
        times.append(time.monotonic() - t)
        check(code == 206 and len(body) == 4096, f"curl ranged GET: HTTP {code}")
    times.sort()
    return times[n // 2] * 1e3, times[(n * 99) // 100] * 1e3


def main():
    check(PROG and os.access(PROG, os.X_OK), "S3_CLIENT_TEST: the s3_client_test program")
    for tool in ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "curl"):
        check(shutil.which(tool), f"{tool} not found: run scripts/install-deps.sh test")
    work = tempfile.mkdtemp(prefix="snapfs-s3-", dir="/var/tmp")
    path = os.path.join(work, "cluster")
    port, tls_port = free_port(), free_port()
    started = False
    try:
        started = True
        p = subprocess.run(["bash", CLUSTER, "start", path, str(port), str(tls_port)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           encoding="utf-8", timeout=60)
        check(p.returncode == 0, f"start: exit {p.returncode}: {p.stderr[-2000:]}")
        s3env = dict(line.split("=", 1) for line in p.stdout.split())
        https = s3env.pop("S3_TEST_HTTPS_ENDPOINT")
        ca = s3env.pop("S3_TEST_CA_BUNDLE")
        home = os.path.join(work, "home")
        os.mkdir(home)
        # Nothing from the host's environment or ~/.aws: only what we set.
        base = {k: v for k, v in os.environ.items()
                if not k.startswith("AWS_") and not k.startswith("SNAPFS_S3_")}
        base["HOME"] = home
        env = dict(base, **s3env)

        print("# bucket, then the basic calls")
        run(env, "mkbucket", URL)
        run(env, "basic", URL)

        print("# https: the CA named by AWS_CA_BUNDLE (as the AWS tools take it), or the")
        print("# system's, which does not know the test's CA: refused, named")
        tenv = dict(env, AWS_ENDPOINT_URL=https, SNAPFS_S3_TIMEOUT="5")
        run(dict(tenv, AWS_CA_BUNDLE=ca), "basic", URL + "-tls")
        run(dict(tenv, AWS_CA_BUNDLE=ca), "put", URL, "tls/obj", "100000")
        run(dict(tenv, AWS_CA_BUNDLE=ca), "get", URL, "tls/obj", "100000")
        rc, out = run(tenv, "get", URL, "tls/obj", "100000", expect_ok=False)
        check(rc != 0 and "certificate" in out, f"https with an unknown CA: {rc} {out[-500:]}")
        rc, out = run(dict(tenv, AWS_CA_BUNDLE=os.path.join(work, "none.pem")), "get", URL,
                      "tls/obj", "100000", expect_ok=False)
        check(rc != 0 and "AWS_CA_BUNDLE" in out, f"a missing CA bundle: {rc} {out[-500:]}")

        print("# a wrong secret: EACCES, and the secret in no message")
        wrong = "wrong-secret-5f3a9c"
        _, out = run(dict(env, AWS_SECRET_ACCESS_KEY=wrong), "eacces", URL, wrong)
        check(wrong not in out and SECRET not in out, "a secret appears in the output")

        print("# credentials, region and endpoint from AWS-style files, a named profile")
        creds = os.path.join(work, "credentials")
        with open(creds, "w") as f:
            f.write("[default]\naws_access_key_id = NOPE\naws_secret_access_key = nope\n\n"
                    f"# the test's user\n[snapfs]\naws_access_key_id = {s3env['AWS_ACCESS_KEY_ID']}\n"
                    f"aws_secret_access_key={SECRET}\n")
        config = os.path.join(work, "config")
        with open(config, "w") as f:
            f.write("[profile snapfs]\nregion = us-east-1\n"
                    f"endpoint_url = {s3env['AWS_ENDPOINT_URL']}\n"
                    "s3 =\n  addressing_style = path\n")
        fenv = dict(base, AWS_PROFILE="snapfs", AWS_SHARED_CREDENTIALS_FILE=creds,
                    AWS_CONFIG_FILE=config)
        run(fenv, "put", URL, "files/obj", "100000")
        run(fenv, "get", URL, "files/obj", "100000")
        # The same files as ~/.aws/credentials and ~/.aws/config.
        os.mkdir(os.path.join(home, ".aws"))
        shutil.copy(creds, os.path.join(home, ".aws", "credentials"))
        shutil.copy(config, os.path.join(home, ".aws", "config"))
        run(dict(base, AWS_PROFILE="snapfs"), "get", URL, "files/obj", "100000")
        # The default profile of the same file has other keys: refused.
        rc, out = run(dict(base, AWS_SHARED_CREDENTIALS_FILE=creds,
                           AWS_ENDPOINT_URL=s3env["AWS_ENDPOINT_URL"]),
                      "eacces", URL, "nope")
        check(rc == 0, "the default profile's keys were not used")

        print("# conditional create (If-None-Match: *)")
        run(env, "ifabsent", URL)

        print("# 4 KiB ranged GETs: the client (keep-alive) and curl once per request")
        size = 64 << 20
        run(env, "put", URL, "bench/obj", str(size))
        run(env, "bench", URL, "bench/obj", "1000")
        p50, p99 = curl_p50(env, f"{s3env['AWS_ENDPOINT_URL']}/{BUCKET}/store/bench/obj",
                            size, 101)
        print(f"4 KiB ranged GET through curl (a process each), 101 reads: "
              f"p50 {p50:.2f} ms p99 {p99:.2f} ms")

        print("# radosgw frozen (SIGSTOP: connects, never answers): EIO in time")
        os.kill(rgw_pid(path), signal.SIGSTOP)
        try:
            run(dict(env, SNAPFS_S3_TIMEOUT="2"), "fail", URL, "files/obj", "2000")
        finally:
            os.kill(rgw_pid(path), signal.SIGCONT)
        run(env, "get", URL, "files/obj", "100000")

        # Virtual-hosted addressing (BUCKET.localhost, which libcurl resolves
        # to 127.0.0.1 itself) means nothing to a radosgw without a DNS name.
        venv = dict(env, AWS_ENDPOINT_URL=f"http://localhost:{port}",
                    SNAPFS_S3_ADDRESSING="virtual", SNAPFS_S3_TIMEOUT="5")
        print("# virtual-hosted before radosgw has a DNS name: must fail")
        rc, _ = run(venv, "get", URL, "files/obj", "100000", expect_ok=False)
        check(rc != 0, "a virtual-hosted read worked on a radosgw without rgw_dns_name")

        print("# radosgw killed: EIO within SNAPFS_S3_TIMEOUT, never a hang")
        kill_rgw(path)
        run(dict(env, SNAPFS_S3_TIMEOUT="2.5"), "fail", URL, "files/obj", "2500")
        print("# radosgw back: reads work again")
        start_rgw(path, port, "--rgw-dns-name=localhost")
        run(env, "get", URL, "files/obj", "100000")

        print("# virtual-hosted addressing (radosgw now knows its DNS name)")
        # (No new bucket here: after a SIGKILL radosgw's metadata writes wait
        # for the dead instance's watch to time out, about 30 s.)
        venv["SNAPFS_S3_TIMEOUT"] = "30"
        run(venv, "get", URL, "files/obj", "100000")
        run(venv, "basic", f"s3://{BUCKET}/virtual")
        run(venv, "put", f"s3://{BUCKET}/virtual", "v/obj", "5000")
        run(env, "get", f"s3://{BUCKET}/virtual", "v/obj", "5000")

        print("# a read loop across a radosgw outage: retries, every byte right")
        size = 8 << 20
        run(env, "put", URL, "outage/obj", str(size))
        reader = subprocess.Popen([PROG, "get", URL, "outage/obj", str(size)],
                                  env=dict(env, SNAPFS_S3_TIMEOUT="30"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  encoding="utf-8")
        time.sleep(0.3)
        check(reader.poll() is None, "the reader ended before the outage")
        kill_rgw(path)
        time.sleep(1.5)
        start_rgw(path, port)
        out, _ = reader.communicate(timeout=120)
        sys.stdout.write(out)
        check(reader.returncode == 0, f"the read across the outage: exit {reader.returncode}")

        print("# writes and reads across a radosgw outage: PUTs sent again, bytes right")
        writer = subprocess.Popen([PROG, "churn", URL, "600"],
                                  env=dict(env, SNAPFS_S3_TIMEOUT="30"),
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  encoding="utf-8")
        time.sleep(0.3)
        check(writer.poll() is None, "the writer ended before the outage")
        kill_rgw(path)
        time.sleep(1.5)
        start_rgw(path, port)
        out, _ = writer.communicate(timeout=180)
        sys.stdout.write(out)
        check(writer.returncode == 0, f"the writes across the outage: exit {writer.returncode}")

        subprocess.run(["bash", CLUSTER, "stop", path], check=True, timeout=60)
        started = False
        check(not os.path.exists(path), "stop left the cluster directory")
        print("PASS")
    finally:
        if started:
            subprocess.run(["bash", CLUSTER, "stop", path], timeout=60)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
