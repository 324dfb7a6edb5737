#!/usr/bin/env python3
"""Fails when the modules of a Sluice crate import each other in a cycle.

A module is a source file (`src/log/append.rs` is `log::append`). Module A depends on module B when A's code
names a path into B: `use crate::b::...`, `crate::b::f(...)`, `super::b::...`, `self::b::...`, or a `use` of a
child module by its bare name. A path is charged to the longest module it names, so `crate::groups::table::X`
is an edge to `groups::table`, not to `groups`. Comments and string literals are skipped; `#[cfg(test)]`
modules count too, since a cycle through a test is still a cycle.

A `mod.rs` that only declares and re-exports its children never closes a cycle; one that defines items its
children use does, which is why the shared items of a directory live in a sibling file of its own.

Usage: scripts/check-module-cycles.py [CRATE_SRC_DIR ...]   (default: engine/src net/src replication/src src tools/lossyfs/src)
Exit status 1 and every cycle printed when one exists. Standard library only.
"""

import re
import sys
from pathlib import Path

DEFAULT_CRATES = ["engine/src", "net/src", "replication/src", "src", "tools/lossyfs/src"]
CRATE_ROOTS = ["lib.rs", "main.rs"]


def strip_comments_and_strings(text):
    """The source with comments, string literals and char literals blanked out (newlines kept)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    if text[i] == "\n":
                        out.append("\n")
                    i += 1
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and not re.match(r"\w", text[i - 1:i] or " "):
            hashes = re.match(r"r(#*)\"", text[i:]).group(1)
            end = text.find('"' + hashes, i + 2 + len(hashes))
            end = n if end < 0 else end + 1 + len(hashes)
            out.append('""' + "\n" * text.count("\n", i, end))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append('""' + "\n" * text.count("\n", i, j))
            i = j + 1
        elif c == "'":
            # A char literal ('a', '\n', '\u{1F600}') or a lifetime ('a): only literals are skipped.
            m = re.match(r"'(\\u\{[0-9a-fA-F]+\}|\\.|[^\\'])'", text[i:])
            if m:
                out.append("' '")
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def module_path(src, file):
    """`log::append` for src/log/append.rs, `log` for src/log/mod.rs or src/log.rs, `` for the crate root."""
    rel = file.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "mod":
        parts.pop()
    if len(parts) == 1 and parts[0] + ".rs" in CRATE_ROOTS:
        return ()
    return tuple(parts)


def expand_use(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e'] (aliases and globs dropped)."""
    tree = re.sub(r"\s+", "", tree)
    depth, start = 0, None
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                start = i
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                prefix, inner, rest = tree[:start], tree[start + 1:i], tree[i + 1:]
                items, level, item_start = [], 0, 0
                for j, d in enumerate(inner + ","):
                    if d == "{":
                        level += 1
                    elif d == "}":
                        level -= 1
                    elif d == "," and level == 0:
                        if inner[item_start:j]:
                            items.append(inner[item_start:j])
                        item_start = j + 1
                paths = []
                for item in items:
                    for path in expand_use(item):
                        paths.append(prefix + path + rest if path != "self" else prefix.rstrip(":") + rest)
                return paths
    return [re.sub(r"as\w+$", "", tree).replace("::*", "")]


def resolve(path, here, modules, children, reexports, depth=0):
    """The module a path names, or None (an external crate or std). The longest known module prefix is the
    answer, unless the next segment is a name that module re-exports (`pub use`): then the re-exported path is
    followed, so `crate::Offset` is charged to `types`, where `Offset` is defined, not to the crate root."""
    segments = [s for s in path.split("::") if s]
    if not segments:
        return None
    if segments[0] == "crate":
        base, rest = (), segments[1:]
    elif segments[0] in ("self", "super"):
        base = here
        while segments and segments[0] in ("self", "super"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
        rest = segments
    elif segments[0] in children.get(here, ()):
        base, rest = here, segments
    else:
        return None
    best, used = base, 0
    for length in range(1, len(rest) + 1):
        candidate = base + tuple(rest[:length])
        if candidate in modules:
            best, used = candidate, length
        else:
            break
    if used < len(rest) and depth < 8:
        target = reexports.get(best, {}).get(rest[used])
        if target is not None:
            followed = resolve("crate::" + "::".join(target + tuple(rest[used + 1:])), (), modules, children,
                               reexports, depth + 1)
            if followed is not None:
                return followed
    return best


def absolute(path, here, modules, children):
    """A `use` path made absolute (a tuple of segments from the crate root), or None for external paths."""
    segments = [s for s in path.split("::") if s]
    if not segments:
        return None
    if segments[0] == "crate":
        return tuple(segments[1:])
    if segments[0] in ("self", "super"):
        base = here
        while segments and segments[0] in ("self", "super"):
            if segments[0] == "super":
                base = base[:-1]
            segments = segments[1:]
        return base + tuple(segments)
    if segments[0] in children.get(here, ()):
        return here + tuple(segments)
    return None


def inline_modules(code):
    """(start, end, name) of every inline `mod name { ... }` block."""
    spans = []
    for m in re.finditer(r"\bmod\s+(\w+)\s*\{", code):
        depth, i = 0, m.end() - 1
        while i < len(code):
            if code[i] == "{":
                depth += 1
            elif code[i] == "}":
                depth -= 1
                if depth == 0:
                    break
            i += 1
        spans.append((m.start(), i, m.group(1)))
    return spans


def dependencies(src):
    files = sorted(src.rglob("*.rs"))
    # Binaries under src/bin are crates of their own.
    files = [f for f in files if "bin" not in f.relative_to(src).parts[:-1]]
    modules = {module_path(src, f): f for f in files}
    children = {}
    for module in modules:
        if module:
            children.setdefault(module[:-1], set()).add(module[-1])
    path_pattern = re.compile(r"\b(?:crate|super|self)(?:::\w+)+")
    use_pattern = re.compile(r"\b(pub(?:\([\w\s:]+\))?\s+)?use\s+([^;]+);")
    parsed = {}
    reexports = {module: {} for module in modules}
    for module, file in modules.items():
        code = strip_comments_and_strings(file.read_text())
        parsed[module] = code
        for m in use_pattern.finditer(code):
            if not m.group(1):
                continue
            for path in expand_use(m.group(2)):
                alias = re.search(r"as(\w+)$", re.sub(r"\s+", "", m.group(2))) if "{" not in m.group(2) else None
                target = absolute(path, module, modules, children)
                if target:
                    reexports[module][alias.group(1) if alias else target[-1]] = target
    edges = {module: {} for module in modules}
    for module, file in modules.items():
        code = parsed[module]
        spans = inline_modules(code)
        found = []
        for m in use_pattern.finditer(code):
            found.extend((path, m.start()) for path in expand_use(m.group(2)))
        without_uses = use_pattern.sub(lambda m: " " * len(m.group(0)), code)
        for m in path_pattern.finditer(without_uses):
            found.append((m.group(0), m.start()))
        for path, position in found:
            # Inside an inline module (`mod tests { use super::*; }`), paths are relative to it.
            inner = tuple(name for start, end, name in spans if start < position < end)
            target = resolve(path, module + inner, modules, children, reexports)
            if target is not None and target != module:
                line = code.count("\n", 0, position) + 1
                edges[module].setdefault(target, (file, line, path))
    return edges


def cycles(edges):
    """One shortest cycle through each strongly connected component of more than one module (Tarjan)."""
    index, low, on_stack, stack, components = {}, {}, set(), [], []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(component)

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    found = []
    for component in components:
        members = set(component)
        start = min(component)
        # Breadth-first search for the shortest way back to `start` inside the component.
        previous, frontier, cycle = {start: None}, [start], None
        while frontier and cycle is None:
            nxt = []
            for v in frontier:
                for w in sorted(edges[v]):
                    if w == start:
                        cycle = [v]
                        break
                    if w in members and w not in previous:
                        previous[w] = v
                        nxt.append(w)
                if cycle:
                    break
            frontier = nxt
        while previous[cycle[-1]] is not None:
            cycle.append(previous[cycle[-1]])
        cycle.reverse()
        found.append(cycle)
    return found


def name(crate, module):
    return "::".join((crate,) + module) if module else crate


def main():
    root = Path(__file__).resolve().parent.parent
    crates = sys.argv[1:] or DEFAULT_CRATES
    failed = False
    for crate_dir in crates:
        src = root / crate_dir
        crate = src.parent.name if src.name == "src" and src.parent != root else "sluice"
        edges = dependencies(src)
        count = sum(len(targets) for targets in edges.values())
        found = cycles(edges)
        if not found:
            print(f"{crate}: {len(edges)} modules, {count} edges, no cycle")
            continue
        failed = True
        for cycle in found:
            print(f"{crate}: module cycle: " + " -> ".join(name(crate, m) for m in cycle + [cycle[0]]))
            for a, b in zip(cycle, cycle[1:] + [cycle[0]]):
                file, line, path = edges[a][b]
                print(f"    {file.relative_to(root)}:{line}: {path}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
