#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turn an SQL file into a C source file that defines one string constant.

usage: embed.py INPUT.sql OUTPUT.c SYMBOL
"""
import sys

src, dst, symbol = sys.argv[1:4]
with open(src, encoding="utf-8") as f:
    text = f.read()
lines = ['/* generated from %s by schema/embed.py: do not edit */' % src.split('/')[-1],
         'const char %s[] =' % symbol]
for line in text.splitlines():
    esc = line.replace('\\', '\\\\').replace('"', '\\"')
    lines.append('    "%s\\n"' % esc)
lines[-1] += ';'
with open(dst, 'w', encoding='utf-8') as f:
    f.write('\n'.join(lines) + '\n')
