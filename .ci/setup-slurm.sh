#!/usr/bin/env bash
# Install the Debian packages of the test Slurm clusters (slurmctld, slurmd,
# the client commands), munge, and iproute2 (`ip netns` for the two-node test), for
# tests/test_slurm*.py. Idempotent: does
# nothing when they are already installed. It only installs: the test fixture
# (tests/slurm_cluster.py) configures and starts the daemons itself, without systemd.
set -euo pipefail

packages=(slurmctld slurmd slurm-client munge iproute2)
missing=()
for pkg in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "setup-slurm: ${packages[*]} already installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "setup-slurm: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
