#!/usr/bin/env python3
"""The layout limits of issue 16, checked on every run of scripts/test.

- no function longer than 80 lines in the controller, the operator and the cloud adapter;
- no file longer than 500 lines in the product crates (api, cloud, controller, operator).

A function's length runs from its `fn` line to its closing brace (doc comments and
attributes above it are not counted). Test modules inside a source file count like the rest.
Prints one figure line; exits 1, naming every offender, when a limit is broken.
"""

import os
import re
import sys

FUNCTION_LIMIT = 80
FILE_LIMIT = 500
FUNCTION_CRATES = ["crates/controller", "crates/operator", "crates/cloud"]
FILE_CRATES = ["crates/api", "crates/cloud", "crates/controller", "crates/operator"]

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")


def code_of(line):
    """The line without string and char literals and `//` comments (enough to count braces)."""
    line = re.sub(r'"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "''", line)
    cut = line.find("//")
    return line if cut < 0 else line[:cut]


def functions(path):
    """(length, name, first line) of every function with a body in the file."""
    lines = open(path, encoding="utf-8").read().split("\n")
    found = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            code = code_of(lines[j])
            if not opened and ";" in code and "{" not in code:
                break  # a declaration without a body (trait method)
            depth += code.count("{") - code.count("}")
            opened = opened or "{" in code
            if opened and depth <= 0:
                found.append((j - i + 1, m.group(6), i + 1))
                break
    return found


def rust_files(root, crate):
    src = os.path.join(root, crate, "src")
    for dirpath, _, names in os.walk(src):
        for name in sorted(names):
            if name.endswith(".rs"):
                yield os.path.join(dirpath, name)


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else "."
    longest_fn, longest_file, broken = (0, ""), (0, ""), []
    for crate in FUNCTION_CRATES:
        for path in rust_files(root, crate):
            for length, name, line in functions(path):
                where = f"{os.path.relpath(path, root)}:{line} {name}"
                longest_fn = max(longest_fn, (length, where))
                if length > FUNCTION_LIMIT:
                    broken.append(f"function {where}: {length} lines (limit {FUNCTION_LIMIT})")
    for crate in FILE_CRATES:
        for path in rust_files(root, crate):
            length = sum(1 for _ in open(path, encoding="utf-8"))
            where = os.path.relpath(path, root)
            longest_file = max(longest_file, (length, where))
            if length > FILE_LIMIT:
                broken.append(f"file {where}: {length} lines (limit {FILE_LIMIT})")
    print(
        f"layout: longest function {longest_fn[0]} lines ({longest_fn[1]}; limit {FUNCTION_LIMIT}), "
        f"longest product file {longest_file[0]} lines ({longest_file[1]}; limit {FILE_LIMIT})"
    )
    for b in broken:
        print(f"  over the limit: {b}")
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
