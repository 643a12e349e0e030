#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""list, info and rm: the tab-separated list (name, created_at, file_size,
data_bytes, stored_bytes, parent or '-'), sorted by name; list --json and
info --json with the SPEC's fields; rm of one or several snapshots, all or
none; rm of a parent sets the child's parent_id to NULL and the child
still restores."""

import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import PAGE  # noqa: E402

JSON_FIELDS = ("name", "created_at", "parent", "file_size", "data_bytes", "stored_bytes")


def make_store(ctx):
    """Store with 'base', 'child' (--parent base) and 'alpha'."""
    base = c.standard_image(ctx.path("base.img"), seed=51)
    child = ctx.path("child.img")
    data = bytearray(base.path.read_bytes())
    rng = random.Random(52)
    for p in (0, 5, 40):
        data[p * PAGE:(p + 1) * PAGE] = c.random_page(rng)
    child.write_bytes(bytes(data))
    alpha = c.standard_image(ctx.path("alpha.img"), seed=53, end_in_data=True)
    store = ctx.store()
    c.snapfs("save", store, "base", base.path)
    c.snapfs("save", store, "child", child, "--parent", "base")
    c.snapfs("save", store, "alpha", alpha.path)
    return store, {"base": base.path, "child": child, "alpha": alpha.path}


def summary(store):
    return {r["name"]: r for r in c.sql(store, "SELECT * FROM snapshot_summary")}


def case_list_text(ctx):
    store, _ = make_store(ctx)
    out = c.snapfs("list", store, "--bytes").stdout
    rows = c.parse_list(out)
    c.check_eq([r["name"] for r in rows], ["alpha", "base", "child"], "list order (by name)")
    s = summary(store)
    created = {r["name"]: r["created_at"] for r in c.sql(store, "SELECT name, created_at FROM snapshots")}
    for r in rows:
        n = r["name"]
        c.check(c.ISO_UTC.match(r["created_at"]), f"list created_at of '{n}': {r['created_at']!r}")
        c.check_eq(r["created_at"], created[n], f"list created_at of '{n}' vs snapshots.created_at")
        for k in ("file_size", "data_bytes", "stored_bytes"):
            c.check_eq(r[k], s[n][k], f"list {k} of '{n}' vs snapshot_summary")
    parents = {r["name"]: r["parent"] for r in rows}
    c.check_eq(parents, {"alpha": "-", "base": "-", "child": "base"}, "list parent column")


HUMAN = re.compile(r"^[0-9]+ B$|^[0-9]+\.[0-9] (KiB|MiB|GiB|TiB|PiB)$")


def human_value(text):
    """The bytes a human size stands for, and how far off it may be."""
    n, unit = text.split()
    scale = {"B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
             "PiB": 1 << 50}[unit]
    return float(n) * scale, 0.05 * scale + 1


def case_list_and_info_readable(ctx):
    # Issue 15, point 2: list and info read like borg's and ls -h's by
    # default (a header, aligned columns, binary units); --bytes gives the
    # exact numbers in the same layout.
    store, _ = make_store(ctx)
    c.snapfs("rename", store, "alpha", "a")  # names of different lengths
    exact = {r["name"]: r for r in c.parse_list(c.snapfs("list", store, "--bytes").stdout)}
    out = c.snapfs("list", store).stdout
    lines = out.splitlines()
    c.check_eq(lines[0].split(), c.LIST_HEADER, "list header")
    starts = [lines[0].index(h) for h in ("created_at", "parent", "comment")]
    for line in lines[1:]:
        for st in starts:
            c.check(line[st - 2:st] == "  " and line[st] != " ",
                    f"list columns not aligned with the header:\n{out}")
    for line in lines[1:]:
        name, created, size = line[:starts[0]].strip(), None, None
        cols = line[starts[0]:starts[1]].split(None, 1)
        created, sizes = cols[0], cols[1]
        sz = [" ".join(p) for p in zip(*[iter(sizes.split())] * 2)]
        c.check_eq(len(sz), 3, f"three sizes in {line!r}")
        for key, text in zip(("file_size", "data_bytes", "stored_bytes"), sz):
            c.check(HUMAN.match(text), f"list {key} of '{name}' is not a human size: {text!r}")
            v, tol = human_value(text)
            c.check(abs(v - exact[name][key]) <= tol,
                    f"list {key} of '{name}': {text!r} is not {exact[name][key]} bytes")
        c.check_eq(created, exact[name]["created_at"], f"created_at of '{name}'")
    # info: aligned key: value, human sizes; --bytes the exact numbers.
    text = c.snapfs("info", store, "child").stdout
    exact_text = c.snapfs("info", store, "child", "--bytes").stdout
    cols = {line.index(":") + 1 + len(line[line.index(":") + 1:]) -
            len(line[line.index(":") + 1:].lstrip()) for line in text.splitlines()}
    c.check_eq(len(cols), 1, f"info values not aligned:\n{text}")
    kv = {k: v.strip() for k, v in (line.split(":", 1) for line in text.splitlines())}
    kx = {k: v.strip() for k, v in (line.split(":", 1) for line in exact_text.splitlines())}
    c.check_eq(sorted(kv), sorted(kx), "keys of info and info --bytes")
    for k in ("file_size", "committed_bytes", "data_bytes", "stored_bytes"):
        c.check(HUMAN.match(kv[k]), f"info {k}: {kv[k]!r}")
        v, tol = human_value(kv[k])
        c.check(abs(v - int(kx[k])) <= tol, f"info {k}: {kv[k]!r} vs {kx[k]}")
    c.check_eq(kv["name"], "child", "info name")
    c.check_eq(kv["page_size"], "4096", "info page_size stays a number")
    store_text = c.snapfs("info", store).stdout
    skv = dict(line.split(":", 1) for line in store_text.splitlines())
    c.check(HUMAN.match(skv["file_bytes"].strip()), f"info STORE file_bytes: {store_text}")
    c.check(skv["blob_count"].strip().isdigit(), f"info STORE blob_count: {store_text}")
    sx = dict(line.split(":", 1) for line in c.snapfs("info", store, "--bytes").stdout.splitlines())
    c.check(sx["file_bytes"].strip().isdigit(), "info STORE --bytes file_bytes")
    # Options that do not belong: --bytes is list's and info's only.
    c.expect_error(["rm", store, "a", "--bytes"], c.EXIT_USAGE, "--bytes")


def case_list_empty_store(ctx):
    store = ctx.store()
    cp = c.snapfs("list", store)
    c.check_eq(cp.stdout, "", "list of an empty store")
    js = c.parse_json(c.snapfs("list", store, "--json").stdout, "list --json of an empty store")
    c.check_eq(js, [], "list --json of an empty store")


def case_list_json(ctx):
    store, _ = make_store(ctx)
    js = c.parse_json(c.snapfs("list", store, "--json").stdout, "list --json")
    c.check(isinstance(js, list), f"list --json must print an array: {js!r}")
    c.check_eq([o.get("name") for o in js], ["alpha", "base", "child"], "list --json names")
    s = summary(store)
    for o in js:
        missing = [f for f in JSON_FIELDS if f not in o]
        c.check(not missing, f"list --json object lacks {missing}: {o}")
        n = o["name"]
        for k in ("file_size", "data_bytes", "stored_bytes"):
            c.check(isinstance(o[k], int), f"list --json {k} of '{n}' must be a number: {o[k]!r}")
            c.check_eq(o[k], s[n][k], f"list --json {k} of '{n}'")
        c.check(isinstance(o["created_at"], str) and c.ISO_UTC.match(o["created_at"]),
                f"list --json created_at of '{n}': {o['created_at']!r}")
    parents = {o["name"]: o["parent"] for o in js}
    c.check_eq(parents, {"alpha": None, "base": None, "child": "base"},
               "list --json parent (null for none)")


def case_info(ctx):
    store, paths = make_store(ctx)
    s = summary(store)
    js = c.parse_json(c.snapfs("info", store, "child", "--json").stdout, "info --json")
    c.check(isinstance(js, dict), f"info --json must print one object: {js!r}")
    missing = [f for f in JSON_FIELDS if f not in js]
    c.check(not missing, f"info --json lacks {missing}: {js}")
    c.check(len(js) > len(JSON_FIELDS), f"info --json should print more fields than list: {sorted(js)}")
    c.check_eq(js["name"], "child", "info --json name")
    c.check_eq(js["parent"], "base", "info --json parent")
    for k in ("file_size", "data_bytes", "stored_bytes"):
        c.check_eq(js[k], s["child"][k], f"info --json {k}")
    extra = {"page_size": 4096, "format": "raw", "segment_count": s["child"]["segment_count"],
             "committed_bytes": s["child"]["committed_bytes"]}
    for k, v in extra.items():
        if k in js:
            c.check_eq(js[k], v, f"info --json {k}")
    if "source" in js:
        c.check(paths["child"].name in str(js["source"]), f"info --json source: {js['source']!r}")

    text = c.snapfs("info", store, "child", "--bytes").stdout
    c.check("child" in text, f"info prints the snapshot's name: {text!r}")
    kv = {}
    for line in text.splitlines():
        if ": " in line:
            k, v = line.split(": ", 1)
            kv[k.strip()] = v.strip()
    if kv:
        c.check_eq(kv.get("name"), "child", "info 'name: ' line")
        if "file_size" in kv:
            c.check_eq(kv["file_size"], str(s["child"]["file_size"]), "info file_size line")
    base = c.parse_json(c.snapfs("info", store, "base", "--json").stdout, "info --json")
    c.check_eq(base["parent"], None, "info --json parent of a snapshot without one")


def case_rm_parent(ctx):
    store, paths = make_store(ctx)
    c.snapfs("rm", store, "base")
    c.check_eq(c.snapshot_names(store), ["alpha", "child"], "names after rm base")
    row = c.sql(store, "SELECT parent_id FROM snapshots WHERE name = 'child'")
    c.check_eq(row, [{"parent_id": None}], "child's parent_id after its parent was removed")
    rows = {r["name"]: r for r in c.parse_list(c.snapfs("list", store, "--bytes").stdout)}
    c.check_eq(rows["child"]["parent"], "-", "list parent of the orphaned child")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM segments WHERE snapshot_id NOT IN "
                                  "(SELECT id FROM snapshots)"), 0, "segments of removed snapshots")
    c.check_eq(c.sql_value(store, "SELECT count(*) FROM page_map WHERE snapshot_id NOT IN "
                                  "(SELECT id FROM snapshots)"), 0, "page_map rows of removed snapshots")
    out = ctx.path("child.out")
    c.snapfs("restore", store, "child", out)
    c.cmp_files(paths["child"], out)
    c.integrity_ok(store)


def case_rm_several(ctx):
    store, paths = make_store(ctx)
    c.snapfs("rm", store, "alpha", "child")
    c.check_eq(c.snapshot_names(store), ["base"], "names after rm alpha child")
    out = ctx.path("base.out")
    c.snapfs("restore", store, "base", out)
    c.cmp_files(paths["base"], out)
    # The name can be used again.
    c.snapfs("save", store, "alpha", paths["alpha"])
    out = ctx.path("alpha.out")
    c.snapfs("restore", store, "alpha", out)
    c.cmp_files(paths["alpha"], out)


def case_rm_all_or_none(ctx):
    store, _ = make_store(ctx)
    before = c.store_state(store)
    cp = c.snapfs("rm", store, "alpha", "no-such-snapshot", "base", expect=1)
    c.check_error_message(cp, "no-such-snapshot")
    c.check_state_unchanged(store, before, "rm naming an unknown snapshot")


def case_rm_then_list_json(ctx):
    store, _ = make_store(ctx)
    c.snapfs("rm", store, "base")
    js = c.parse_json(c.snapfs("list", store, "--json").stdout, "list --json")
    parents = {o["name"]: o["parent"] for o in js}
    c.check_eq(parents, {"alpha": None, "child": None}, "list --json parents after rm of the parent")


def case_info_odd_source_path(ctx):
    # A source path with a newline, a tab, a quote and a backslash: info
    # stays one `key: value` a line, and --json stays valid JSON.
    src = ctx.path('odd\nname\twith "quote" and \\.img')
    src.write_bytes(c.random_page(random.Random(54)))
    store = ctx.store()
    c.snapfs("save", store, "odd", src)
    js = c.parse_json(c.snapfs("info", store, "odd", "--json").stdout, "info --json")
    c.check_eq(js.get("source"), str(src), "info --json source of an odd path")
    text = c.snapfs("info", store, "odd").stdout
    bad = [line for line in text.splitlines() if not re.match(r"^[a-z_]+: ", line)]
    c.check(not bad, f"info lines that are not 'key: value': {bad!r} in {text!r}")
    lst = c.parse_json(c.snapfs("list", store, "--json").stdout, "list --json")
    c.check_eq(len(lst), 1, "list --json entries")


if __name__ == "__main__":
    c.main()
