#!/usr/bin/env bash
# neurobench_counts.sh -- regenerate tests/fixtures/neurobench/ (NeuroBench 2.3.0's own operation counts
# for two small snnTorch networks, and the same networks as NIR), which tests/test_neurobench_counts.py
# compares with snndeploy.energy.counts.
#
# NOT run by CI. CI and the test suite use the committed files under tests/fixtures/neurobench/; run
# this by hand only when a fixture or the NeuroBench/snnTorch version has to change, then review and
# commit the diff (tests/fixtures/neurobench/**) and run the test:
#     .venv/bin/python -m pytest tests/test_neurobench_counts.py -q
#
# Usage:  scripts/neurobench_counts.sh [fixture ...]      fixtures: mlp cnn mlp_graded (default: all)
#
# What it does:
#   1. creates (once) build/neurobench-venv (build/ is gitignored) from pyenv's Python 3.11.7 and installs
#        torch==2.13.0+cpu (the local CPU wheel; falls back to torch==2.14.1),
#        neurobench==2.3.0 with --no-deps, then snntorch==1.0.0 nir==1.0.8 nirtorch==2.6 tqdm.
#      Why --no-deps: neurobench 2.3.0 requires torchaudio, and every torchaudio release pins one exact
#      torch, none of them the CPU torch above; torchaudio, tonic, numba and llvmlite are used only by
#      NeuroBench's datasets and audio preprocessors, which its metric code path never imports (the
#      generator records sys.modules to show it). `pip check` lists exactly those four as missing.
#   2. runs scripts/neurobench/make_fixtures.py in that venv, which builds each snnTorch network (seeded
#      weights, first layer 25% pruned, Leaky reset_mechanism="zero", reset_delay=False), exports it with
#      snnTorch's export_to_nir (dt = 1e-4), runs NeuroBench's Benchmark with SynapticOperations,
#      ActivationSparsity, MembraneUpdates, NeuronOperations, ActivationSparsityByLayer once per sample
#      and once on the whole batch, and writes
#        tests/fixtures/neurobench/<net>.nir         (mlp.nir, cnn.nir; mlp_graded uses mlp.nir)
#        tests/fixtures/neurobench/<fixture>.npz     input + spikes__<node> (batch, time, ...)
#        tests/fixtures/neurobench/<fixture>.json    NeuroBench's figures, versions, definitions (file:line)
#
# Deterministic: fixed seeds, CPU torch, torch.use_deterministic_algorithms(True), PYTHONHASHSEED=0;
# re-running rewrites identical bytes (checked).
#
# Time (2 CPU cores, measured): first run 30-95 s (venv + installs, torch from the local wheel), later
# runs ~8 s. Disk: ~1 GB for the venv. Fixtures: ~196 KB in all (the test asserts < 200 KB).
#
# Environment overrides:
#   NB_PYTHON         interpreter for the venv   (default ~/.pyenv/versions/3.11.7/bin/python)
#   NB_TORCH          torch requirement          (default "torch==2.13.0+cpu", falls back to "torch==2.14.1")
#   NB_REINSTALL=1    recreate the venv
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

NB_PYTHON="${NB_PYTHON:-$HOME/.pyenv/versions/3.11.7/bin/python}"
NB_TORCH="${NB_TORCH:-torch==2.13.0+cpu}"
VENV="$ROOT/build/neurobench-venv"
REQS="neurobench==2.3.0 snntorch==1.0.0 nir==1.0.8 nirtorch==2.6 tqdm>=4.63.3,<5"
export PYTHONHASHSEED=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

make_venv() {
  local stamp="$VENV/.neurobench-requirements"
  if [ "${NB_REINSTALL:-0}" = 1 ]; then rm -rf "$VENV"; fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$REQS $NB_TORCH" ]; then return 0; fi
  echo "== creating $VENV"
  rm -rf "$VENV"
  "$NB_PYTHON" -m venv "$VENV"
  local log="$VENV/.pip.log"
  pipi() { "$VENV/bin/python" -m pip install -q "$@" >>"$log" 2>&1 || { grep -v "^WARNING: Location" "$log" | tail -20; return 1; }; }
  if ! pipi "$NB_TORCH"; then
    echo "   $NB_TORCH not installable, falling back to torch==2.14.1"
    pipi "torch==2.14.1"
  fi
  local tv; tv="$("$VENV/bin/python" -W ignore -c 'import torch; print(torch.__version__)' 2>/dev/null)"
  pipi --no-deps "neurobench==2.3.0"
  pipi "snntorch==1.0.0" "nir==1.0.8" "nirtorch==2.6" "tqdm>=4.63.3,<5" "torch==$tv"
  "$VENV/bin/python" -m pip check | sed 's/^/   pip check: /' || true
  "$VENV/bin/python" -m pip freeze > "$VENV/.freeze.txt"
  echo "$REQS $NB_TORCH" > "$stamp"
}

start=$SECONDS
make_venv
echo "== generating tests/fixtures/neurobench ($*)"
mkdir -p tests/fixtures/neurobench
"$VENV/bin/python" scripts/neurobench/make_fixtures.py "$@"
du -cb tests/fixtures/neurobench/* | tail -1 | sed 's/\ttotal$/ bytes in tests\/fixtures\/neurobench/; s/^/== /'
echo "== done in $((SECONDS - start)) s"
