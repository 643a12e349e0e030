# SPDX-License-Identifier: MIT
"""libsnapfs.so exports the public API and nothing else.

Runs `nm -D --defined-only` on the built shared object ($SNAPFS_LIB):
every exported symbol must start with snapfs_, and every function that
include/snapfs.h ($SNAPFS_HEADER) declares must be exported and marked
SNAPFS_API. Sanitizer builds add their runtime's hooks (__asan_*...),
which are allowed there alone.
"""

import os
import re
import subprocess
import sys

LIB = os.environ["SNAPFS_LIB"]
HEADER = os.environ["SNAPFS_HEADER"]
SANITIZED = os.environ.get("SNAPFS_SANITIZE", "none") not in ("", "none")
SANITIZER_PREFIXES = ("__asan", "___asan", "__odr_asan", "__ubsan", "__sanitizer",
                      "__lsan")


def header_functions(text):
    """Names of the functions a C header declares (not function-pointer
    typedefs, not names inside comments)."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"^\s*#.*$", " ", text, flags=re.M)
    return set(re.findall(r"(?<!\(\*)\b(snapfs_[a-z0-9_]+)\s*\(", text))


def marked_functions(text):
    """Names declared after SNAPFS_API."""
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return set(re.findall(r"\bSNAPFS_API\b[^;(]*?\b(snapfs_[a-z0-9_]+)\s*\(", text))


def exported(lib):
    out = subprocess.run(["nm", "-D", "--defined-only", lib], check=True,
                         capture_output=True, text=True).stdout
    names = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3:
            names.add(parts[2].split("@", 1)[0])
    return names


def main():
    failures = []
    header = open(HEADER).read()
    declared = header_functions(header)
    if len(declared) < 40:
        failures.append(f"only {len(declared)} functions found in {HEADER}: the parser is wrong")
    unmarked = declared - marked_functions(header)
    for name in sorted(unmarked):
        failures.append(f"{name} is declared in snapfs.h without SNAPFS_API")
    symbols = exported(LIB)
    for name in sorted(symbols):
        if name.startswith("snapfs_"):
            continue
        if SANITIZED and name.startswith(SANITIZER_PREFIXES):
            continue
        failures.append(f"{LIB} exports {name}, which is not snapfs_*")
    for name in sorted(declared - symbols):
        failures.append(f"{name} is declared in snapfs.h but {LIB} does not export it")
    for name in sorted(s for s in symbols if s.startswith("snapfs_") and s not in declared):
        failures.append(f"{LIB} exports {name}, which snapfs.h does not declare")
    print(f"{len(declared)} functions in snapfs.h, {len(symbols)} symbols exported")
    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
