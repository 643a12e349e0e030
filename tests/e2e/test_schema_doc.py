#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""schema/README.md stays true: every ```sql example runs in the sqlite3
shell on a store holding two snapshots ('vm1', and 'vm2' saved with
--parent vm1 after a few pages changed), and every table, view and column
of the database is documented in it."""

import random
import re
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE, MIB  # noqa: E402

README = c.SOURCE_ROOT / "schema" / "README.md"


def sql_blocks():
    text = README.read_text()
    blocks = re.findall(r"^```sql\n(.*?)^```", text, flags=re.M | re.S)
    c.check(blocks, f"no ```sql blocks in {README}")
    return blocks


def two_snapshot_store(ctx):
    rng = random.Random(91)
    img = c.Image(ctx.path("vm1.img"), 8 * MIB)
    img.pages(0, 256, "text", rng)
    img.pages(512, 256, "mixed", rng)
    img.pages(1024, 256, "random", rng)
    img.close()
    usage = ctx.path("usage.txt")
    usage.write_text("0 0x100000 anonymous 1 1\n"
                     "0x200000 0x300000 pagecache 1 1\n"
                     "0x300000 0x400000 tmpfs 2 0\n"
                     "0x400000 0x500000 mapped 2 1\n")
    vm2 = ctx.path("vm2.img")
    shutil.copyfile(img.path, vm2)
    with open(vm2, "r+b") as f:
        for p in (3, 100, 600, 1030, 1100):
            f.seek(p * PAGE)
            f.write(c.random_page(rng))
        f.seek(520 * PAGE)
        f.write(bytes(PAGE * 2))  # two pages become zero
    store = ctx.store()
    c.snapfs("save", store, "vm1", img.path, "--usage", usage)
    c.snapfs("save", store, "vm2", vm2, "--usage", usage, "--parent", "vm1")
    return store


def case_examples_run(ctx):
    store = two_snapshot_store(ctx)
    problems = []
    for i, block in enumerate(sql_blocks(), 1):
        first = block.strip().splitlines()[0]
        cp = c.run([c.SQLITE3, "-readonly", "-bail", "-batch", "-header", "-column", store / "snapfs.db"],
                   input=block, quiet=True)
        c.log(f"--- example {i}: {first}\n{cp.stdout.rstrip()}")
        err = c.stderr_text(cp)
        if cp.returncode != 0 or err.strip():
            problems.append(f"example {i} ({first!r}): exit {cp.returncode}, stderr {err.strip()!r}")
        elif not cp.stdout.strip():
            problems.append(f"example {i} ({first!r}) printed no rows on a store with two snapshots")
    if problems:
        c.fail("\n".join(problems))


def case_every_name_documented(ctx):
    store = ctx.store()
    text = README.read_text()
    missing = []
    objects = c.sql(store, "SELECT type, name FROM sqlite_master WHERE type IN ('table', 'view') "
                           "AND name NOT LIKE 'sqlite_%'")
    for o in objects:
        if f"`{o['name']}`" not in text:
            missing.append(f"{o['type']} {o['name']}")
        cols = c.sql(store, f"SELECT name FROM pragma_table_info('{o['name']}')")
        for col in cols:
            if f"`{col['name']}`" not in text:
                missing.append(f"column {o['name']}.{col['name']}")
    c.check(not missing, f"{README} does not document (as `name`): {', '.join(missing)}")


if __name__ == "__main__":
    c.main()
