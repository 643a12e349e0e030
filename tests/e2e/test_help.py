#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--help, --version and COMMAND --help: exit 0, print on standard output,
nothing on standard error.

Issue 15, point 1: the help, the man page (doc/snapfs.1) and README.md
name the same things. Every command `snapfs --help` lists is in the man
page and the README; every --option of `snapfs --help` and of each
`COMMAND --help` is in both, and every --option the man page or the README
names is in some --help (options of other tools the README uses, such as
cp's --sparse, are listed in FOREIGN); every `-o` option of the mount's own
(the "snapfs options" of `mount --help`) is in both; the files of a
mounted snapshot (memory, segments, info, regions/) are in all three."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

COMMANDS = ("init", "save", "list", "info", "restore", "rm", "rename", "prune", "mount")
# Options of other programs that README.md or the man page show in use.
FOREIGN = {"--sparse", "--suite", "--cflags", "--libs",
           # criu dump's and Firecracker rebase-snap's options
           "--compress", "--compress-region", "--base-file", "--diff-file"}
MOUNT_FILES = ("memory", "segments", "info", "regions/")
OPTION = re.compile(r"(?<![\w-])--[a-z][a-z0-9-]*")


def docs():
    man = (c.SOURCE_ROOT / "doc" / "snapfs.1").read_text().replace("\\-", "-")
    readme = (c.SOURCE_ROOT / "README.md").read_text()
    return man, readme


def listed_commands(text):
    """The commands of `snapfs --help`: the first word of each line of
    its "commands:" section indented by two spaces."""
    out, inside = [], False
    for line in text.splitlines():
        if line.startswith("commands:"):
            inside = True
        elif inside and not line.strip():
            break
        elif inside and re.match(r"^  [a-z]", line):
            out.append(line.split()[0])
    return out


def all_help():
    top = c.snapfs("--help").stdout
    cmds = listed_commands(top)
    c.check(set(COMMANDS) <= set(cmds), f"--help lists {cmds}, not all of {COMMANDS}")
    return top, cmds, {cmd: c.snapfs(cmd, "--help").stdout for cmd in cmds}


def case_help_and_docs_agree(ctx):
    man, readme = docs()
    top, cmds, helps = all_help()
    problems = []
    for cmd in cmds:
        if not re.search(rf"snapfs {cmd}\b", readme):
            problems.append(f"README.md never shows 'snapfs {cmd}'")
        if not re.search(rf"(^\.BR? {cmd}\b)|(snapfs {cmd}\b)", man, re.M):
            problems.append(f"doc/snapfs.1 has no entry for the command '{cmd}'")
    in_help = set(OPTION.findall(top))
    for cmd, text in helps.items():
        opts = set(OPTION.findall(text))
        in_help |= opts
        for o in sorted(opts):
            for name, doc in (("doc/snapfs.1", man), ("README.md", readme)):
                if not re.search(rf"(?<![\w-]){re.escape(o)}(?![\w-])", doc):
                    problems.append(f"{cmd} --help: {o} is not in {name}")
    for name, doc in (("doc/snapfs.1", man), ("README.md", readme)):
        for o in sorted(set(OPTION.findall(doc)) - in_help - FOREIGN):
            problems.append(f"{name} names {o}, which no --help lists")
    c.check(not problems, "help and docs disagree:\n" + "\n".join(problems))


def case_mount_options_and_files(ctx):
    man, readme = docs()
    text = c.snapfs("mount", "--help").stdout
    own = text.split("snapfs options:", 1)
    c.check(len(own) == 2, f"mount --help has no 'snapfs options:' section: {text!r}")
    own = own[1].split("\n\n", 1)[0]
    opts = sorted(set(re.findall(r"-o ([a-z_]+)", own)))
    c.check(len(opts) >= 8, f"mount's own -o options: {opts}")
    problems = []
    for o in opts:
        for name, doc in (("doc/snapfs.1", man), ("README.md", readme)):
            if not re.search(rf"-o {o}\b|\b{o}\b", doc):
                problems.append(f"mount -o {o} is not in {name}")
    for f in MOUNT_FILES:
        for name, doc in (("doc/snapfs.1", man), ("README.md", readme),
                          ("mount --help", text)):
            if f not in doc:
                problems.append(f"the mount's '{f}' is not in {name}")
    c.check(re.search(r"NAME \s*/regions/", man), "doc/snapfs.1 has no entry for NAME/regions/")
    c.check("- `regions/`" in readme, "README.md has no item for regions/")
    c.check(not problems, "mount help and docs disagree:\n" + "\n".join(problems))


def case_help(ctx):
    cp = c.snapfs("--help")
    c.check_eq(c.stderr_text(cp), "", "standard error of --help")
    for cmd in COMMANDS:
        c.check(cmd in cp.stdout, f"--help does not mention the command '{cmd}':\n{cp.stdout}")


def case_version(ctx):
    cp = c.snapfs("--version")
    c.check_eq(c.stderr_text(cp), "", "standard error of --version")
    c.check(re.search(r"\b\d+\.\d+\.\d+\b", cp.stdout),
            f"--version prints no version number: {cp.stdout!r}")
    c.check("snapfs" in cp.stdout, f"--version should name snapfs: {cp.stdout!r}")


def case_command_help(ctx):
    problems = []
    for cmd in COMMANDS:
        try:
            cp = c.snapfs(cmd, "--help")
            c.check_eq(c.stderr_text(cp), "", f"standard error of {cmd} --help")
            c.check(cmd in cp.stdout, f"{cmd} --help does not name the command: {cp.stdout!r}")
        except AssertionError as e:
            problems.append(f"{cmd} --help: {e}")
    if problems:
        c.fail("\n".join(problems))


def case_save_help_lists_options(ctx):
    out = c.snapfs("save", "--help").stdout
    for opt in ("--parent", "--usage", "--codec", "--level", "--kind", "--comment", "--quiet"):
        c.check(opt in out, f"save --help does not list {opt}:\n{out}")


if __name__ == "__main__":
    c.main()
