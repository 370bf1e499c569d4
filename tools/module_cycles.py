#!/usr/bin/env python3
"""Print the dependency graph between switchyard's top-level modules (src/<module>.rs or
src/<module>/) and fail if it has a cycle: `python3 tools/module_cycles.py`. Run by CI.

A module depends on another when the code of any of its files names `crate::<other>` (in a
`use` or a path; comments do not count). `#[cfg(test)]` blocks count too: tests should not need a cycle either."""
import os, re, sys

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src")
ROOTS = {"lib.rs", "main.rs"}

def modules():
    out = {}
    for entry in sorted(os.listdir(SRC)):
        path = os.path.join(SRC, entry)
        if entry in ROOTS:
            continue
        if entry.endswith(".rs"):
            out.setdefault(entry[:-3], []).append(path)
        elif os.path.isdir(path):
            for d, _, files in os.walk(path):
                out.setdefault(entry, []).extend(os.path.join(d, f) for f in files if f.endswith(".rs"))
    return out

def graph(mods):
    edges = {m: set() for m in mods}
    for m, files in mods.items():
        for f in files:
            # Code only: a doc comment may name any module.
            text = "\n".join(l.split("//")[0] for l in open(f, encoding="utf-8"))
            for other in re.findall(r"crate::([a-z_][a-z0-9_]*)", text):
                if other != m and other in mods:
                    edges[m].add(other)
            # `use crate::{a, b::c}`
            for group in re.findall(r"crate::\{([^}]*)\}", text):
                for other in re.findall(r"(?:^|,)\s*([a-z_][a-z0-9_]*)", group):
                    if other != m and other in mods:
                        edges[m].add(other)
    return edges

def cycles(edges):
    found, state, stack = [], {}, []
    def visit(m):
        state[m] = 1
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == 1:
                found.append(stack[stack.index(n):] + [n])
            elif n not in state:
                visit(n)
        stack.pop()
        state[m] = 2
    for m in sorted(edges):
        if m not in state:
            visit(m)
    return found

def main():
    edges = graph(modules())
    for m in sorted(edges):
        print(f"{m:14} -> {', '.join(sorted(edges[m])) or '-'}")
    found = cycles(edges)
    for c in found:
        print("cycle: " + " -> ".join(c), file=sys.stderr)
    return 1 if found else 0

if __name__ == "__main__":
    sys.exit(main())
