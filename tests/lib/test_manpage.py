# SPDX-License-Identifier: MIT
"""doc/libsnapfs.3 documents every function include/snapfs.h exports
(issue 16, point 2), names no function the header lacks, and renders
without warnings (man --warnings).
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_symbols import header_functions  # noqa: E402

HEADER = os.environ["SNAPFS_HEADER"]
MAN = os.path.join(os.environ["SNAPFS_SOURCE_ROOT"], "doc", "libsnapfs.3")


def main():
    declared = header_functions(open(HEADER).read())
    text = open(MAN).read()
    # An entry: the function's name in bold (.BI "... name(" or .BR name ()).
    entries = set(re.findall(r'^\.BI? "[^"\n]*?\b(snapfs_[a-z0-9_]+)\(', text, re.M))
    named = set(re.findall(r"\b(snapfs_[a-z0-9_]+)\b", text))
    problems = [f"{f}: declared in snapfs.h, no entry in libsnapfs.3"
                for f in sorted(declared - entries)]
    header = open(HEADER).read()
    problems += [f"{f}: named in libsnapfs.3, unknown to snapfs.h"
                 for f in sorted(named) if not re.search(r"\b" + f + r"\b", header)]
    cp = subprocess.run(["man", "--warnings", "-l", "-E", "UTF-8", MAN],
                        capture_output=True, text=True,
                        env={**os.environ, "MANWIDTH": "80", "MAN_KEEP_FORMATTING": ""})
    if cp.returncode != 0:
        problems.append(f"man -l {MAN}: exit {cp.returncode}: {cp.stderr.strip()}")
    elif cp.stderr.strip():
        problems.append(f"man --warnings: {cp.stderr.strip()}")
    print(f"{len(declared)} functions in snapfs.h, {len(entries)} entries in libsnapfs.3")
    for p in problems:
        print("FAIL: " + p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
