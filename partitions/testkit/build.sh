#!/bin/sh
# Builds the test partitions and turns each into a flat arm64 Image:
#   target/partitions/<bin>.img
# Run from anywhere; needs the aarch64-unknown-none target and llvm-tools
# (both listed in rust-toolchain.toml; `rustup component add llvm-tools`).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
target=aarch64-unknown-none
bins="hello smp timer probe crash"

cd "$root"
cargo build --release -p testkit --target "$target"

sysroot=$(rustc --print sysroot)
host=$(rustc -vV | sed -n 's/^host: //p')
objcopy="$sysroot/lib/rustlib/$host/bin/llvm-objcopy"
target_dir=${CARGO_TARGET_DIR:-$root/target}
out="$target_dir/partitions"
mkdir -p "$out"
for bin in $bins; do
    "$objcopy" -O binary "$target_dir/$target/release/$bin" "$out/$bin.img"
    echo "$out/$bin.img"
done
