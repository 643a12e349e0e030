# SPDX-License-Identifier: MIT
"""snapfs diff against a brute-force page comparison of the two source
files, on random pairs; --json; the SQL query in schema/queries/diff.sql
gives the same answer; errors."""

import json
import random

from lifelib import PAGE, check, check_eq, common, expected_diff, log, mutate, parse_diff
from lifelib import random_pages, run, snapfs, write_pages

DIFF_SQL = common.SOURCE_ROOT / "schema" / "queries" / "diff.sql"


def sql_diff(store, a, b):
    cp = run([common.SQLITE3, common.db_path(store), f".parameter set :a '{a}'",
              f".parameter set :b '{b}'", f".read {DIFF_SQL}"], expect=0, quiet=True)
    return parse_diff(cp.stdout)


def case_random_pairs(ctx):
    """Pairs with 0 %, 1 % and 100 % of the pages changed (and 20 %), each
    checked against brute force; an unchanged pair adds no blob bytes."""
    store = ctx.store()
    fractions = (0.0, 0.01, 1.0, 0.2, 0.01, 0.0)
    for seed in range(6):
        rng = random.Random(seed)
        total = rng.randint(200, 3000)
        size = total * PAGE - rng.choice((0, 0, 1000))
        a_pages = random_pages(rng, total, rng.choice((0.1, 0.4, 0.9)), extents=seed % 2 == 0)
        a_pages = {p: d for p, d in a_pages.items() if p * PAGE < size}
        fraction = fractions[seed]
        b_pages = mutate(rng, a_pages, total, fraction)
        if fraction == 0.0:
            b_pages = dict(a_pages)  # no change at all
        b_pages = {p: d for p, d in b_pages.items() if p * PAGE < size}
        # The last page of a file that ends mid-page holds only size % PAGE bytes.
        for pages in (a_pages, b_pages):
            last = (size - 1) // PAGE
            if last in pages and size % PAGE:
                pages[last] = pages[last][: size % PAGE].ljust(PAGE, b"\0")
        a, b = ctx.path(f"a{seed}"), ctx.path(f"b{seed}")
        write_pages(a, size, {p: d[: size - p * PAGE] for p, d in a_pages.items()})
        write_pages(b, size, {p: d[: size - p * PAGE] for p, d in b_pages.items()})
        snapfs("save", store, f"a{seed}", a, "--quiet")
        added = json.loads(snapfs("save", store, f"b{seed}", b, "--parent", f"a{seed}",
                                  "--json", quiet=True).stdout)["new_blob_bytes"]
        if fraction == 0.0:
            check_eq(added, 0, "an unchanged image adds no blob bytes")
        want = expected_diff(a_pages, b_pages, size)
        got = parse_diff(snapfs("diff", store, f"a{seed}", f"b{seed}", quiet=True).stdout)
        log(f"seed {seed}: {total} pages, {len(want)} ranges differ")
        check_eq(got, want, f"diff a{seed} b{seed}")
        back = parse_diff(snapfs("diff", store, f"b{seed}", f"a{seed}", quiet=True).stdout)
        flip = {"added": "removed", "removed": "added", "changed": "changed"}
        check_eq(back, [(s, e, flip[t]) for s, e, t in want], "diff in the other direction")
        js = json.loads(snapfs("diff", store, f"a{seed}", f"b{seed}", "--json", quiet=True).stdout)
        check_eq([(r["start"], r["end"], r["status"]) for r in js], want, "diff --json")
        check_eq(sql_diff(store, f"a{seed}", f"b{seed}"), want, "schema/queries/diff.sql")
        check_eq(snapfs("diff", store, f"a{seed}", f"a{seed}", quiet=True).stdout, "",
                 "a snapshot against itself")


def case_errors(ctx):
    store = ctx.store()
    a = ctx.path("a")
    write_pages(a, 8 * PAGE, {1: b"x" * PAGE})
    snapfs("save", store, "a", a, "--quiet")
    common.expect_error(["diff", store, "a", "nope"], 1, "nope")
    common.expect_error(["diff", store, "a", "../x"], 2, "../x")
    common.expect_error(["diff", store, "a"], 2)
    common.expect_error(["diff", ctx.path("nostore"), "a", "b"], 2, "snapfs init")


common.main()
