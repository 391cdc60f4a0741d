#!/usr/bin/env bash
# Installs Debian's Chromium for the dashboard test (test/dashboard/), driven by playwright-core
# with /usr/bin/chromium as its executable: no browser download. Quick when it is already there.
set -euo pipefail
BIN=/usr/bin/chromium
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "setup-chromium: $BIN is missing and this is not a Debian/Ubuntu system; install Chromium by hand (the dashboard test looks for $BIN, or DBC_CHROMIUM)" >&2
  exit 1
fi
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then SUDO=(sudo -n); else echo "setup-chromium: needs root (or sudo) to apt-get install chromium" >&2; exit 1; fi
fi
export DEBIAN_FRONTEND=noninteractive
# fetch the package lists only when the package is unknown
if ! apt-cache show chromium >/dev/null 2>&1; then "${SUDO[@]}" apt-get update -q; fi
"${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
echo "setup-chromium: $("$BIN" --version)"
