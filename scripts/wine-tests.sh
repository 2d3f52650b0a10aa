#!/usr/bin/env bash
# The Windows smoke suite: builds the Windows .exe, then runs the tests in
# crates/image-transmit/tests/cli/wine.rs, which run it under Wine against real registries on
# loopback. `.ci/run` calls this; run it alone after changing anything Windows users touch.
#
#   scripts/wine-tests.sh            # the quick `wine` profile (what CI builds)
#   PROFILE=release scripts/wine-tests.sh
set -euo pipefail
cd "$(dirname "$0")/.."

profile=${PROFILE:-wine}
target=x86_64-pc-windows-gnu
EXTRA_PACKAGES="wine wine64" scripts/cross.sh --install "$target"

scripts/cross.sh "$target" build --locked -p image-transmit --profile "$profile"

# The .exe beside the stand-in DLL that Wine 8 lacks (scripts/wine/bcryptprimitives.c), and
# ctrl-c.exe, which presses Ctrl-C in a console for a test (scripts/wine/ctrl-c.c).
bin="$PWD/target/cross/wine-bin"
mkdir -p "$bin"
cp "target/cross/$target/$profile/image-transmit.exe" "$bin/"
x86_64-w64-mingw32-gcc -shared -O2 -o "$bin/bcryptprimitives.dll" \
  scripts/wine/bcryptprimitives.c -ladvapi32
x86_64-w64-mingw32-gcc -municode -O2 -o "$bin/ctrl-c.exe" scripts/wine/ctrl-c.c

export WINEPREFIX="$PWD/target/cross/wineprefix" WINEDEBUG=-all
if [ ! -f "$WINEPREFIX/system.reg" ]; then
  /usr/lib/wine/wine64 wineboot --init >/dev/null 2>&1
fi
export IMAGE_TRANSMIT_WINDOWS_EXE="$bin/image-transmit.exe"
if command -v cargo-nextest >/dev/null 2>&1; then
  cargo nextest run --locked -p image-transmit --test cli --run-ignored only -E 'test(/^wine::/)' --no-fail-fast
else
  cargo test --locked -p image-transmit --test cli -- --ignored wine:: 
fi
/usr/lib/wine/wineserver -k 2>/dev/null || true
