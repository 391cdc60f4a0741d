#!/usr/bin/env bash
# Installs what the test suite needs beyond npm packages, when it is missing (npm's `pretest`
# runs this, so `npm ci && npm test` on a fresh clone does all set-up). Each step is quick when
# its part is already there: Podman serving the Docker Engine API (container tasks),
# Debian's python3-torch (the PyTorch trainer) and Debian's chromium (the dashboard test).
set -euo pipefail
cd "$(dirname "$0")"
for step in setup-podman.sh setup-torch.sh setup-chromium.sh; do
  if [ -f "$step" ]; then
    bash "$step" || { echo "set-up step scripts/$step failed: the tests that need it will fail; run it by hand to see why" >&2; exit 1; }
  fi
done
