#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""--help, --version and COMMAND --help: exit 0, print on standard output,
nothing on standard error."""

import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402

COMMANDS = ("init", "save", "list", "info", "restore", "rm", "rename", "prune", "mount")


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
