#!/usr/bin/env bash
# Sets up a fresh Debian 12 machine for bai: installs the Debian packages listed
# in scripts/deps/*.txt (skipping those present), the npm packages the
# compatibility specs and benchmarks use, and starts the services the test
# suite needs (a single-node Slurm, when its script exists).  Idempotent.
# Needs root (or sudo) for apt-get.  Usage: scripts/setup.sh [--no-services]
set -euo pipefail
cd "$(dirname "$0")/.."

services=1
for a in "$@"; do
  case "$a" in
    --no-services) services=0 ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) echo "setup.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

wanted=$(sed -e 's/#.*//' scripts/deps/*.txt | tr -s ' \t' '\n\n' | sed '/^$/d' | sort -u)
missing=()
for pkg in $wanted; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${#missing[@]} Debian packages: ${missing[*]}"
  # Package scripts must not start daemons (no systemd here): a temporary policy-rc.d forbids it.
  policy_added=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
    $SUDO chmod 755 /usr/sbin/policy-rc.d
    policy_added=1
  fi
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  if [ "$policy_added" = 1 ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi
else
  echo "setup: Debian packages already installed"
fi

# npm packages for the official-SDK compatibility spec and benchmarks.  Debian's
# nodejs comes without npm (a separate package); other builds bundle it.
if [ -f scripts/npm/package.json ] && command -v node >/dev/null && ! command -v npm >/dev/null; then
  echo "setup: installing Debian package npm"
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends npm >/dev/null
fi
for dir in scripts/npm; do
  if [ -f "$dir/package.json" ] && command -v npm >/dev/null; then
    if [ ! -d "$dir/node_modules" ] || [ "$dir/package.json" -nt "$dir/node_modules" ]; then
      echo "setup: npm install in $dir"
      (cd "$dir" && npm install --no-audit --no-fund --loglevel=error >/dev/null && touch node_modules)
    fi
  fi
done

if [ "$services" = 1 ] && [ -x scripts/slurm/setup.sh ]; then
  scripts/slurm/setup.sh
fi
echo "setup: done"
