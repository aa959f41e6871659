#!/bin/sh
# `make deb`: build dist/muninmail_<version>-1_<arch>.deb from the source tree.
# The application and its libraries go into their own virtual environment under /opt/muninmail,
# built with Debian's /usr/bin/python3 (hence the python3 (>= 3.11), (<< 3.12) dependency).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
out=${OUT:-$here/dist}
python=${DEB_PYTHON:-/usr/bin/python3}
upstream=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pyproject.toml" | head -n 1)
version="$upstream-1"
arch=$(dpkg --print-architecture)
venv=/opt/muninmail/venv

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root="$work/root"
doc="$root/usr/share/doc/muninmail"
umask 022

sh "$here/packaging/venv.sh" "$root" "$venv" "$here" "$python"

install -d "$root/usr/bin" "$root/lib/systemd/system" "$root/usr/lib/sysusers.d" \
    "$root/etc/muninmail" "$doc" "$root/usr/share/man/man1" "$root/usr/share/man/man8" \
    "$root/usr/share/lintian/overrides" "$root/DEBIAN"
for tool in muninmaild muninctl; do
    ln -s "$venv/bin/$tool" "$root/usr/bin/$tool"
done
install -m 0644 "$here/systemd/muninmaild.service" "$here/systemd/muninmaild.socket" \
    "$here/systemd/muninmaild-metrics.socket" "$here/systemd/muninmail-digest.service" \
    "$here/systemd/muninmail-digest.timer" "$root/lib/systemd/system/"
install -m 0644 "$here/systemd/muninmail.sysusers" "$root/usr/lib/sysusers.d/muninmail.conf"
install -m 0644 "$here/systemd/muninmaild.toml" "$root/etc/muninmail/muninmaild.toml"
install -m 0644 "$here/README.md" "$here/docs/"*.md "$here/packaging/debian/copyright" "$doc/"
sed -e "s/@VERSION@/$version/" -e "s/@DATE@/$(date -R -u -d @"${SOURCE_DATE_EPOCH:-$(date +%s)}")/" \
    "$here/packaging/debian/changelog" | gzip -9n >"$doc/changelog.Debian.gz"
gzip -9n -c "$here/packaging/man/muninctl.1" >"$root/usr/share/man/man1/muninctl.1.gz"
gzip -9n -c "$here/packaging/man/muninmaild.8" >"$root/usr/share/man/man8/muninmaild.8.gz"
install -m 0644 "$here/packaging/lintian-overrides" "$root/usr/share/lintian/overrides/muninmail"

for script in postinst prerm postrm; do
    install -m 0755 "$here/packaging/debian/$script" "$root/DEBIAN/"
done
install -m 0644 "$here/packaging/debian/conffiles" "$root/DEBIAN/"
(cd "$root" && find . -path ./DEBIAN -prune -o -type f -print0 | sed -z 's|^\./||' |
    sort -z | xargs -0 md5sum) >"$root/DEBIAN/md5sums"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
sed -e "s/@VERSION@/$version/" -e "s/@ARCH@/$arch/" -e "s/@SIZE@/$size/" \
    "$here/packaging/debian/control.in" >"$root/DEBIAN/control"

mkdir -p "$out"
deb="$out/muninmail_${version}_$arch.deb"
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
echo "$deb"
