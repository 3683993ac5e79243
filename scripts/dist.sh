#!/usr/bin/env bash
# Builds the binary a person carries across the air gap: dist/ferry (stripped, ~14 MB) and
# dist/ferry.debug (its symbols and line tables), plus dist/SHA256SUMS.
#
#   scripts/dist.sh [--target TRIPLE]
#
# dist/ferry carries a .gnu_debuglink to ferry.debug: with ferry.debug beside it (or in
# /usr/lib/debug), a backtrace (RUST_BACKTRACE=1) names functions, files and lines; without
# it, the addresses can still be resolved later with `addr2line -f -C -e ferry.debug ADDR…`.
# The release profile (Cargo.toml) builds line tables only, so ferry.debug stays small.
set -euo pipefail
cd "$(dirname "$0")/.."

target_dir=${CARGO_TARGET_DIR:-target}
target_args=()
out_dir=$target_dir/release
if [ "${1:-}" = --target ] && [ -n "${2:-}" ]; then
  target_args=(--target "$2")
  out_dir=$target_dir/$2/release
fi
command -v objcopy >/dev/null || {
  echo "dist.sh: objcopy not found (Debian package binutils)" >&2
  exit 1
}

cargo build --release --locked --bin ferry "${target_args[@]}"
mkdir -p dist
rm -f dist/ferry dist/ferry.debug dist/SHA256SUMS
objcopy --only-keep-debug "$out_dir/ferry" dist/ferry.debug
objcopy --strip-all --add-gnu-debuglink=dist/ferry.debug "$out_dir/ferry" dist/ferry
chmod 0755 dist/ferry
chmod 0644 dist/ferry.debug
dist/ferry --version >/dev/null
(cd dist && sha256sum ferry ferry.debug >SHA256SUMS)
ls -l dist/ferry dist/ferry.debug | awk '{ printf "dist.sh: %s %.1f MB\n", $NF, $5 / 1e6 }'
