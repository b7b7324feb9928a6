#!/usr/bin/env python3
"""Module dependency cycles of a crate's source tree, at file granularity.

A file's module path comes from its place in src/ (a/b.rs and a/b/mod.rs are
crate::a::b). Every `crate::…`, `super::…` and `self::…` path in the file is an
edge to the deepest module that path names. A cycle between a module file and
its own descendants only (a type defined in mod.rs with impls in children) is one
room and is not reported; any other strongly connected set is."""
import os, re, sys
from collections import defaultdict

def modpath(root, f):
    rel = os.path.relpath(f, root)[:-3].split(os.sep)
    if rel[-1] in ('mod', 'lib', 'main'):
        rel = rel[:-1]
    return tuple(rel)

def main(root):
    files = []
    for d, _, fs in os.walk(root):
        for f in fs:
            if f.endswith('.rs'):
                files.append(os.path.join(d, f))
    mods = {modpath(root, f): f for f in files}
    deps = defaultdict(set)
    pat = re.compile(r'\b(crate|super|self)((?:::[A-Za-z_][A-Za-z0-9_]*)+|::\{)')
    for m, f in mods.items():
        text = open(f).read()
        # strip comments and test modules
        text = re.sub(r'//[^\n]*', '', text)
        cut = re.search(r'#\[cfg\(test\)\]\s*mod tests\s*\{', text)
        if cut:
            text = text[:cut.start()]
        # expand `use crate::{a::b, c}` groups roughly
        for g in re.finditer(r'\b(crate|super)::\{([^;]*?)\};', text, re.S):
            base = g.group(1)
            for item in re.split(r',', g.group(2)):
                item = item.strip().split(' as ')[0]
                if item:
                    text += f"\n{base}::{item.replace('{','').replace('}','').strip()}"
        is_dir = os.path.basename(f) in ('mod.rs', 'lib.rs', 'main.rs')
        for x in pat.finditer(text):
            kind, tail = x.group(1), x.group(2)
            if tail == '::{':
                continue
            segs = [s for s in tail.split('::') if s]
            if kind == 'crate':
                base = ()
            elif kind == 'self':
                base = m if is_dir else m
            else:  # super
                base = m[:-1] if True else m
                while segs and segs[0] == 'super':
                    base = base[:-1]; segs = segs[1:]
            # file-level `super` from a non-dir file: parent module
            cand = base
            best = base
            for s in segs:
                cand = cand + (s,)
                if cand in mods:
                    best = cand
                else:
                    break
            if best != m and best in mods:
                # a reference to an ancestor module's items is a dep on that module
                deps[m].add(best)
    # tarjan
    index = {}; low = {}; st = []; on = set(); out = []; c = [0]
    sys.setrecursionlimit(10000)
    def sc(v):
        index[v] = low[v] = c[0]; c[0] += 1; st.append(v); on.add(v)
        for w in deps[v]:
            if w not in index:
                sc(w); low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = st.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1:
                out.append(comp)
    for v in list(mods):
        if v not in index:
            sc(v)
    bad = []
    for comp in out:
        root_ = min(comp, key=len)
        if all(x[:len(root_)] == root_ for x in comp):
            continue
        bad.append(comp)
    for comp in bad:
        print('cycle:', ' <-> '.join('::'.join(x) or 'crate' for x in sorted(comp)))
        for a in comp:
            for b in deps[a]:
                if b in comp:
                    print('   ', '::'.join(a) or 'crate', '->', '::'.join(b) or 'crate')
    return 1 if bad else 0

if __name__ == '__main__':
    sys.exit(main(sys.argv[1]))
