#!/bin/sh
# `make install`: muninmail from source into PREFIX under DESTDIR.
#   DESTDIR=/tmp/stage PREFIX=/usr/local SYSCONFDIR=/etc PYTHON=/usr/bin/python3 install.sh
# Layout: PREFIX/lib/muninmail/venv (its own virtual environment), PREFIX/bin/muninmaild and
# muninctl, PREFIX/lib/systemd/system/*.{service,socket,timer} (ExecStart= pointing at PREFIX/bin),
# PREFIX/lib/sysusers.d/muninmail.conf, PREFIX/share/doc/muninmail, and the example
# SYSCONFDIR/muninmail/muninmaild.toml unless one is there already (it is never overwritten).
set -eu

here=$(cd "$(dirname "$0")/.." && pwd)
destdir=${DESTDIR:-}
prefix=${PREFIX:-/usr/local}
sysconfdir=${SYSCONFDIR:-/etc}
python=${PYTHON:-/usr/bin/python3}
venv="$prefix/lib/muninmail/venv"
root="$destdir$prefix"

sh "$here/packaging/venv.sh" "$destdir" "$venv" "$here" "$python"
# Bytecode compiled for the final path: the service cannot write it (ProtectSystem=strict).
if [ -n "$destdir" ]; then
    "$destdir$venv/bin/python" -m compileall -q -j 0 -s "$destdir" -p / "$destdir$venv/lib"
else
    "$venv/bin/python" -m compileall -q -j 0 "$venv/lib"
fi

install -d "$root/bin" "$root/lib/systemd/system" "$root/lib/sysusers.d" \
    "$root/share/doc/muninmail" "$destdir$sysconfdir/muninmail"
for tool in muninmaild muninctl; do
    ln -sfn "../lib/muninmail/venv/bin/$tool" "$root/bin/$tool"
done
for unit in muninmaild.service muninmaild.socket muninmaild-metrics.socket muninmail-digest.service \
    muninmail-digest.timer; do
    sed -e "s|/usr/bin/muninmaild|$prefix/bin/muninmaild|" \
        -e "s|/usr/bin/muninctl|$prefix/bin/muninctl|" \
        -e "s|/etc/muninmail|$sysconfdir/muninmail|g" \
        -e "s|/usr/share/doc/muninmail|$prefix/share/doc/muninmail|" \
        "$here/systemd/$unit" >"$root/lib/systemd/system/$unit"
    chmod 0644 "$root/lib/systemd/system/$unit"
done
install -m 0644 "$here/systemd/muninmail.sysusers" "$root/lib/sysusers.d/muninmail.conf"
install -m 0644 "$here/README.md" "$here/docs/"*.md "$here/systemd/muninmaild.toml" \
    "$root/share/doc/muninmail/"
if [ ! -e "$destdir$sysconfdir/muninmail/muninmaild.toml" ]; then
    install -m 0640 "$here/systemd/muninmaild.toml" "$destdir$sysconfdir/muninmail/"
fi
echo "installed muninmail under $root"
