#!/usr/bin/env bash
# make_peer_fixtures.sh -- regenerate the peer-framework NIR fixtures in tests/fixtures/peers/.
#
# NOT run by CI. CI and the test suite use the committed files under tests/fixtures/peers/;
# run this by hand only when a fixture or a peer version has to change, then review and
# commit the diff (tests/fixtures/peers/**).
#
# Usage:  scripts/make_peer_fixtures.sh [framework ...]
#         frameworks: snntorch sinabs rockpool spikingjelly spyx   (default: all)
#
# For each framework it creates (once) a venv build/peer-venvs/<framework> (build/ is
# gitignored) from pyenv's Python 3.11.7, installs the pinned peer version there, runs
# scripts/peer_fixtures/<framework>_fixtures.py, which calls the peer's REAL NIR exporter
# and simulator, and writes
#     tests/fixtures/peers/<framework>/<name>.nir   as the exporter wrote it (nir.write)
#     tests/fixtures/peers/<framework>/<name>.npz   input / output / spikes__<node>, (batch, time, ...)
# Finally scripts/peer_fixtures/merge_manifest.py (run with the main venv, nir 1.0.8)
# folds the per-framework entries into tests/fixtures/peers/manifest.json, records whether
# each .nir loads with nir 1.0.8 and how a plain NIR-semantics reference simulation of
# the graph compares with the peer's own output (field nir_reference_check; it warns when a
# fixture marked expressible_in_nir does not match).
#
# Deterministic: fixed seeds, PYTHONHASHSEED=0 (nirtorch orders edges through a set()),
# CPU torch, torch.use_deterministic_algorithms(True). Re-running rewrites identical bytes.
#
# Time (2 CPU cores, measured): first run ~4.5 min (five venv installs; torch is the local
# CPU wheel torch==2.13.0+cpu when pip can find it), later runs ~1.7 min (snntorch ~20 s,
# sinabs/rockpool/spikingjelly ~10 s each, spyx ~60 s: JAX eager). Disk: ~1-1.5 GB per venv.
# All peers run on Python 3.11.7 (SpikingJelly 2.0.0 needs >= 3.11; the CPU torch wheel is cp311).
#
# Environment overrides:
#   PEER_PYTHON     interpreter for the peer venvs   (default ~/.pyenv/versions/3.11.7/bin/python)
#   PEER_TORCH      torch requirement for torch peers (default "torch==2.13.0+cpu", falls back to "torch==2.14.1")
#   MAIN_PYTHON     interpreter with nir 1.0.8 for the manifest step (default .venv/bin/python)
#   PEER_REINSTALL=1  recreate the venvs
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

PEER_PYTHON="${PEER_PYTHON:-$HOME/.pyenv/versions/3.11.7/bin/python}"
PEER_TORCH="${PEER_TORCH:-torch==2.13.0+cpu}"
MAIN_PYTHON="${MAIN_PYTHON:-$ROOT/.venv/bin/python}"
VENVS="$ROOT/build/peer-venvs"
export PYTHONHASHSEED=0
export PIP_DISABLE_PIP_VERSION_CHECK=1

ALL=(snntorch sinabs rockpool spikingjelly spyx)
if [ "$#" -gt 0 ]; then FRAMEWORKS=("$@"); else FRAMEWORKS=("${ALL[@]}"); fi

# Pinned peer requirements (the framework pin first; the rest is what that pin needs).
requirements() {
  case "$1" in
    # snnTorch 1.0.0 does not pin nir; nir>=1.0.6 is required by its exporter (it passes v_reset).
    snntorch)     echo "snntorch==1.0.0 nir==1.0.8 nirtorch==2.6" ;;
    # sinabs 3.1.3 pins nir<=1.0.4 (pip then resolves nirtorch 2.0.2).
    sinabs)       echo "sinabs==3.1.3 nir==1.0.4 nirtorch==2.0.2" ;;
    # rockpool[nir] 3.1.0 pins nir<=1.0.4.
    rockpool)     echo "rockpool[nir]==3.1.0 nir==1.0.4 nirtorch==2.0.2" ;;
    # spikingjelly 2.0.0 needs Python>=3.11; torchvision pinned to the torch in use.
    spikingjelly) echo "spikingjelly[nir]==2.0.0 nir==1.0.8 nirtorch==2.6 torchvision==0.28.0" ;;
    spyx)         echo "spyx==1.0.0 jax[cpu]" ;;
    *) echo "unknown framework: $1" >&2; return 1 ;;
  esac
}

needs_torch() { [ "$1" != spyx ]; }

make_venv() {
  local fw="$1" venv="$VENVS/$1" stamp="$VENVS/$1/.peer-requirements"
  local reqs; reqs="$(requirements "$fw")"
  if [ "${PEER_REINSTALL:-0}" = 1 ]; then rm -rf "$venv"; fi
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$reqs" ]; then return 0; fi
  echo "== [$fw] creating $venv"
  rm -rf "$venv"
  "$PEER_PYTHON" -m venv "$venv"
  local log="$venv/.pip.log"
  pipi() { "$venv/bin/python" -m pip install -q "$@" >>"$log" 2>&1 || { grep -v "^WARNING: Location" "$log" | tail -20; return 1; }; }
  if needs_torch "$fw"; then
    # CPU torch first so the peer's "torch" requirement is already satisfied.
    if ! pipi "$PEER_TORCH"; then
      echo "   $PEER_TORCH not installable, falling back to torch==2.14.1"
      pipi "torch==2.14.1" || return 1
    fi
    local tv; tv="$("$venv/bin/python" -W ignore -c 'import torch; print(torch.__version__.split("+")[0])' 2>/dev/null)"
    # shellcheck disable=SC2086
    pipi $reqs "torch==$tv" || return 1
  else
    # shellcheck disable=SC2086
    pipi $reqs || return 1
  fi
  "$venv/bin/python" -m pip freeze > "$venv/.peer-freeze.txt"
  echo "$reqs" > "$stamp"
}

OPTIONAL=" spyx "   # may fail: recorded as not produced, does not fail the run
failed=()
for fw in "${FRAMEWORKS[@]}"; do
  requirements "$fw" >/dev/null
  start=$SECONDS
  if ! make_venv "$fw"; then
    echo "!! [$fw] venv install failed"
    if [[ "$OPTIONAL" == *" $fw "* ]]; then
      "$MAIN_PYTHON" scripts/peer_fixtures/_common.py skip "$fw" "pip install of '$(requirements "$fw")' failed on Python $("$PEER_PYTHON" -V 2>&1)"
    else
      failed+=("$fw")
    fi
    continue
  fi
  echo "== [$fw] generating fixtures"
  mkdir -p "tests/fixtures/peers/$fw"
  rm -f "tests/fixtures/peers/$fw"/*.nir "tests/fixtures/peers/$fw"/*.npz
  if ! "$VENVS/$fw/bin/python" "scripts/peer_fixtures/${fw}_fixtures.py"; then
    echo "!! [$fw] generator failed"; failed+=("$fw")
  fi
  echo "== [$fw] done in $((SECONDS - start)) s"
done

echo "== manifest (nir 1.0.8 load check + NIR reference simulation) with $MAIN_PYTHON"
"$MAIN_PYTHON" scripts/peer_fixtures/merge_manifest.py "${FRAMEWORKS[@]}"

du -sh tests/fixtures/peers | sed 's/^/== total size: /'
if [ "${#failed[@]}" -gt 0 ]; then
  echo "!! failed: ${failed[*]}"
  exit 1
fi
