#!/usr/bin/env bash
# 256 MiB dd write / read and cp through a gfs mount, next to the same on local disk.
# Usage: sudo bash bench/dd.sh [MOUNT_OPTIONS]   -> bench/results/dd.txt (appended)
# Needs the package installed (scripts/install.sh); uses .venv or GFS_VENV.
set -euo pipefail
cd "$(dirname "$0")/.."
venv=$PWD/${GFS_VENV:-.venv}
opts=${1:-}
out=bench/results/dd.txt
work=$(mktemp -d /var/tmp/gfs-dd.XXXXXX)
port=$("$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
mkdir -p "$work/brick" "$work/mnt" "$work/local"
"$venv/bin/gfs-brickd" --listen "127.0.0.1:$port" --brick "b0=$work/brick" --insecure --log-file "$work/brickd.log" &
bpid=$!
cleanup() {
  grep -qs " $work/mnt fuse" /proc/mounts && fusermount3 -u "$work/mnt"
  kill $bpid 2>/dev/null || true; wait $bpid 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
"$venv/bin/python" -c "import grpc,sys; grpc.channel_ready_future(grpc.insecure_channel(sys.argv[1])).result(timeout=20)" "127.0.0.1:$port"
mnt() { "$venv/bin/mount.fuse.gfs" "127.0.0.1:$port/b0" "$work/mnt" -o "log-file=$work/mount.log${opts:+,$opts}"; }
umnt() { fusermount3 -u "$work/mnt"; }
rate() { # dd's last line carries the rate
  "$@" 2>&1 | tail -1 | sed -E 's/.*, ([0-9.,]+ [kMG]?B\/s)$/\1/'
}
ctime() { local t0 t1; t0=$(date +%s.%N); "$@"; t1=$(date +%s.%N); echo "$t0 $t1" | awk '{printf "%.0f MB/s", 268.435456/($2-$1)}'; }
drop() { sync; echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true; }

mnt
g_w=$(rate dd if=/dev/zero of="$work/mnt/f" bs=1M count=256 conv=fsync)
umnt; drop; mnt
g_r=$(rate dd if="$work/mnt/f" of=/dev/null bs=1M)
g_c=$(ctime cp "$work/mnt/f" "$work/mnt/g")
umnt

l_w=$(rate dd if=/dev/zero of="$work/local/f" bs=1M count=256 conv=fsync)
drop
l_r=$(rate dd if="$work/local/f" of=/dev/null bs=1M)
l_c=$(ctime cp "$work/local/f" "$work/local/g")

{
  echo "== $(date -u +%Y-%m-%dT%H:%MZ) $(nproc) cores, mount options: '${opts:-default}'"
  printf '%-28s %-14s %-14s\n' "256 MiB" "gfs mount" "local disk"
  printf '%-28s %-14s %-14s\n' "dd write (bs=1M, fsync)" "$g_w" "$l_w"
  printf '%-28s %-14s %-14s\n' "dd read (bs=1M, cold)" "$g_r" "$l_r"
  printf '%-28s %-14s %-14s\n' "cp (same filesystem)" "$g_c" "$l_c"
} | tee -a "$out"
