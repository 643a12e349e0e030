#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""snapfs map STORE NAME [--parent | --against OTHER] [-o FILE] (issue 17, points 3
and 4): the SVG parses as XML, and headless Chromium (Debian's
`chromium`) draws it with the expected colours in the expected
proportions. The crafted snapshot is one committed anonymous segment of
256 pages whose child has a quarter of its pages shared with the parent,
half stored on its own and a quarter zero: along a line through the
middle of the strip, the pixels of each shade must cover that share of
the strip's width within TOLERANCE (anti-aliased edges between rects and
colour management move a few pixels; a wrong layout moves a whole
quarter). Labels are untrusted: a mapping whose path holds < & " shows up
escaped in the SVG text. A 128 TiB process address space (pid:N of a
python process) and a raw file with data at 0 and at 64 GiB render too,
with their used parts visible (folded gaps)."""

import os
import shutil
import struct
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
import zlib
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common as c  # noqa: E402
from common import GIB, PAGE  # noqa: E402

SVG_NS = "{http://www.w3.org/2000/svg}"
PAGES = 256
TOLERANCE = 0.03        # of the strip width, for each colour's share
COLOUR_SLACK = 6        # per channel, for the browser's colour handling
STRIP_X0, STRIP_X1, STRIP_MID = 20, 1180, 100   # map_svg.c's strip
ANON = 0x4E79A7


def shade(rgb, t):
    """map_svg.c's shade(): toward white (t > 0) or black (t < 0)."""
    out = 0
    for s in (16, 8, 0):
        v = (rgb >> s) & 0xFF
        v = v + (255 - v) * t if t >= 0 else v * (1 + t)
        out |= int(v + 0.5) << s
    return out


STORED, SHARED, ZERO = ANON, shade(ANON, -0.45), shade(ANON, 0.6)


def read_png(path):
    """(width, height, rows of (r, g, b) tuples) of an 8-bit RGB or RGBA
    PNG, with python's zlib and struct only."""
    data = Path(path).read_bytes()
    c.check(data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG")
    pos, idat, width = 8, b"", 0
    while pos < len(data):
        length, ctype = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if ctype == b"IHDR":
            width, height, depth, colour = struct.unpack(">IIBB", body[:10])
            c.check(depth == 8 and colour in (2, 6), f"PNG depth {depth} colour type {colour}")
            bpp = 3 if colour == 2 else 4
        elif ctype == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            cc = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 0xFF
            elif f == 2:
                line[i] = (line[i] + b) & 0xFF
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif f == 4:
                p = a + b - cc
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - cc)
                pr = a if pa <= pb and pa <= pc else (b if pb <= pc else cc)
                line[i] = (line[i] + pr) & 0xFF
        rows.append([tuple(line[x * bpp:x * bpp + 3]) for x in range(width)])
        prev = line
    return width, height, rows


def near(px, rgb):
    want = ((rgb >> 16) & 0xFF, (rgb >> 8) & 0xFF, rgb & 0xFF)
    return all(abs(a - b) <= COLOUR_SLACK for a, b in zip(px, want))


def chromium():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        c.fail("chromium is not installed (scripts/install-deps.sh test installs it)")
    return exe


def render(ctx, svg, name):
    """Screenshot svg with headless Chromium; the PNG's rows."""
    root = ET.parse(svg).getroot()
    w, h = int(float(root.get("width"))), int(float(root.get("height")))
    png = ctx.path(name + ".png")
    env = dict(os.environ, HOME=str(ctx.path("chromium-home")))
    c.run([chromium(), "--headless", "--disable-gpu", "--no-sandbox", "--hide-scrollbars",
           "--force-device-scale-factor=1", f"--user-data-dir={ctx.path('chromium-profile')}",
           f"--screenshot={png}", f"--window-size={w},{h}", Path(svg).resolve().as_uri()],
          expect=0, env=env, timeout=300)
    pw, ph, rows = read_png(png)
    c.check_eq((pw, ph), (w, h), "screenshot size")
    return rows


def parse_svg(path):
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as e:
        c.fail(f"{path} is not valid XML: {e}")


def write_pages(path, pages):
    """pages: a list of bytes (one page each) or None for a hole."""
    with open(path, "wb") as f:
        for p in pages:
            if p is None:
                f.seek(PAGE, os.SEEK_CUR)
            else:
                f.write(p)
        f.truncate()


def case_proportions(ctx):
    rng = __import__("random").Random(17)
    q = PAGES // 4
    parent = [rng.randbytes(PAGE) for _ in range(4 * q)]
    child = parent[:q] + [rng.randbytes(PAGE) for _ in range(2 * q)] + [bytes(PAGE)] * q
    write_pages(ctx.path("p.img"), parent)
    write_pages(ctx.path("c.img"), child)
    usage = ctx.path("usage.txt")
    usage.write_text(f"0 {PAGES * PAGE} anonymous 0 1\n")
    store = ctx.store()
    c.snapfs("save", store, "p", ctx.path("p.img"), "--usage", usage)
    c.snapfs("save", store, "c", ctx.path("c.img"), "--usage", usage, "--parent", "p")
    svg = ctx.path("c.svg")
    c.snapfs("map", store, "c", "-o", svg)
    out = c.snapfs("map", store, "c").stdout
    c.check_eq(out, svg.read_text(), "map to standard output and to -o FILE")
    root = parse_svg(svg)
    c.check(root.tag == SVG_NS + "svg", f"root element is {root.tag}")
    text = " ".join("".join(t.itertext()) for t in root.iter(SVG_NS + "text"))
    for word in ("anonymous", "stored", "zero", "not committed", "shared with the parent",
                 "logical 1.00 MiB"):
        c.check(word in text, f"the picture's text lacks {word!r}: {text!r}")
    rows = render(ctx, svg, "c")
    line = rows[STRIP_MID][STRIP_X0:STRIP_X1]
    width = len(line)
    for rgb, share, what in ((STORED, 0.5, "stored"), (SHARED, 0.25, "shared"),
                             (ZERO, 0.25, "zero")):
        got = sum(near(px, rgb) for px in line) / width
        c.log(f"{what}: #{rgb:06x} covers {got:.3f} of the strip (want {share})")
        c.check(abs(got - share) <= TOLERANCE,
                f"{what} (#{rgb:06x}) covers {got:.3f} of the strip, not {share}")
    # Left to right: shared, stored, zero.
    c.check(near(line[width // 8], SHARED) and near(line[width // 2], STORED)
            and near(line[width * 7 // 8], ZERO), "the shades are in page order")
    # The band below the strip marks the shared quarter, and only it.
    band = rows[STRIP_MID + 33][STRIP_X0:STRIP_X1]
    dark = sum(max(px) < 80 for px in band) / width
    c.check(abs(dark - 0.25) <= TOLERANCE, f"shared band covers {dark:.3f}, not 0.25")
    # --against p: the changed half is marked above the strip.
    svg2 = ctx.path("against.svg")
    c.snapfs("map", store, "c", "--against", "p", "-o", svg2)
    rows = render(ctx, svg2, "against")
    band = rows[STRIP_MID - 36][STRIP_X0:STRIP_X1]
    red = sum(near(px, 0xE15759) for px in band) / width
    c.check(abs(red - 0.75) <= TOLERANCE, f"changed band covers {red:.3f}, not 0.75 "
            "(pages q..3q stored anew, 3q..4q zero where p has data)")
    # --parent: the same picture as --against its parent; for a snapshot
    # without one, the same as no comparison.
    c.check_eq(c.snapfs("map", store, "c", "--parent").stdout, svg2.read_text(),
               "map c --parent against map c --against p")
    c.check_eq(c.snapfs("map", store, "p", "--parent").stdout,
               c.snapfs("map", store, "p").stdout, "map p --parent (p has no parent)")
    c.expect_error(["map", store, "c", "--parent", "--against", "p"], c.EXIT_USAGE,
                   "--parent", "--against")


def case_errors(ctx):
    store = ctx.store()
    c.expect_error(["map", store, "nosuch"], c.EXIT_FAILED, "nosuch")
    c.expect_error(["map", store], c.EXIT_USAGE, "missing NAME")
    c.expect_error(["map", store, "a", "--bogus"], c.EXIT_USAGE, "--bogus")
    img = ctx.path("one.img")
    img.write_bytes(os.urandom(PAGE))
    c.snapfs("save", store, "a", img)
    c.expect_error(["map", store, "a", "--against", "nosuch"], c.EXIT_FAILED, "nosuch")
    bad = ctx.path("no-dir", "a.svg")
    c.expect_error(["map", store, "a", "-o", bad], c.EXIT_FAILED, "output", str(bad),
                   "no such file")
    c.check(not bad.exists(), "no output after a failure")


def case_process_labels_escaped(ctx):
    """A python process that maps a file named a<b&c"d>'e.bin: captured
    with pid:N, its 128 TiB address space drawn with its used parts
    visible, the label escaped."""
    odd = ctx.path('a<b&c"d>\'e.bin')
    odd.write_bytes(os.urandom(64 * PAGE))
    prog = ("import mmap,sys,time\nf=open(sys.argv[1],'rb')\n"
            "m=mmap.mmap(f.fileno(),0,prot=mmap.PROT_READ)\nm[0]\n"
            "b=bytearray(8<<20)\nb[::4096]=b'x'*(len(b)//4096)\n"
            "print('ready',flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", prog, str(odd)], stdout=subprocess.PIPE,
                            text=True)
    try:
        c.check(proc.stdout.readline().strip() == "ready", "the python process started")
        store = ctx.store()
        c.snapfs("save", store, "py", f"pid:{proc.pid}")
    finally:
        proc.kill()
        proc.wait()
    svg = ctx.path("py.svg")
    c.snapfs("map", store, "py", "-o", svg)
    raw = svg.read_text()
    c.check("a&lt;b&amp;c&quot;d&gt;&apos;e.bin" in raw, "the odd label is escaped in the SVG")
    c.check('a<b&c"d' not in raw, "no label text is left unescaped")
    root = parse_svg(svg)
    labels = ["".join(t.itertext()) for g in root.iter(SVG_NS + "g")
              if g.get("class") == "labels" for t in g.iter(SVG_NS + "text")]
    c.check('a<b&c"d>\'e.bin' in labels, f"the odd label reads back as written: {labels}")
    c.check(len(labels) >= 3, f"several labels are shown: {labels}")
    check_labels_apart(root)
    folds = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "fold"]
    c.check(folds, "a process address space has folded gaps")
    check_not_blank(render(ctx, svg, "py"), "process map")


def check_labels_apart(root):
    """No two labels of one lane overlap, at the 0.6 em advance of an
    11 px monospace font (DejaVu Sans Mono's) and within the picture."""
    lanes = {}
    for g in root.iter(SVG_NS + "g"):
        if g.get("class") == "labels":
            for t in g.iter(SVG_NS + "text"):
                lanes.setdefault(t.get("y"), []).append((float(t.get("x")), "".join(t.itertext())))
    width = float(root.get("width"))
    for y, texts in lanes.items():
        texts.sort()
        for (x, a), (nx, b) in zip(texts, texts[1:] + [(width, "")]):
            c.check(x + len(a) * 6.6 <= nx + 0.01, f"labels {a!r} and {b!r} overlap at y={y}")


def check_not_blank(rows, what):
    line = rows[STRIP_MID][STRIP_X0:STRIP_X1]
    coloured = sum(1 for px in line if max(px) - min(px) > 30)
    c.log(f"{what}: {coloured} of {len(line)} strip pixels coloured")
    c.check(coloured > len(line) // 4, f"{what}: the strip is mostly blank ({coloured} px)")


def case_sparse_64g(ctx):
    img = ctx.path("sparse.img")
    with open(img, "wb") as f:
        f.write(os.urandom(16 * PAGE))
        f.seek(64 * GIB)
        f.write(os.urandom(16 * PAGE))
    store = ctx.store()
    c.snapfs("save", store, "s", img)
    svg = ctx.path("s.svg")
    t0 = time.monotonic()
    c.snapfs("map", store, "s", "-o", svg)
    c.log(f"map of a 64 GiB sparse file: {time.monotonic() - t0:.2f} s")
    root = parse_svg(svg)
    folds = [g for g in root.iter(SVG_NS + "g") if g.get("class") == "fold"]
    c.check_eq(len(folds), 1, "one folded gap between the two data ranges")
    check_not_blank(render(ctx, svg, "s"), "64 GiB map")


def case_many_ranges_bounded(ctx):
    """32768 pages alternating data and holes (a raw file without a usage
    set: 16384 one-page segments, a tenth of a pixel each): the rects are
    merged per pixel, so the SVG stays small."""
    img = ctx.path("alt.img")
    page = os.urandom(PAGE)
    write_pages(img, [page if i % 2 == 0 else None for i in range(32768)])
    store = ctx.store()
    c.snapfs("save", store, "alt", img)
    svg = ctx.path("alt.svg")
    c.snapfs("map", store, "alt", "-o", svg)
    rects = sum(1 for _ in parse_svg(svg).iter(SVG_NS + "rect"))
    c.log(f"{rects} rects, {svg.stat().st_size} bytes")
    c.check(rects < 3000, f"{rects} rects for 16384 ranges: not merged per pixel")
    c.check(svg.stat().st_size < 500_000, "the SVG stays small")


if __name__ == "__main__":
    c.main()
