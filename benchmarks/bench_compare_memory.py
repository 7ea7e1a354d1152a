"""Peak memory of ``compare`` on norse + lava-float: all samples at once vs in chunks (not a test).

A seeded random 784-1024-10 LIF graph (``bench_fixed.random_graph``) on seeded Poisson input.
Each variant runs in its own Python process; its peak RSS (``ru_maxrss``) is where the records
live (Lava's own child processes are not counted). Both variants must give the same report
figures; the ratio is one-run peak / chunked peak, measured in the same invocation.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

CHILD = r"""
import json, resource, sys
import numpy as np
sys.path.insert(0, {repo!r})
sys.path.insert(0, {bench!r})
from bench_fixed import random_graph
from snndeploy.harness.compare import compare_runs

g = random_graph(784, {hidden}, 10)
x = (np.random.default_rng(0).random(({samples}, {steps}, 784)) < 0.05).astype(np.float64)
labels = np.arange({samples}) % 10
rep, _ = compare_runs(g, "g.nir", ["norse", "lava-float"], x, labels, 1e-4, "bench", show_progress=False,
                      chunk={chunk})
pair = rep["pairs"][0]
print(json.dumps({{"peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "chunks": rep["chunks"]["count"], "accuracy": rep["backends"]["lava-float"]["accuracy"],
                  "nodes": {{n: [v["mismatches"], v["entries"]] for n, v in pair["nodes"].items()}},
                  "prediction_agreement": pair["prediction_agreement"]}}))
"""


def run(repo: Path, hidden: int, samples: int, steps: int, chunk) -> dict:
    code = CHILD.format(
        repo=str(repo), bench=str(repo / "benchmarks"), hidden=hidden, samples=samples, steps=steps, chunk=chunk
    )
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    repo = Path(__file__).resolve().parents[1]
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--hidden", type=int, default=1024)
    ap.add_argument("--samples", type=int, default=400)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--chunk", type=int, default=50)
    ap.add_argument("--out", default=str(repo / "benchmarks/results/compare_memory.json"))
    a = ap.parse_args()
    whole = run(repo, a.hidden, a.samples, a.steps, None)
    chunked = run(repo, a.hidden, a.samples, a.steps, a.chunk)
    same = {k: whole[k] for k in ("accuracy", "nodes", "prediction_agreement")} == {
        k: chunked[k] for k in ("accuracy", "nodes", "prediction_agreement")
    }
    res = {
        "graph": f"random 784-{a.hidden}-10 LIF (bench_fixed.random_graph)",
        "samples": a.samples,
        "steps": a.steps,
        "chunk": a.chunk,
        "one_run_peak_rss_mib": whole["peak_rss_mib"],
        "chunked_peak_rss_mib": chunked["peak_rss_mib"],
        "ratio": whole["peak_rss_mib"] / chunked["peak_rss_mib"],
        "chunks": chunked["chunks"],
        "same_figures": same,
        "how": "peak resident memory (ru_maxrss) of the Python process holding the records, norse + lava-float "
        "on the same seeded random input; the input itself is in both",
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
