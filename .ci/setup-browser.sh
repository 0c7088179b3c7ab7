#!/usr/bin/env bash
# Install Debian's chromium for the trace-viewer browser tests
# (tests/test_viewer_browser.py renders a `leapt view` page headless and reads its DOM).
# Idempotent: does nothing when chromium is already installed.
set -euo pipefail

if dpkg-query -W -f='${Status}' chromium 2>/dev/null | grep -q "install ok installed"; then
  echo "setup-browser: chromium already installed"
  exit 0
fi

sudo=()
if [[ $(id -u) -ne 0 ]]; then
  sudo=(sudo)
fi
echo "setup-browser: installing chromium"
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -q
"${sudo[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core
