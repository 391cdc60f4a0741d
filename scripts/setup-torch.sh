#!/usr/bin/env bash
# Installs Debian's PyTorch (CPU build) for the Python trainer in trainers/ and the tests under
# test/pytorch/: python3-torch, python3-numpy and python3-msgpack for /usr/bin/python3. Quick
# (one import) when they are already there. Nothing comes from pip: see docs/external-trainer.md
# for a CUDA build on a GPU machine.
set -euo pipefail
PY=/usr/bin/python3
if [ -x "$PY" ] && "$PY" -c 'import torch, numpy, msgpack' >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-torch: $PY lacks torch, numpy or msgpack and this is not a Debian/Ubuntu system; install python3-torch, python3-numpy and python3-msgpack (or their equivalents) by hand" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo); else echo "setup-torch: needs root (or sudo) to apt-get install python3-torch" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
# python3-torch is large (~1 GiB with its BLAS and CUDA-less deps): fetch the lists only if the package is unknown
if ! apt-cache show python3-torch >/dev/null 2>&1; then "${SUDO[@]}" apt-get update -q; fi
"${SUDO[@]}" apt-get install -y -q --no-install-recommends python3 python3-torch python3-numpy python3-msgpack
"$PY" -c 'import torch, numpy, msgpack; print("setup-torch: torch", torch.__version__, "numpy", numpy.__version__, "under '"$PY"'")'
