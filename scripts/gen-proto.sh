#!/usr/bin/env bash
# Regenerate the gRPC/protobuf code from src/gfs/proto/*.proto.
# Usage: scripts/gen-proto.sh [OUTDIR]   (default: src, i.e. in place)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-src}
mkdir -p "$out/gfs/proto"
python -m grpc_tools.protoc -I src --python_out="$out" --pyi_out="$out" \
  --grpc_python_out="$out" src/gfs/proto/*.proto
