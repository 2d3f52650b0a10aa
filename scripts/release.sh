#!/usr/bin/env bash
# Builds every download into dist/ from this checkout:
#   image-transmit-VERSION-x86_64-pc-windows-gnu.zip       the .exe, cfg.yaml, README.txt (CRLF)
#   image-transmit-VERSION-x86_64-unknown-linux-musl.tar.gz static: runs on any x86_64 Linux
#   image-transmit-VERSION-aarch64-unknown-linux-gnu.tar.gz ARM64 Linux (glibc)
#   SHA256SUMS
# and type-checks the code for macOS (aarch64-apple-darwin), which cannot be linked here: macOS
# users build with cargo. Installs what it needs with apt-get. About 40 minutes on 2 cores.
#
#   scripts/release.sh                 # everything
#   TARGETS="x86_64-pc-windows-gnu" scripts/release.sh
set -euo pipefail
cd "$(dirname "$0")/.."

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
targets=${TARGETS:-"x86_64-pc-windows-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-gnu"}
# shellcheck disable=SC2086
EXTRA_PACKAGES="qemu-user wine wine64 python3" scripts/cross.sh --install $targets aarch64-apple-darwin
dist="$PWD/dist"
rm -rf "$dist"
mkdir -p "$dist"

# The text files a user reads, with the version filled in; CRLF and a byte-order mark for
# Windows, where an older Notepad shows LF-only text as one line.
text_files() {
  local into=$1 windows=$2
  for file in README.txt cfg.yaml; do
    sed "s/%VERSION%/$version/g" "packaging/$file" >"$into/$file"
    if [ "$windows" = yes ]; then
      python3 - "$into/$file" <<'EOF'
import sys
path = sys.argv[1]
text = open(path, encoding="utf-8").read().replace("\n", "\r\n")
open(path, "w", encoding="utf-8-sig", newline="").write(text)
EOF
    fi
  done
}

for target in $targets; do
  echo "== $target"
  scripts/cross.sh "$target" build --locked --release -p image-transmit
  name="image-transmit-$version-$target"
  stage="$dist/stage/$name"
  mkdir -p "$stage"
  case "$target" in
    *windows*)
      cp "target/cross/$target/release/image-transmit.exe" "$stage/"
      text_files "$stage" yes
      (cd "$dist/stage" && python3 -m zipfile -c "$dist/$name.zip" "$name")
      ;;
    *)
      cp "target/cross/$target/release/image-transmit" "$stage/"
      text_files "$stage" no
      tar -C "$dist/stage" --owner=0 --group=0 -czf "$dist/$name.tar.gz" "$name"
      ;;
  esac
  ls -l "$stage"
done
rm -rf "$dist/stage"

# Each archive, unpacked, must run the demo where its users run it: the static Linux binary
# in an empty root (no libc, no Rust, nothing), the ARM one under qemu, the .exe under Wine.
echo "== running each archive's demo"
check=$(mktemp -d)
trap 'rm -rf "$check"' EXIT
for target in $targets; do
  name="image-transmit-$version-$target"
  case "$target" in
    x86_64-unknown-linux-musl)
      mkdir -p "$check/root/tmp"
      tar -C "$check" -xzf "$dist/$name.tar.gz"
      cp "$check/$name/image-transmit" "$check/root/"
      chroot "$check/root" /image-transmit demo
      ;;
    aarch64-unknown-linux-gnu)
      tar -C "$check" -xzf "$dist/$name.tar.gz"
      qemu-aarch64 -L /usr/aarch64-linux-gnu "$check/$name/image-transmit" demo
      ;;
    x86_64-pc-windows-gnu)
      (cd "$check" && python3 -m zipfile -e "$dist/$name.zip" .)
      # Wine 8 lacks a DLL that Windows 10 and later have: the tests' stand-in, not shipped.
      x86_64-w64-mingw32-gcc -shared -O2 -o "$check/$name/bcryptprimitives.dll" \
        scripts/wine/bcryptprimitives.c -ladvapi32
      (cd "$check/$name" && WINEPREFIX="$check/wineprefix" WINEDEBUG=-all LC_ALL=C.UTF-8 \
        /usr/lib/wine/wine64 image-transmit.exe demo)
      ;;
  esac
done

echo "== aarch64-apple-darwin (type-check only)"
scripts/cross.sh aarch64-apple-darwin check --locked -p image-transmit

(cd "$dist" && shopt -s nullglob && sha256sum -- *.zip *.tar.gz >SHA256SUMS)
ls -l "$dist"
cat "$dist/SHA256SUMS"
