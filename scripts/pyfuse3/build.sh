#!/usr/bin/env bash
# pyfuse3 built from its sdist with our patches (lock, flock, fallocate, lseek and
# copy_file_range handlers; UTIME_NOW told apart; FUSE_DONT_MASK with ACLs;
# docs/architecture.md, "pyfuse3").
# The sdist is pinned by hash; the build's version carries a local label with the hash of
# the patches (3.5.0+gfs.<hash>), so a plain pyfuse3 or a build of other patches is
# told apart by its version alone.
# Usage: scripts/pyfuse3/build.sh PYTHON               install into PYTHON's venv
#        scripts/pyfuse3/build.sh --wheel DIR PYTHON   write the wheel into DIR (a wheelhouse)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
wheel_dir=""
if [ "${1:-}" = "--wheel" ]; then
  wheel_dir=$2
  shift 2
fi
py=${1:?usage: build.sh [--wheel DIR] PYTHON}
version=3.5.0
stamp=$(cat "$here"/*.patch | sha256sum | cut -c1-12)
local_version="$version+gfs.$stamp"
if [ -z "$wheel_dir" ] &&
  "$py" -c "import pyfuse3, sys; sys.exit(pyfuse3.__version__ != '$local_version')" 2>/dev/null; then
  exit 0
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "pyfuse3: building $local_version with $(ls "$here"/*.patch | xargs -n1 basename | tr '\n' ' ')"
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
# pyfuse3 takes its version from setuptools_scm, which takes this one.
export SETUPTOOLS_SCM_PRETEND_VERSION=$local_version
if [ -n "$wheel_dir" ]; then
  mkdir -p "$wheel_dir"
  rm -f "$wheel_dir"/pyfuse3-*.whl
  "$py" -m pip wheel -q --no-deps -w "$wheel_dir" "$work/pyfuse3-$version"
  exit 0
fi
# Not --force-reinstall: that would reinstall its dependencies too. Uninstalling first
# makes pip take this tree and fetch only what is missing (trio, in a new venv).
"$py" -m pip uninstall -q -y pyfuse3 2>/dev/null || true
"$py" -m pip install -q "$work/pyfuse3-$version"
"$py" -c "import pyfuse3, sys; sys.exit(pyfuse3.__version__ != '$local_version')" \
  || { echo "pyfuse3: the installed build is not $local_version" >&2; exit 1; }
