#!/usr/bin/env bash
# Runs cargo for another platform: scripts/cross.sh TARGET CARGO-COMMAND [ARGS…]
#   scripts/cross.sh x86_64-pc-windows-gnu build --release -p image-transmit
#   scripts/cross.sh aarch64-apple-darwin check -p image-transmit
#
# These machines cannot add a target's standard library with rustup, so std is built from
# source (-Zbuild-std) with Debian's Rust compiler (packages rustc-web, cargo-web,
# rust-web-src, rust-web-clippy), whose std source sits where -Zbuild-std looks. The C code of
# dependencies (zstd, ring) is built with the target's cross compiler. Output goes to
# target/cross/ so it never disturbs the host build. Install what this needs with
# `scripts/cross.sh --install TARGET…` (and EXTRA_PACKAGES="…" with it).
set -euo pipefail

packages_for() {
  case "$1" in
    x86_64-pc-windows-gnu) echo "gcc-mingw-w64-x86-64 g++-mingw-w64-x86-64" ;;
    aarch64-unknown-linux-gnu) echo "gcc-aarch64-linux-gnu g++-aarch64-linux-gnu libc6-dev-arm64-cross" ;;
    x86_64-unknown-linux-musl) echo "musl-tools" ;;
    aarch64-apple-darwin) echo "" ;;
    *) echo "unknown target: $1" >&2; return 2 ;;
  esac
}

if [ "${1:-}" = "--install" ]; then
  shift
  # EXTRA_PACKAGES: what the caller needs besides (Wine, qemu), installed in the same go.
  read -r -a wanted <<<"rustc-web cargo-web rust-web-src rust-web-clippy ${EXTRA_PACKAGES:-}"
  for target in "$@"; do
    read -r -a more <<<"$(packages_for "$target")"
    wanted+=("${more[@]}")
  done
  missing=()
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "installing: ${missing[*]}"
    sudo_cmd=""
    [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  exit 0
fi

target=${1:?usage: scripts/cross.sh TARGET CARGO-COMMAND [ARGS…]}
shift
packages_for "$target" >/dev/null
cd "$(dirname "$0")/.."

# Debian's compiler, not rustup's proxies, and its unstable flags allowed.
export PATH="/usr/bin:$PATH"
export RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc RUSTC_BOOTSTRAP=1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target/cross}"
upper=$(echo "$target" | tr 'a-z-' 'A-Z_')
lower=${target//-/_}
case "$target" in
  x86_64-pc-windows-gnu) prefix=x86_64-w64-mingw32- ;;
  aarch64-unknown-linux-gnu) prefix=aarch64-linux-gnu- ;;
  x86_64-unknown-linux-musl) prefix=musl- ;;
  *) prefix="" ;;
esac
if [ -n "$prefix" ]; then
  export "CARGO_TARGET_${upper}_LINKER=${prefix}gcc"
  export "CC_${lower}=${prefix}gcc"
  if [ "$target" != x86_64-unknown-linux-musl ]; then
    export "CXX_${lower}=${prefix}g++" "AR_${lower}=${prefix}ar"
  fi
fi

if [ "$target" = aarch64-apple-darwin ]; then
  case "${1:-}" in
    check | clippy) ;;
    *) echo "macOS cannot be built here, only type-checked: scripts/cross.sh $target check" >&2; exit 2 ;;
  esac
  export "CC_${lower}=$PWD/scripts/macos/typecheck-cc" "AR_${lower}=ar"
fi

std_features=()
if [ "$target" = x86_64-unknown-linux-musl ]; then
  # A std built here has no self-contained startup objects or libunwind beside it: musl-gcc
  # brings the startup objects and libc, scripts/musl/unwind.c stands in for libunwind (panics
  # abort; backtraces come out empty), and std is built without its backtrace printer.
  unwind="$CARGO_TARGET_DIR/musl-unwind"
  mkdir -p "$unwind"
  musl-gcc -O2 -c -o "$unwind/unwind.o" scripts/musl/unwind.c
  rm -f "$unwind/libunwind.a"
  ar rcs "$unwind/libunwind.a" "$unwind/unwind.o"
  # musl-gcc's specs know -static but not -static-pie (it would ask for musl's dynamic
  # loader), so the binary is position-dependent: one file that runs on any x86_64 Linux.
  export CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_RUSTFLAGS="-C link-self-contained=no -C relocation-model=static -L native=$unwind"
  std_features=(-Zbuild-std-features=)
fi

command=$1
shift
exec /usr/bin/cargo "$command" -Zbuild-std=std,panic_abort "${std_features[@]}" --target "$target" "$@"
