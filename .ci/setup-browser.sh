#!/usr/bin/env bash
# Install Debian's chromium for the trace-viewer browser tests
# (tests/test_viewer_browser.py renders a `leapt view` page headless and reads its DOM).
# Idempotent: does nothing when chromium and its font are already installed.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

apt_install_missing setup-browser chromium fonts-dejavu-core
