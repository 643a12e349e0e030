# SPDX-License-Identifier: MIT
"""A C program built against the installed libsnapfs with pkg-config alone.

1. `meson install --destdir D` installs this build into a temporary
   directory (libsnapfs.so.N, include/snapfs/snapfs.h, snapfs.pc).
2. consumer.c (argv[1]) is compiled and linked with
   `cc consumer.c $(pkg-config --cflags --libs snapfs)`, PKG_CONFIG_PATH
   pointing into D and PKG_CONFIG_SYSROOT_DIR=D (the .pc file says
   prefix=/usr/local, as installed for real); nothing else: no -I into the
   source tree, so it sees the public header alone.
3. README.md's example ("Using libsnapfs from C") is built the same way
   and must print the first page of a snapshot.
4. The real snapfs command makes a store with two snapshots of random data,
   holes and zero pages; the consumer, run with the installed .so
   (LD_LIBRARY_PATH into D; ldd must show that one), lists them and reads
   ranges that `snapfs restore` + dd must give byte for byte.
"""

import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

SNAPFS = os.environ["SNAPFS"]
BUILD = os.environ["SNAPFS_BUILD_ROOT"]
CC = os.environ.get("SNAPFS_CC") or "cc"
SANITIZE = os.environ.get("SNAPFS_SANITIZE", "none")
PAGE = 4096


def run(cmd, **kw):
    print("+", " ".join(str(c) for c in cmd), flush=True)
    return subprocess.run([str(c) for c in cmd], check=True, **kw)


def output(cmd, env=None):
    return run(cmd, capture_output=True, text=True, env=env).stdout


def make_image(path, pages, seed):
    """pages pages: random data, all-zero pages and a hole at the end."""
    rng = random.Random(seed)
    with open(path, "wb") as f:
        for i in range(pages - 16):
            if i % 5 == 3:
                f.write(bytes(PAGE))
            else:
                f.write(rng.randbytes(PAGE))
        f.truncate(pages * PAGE)


def main():
    consumer_c = Path(sys.argv[1]).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="snapfs-lib-", dir=os.environ.get("SNAPFS_TEST_TMPDIR", "/var/tmp")))
    try:
        dest = tmp / "dest"
        run(["meson", "install", "-C", BUILD, "--no-rebuild", "--quiet", "--destdir", dest],
            stdout=subprocess.DEVNULL)
        pcs = list(dest.rglob("pkgconfig/snapfs.pc"))
        headers = list(dest.rglob("include/snapfs/snapfs.h"))
        sos = list(dest.rglob("libsnapfs.so.0"))
        assert len(pcs) == 1 and len(headers) == 1 and len(sos) == 1, (pcs, headers, sos)
        libdir = sos[0].parent
        # The only header installed is the public one.
        installed_h = sorted(str(p.relative_to(dest)) for p in dest.rglob("*.h"))
        assert len(installed_h) == 1, installed_h

        env = dict(os.environ)
        env["PKG_CONFIG_PATH"] = str(pcs[0].parent)
        env["PKG_CONFIG_SYSROOT_DIR"] = str(dest)
        flags = output(["pkg-config", "--cflags", "--libs", "snapfs"], env=env).split()
        print("pkg-config:", " ".join(flags))
        assert f"-I{dest}/usr/local/include/snapfs" in flags or any(
            f.startswith(f"-I{dest}") for f in flags), flags
        extra = []
        if SANITIZE not in ("", "none"):
            extra = [f"-fsanitize={SANITIZE}"]
        exe = tmp / "consumer"
        run([CC, "-std=c11", "-Wall", "-Werror", *extra, consumer_c, "-o", exe, *flags], env=env)

        renv = dict(os.environ)
        renv["LD_LIBRARY_PATH"] = str(libdir)
        ldd = output(["ldd", exe], env=renv)
        assert str(libdir / "libsnapfs.so.0") in ldd, ldd

        store = tmp / "store"
        a, b = tmp / "a.mem", tmp / "b.mem"
        make_image(a, 300, 1)
        make_image(b, 100, 2)
        run([SNAPFS, "init", store])
        run([SNAPFS, "save", store, "vm-a", a])
        run([SNAPFS, "save", store, "vm-b", b, "--parent", "vm-a"])
        restored = tmp / "restored.mem"
        run([SNAPFS, "restore", store, "vm-a", restored])

        ranges = [(0, PAGE), (7 * PAGE, PAGE), (3 * PAGE, PAGE),  # data, zero page
                  (10 * PAGE + 123, 5 * PAGE + 7),                # unaligned, across pages
                  (290 * PAGE, 10 * PAGE),                        # the hole
                  (299 * PAGE, 4 * PAGE)]                         # past the end
        for off, length in ranges:
            got = tmp / "got"
            want = tmp / "want"
            listing = output([exe, store, "vm-a", off, length, got], env=renv)
            assert listing == f"vm-a {300 * PAGE}\nvm-b {100 * PAGE}\n", listing
            run(["dd", f"if={restored}", f"of={want}", "iflag=skip_bytes,count_bytes",
                 f"skip={off}", f"count={length}", "status=none"])
            run(["cmp", got, want])
            assert got.read_bytes() == a.read_bytes()[off:off + length]

        # README.md's example, compiled and run as printed there.
        readme = (Path(os.environ["SNAPFS_SOURCE_ROOT"]) / "README.md").read_text()
        section = readme.split("## Using libsnapfs from C", 1)[1].split("\n## ", 1)[0]
        example_c = tmp / "example.c"
        example_c.write_text(section.split("```c\n", 1)[1].split("```", 1)[0])
        example = tmp / "example"
        run([CC, "-std=c11", "-Wall", "-Werror", *extra, example_c, "-o", example, *flags],
            env=env)
        page0 = run([example, store, "vm-a"], env=renv, capture_output=True).stdout
        assert page0 == restored.read_bytes()[:PAGE] and len(set(page0)) > 1, len(page0)
        r = subprocess.run([example, store, "nope"], env=renv, capture_output=True, text=True)
        assert r.returncode == 1 and r.stdout == "" and "'nope'" in r.stderr, r
        print("README example: ok;", r.stderr, end="")

        # Point 3 of issue 16: guest RAM saved from memory (an anonymous
        # mapping) and read back, built with pkg-config alone.
        saver_c = Path(os.environ["SNAPFS_SOURCE_ROOT"]) / "tests" / "lib" / "save_memory.c"
        saver = tmp / "save_memory"
        run([CC, "-std=c11", "-Wall", "-Werror", *extra, saver_c, "-o", saver, *flags], env=env)
        mstore = tmp / "mstore"
        run([SNAPFS, "init", mstore])
        out = run([saver, mstore], env=renv, capture_output=True, text=True).stdout
        assert "save_memory: ok" in out, out
        run([SNAPFS, "verify", mstore])
        print("save from memory with the installed library: ok")

        # Errors come back as the API says: no such snapshot.
        r = subprocess.run([exe, store, "nope", "0", "1", tmp / "x"], env=renv,
                           capture_output=True, text=True)
        print(r.stderr, end="")
        assert r.returncode == 1 and "nope" in r.stderr, (r.returncode, r.stderr)
        print("ok")
        return 0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
