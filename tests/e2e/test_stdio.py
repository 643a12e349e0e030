#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Standard input and output: `save STORE NAME -` reads a raw image from
standard input (a pipe: zero pages dropped, data found by scanning, format
raw, file_size = the bytes read, source 'stdin'); `restore STORE NAME -`
refuses a terminal unless --force (exit 2, nothing written), and a pipe
gets the image byte for byte."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB, PAGE  # noqa: E402


def image_bytes(seed, pages, tail=b""):
    """pages of a mix: random, zero and text pages, then tail."""
    rng = random.Random(seed)
    out = []
    for i in range(pages):
        kind = i % 5
        if kind in (1, 2):
            out.append(bytes(PAGE))
        elif kind == 3:
            out.append(c.text_page(rng, i))
        else:
            out.append(c.random_page(rng))
    return b"".join(out) + tail


def save_piped(store, name, data, *args, env=None, chunk=65536, pause=0.0, expect=0):
    """snapfs save STORE NAME - with data written into a pipe in chunks."""
    p = subprocess.Popen([c.SNAPFS, "save", str(store), name, "-", *args],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, env=env)
    for at in range(0, len(data), chunk):
        p.stdin.write(data[at:at + chunk])
        if pause:
            time.sleep(pause)
    p.stdin.close()
    out = p.stdout.read()
    err = p.stderr.read()
    p.wait()
    c.log(f"$ ... | snapfs save {store} {name} - {' '.join(args)} -> exit {p.returncode} {err!r}")
    c.check_eq(p.returncode, expect, f"exit status of save {name} -: {err!r}")
    return out.decode(), err.decode()


def tmpdir_env(ctx):
    d = ctx.path("tmp")
    d.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(d)}, d


def case_save_stdin(ctx):
    store = ctx.store()
    env, tmp = tmpdir_env(ctx)
    data = image_bytes(1, 300, tail=b"partial page at the end")
    out, _ = save_piped(store, "piped", data, "--json", env=env, chunk=77777)
    res = c.parse_json(out, "save --json")
    c.check_eq(res["file_size"], len(data), "file_size = bytes read")
    nonzero = sum(1 for i in range(0, len(data), PAGE) if any(data[i:i + PAGE]))
    c.check_eq(res["data_pages"], nonzero, "data pages of a piped image (zero pages dropped)")
    info = c.parse_json(c.snapfs("info", store, "piped", "--json").stdout, "info")
    c.check_eq((info["format"], info["source"], info["file_size"]), ("raw", "stdin", len(data)),
               "format, source and file_size of a piped save")
    stored = c.sql_value(store, "SELECT count(*) FROM page_map m JOIN snapshots s ON "
                                "s.id = m.snapshot_id WHERE s.name = 'piped'")
    c.check(stored >= 1, "page map rows")
    c.check_eq(c.sql_value(store, "SELECT sum(m.page_count) FROM page_map m JOIN snapshots s "
                                  "ON s.id = m.snapshot_id WHERE s.name = 'piped'"), nonzero,
               "pages in the page map (no zero page stored)")
    # Byte for byte, through restore to a file and to a pipe.
    c.snapfs("restore", store, "piped", ctx.path("out.img"))
    c.check(ctx.path("out.img").read_bytes() == data, "restored piped image")
    cp = c.run([c.SNAPFS, "restore", str(store), "piped", "-"], text=False, expect=0)
    c.check(cp.stdout == data, "restore - to a pipe")
    # The same bytes from a file give the same snapshot content.
    src = ctx.path("src.img")
    src.write_bytes(data)
    c.snapfs("save", store, "file", src, "--quiet")
    diff = c.snapfs("diff", store, "piped", "file").stdout
    c.check_eq(diff, "", "diff between the piped and the file save")
    # Nothing left behind in TMPDIR.
    c.check_eq(os.listdir(tmp), [], "files left in TMPDIR by save -")
    c.snapfs("verify", store)


def case_save_stdin_options(ctx):
    store = ctx.store()
    env, _ = tmpdir_env(ctx)
    data = image_bytes(2, 64)
    # A slow writer: save waits for the whole stream.
    save_piped(store, "slow", data, "--kind", "tmpfs", "--comment", "from a pipe", "--quiet",
               env=env, chunk=PAGE * 3 + 17, pause=0.01)
    c.check_eq(c.sql(store, "SELECT DISTINCT kind FROM segments g JOIN snapshots s ON "
                            "s.id = g.snapshot_id WHERE s.name = 'slow'"), [{"kind": "tmpfs"}],
               "--kind with standard input")
    c.snapfs("restore", store, "slow", ctx.path("slow.out"))
    c.check(ctx.path("slow.out").read_bytes() == data, "restored slow piped image")
    # --parent and --format raw are fine; empty input is an empty image.
    save_piped(store, "child", data[:PAGE * 10], "--parent", "slow", "--format", "raw",
               "--quiet", env=env)
    save_piped(store, "empty", b"", "--quiet", env=env)
    c.check_eq(c.sql_value(store, "SELECT file_size FROM snapshots WHERE name = 'empty'"), 0,
               "an empty standard input")
    zeros = bytes(5 * MIB)
    save_piped(store, "zeros", zeros, "--quiet", env=env)
    c.check_eq(c.sql_value(store, "SELECT data_bytes FROM snapshots WHERE name = 'zeros'"), 0,
               "an all-zero standard input stores nothing")
    c.snapfs("restore", store, "zeros", ctx.path("zeros.out"))
    c.check(ctx.path("zeros.out").read_bytes() == zeros, "restored zeros")
    c.snapfs("verify", store)


def case_save_stdin_errors(ctx):
    store = ctx.store()
    env, _ = tmpdir_env(ctx)
    before = c.store_state(store)
    _, err = save_piped(store, "x", b"abc", "--format", "elf", env=env, expect=c.EXIT_USAGE)
    c.check("standard input" in err and "raw" in err, f"--format elf with '-': {err!r}")
    # Standard input on a terminal: refused before any work.
    master, slave = os.openpty()
    try:
        p = subprocess.run([c.SNAPFS, "save", str(store), "x", "-"], stdin=slave,
                           capture_output=True, text=True, timeout=60)
    finally:
        os.close(slave)
        os.close(master)
    c.check_eq(p.returncode, c.EXIT_USAGE, f"save - from a terminal: {p.stderr!r}")
    c.check_error_message(p, "save 'x'", "terminal", what="save - from a terminal")
    # A TMPDIR where nothing can be made: exit 1, the directory named.
    bad = {**os.environ, "TMPDIR": str(ctx.path("missing-dir"))}
    _, err = save_piped(store, "x", b"abc" * 5000, env=bad, expect=c.EXIT_FAILED)
    c.check("missing-dir" in err and err.startswith(f"snapfs: save 'x' into '{store}': "),
            f"unwritable TMPDIR: {err!r}")
    # SIGINT while waiting for input: exit 130, nothing saved, nothing left.
    env, tmp = tmpdir_env(ctx)
    p = subprocess.Popen([c.SNAPFS, "save", str(store), "x", "-"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdin.write(os.urandom(3 * MIB))
    p.stdin.flush()
    time.sleep(0.5)
    p.send_signal(signal.SIGINT)
    p.wait(timeout=30)
    p.stdin.close()
    c.check_eq(p.returncode, 130, f"save - stopped by SIGINT: {p.stderr.read()!r}")
    c.check_eq(os.listdir(tmp), [], "files left in TMPDIR after SIGINT")
    c.check_state_unchanged(store, before, "after refused and stopped saves from stdin")


def run_stdout_on_pty(args):
    """Run args with standard output on a pseudo-terminal; returns (exit
    code, stderr text, bytes the terminal got)."""
    import tty
    master, slave = os.openpty()
    tty.setraw(slave)
    chunks = []
    p = subprocess.Popen([str(a) for a in args], stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.PIPE, close_fds=True)
    os.close(slave)
    os.set_blocking(master, False)
    while True:
        try:
            b = os.read(master, 65536)
            if b:
                chunks.append(b)
                continue
        except BlockingIOError:
            pass
        except OSError:
            break
        if p.poll() is not None:
            time.sleep(0.1)
            try:
                while (b := os.read(master, 65536)):
                    chunks.append(b)
            except OSError:
                pass
            break
        time.sleep(0.01)
    err = p.stderr.read().decode("utf-8", "replace")
    p.wait(timeout=60)
    os.close(master)
    return p.returncode, err, b"".join(chunks)


def case_restore_terminal(ctx):
    store = ctx.store()
    data = image_bytes(3, 8)
    src = ctx.path("small.img")
    src.write_bytes(data)
    c.snapfs("save", store, "small", src)
    rc, err, got = run_stdout_on_pty([c.SNAPFS, "restore", store, "small", "-"])
    c.log(f"restore - on a terminal: exit {rc}, {err!r}, {len(got)} bytes")
    c.check_eq(rc, c.EXIT_USAGE, "restore - on a terminal")
    lines = err.splitlines()
    c.check(len(lines) == 1 and lines[0].startswith("snapfs: restore 'small': ")
            and "terminal" in lines[0] and "--force" in lines[0], f"message: {err!r}")
    c.check_eq(got, b"", "bytes written to the terminal")
    rc, err, got = run_stdout_on_pty([c.SNAPFS, "restore", store, "small", "-", "--force"])
    c.check_eq(rc, 0, f"restore - --force on a terminal: {err!r}")
    c.check_eq(len(got), len(data), "bytes the terminal got with --force")
    c.check(got == data, "the terminal got the image with --force")


if __name__ == "__main__":
    c.main()
