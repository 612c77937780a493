#!/usr/bin/env bash
# Bring up a local gfs: one brick daemon serving one brick, mounted with FUSE.
# Usage: sudo bash scripts/quickstart.sh [DIR]          (default DIR: /tmp/gfs-demo)
#        sudo bash scripts/quickstart.sh --down [DIR]   unmount and stop
# Env: GFS_PORT (default 24101).
set -euo pipefail
cd "$(dirname "$0")/.."
down=0
[ "${1:-}" = "--down" ] && { down=1; shift; }
dir=$(realpath -m "${1:-/tmp/gfs-demo}")
port=${GFS_PORT:-24101}
venv=$PWD/${GFS_VENV:-.venv}

stop() {
  if grep -qs " $dir/mnt fuse" /proc/mounts; then fusermount3 -u "$dir/mnt"; fi
  if [ -f "$dir/brickd.pid" ]; then kill "$(cat "$dir/brickd.pid")" 2>/dev/null || true; rm -f "$dir/brickd.pid"; fi
}
if [ $down = 1 ]; then stop; echo "gfs at $dir stopped (data kept in $dir/bricks)"; exit 0; fi

[ "$(id -u)" = 0 ] || { echo "quickstart: run as root (FUSE allow_other and brick xattrs need it)" >&2; exit 1; }
bash scripts/install.sh
if grep -qs " $dir/mnt fuse" /proc/mounts; then
  echo "gfs is already mounted at $dir/mnt (stop it with: sudo bash scripts/quickstart.sh --down $dir)"; exit 0
fi
mkdir -p "$dir/bricks/b0" "$dir/mnt" "$dir/log"
setsid "$venv/bin/gfs-brickd" --listen "127.0.0.1:$port" --brick "b0=$dir/bricks/b0" \
  --log-file "$dir/log/brickd.log" </dev/null >>"$dir/log/brickd.log" 2>&1 &
echo $! >"$dir/brickd.pid"
"$venv/bin/python" - "127.0.0.1:$port" <<'PY' || { echo "quickstart: gfs-brickd did not come up, see $dir/log/brickd.log" >&2; exit 1; }
import sys, grpc
grpc.channel_ready_future(grpc.insecure_channel(sys.argv[1])).result(timeout=20)
PY
"$venv/bin/mount.fuse.gfs" "127.0.0.1:$port/b0" "$dir/mnt" -o "log-file=$dir/log/mount.log"
cat <<MSG
gfs is mounted at $dir/mnt (brick b0 served by gfs-brickd on 127.0.0.1:$port, stored in $dir/bricks/b0).
Logs: $dir/log/
Unmount and stop:  sudo bash scripts/quickstart.sh --down $dir
(or by hand:       fusermount3 -u $dir/mnt && kill \$(cat $dir/brickd.pid))
MSG
