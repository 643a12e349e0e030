#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Progress output: none when standard error is not a terminal; a bar
(with a rate or a percentage) when it is a pseudo-terminal; nothing with
--quiet even on a terminal. For save and for restore.

Issue 15, point 7: the rate and the time left appear only once they mean
something (not in the first frame; the estimate not before 5 % of the
work), an empty job (gc with nothing to do) draws nothing, and save,
restore, verify and gc end the same way: the bar replaced by one line
`COMMAND WHAT: done, AMOUNT in T s (RATE/s)`."""

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import MIB  # noqa: E402


def make_image(ctx):
    # 96 MiB of data: enough work for the bar to be drawn more than once.
    rng = random.Random(81)
    img = c.Image(ctx.path("p.img"), 128 * MIB)
    img.pages(0, 96 * MIB // 4096, "mixed", rng)
    img.close()
    return img


def looks_like_progress(tty):
    text = tty.decode("utf-8", "replace")
    return "%" in text or "/s" in text


def case_save_progress(ctx):
    img = make_image(ctx)
    store = ctx.store()

    cp = c.snapfs("save", store, "piped", img.path)
    c.check_eq(c.stderr_text(cp), "", "standard error of a save when it is not a terminal")

    rc, out, tty = c.run_on_pty([c.SNAPFS, "save", store, "tty", img.path])
    c.check_eq(rc, 0, "exit of a save with stderr on a terminal")
    c.check(looks_like_progress(tty),
            f"no progress bar (rate or %) on the terminal: {tty[:400]!r}")

    rc, out, tty = c.run_on_pty([c.SNAPFS, "save", store, "quiet", img.path, "--quiet"])
    c.check_eq(rc, 0, "exit of save --quiet")
    c.check_eq(tty, b"", "terminal output of save --quiet")

    c.check_eq(c.snapshot_names(store), ["piped", "quiet", "tty"], "snapshots saved")


def case_restore_progress(ctx):
    img = make_image(ctx)
    store = ctx.store()
    c.snapfs("save", store, "p", img.path, "--quiet")

    out = ctx.path("piped.out")
    cp = c.snapfs("restore", store, "p", out)
    c.check_eq(c.stderr_text(cp), "", "standard error of a restore when it is not a terminal")
    c.cmp_files(img.path, out)

    out = ctx.path("tty.out")
    rc, _, tty = c.run_on_pty([c.SNAPFS, "restore", store, "p", out])
    c.check_eq(rc, 0, "exit of a restore with stderr on a terminal")
    c.check(looks_like_progress(tty),
            f"no progress bar (rate or %) on the terminal during restore: {tty[:400]!r}")
    c.cmp_files(img.path, out)

    out = ctx.path("quiet.out")
    rc, _, tty = c.run_on_pty([c.SNAPFS, "restore", store, "p", out, "--quiet"])
    c.check_eq(rc, 0, "exit of restore --quiet")
    c.check_eq(tty, b"", "terminal output of restore --quiet")
    c.cmp_files(img.path, out)


FRAME = re.compile(r"^(\w+) \[[# ]{24}\] +(\d+)%  ")
FINISH = re.compile(r"^(save|restore|verify|gc) '[^']*'.*: done, [0-9.]+ (B|KiB|MiB|GiB|blobs) "
                    r"in [0-9]+\.[0-9] s( \([0-9.]+ (B|KiB|MiB|GiB|blobs)/s\))?$")


def frames_and_lines(tty):
    """The bar's frames (text between carriage returns, the clear-to-end
    code dropped) and the finished lines of the terminal output."""
    text = tty.decode("utf-8", "replace").replace("\x1b[K", "")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n")]
    frames = [f for f in text.replace("\r\n", "\n").replace("\n", "\r").split("\r") if f]
    return frames, [ln.split("\r")[-1] for ln in lines if ln.split("\r")[-1]]


def check_honest_frames(frames, what):
    bars = [f for f in frames if FRAME.match(f)]
    c.check(bars, f"{what}: no bar drawn: {frames[:5]!r}")
    c.check("/s" not in bars[0] and "left" not in bars[0],
            f"{what}: the first frame shows a rate or an estimate: {bars[0]!r}")
    for f in bars:
        if "left" in f:
            pct = int(FRAME.match(f).group(2))
            c.check(pct >= 5, f"{what}: an estimate before 5 % of the work: {f!r}")
            c.check("/s" in f, f"{what}: an estimate without a rate: {f!r}")
    return bars


def check_finish(tty, cmd, what):
    frames, lines = frames_and_lines(tty)
    finish = [ln for ln in lines if FINISH.match(ln)]
    c.check(len(finish) == 1 and finish[0].startswith(cmd + " "),
            f"{what}: one summary line 'COMMAND WHAT: done, ...': {lines!r}")
    text = tty.decode("utf-8", "replace")
    c.check(text.endswith("\n") and not FRAME.match(text.split("\n")[-2].split("\r")[-1]),
            f"{what}: a bar left on the terminal: {text[-200:]!r}")
    return frames


def case_honest_and_same_finish(ctx):
    img = make_image(ctx)
    store = ctx.store()
    rc, _, tty = c.run_on_pty([c.SNAPFS, "save", store, "a", img.path])
    c.check_eq(rc, 0, "save on a terminal")
    check_honest_frames(check_finish(tty, "save", "save"), "save")

    rc, _, tty = c.run_on_pty([c.SNAPFS, "restore", store, "a", ctx.path("a.out")])
    c.check_eq(rc, 0, "restore on a terminal")
    check_finish(tty, "restore", "restore")
    c.cmp_files(img.path, ctx.path("a.out"))

    rc, out, tty = c.run_on_pty([c.SNAPFS, "verify", store])
    c.check_eq(rc, 0, "verify on a terminal")
    check_finish(tty, "verify", "verify")
    c.check_eq(out, f"verify '{store}': ok\n".encode(), "verify's result on stdout")

    # gc with nothing to do: nothing drawn at all, the result on stdout.
    rc, out, tty = c.run_on_pty([c.SNAPFS, "gc", store])
    c.check_eq(rc, 0, "gc with nothing to do")
    c.check_eq(tty, b"", "terminal output of a gc with nothing to do")
    c.check(out.startswith(b"removed 0 unused blobs"), f"gc's result: {out!r}")

    # gc with work: counted in blobs, the same finish.
    c.snapfs("rm", store, "a")
    rc, out, tty = c.run_on_pty([c.SNAPFS, "gc", store])
    c.check_eq(rc, 0, "gc with work")
    check_finish(tty, "gc", "gc")
    c.check(b"blobs" in tty and b" B /" not in tty, f"gc counts blobs: {tty[-300:]!r}")


def case_quiet_everywhere(ctx):
    # --quiet is accepted by every command (SPEC).
    img = c.standard_image(ctx.path("q.img"), seed=82)
    store = ctx.path("store")
    c.snapfs("init", store, "--quiet")
    c.snapfs("save", store, "q", img.path, "--quiet")
    c.snapfs("list", store, "--quiet")
    c.snapfs("info", store, "q", "--quiet")
    c.snapfs("restore", store, "q", ctx.path("q.out"), "--quiet")
    c.snapfs("rm", store, "q", "--quiet")


if __name__ == "__main__":
    c.main()
