#!/usr/bin/env python3
"""No import circle between the modules of any crate: builds each crate's graph of
`crate::`/`super::` paths between module files (a module and its own submodules excepted)
and fails on a cycle. Run from the workspace root."""
import sys
import os,re
from collections import defaultdict
def strip(text):
    text="\n".join(l for l in text.split("\n") if not l.lstrip().startswith("//"))
    i=text.find('#[cfg(test)]\nmod tests')
    return text[:i] if i>=0 else text
found=0
for crate in sorted(os.listdir('.')):
    src=os.path.join(crate,'src')
    if not (crate.startswith('firehose') and os.path.isdir(src)): continue
    # module path for each file
    mods={}
    for root,_,files in os.walk(src):
        for f in files:
            if not f.endswith('.rs'): continue
            p=os.path.join(root,f)
            parts=os.path.relpath(p,src)[:-3].split('/')
            if parts[-1] in ('mod','lib','main'): parts=parts[:-1]
            if parts: mods['::'.join(parts)]=p
    g=defaultdict(set)
    for m,p in mods.items():
        text=strip(open(p).read())
        parent=m.rsplit('::',1)[0] if '::' in m else ''
        for r in re.finditer(r'crate::([a-z_0-9]+(?:::[a-z_0-9]+)*)',text):
            path=r.group(1).split('::')
            # longest prefix that is a module
            tgt=None
            for k in range(len(path),0,-1):
                cand='::'.join(path[:k])
                if cand in mods: tgt=cand; break
            if tgt and tgt!=m and not m.startswith(tgt+'::') and not tgt.startswith(m+'::'): g[m].add(tgt)
        for r in re.finditer(r'super::([a-z_0-9]+)',text):
            cand=(parent+'::' if parent else '')+r.group(1)
            if cand in mods and cand!=m: g[m].add(cand)
    seen=set();stack=[];on=set();cycles=set()
    def dfs(u):
        seen.add(u);stack.append(u);on.add(u)
        for v in g[u]:
            if v in on:
                c=stack[stack.index(v):];k=min(range(len(c)),key=lambda i:c[i]);cycles.add(tuple(c[k:]+c[:k]))
            elif v not in seen: dfs(v)
        stack.pop();on.discard(u)
    for u in list(g):
        if u not in seen: dfs(u)
    for c in sorted(cycles,key=len)[:15]: print(crate,' -> '.join(c+(c[0],)))
    found+=len(cycles)
if found:
    print(f'{found} import circle(s)')
    sys.exit(1)
print('no import circle')
