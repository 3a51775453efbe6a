#!/usr/bin/env bash
# Provision what the test suite needs beyond PyPI packages: Debian's chromium for the
# browser tests. Fails clearly when it cannot.
set -euo pipefail
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "provision: installing Debian's chromium (headless browser tests)" >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "provision: chromium is missing; install Debian's 'chromium' package (needs root)" >&2
    exit 1
  fi
fi
command -v chromium >/dev/null || { echo "provision: chromium still missing" >&2; exit 1; }
