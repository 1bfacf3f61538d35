#!/usr/bin/env python3
"""Writes what Python's `str.lower()` does to every code point that it changes, one per line:
the code point, then those it lowers to, in hex. gptme searches with `.lower()`; convmeta's
`py_lower` is tested against this file (tests/fixtures/python-lower.txt, made with Python
3.11.7, the conformance pack's). Usage: python3 tools/python-lower.py > tests/fixtures/python-lower.txt"""
import sys
import unicodedata

print(f"# Python {sys.version.split()[0]}, Unicode {unicodedata.unidata_version}: code point, then its lowering")
for cp in range(0x110000):
    c = chr(cp)
    lowered = c.lower()
    if lowered != c:
        print(f"{cp:X} " + " ".join(f"{ord(l):X}" for l in lowered))
