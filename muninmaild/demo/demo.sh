#!/bin/sh
# `make demo`: run muninmaild in the background on the demo configuration, wait until it has
# fetched and processed the bundled Maildir, show what it did with muninctl, and stop it the
# way systemd would (SIGTERM, then expect exit status 0).
# Usage: demo.sh BIN_DIR DEMO_DIR   (DEMO_DIR holds muninmaild.toml; the socket goes there too)
set -u
bin=$1
demo=$2
sock="$demo/control.sock"

ctl() {
    echo
    echo "\$ muninctl $*"
    "$bin/muninctl" --socket "$sock" "$@"
}

"$bin/muninmaild" --config "$demo/muninmaild.toml" &
pid=$!
trap 'kill -TERM "$pid" 2>/dev/null' EXIT INT TERM

# The socket is bound before the daemon is ready; wait for it to answer (up to 30 s).
tries=0
until "$bin/muninctl" --socket "$sock" ping >/dev/null 2>&1; do
    if ! kill -0 "$pid" 2>/dev/null || [ "$tries" -ge 300 ]; then
        echo "demo: muninmaild did not start; see the messages above" >&2
        exit 1
    fi
    tries=$((tries + 1))
    sleep 0.1
done

ctl wait-idle --timeout 600 || exit 1
ctl status || exit 1
ctl list || exit 1
ctl list --details || exit 1
ctl digest || exit 1

echo
echo "\$ kill -TERM $pid"
kill -TERM "$pid"
wait "$pid"
code=$?
trap - EXIT INT TERM
echo "muninmaild exited with status $code"
exit "$code"
