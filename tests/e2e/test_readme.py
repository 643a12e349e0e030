#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""README.md runs as typed (issue 15, point 1).

Every ```sh block of README.md is run, in order, as one bash script with
`set -euo pipefail`: a command that fails, a pipeline of which any part
fails, or a file that is not there fails the test, so the README cannot
drift from the code. Output is shown in plain ``` blocks, which are not
run; a block that needs something the test machine has not (a VM for
QEMU) is fenced ```text.

What the test does for the reader's machine:
- `snapfs` is on the PATH (as after demo.sh / test.sh, which install it):
  a directory holding a symlink `snapfs` -> $SNAPFS comes first in PATH;
- the set-up commands (lines starting with `./scripts/`) are not run: they
  are what made this build;
- the files the tour starts from are made first: the demo's images, as
  demo.sh makes them (scripts/make-demo-image.py into
  /var/tmp/snapfs-demo);
- the substitution rule: every absolute path under /srv/, /mnt/, /tmp/,
  /dev/shm/ and /var/tmp/ that the README names is moved under the test's
  temporary directory ROOT (`/srv/snaps` -> `ROOT/srv/snaps`), those
  directories made beforehand; relative paths (`vm1.mem.gz`) are relative
  to ROOT/home, the working directory. Nothing else is changed.
The mount part needs /dev/fuse: without it the test skips. Whatever is
still mounted under ROOT at the end is unmounted.
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

README = c.SOURCE_ROOT / "README.md"
MOVED = re.compile(r"(?<![\w.~/-])/(srv|mnt|tmp|dev/shm|var/tmp)/")


def sh_blocks(text):
    """The ```sh blocks of a Markdown text: (first line number, lines)."""
    blocks, cur, start = [], None, 0
    for n, line in enumerate(text.splitlines(), 1):
        if cur is None and line.strip() == "```sh":
            cur, start = [], n + 1
        elif cur is not None and line.strip().startswith("```"):
            blocks.append((start, cur))
            cur = None
        elif cur is not None:
            cur.append(line)
    c.check(cur is None, "README.md: a ```sh block is not closed")
    return blocks


def script_of(blocks, root):
    out = ["set -euo pipefail"]
    for start, lines in blocks:
        out.append(f"# README.md line {start}")
        for line in lines:
            if line.startswith("./scripts/"):
                continue
            out.append(MOVED.sub(lambda m: f"{root}/{m.group(1)}/", line))
    return "\n".join(out) + "\n"


def case_blocks_are_commands(ctx):
    # A line of output pasted into a ```sh block would be run: every line
    # must start with a command this machine has (or continue one).
    problems = []
    for start, lines in sh_blocks(README.read_text()):
        cont = False
        for i, line in enumerate(lines):
            word = line.split()[0] if line.split() else ""
            if not cont and word and not word.startswith("./scripts/") and \
                    shutil.which(word) is None and word != "snapfs":
                problems.append(f"line {start + i}: {line!r}: '{word}' is not a command")
            cont = line.rstrip().endswith("\\")
    c.check(not problems, "README.md ```sh blocks hold lines that are not commands:\n"
            + "\n".join(problems))


def case_readme_runs(ctx):
    if not os.path.exists("/dev/fuse") or not shutil.which("fusermount3"):
        raise c.Skip("no /dev/fuse or fusermount3: the README's mount part cannot run")
    root = ctx.path("root")
    for d in ("srv", "mnt", "tmp", "dev/shm", "var/tmp", "home", "bin"):
        (root / d).mkdir(parents=True)
    demo = root / "var/tmp/snapfs-demo"
    demo.mkdir()
    c.run([sys.executable, c.SOURCE_ROOT / "scripts/make-demo-image.py", demo], expect=0)
    os.symlink(os.path.abspath(c.SNAPFS), root / "bin/snapfs")
    blocks = sh_blocks(README.read_text())
    c.check(len(blocks) >= 4, f"README.md has only {len(blocks)} sh blocks")
    script = script_of(blocks, root)
    c.check("snapfs mount" in script and "snapfs save" in script,
            "the README's sh blocks lost the tour")
    (root / "readme.sh").write_text(script)
    c.log(script)
    env = dict(os.environ, PATH=f"{root}/bin:{os.environ.get('PATH', '/usr/bin:/bin')}",
               HOME=str(root / "home"))
    try:
        cp = subprocess.run(["bash", "-x", str(root / "readme.sh")], cwd=root / "home",
                            env=env, stdin=subprocess.DEVNULL, capture_output=True,
                            text=True, errors="replace", timeout=900)
    finally:
        for mnt in (root / "mnt").iterdir() if (root / "mnt").exists() else []:
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", "-u", "-z", str(mnt)], capture_output=True)
    c.log(cp.stdout[-1500:])
    c.check(cp.returncode == 0, f"the README's commands failed (exit {cp.returncode}); the "
            f"last lines of the trace:\n{cp.stderr[-2500:]}")
    # The tour did what it says.
    names = c.snapshot_names(root / "srv/snaps")
    c.check_eq(names, ["vm1", "vm1-patched", "vm2"], "snapshots after the README's commands")
    c.check("regions" in cp.stdout, "ls of a snapshot directory shows regions/")
    c.cmp_files(demo / "memory.img", root / "tmp/vm1.mem")


if __name__ == "__main__":
    c.main()
