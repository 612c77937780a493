#!/usr/bin/env bash
# Install what gfs needs on Debian 12: system packages, a venv, the package.
# Usage: scripts/install.sh [--test]    (env: GFS_VENV, default .venv; PYTHON, default python3)
set -euo pipefail
cd "$(dirname "$0")/.."
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# gcc, python3-dev and patch build pyfuse3 from its patched sdist (below)
pkgs=(libfuse3-dev fuse3 pkg-config attr acl gcc python3-dev patch)
# the tests run a throwaway PostgreSQL next to SQLite and a real Prometheus (and promtool)
# against grafana/; the deployment test runs sshd in network namespaces (iproute2) with
# what the playbook installs already there (it runs offline), and CI validates the Vagrantfile;
# the smoke run of bench/compare drives fio and a GlusterFS replica-3 volume
[ -n "$extras" ] && pkgs+=(postgresql prometheus openssh-server openssh-client iproute2 python3-venv python3-apt vagrant fio glusterfs-server glusterfs-client)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: need root to install ${missing[*]}" >&2; exit 1; }
  echo "install.sh: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

venv=${GFS_VENV:-.venv}
py=${PYTHON:-python3}
[ -x "$venv/bin/python" ] || "$py" -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip >/dev/null
bash scripts/pyfuse3/build.sh "$venv/bin/python"
"$venv/bin/python" -m pip install -q -e ".$extras"
echo "install.sh: gfs installed in $venv"
