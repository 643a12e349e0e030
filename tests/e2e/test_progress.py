#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Progress output: none when standard error is not a terminal; a bar
(with a rate or a percentage) when it is a pseudo-terminal; nothing with
--quiet even on a terminal. For save and for restore."""

import random
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
