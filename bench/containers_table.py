#!/usr/bin/env python3
"""Prints bench/containers.sh's figures as one markdown table: medians (ms) per engine, idle
and loaded, and each other engine's median over berth's."""
import json
import os
import sys

out = sys.argv[1] if len(sys.argv) > 1 else "bench/out"
items = [("run", "run --rm --network none busybox true"),
         ("cycle", "run -d + stop -t 0 + rm (via sh -c)"),
         ("exec", "exec ctr true"),
         ("ps100", "ps -a, 100 containers")]

def medians(path):
    with open(path) as f:
        res = json.load(f)["results"]
    m = {}
    for r in res:
        cmd = r["command"]
        body = cmd.split("'")[1] if cmd.startswith("sh -c") else cmd
        name = os.path.basename(body.split()[0]) if not body.startswith("id=") else \
            os.path.basename(body.split("$(")[1].split()[0])
        m[name] = r["median"] * 1000
    return m

print("| item | mode | berth | docker | podman | docker / berth | podman / berth |")
print("|---|---|---|---|---|---|---|")
for key, label in items:
    for mode in ("idle", "loaded"):
        p = os.path.join(out, f"containers-{mode}-{key}.json")
        if not os.path.exists(p):
            continue
        m = medians(p)
        b = m.get("berth")
        cells = [f"{m[e]:.1f} ms" if e in m else "–" for e in ("berth", "docker", "podman")]
        ratios = [f"{m[e] / b:.1f}×" if e in m and b else "–" for e in ("docker", "podman")]
        print(f"| {label} | {mode} | " + " | ".join(cells + ratios) + " |")
