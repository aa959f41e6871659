#!/bin/sh
# lintian for `make deb`: installed with apt when missing and we are root; otherwise say how.
set -eu
command -v lintian >/dev/null && exit 0
if [ "$(id -u)" != 0 ]; then
    echo "lintian is missing: apt-get install lintian (as root)" >&2
    exit 1
fi
apt-get install -y -qq lintian >/dev/null 2>&1 || {
    apt-get update -qq && apt-get install -y -qq lintian >/dev/null
}
