#!/usr/bin/env bash
# Install the Debian packages of the test Slurm clusters (slurmctld, slurmd,
# the client commands), munge, and iproute2 (`ip netns` for the two-node test), for
# tests/test_slurm*.py. Idempotent: does
# nothing when they are already installed. It only installs: the test fixture
# (tests/slurm_cluster.py) configures and starts the daemons itself, without systemd.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

apt_install_missing setup-slurm slurmctld slurmd slurm-client munge iproute2
