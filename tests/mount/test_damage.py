#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Damage reads as EIO on the damaged pages only, never as wrong bytes.

The store is damaged one way at a time, on a fresh copy of a good store,
then mounted; rows are changed with the real sqlite3 shell, pack bytes
where the blobs table (read with the sqlite3 shell) says they are:
  - a byte of a blob's stored bytes flipped in its pack file (the blob
    found from a page number through page_map, as a user would);
  - the pack file cut off inside a blob (that blob and every later one
    lose their bytes);
  - a blob's checksum changed;
  - a blob's page count set far out of range, or one short (the read path
    finds no room for it, or a size that does not decode: EIO, never
    ENOMEM or bytes of the wrong size);
  - a page_map row pointed at another, valid blob (caught by the run hash);
  - a page_map row's slot moved by one.
For each: every page of the affected runs fails with EIO (pread, mmap is
not used: a SIGBUS is no answer), every other page reads right, a whole-file
read fails with EIO rather than coming back short, cmp reports the I/O
error, and the daemon logs the damage once for the snapshot. The good copy
of the store reads back fine (the test can tell the difference).
"""
import errno
import hashlib
import os
import shutil
import subprocess

from mountlib import (PAGE, Mount, blob_place, check, damage_blob, drop_cache,
                      log, main, make_image, pack_files, run, save)


def sql(db, query):
    return run(["sqlite3", "-batch", db, query]).stdout


def page_map(db, snap_id):
    rows = []
    for ln in sql(db, "SELECT first_page, page_count, blob_id, slot FROM "
                  f"page_map WHERE snapshot_id = {snap_id} "
                  "ORDER BY first_page").split():
        rows.append(tuple(int(x) for x in ln.split("|")))
    return rows


def read_pages(mem, data, bad_pages, label):
    """Every page: EIO if in bad_pages, else the right bytes."""
    drop_cache(mem)
    fd = os.open(mem, os.O_RDONLY)
    got_eio = 0
    try:
        pages = (len(data) + PAGE - 1) // PAGE
        # Bad pages first, then the others, so that readahead around a
        # bad page cannot have warmed the cache for its neighbours.
        order = sorted(bad_pages) + [p for p in range(pages)
                                     if p not in bad_pages]
        for p in order:
            try:
                got = os.pread(fd, PAGE, p * PAGE)
            except OSError as e:
                check(e.errno == errno.EIO, f"{label}: page {p}: {e}")
                check(p in bad_pages,
                      f"{label}: page {p} (undamaged) failed with EIO")
                got_eio += 1
                continue
            check(p not in bad_pages,
                  f"{label}: damaged page {p} was served "
                  f"({'right' if got == data[p*PAGE:(p+1)*PAGE] else 'WRONG'}"
                  " bytes)")
            check(got == data[p * PAGE:(p + 1) * PAGE],
                  f"{label}: page {p} has wrong bytes")
        # A big read across the damage: the good bytes before the damaged
        # page at most (the kernel returns what it copied), then EIO;
        # never zeros or a short reply taken for the end of the file.
        if bad_pages:
            first = min(bad_pages)
            off = max(0, first - 3) * PAGE
            drop_cache(mem)
            try:
                got = os.pread(fd, 64 * PAGE, off)
                check(len(got) <= first * PAGE - off,
                      f"{label}: a 256 KiB read at {off} over damaged page "
                      f"{first} returned {len(got)} bytes")
                check(got == data[off:off + len(got)],
                      f"{label}: a read before damage has wrong bytes")
                off += len(got)
                got = os.pread(fd, 64 * PAGE, off)
                check(False, f"{label}: read at {off} (damaged page "
                      f"{first}) returned {len(got)} bytes")
            except OSError as e:
                check(e.errno == errno.EIO, f"{label}: big read: {e}")
    finally:
        os.close(fd)
    return got_eio


def test(work):
    store = os.path.join(work, "store")
    run([os.environ["SNAPFS"], "init", store])
    src = os.path.join(work, "vm.img")
    # Random and text pages with a few holes: many blobs and runs.
    data = make_image(src, 700, 21, 999, weights=[1, 0, 6, 3, 1])
    other = os.path.join(work, "other.img")
    make_image(other, 400, 22, 0, weights=[0, 0, 1, 0, 0])
    info = save(store, "vm", src)
    other_info = save(store, "other", other)
    pristine = os.path.join(work, "pristine")
    shutil.copytree(store, pristine)
    db = os.path.join(store, "snapfs.db")
    sid = info["id"]
    runs = page_map(db, sid)
    check(len(runs) >= 4, f"want several page_map runs, got {runs}")
    blob_pages = dict(ln.split("|") for ln in sql(
        db, "SELECT id, page_count FROM blobs").split())
    blob_pages = {int(k): int(v) for k, v in blob_pages.items()}
    log(f"vm: {len(runs)} runs over {len({r[2] for r in runs})} blobs")

    def pages_of_blob(blob):
        return {p for fp, n, b, _ in runs if b == blob
                for p in range(fp, fp + n)}

    target = runs[len(runs) // 2]
    page = target[0] + target[1] // 2   # a page inside the target run
    find_blob = (f"(SELECT blob_id FROM page_map WHERE snapshot_id = {sid} "
                 f"AND first_page <= {page} ORDER BY first_page DESC LIMIT 1)")
    # Another snapshot's blob big enough to stand in for the target's.
    other_blob = int(sql(db, (
        "SELECT blob_id FROM page_map WHERE snapshot_id = "
        f"{other_info['id']} AND blob_id NOT IN (SELECT blob_id FROM "
        f"page_map WHERE snapshot_id = {sid}) AND blob_id IN (SELECT id "
        f"FROM blobs WHERE page_count >= {target[3] + target[1]}) "
        "LIMIT 1")).strip())

    target_blob = int(sql(db, f"SELECT {find_blob}").strip())
    check(target_blob == target[2], f"page {page}: blob {target_blob}, "
          f"expected {target[2]}")
    # The pack cut inside the target blob: every run of vm whose blob
    # ends past the cut fails (blobs after the target lose all bytes).
    _, t_off, t_size = blob_place(store, target_blob)
    cut = t_off + t_size // 2
    ends = {int(k): int(v) for k, v in (ln.split("|") for ln in sql(
        db, "SELECT id, pack_offset + stored_size FROM blobs WHERE "
        f"pack_id = (SELECT pack_id FROM blobs WHERE id = {target_blob})"
    ).split())}
    cut_pages = set().union(*(pages_of_blob(b) for b, end in ends.items()
                              if end > cut))

    def update(query):
        return lambda: sql(db, query)

    # label, damage, pages that must fail, whether 'other' stays readable
    damages = [
        ("flipped blob byte",
         lambda: damage_blob(store, target_blob, "flip", at=40),
         pages_of_blob(target[2]), True),
        ("pack cut inside a blob",
         lambda: damage_blob(store, target_blob, "truncate", at=t_size // 2),
         cut_pages, False),
        ("wrong blob checksum",
         update(f"UPDATE blobs SET checksum = checksum + 1 WHERE id = {find_blob};"),
         pages_of_blob(target[2]), True),
        ("page_map row pointing at another blob",
         update(f"UPDATE page_map SET blob_id = {other_blob} WHERE snapshot_id = "
                f"{sid} AND first_page = {target[0]};"),
         set(range(target[0], target[0] + target[1])), False),
        ("blob row with a page count out of range",
         update(f"UPDATE blobs SET page_count = 1099511627776 WHERE id = {find_blob};"),
         pages_of_blob(target[2]), True),
        ("blob row with a page count one short",
         update(f"UPDATE blobs SET page_count = page_count - 1 WHERE id = {find_blob};"),
         pages_of_blob(target[2]), True),
        ("page_map row with a moved slot",
         update(f"UPDATE page_map SET slot = slot + 1 WHERE snapshot_id = {sid} "
                f"AND first_page = {runs[0][0]};"),
         set(range(runs[0][0], runs[0][0] + runs[0][1])), True),
    ]

    def state():
        """The rows and the pack bytes a damage may change."""
        packs = {n: hashlib.sha256(open(os.path.join(store, "packs", n), "rb")
                                   .read()).hexdigest() for n in pack_files(store)}
        return (sql(db, "SELECT first_page, blob_id, slot FROM page_map; "
                    "SELECT id, checksum, pack_id, pack_offset, stored_size, "
                    "page_count FROM blobs"), packs)

    mnt = os.path.join(work, "mnt")
    mem = os.path.join(mnt, "vm", "memory")
    for label, damage, bad, other_ok in damages:
        shutil.rmtree(store)
        shutil.copytree(pristine, store)
        before = state()
        damage()
        check(state() != before, f"{label}: the damage changed nothing")
        check(bad, f"{label}: no pages expected to fail")
        with Mount(store, mnt) as m:
            n = read_pages(mem, data, bad, label)
            with open(mem, "rb") as f:
                try:
                    whole = f.read()
                    check(False, f"{label}: whole-file read returned "
                          f"{len(whole)} of {len(data)} bytes, no error")
                except OSError as e:
                    check(e.errno == errno.EIO, f"{label}: read(): {e}")
            p = subprocess.run(["cmp", src, mem], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
            check(p.returncode == 2 and "Input/output error" in p.stderr,
                  f"{label}: cmp: exit {p.returncode} {p.stderr.strip()} "
                  f"{p.stdout.strip()}")
            # The other snapshot is untouched.
            if other_ok:
                run(["cmp", other, os.path.join(mnt, "other", "memory")])
            m.unmount()
            logged = [ln for ln in m.stderr().splitlines()
                      if "'vm'" in ln]
            check(len(logged) == 1, f"{label}: damage logged "
                  f"{len(logged)} times:\n{m.stderr()}")
        log(f"{label}: {n} pages EIO, {len(data) // PAGE + 1 - n} read "
            f"right; logged: {logged[0]}")

    # The good store reads back whole: the failures above were the damage.
    shutil.rmtree(store)
    shutil.copytree(pristine, store)
    with Mount(store, mnt) as m:
        read_pages(mem, data, set(), "pristine")
        run(["cmp", src, mem])
        m.unmount()
        check("'vm'" not in m.stderr(), f"pristine logged: {m.stderr()}")


if __name__ == "__main__":
    if shutil.which("sqlite3") is None:
        raise SystemExit("the sqlite3 shell is needed")
    main(test)
