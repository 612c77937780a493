#!/usr/bin/env bash
# Install pyfuse3 built from its sdist with our patches (lock, flock, fallocate, lseek and
# copy_file_range handlers; UTIME_NOW told apart; docs/architecture.md, "pyfuse3"). The sdist is pinned by hash.
# Usage: scripts/pyfuse3/build.sh PYTHON     (PYTHON: the venv's interpreter)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=$1
version=3.5.0
# Already there: the installed build carries the hash of exactly these patches.
stamp=$(cat "$here"/*.patch | sha256sum | cut -d' ' -f1)
if "$py" -c "
import pathlib, pyfuse3, sys
f = pathlib.Path(pyfuse3.__file__).parent / 'gfs-patches.sha256'
sys.exit(not (pyfuse3.__version__ == '$version' and f.is_file() and f.read_text().strip() == '$stamp'))
" 2>/dev/null; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "pyfuse3: building $version with $(ls "$here"/*.patch | xargs -n1 basename | tr '\n' ' ')"
# --require-hashes: a different sdist (or a wheel) is refused with pip's hash error.
"$py" -m pip download -q --no-deps --no-binary pyfuse3 --require-hashes \
  -r "$here/requirements.txt" -d "$work" \
  || { echo "pyfuse3: could not fetch the pinned sdist pyfuse3==$version (see $here/requirements.txt)" >&2; exit 1; }
tar -xzf "$work/pyfuse3-$version.tar.gz" -C "$work"
for p in "$here"/*.patch; do
  patch -d "$work/pyfuse3-$version" -p1 --forward --quiet < "$p" \
    || { echo "pyfuse3: $p does not apply to pyfuse3 $version" >&2; exit 1; }
done
# The patched .pyx is compiled by Cython (a build requirement pip fetches); the sdist's
# pregenerated C file is from the unpatched source.
rm -f "$work/pyfuse3-$version/src/pyfuse3/__init__.c"
# Not --force-reinstall: that would reinstall its dependencies too. Uninstalling first
# makes pip take this tree and fetch only what is missing (trio, in a new venv).
"$py" -m pip uninstall -q -y pyfuse3 2>/dev/null || true
"$py" -m pip install -q "$work/pyfuse3-$version"
"$py" -c "import pyfuse3; assert hasattr(pyfuse3.Operations, 'setlk') and hasattr(pyfuse3.SetattrFields, 'update_atime_now')" \
  || { echo "pyfuse3: the installed build lacks the patches" >&2; exit 1; }
"$py" -c "import pathlib, pyfuse3; (pathlib.Path(pyfuse3.__file__).parent / 'gfs-patches.sha256').write_text('$stamp\n')"
