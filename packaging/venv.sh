#!/bin/sh
# Build muninmail's own virtual environment in a staging root so that it works once moved:
#   venv.sh STAGE VENV SOURCE [PYTHON]
# makes STAGE/VENV (STAGE may be empty), installs SOURCE into it (not editable), removes pip
# and setuptools (nothing installs into it later), rewrites the staging path in the scripts and
# pyvenv.cfg to VENV, and drops bytecode, which records the path it was compiled at.
set -eu

stage=$1
venv=$2
source=$3
python=${4:-/usr/bin/python3}
target="$stage$venv"

# A clean copy of the tree: setuptools reuses build/ and would package files deleted since.
copy=$(mktemp -d)
trap 'rm -rf "$copy"' EXIT
tar -C "$source" --exclude=./.venv --exclude=./.git --exclude=./build --exclude=./dist \
    --exclude=./.demo --exclude='*.egg-info' --exclude=__pycache__ --exclude='.*_cache' \
    --exclude=./.hypothesis -cf - . | tar -C "$copy" -xf -

rm -rf "$target"
"$python" -m venv "$target"
"$target/bin/python" -m pip install --quiet --quiet --no-warn-script-location "$copy"
"$target/bin/python" -m pip uninstall --quiet --yes pip setuptools
# Only the interpreter and muninmail's two commands: the libraries' own tools (alembic, httpx,
# aioimaplib's test server, ...) and their test suites are not part of the application.
for file in "$target"/bin/*; do
    case "${file##*/}" in
    python*|muninmaild|muninctl) ;;
    *) rm -f "$file" ;;
    esac
done
site=$(echo "$target"/lib/python3*/site-packages)
rm -rf "$site"/*/tests "$target/include"
rm -f "$site"/muninmail-*.dist-info/direct_url.json

if [ -n "$stage" ]; then
    grep -rlI -- "$target" "$target/bin" "$target/pyvenv.cfg" | while read -r file; do
        sed -i "s|$target|$venv|g" "$file"
    done
fi
find "$target" -name __pycache__ -prune -exec rm -rf {} +
if command -v strip >/dev/null; then
    find "$target" -name "*.so" -exec strip --strip-unneeded --remove-section=.comment \
        --remove-section=.note {} +
fi
