#!/usr/bin/env bash
# Install everything, check the tree (generated code, lint, types, layering), run all tests.
# Needs root and /dev/fuse (the tests mount real FUSE filesystems).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh --test
venv=${GFS_VENV:-.venv}
export PATH="$PWD/$venv/bin:$PATH"

echo "== generated gRPC code is up to date"
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
scripts/gen-proto.sh "$tmp"
for f in "$tmp"/gfs/proto/*; do
  if ! cmp -s "$f" "src/gfs/proto/$(basename "$f")"; then
    echo "stale generated file src/gfs/proto/$(basename "$f"): run scripts/gen-proto.sh" >&2
    exit 1
  fi
done

echo "== ruff"; ruff check src tests bench; ruff format --check src tests bench
echo "== mypy"; mypy
echo "== import-linter"; lint-imports
echo "== ansible-lint"; (cd ansible && ansible-lint -q)
# no hypervisor in CI: validate the Vagrantfile itself, not a provider's runtime
echo "== vagrant validate"; (cd vagrant && vagrant validate --ignore-provider)
echo "== pytest"
# pytest exits 5 when it collected nothing: that fails here too (set -e).
python -m pytest -q -p no:cacheprovider "$@"
