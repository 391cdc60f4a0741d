#!/usr/bin/env bash
# The NAT test's one dependency beyond iproute2: iptables (MASQUERADE in a router namespace).
# Installs Debian's iptables when it is missing (needs root and apt); a no-op otherwise.
set -euo pipefail
if command -v iptables >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "iptables is missing and cannot be installed here (needs root and apt-get)" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iptables >/dev/null
command -v iptables >/dev/null
