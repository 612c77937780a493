#!/usr/bin/env bash
# Bring up a local gfs cluster (gfsd on SQLite + three brick daemons, all under DIR),
# create and start a replica-3 volume "demo", and mount it with mount -t fuse.gfs.
# Every gRPC channel is mutual TLS: `gfs cluster up` makes the cluster CA in DIR/tls and
# the daemons' certificates; the mount uses a volume credential for "demo" only (a client
# certificate and a layout token issued by gfsd), not the admin token.
# Usage: sudo bash scripts/quickstart.sh [DIR]          (default DIR: /tmp/gfs-demo)
#        sudo bash scripts/quickstart.sh --down [DIR]   unmount and stop (data stays)
# Env: GFS_PORT_BASE (default 24100: gfsd on it, brick daemons on the next three).
set -euo pipefail
cd "$(dirname "$0")/.."
down=0
[ "${1:-}" = "--down" ] && { down=1; shift; }
dir=$(realpath -m "${1:-/tmp/gfs-demo}")
base=${GFS_PORT_BASE:-24100}
venv=$PWD/${GFS_VENV:-.venv}
gfs=$venv/bin/gfs

if [ $down = 1 ]; then
  "$gfs" cluster down --dir "$dir"
  echo "gfs at $dir stopped (data kept under $dir)"
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (FUSE allow_other, brick xattrs and /sbin need it)" >&2; exit 1; }
bash scripts/install.sh
"$gfs" install-mount-helper
mkdir -p "$dir/mnt"
if grep -qs " $dir/mnt fuse.gfs" /proc/mounts; then
  echo "gfs is already mounted at $dir/mnt (stop it with: sudo bash scripts/quickstart.sh --down $dir)"
  exit 0
fi
# A cluster left running without its mount: restart it (data stays).
[ -f "$dir/cluster.json" ] && "$gfs" cluster down --dir "$dir" >/dev/null
"$gfs" cluster up --dir "$dir" --bricks 3 --port-base "$base"
export GFS_SERVER=127.0.0.1:$base GFS_TOKEN_FILE=$dir/gfsd/admin.token
"$gfs" volume info demo >/dev/null 2>&1 || "$gfs" volume create demo --replica 3 --size 1GiB
[ "$("$gfs" volume info demo --json | "$venv/bin/python" -c 'import json,sys; print(json.load(sys.stdin)["state"])')" = started ] \
  || "$gfs" volume start demo
# The mount holds a credential for "demo" only (certificate + layout token), never the
# admin token: gfsd issued it and can revoke it (gfs volume credential revoke demo-client).
[ -f "$dir/credentials/demo/token" ] \
  || "$gfs" volume credential create demo --name demo-client --out "$dir/credentials/demo" >/dev/null
mount -t fuse.gfs -o "credential=$dir/credentials/demo,log-file=$dir/log/mount.log" \
  "127.0.0.1:$base:/demo" "$dir/mnt"
cat <<MSG

gfs volume "demo" (replica 3) is mounted at $dir/mnt.
  gfsd (REST API): http://127.0.0.1:$base   token: $GFS_TOKEN_FILE
  TLS:             CA and certificates in $dir/tls
  credential:      $dir/credentials/demo (the mount's; revoke: gfs volume credential revoke demo-client)
  bricks:          $dir/node*/root/demo-r0-b*      logs: $dir/log/
  try:             GFS_SERVER=$GFS_SERVER GFS_TOKEN_FILE=$GFS_TOKEN_FILE $gfs volume status demo
Unmount and stop:  sudo bash scripts/quickstart.sh --down $dir
(or by hand:       umount $dir/mnt && $gfs cluster down --dir $dir)
MSG
