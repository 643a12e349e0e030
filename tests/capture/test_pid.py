# SPDX-License-Identifier: MIT
"""Live processes: a python holding a known buffer is saved as pid:N; the
buffer reads back at its address, the process runs on and is not left
stopped, also when snapfs is interrupted or killed mid-save."""

import os
import signal
import subprocess
import time

import common
from common import PAGE, check, snapfs

# A holder with a large working set, so that a save takes a while.
BIG = """
big = bytearray(384 << 20)
for i in range(0, len(big), 4096):
    big[i:i + 8] = i.to_bytes(8, "little")
"""


def not_stopped(pid):
    states = common.thread_states(pid)
    check(states and all(s not in "tT" for s in states),
          f"process {pid} left stopped: thread states {states}")


def case_pid_roundtrip(ctx):
    proc, addr, pat = common.start_holder(threads=3)
    try:
        store = ctx.store()
        snapfs("save", store, "p", f"pid:{proc.pid}")
        not_stopped(proc.pid)
        common.ping(proc)
        row = common.snapshot_row(store, "p")
        check(row["format"] == "pid", f"format {row['format']}")
        check(row["source"].startswith(f"pid:{proc.pid} /"), f"source {row['source']}")
        check("[vvar]" in (row["notes"] or "") and "unreadable" in row["notes"],
              f"notes do not name [vvar]: {row['notes']}")
        segs = common.segments(store, "p")
        labels = {g[5] for g in segs}
        check("[heap]" in labels and "[stack]" in labels, f"labels: {sorted(map(str, labels))}")
        exe = os.path.realpath(f"/proc/{proc.pid}/exe")
        check(any(g[2] == "mapped" and g[5] == exe for g in segs), "exe not mapped")
        check(all(g[2] == "anonymous" for g in segs if g[5] in ("[heap]", "[stack]")),
              "heap or stack not anonymous")
        check(all(a[1] <= b[0] for a, b in zip(segs, segs[1:])), "segments overlap")
        check(row["file_size"] == segs[-1][1], "file_size is not the end of the last mapping")
        inside = [g for g in segs if g[0] <= addr and addr + len(pat) <= g[1]]
        check(len(inside) == 1, f"buffer at {addr:#x} not in one segment")
        got, = common.read_memory(ctx, store, "p", [(addr, len(pat))])
        check(got == pat, "the buffer does not read back at its address")
        common.ping(proc)
    finally:
        common.stop_holder(proc)


def case_pid_errors(ctx):
    store = ctx.store()
    p = snapfs("save", store, "x", "pid:2147483000", expect=1)
    check("no such process" in p.stderr and "pid:2147483000" in p.stderr, p.stderr)
    p = snapfs("save", store, "x", "pid:abc", expect=2)
    check("pid:abc" in p.stderr, p.stderr)
    p = snapfs("save", store, "x", "pid:1x", "--format", "pid", expect=2)
    check(not common.query(store, "SELECT name FROM snapshots"), "a failed save left a snapshot")


def interrupted(ctx, sig):
    """Send sig to snapfs while it saves a big process: no snapshot, and
    the process runs on."""
    proc, addr, pat = common.start_holder(extra_code=BIG)
    try:
        store = ctx.store()
        save = subprocess.Popen([common.SNAPFS, "save", str(store), "big", f"pid:{proc.pid}",
                                 "--quiet"], stderr=subprocess.PIPE, text=True)
        # Wait until it holds the process (its threads in tracing stop).
        deadline = time.time() + 30
        while time.time() < deadline and "t" not in common.thread_states(proc.pid):
            time.sleep(0.005)
        check("t" in common.thread_states(proc.pid), "snapfs never froze the process")
        time.sleep(0.2)
        save.send_signal(sig)
        err = save.communicate(timeout=60)[1]
        print(err)
        if sig == signal.SIGKILL:
            check(save.returncode == -signal.SIGKILL, f"snapfs exit {save.returncode}")
        else:
            # 128 + the signal, as the SPEC says (130 SIGINT, 143 SIGTERM).
            check(save.returncode == 128 + sig and "interrupted" in err,
                  f"snapfs exit {save.returncode}: {err!r}")
        time.sleep(0.1)
        not_stopped(proc.pid)
        common.ping(proc)
        check(not common.query(store, "SELECT name FROM snapshots"),
              "an interrupted save left a snapshot")
    finally:
        common.stop_holder(proc)


def case_pid_sigint(ctx):
    interrupted(ctx, signal.SIGINT)


def case_pid_sigterm(ctx):
    interrupted(ctx, signal.SIGTERM)


def case_pid_sigkill(ctx):
    interrupted(ctx, signal.SIGKILL)


def case_pid_dies(ctx):
    """The process is killed while snapfs holds it: the save fails cleanly."""
    proc, addr, pat = common.start_holder(extra_code=BIG)
    try:
        store = ctx.store()
        save = subprocess.Popen([common.SNAPFS, "save", str(store), "big", f"pid:{proc.pid}",
                                 "--quiet"], stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 30
        while time.time() < deadline and "t" not in common.thread_states(proc.pid):
            time.sleep(0.005)
        time.sleep(0.2)
        proc.kill()
        err = save.communicate(timeout=60)[1]
        print(err)
        proc.wait(timeout=30)
        if save.returncode == 0:
            # It finished reading before the kill landed: fine, and whole.
            return
        check(save.returncode == 1 and f"pid:{proc.pid}" in err, f"exit {save.returncode}: {err!r}")
        check(not common.query(store, "SELECT name FROM snapshots"), "a failed save left a snapshot")
    finally:
        common.stop_holder(proc)


if __name__ == "__main__":
    common.main()
