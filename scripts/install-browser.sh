#!/usr/bin/env bash
# Browser tests drive Debian's Chromium through Playwright; never a downloaded browser.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "install-browser: /usr/bin/chromium is missing; run as root: apt-get install -y chromium" >&2
  exit 1
fi
echo "install-browser: installing Debian's chromium package"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
test -x /usr/bin/chromium
