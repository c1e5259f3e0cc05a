#!/usr/bin/env bash
# Installs what scope-deck needs on a fresh Debian/Ubuntu machine (only what is missing).
#   scripts/setup.sh run    - build + run dependencies
#   scripts/setup.sh test   - also the test infrastructure (virtual sound server, JACK, aiortc peer)
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-run}"

# Build and run: compilers' -dev packages and the GStreamer runtime plugins.
# build-essential: a fresh rustup machine may have no C compiler or linker (`cc`), which rustc
# needs to link and several -sys crates need to build.
RUN_PKGS=(
  build-essential pkg-config libasound2-dev libjack-jackd2-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav gstreamer1.0-tools
)
# The `link` feature (Ableton Link's C++ library through rusty_link): cmake, a C++ compiler
# (build-essential) and libclang for its bindings.
LINK_PKGS=(cmake libclang-dev)
# Tests: real audio capture through a PulseAudio null sink, real MIDI ports through JACK's dummy
# driver, a PTY via tmux, sox for test signals, Python for the aiortc test peer, iproute2 for
# private network namespaces (the Link test), and the `link` feature's build tools.
TEST_PKGS=(
  pulseaudio pulseaudio-utils libasound2-plugins sox tmux jackd2
  python3 python3-venv python3-dev iproute2 util-linux "${LINK_PKGS[@]}"
)

pkgs=("${RUN_PKGS[@]}")
[ "$mode" = test ] && pkgs+=("${TEST_PKGS[@]}")
# `scripts/setup.sh run link` (run.sh --features link): Link's build tools too.
[ "${2:-}" = link ] && pkgs+=("${LINK_PKGS[@]}")

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if [ "$mode" = test ]; then
  # The aiortc test peer (what Scope itself runs) lives in its own venv.
  venv=tests/peer/.venv
  # aalink: the independent Ableton Link peer of tests/link_session.rs.
  if [ ! -x "$venv/bin/python" ] || ! "$venv/bin/python" -c 'import aiortc, aiohttp, aalink' 2>/dev/null; then
    echo "setup: creating $venv" >&2
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r tests/peer/requirements.txt
  fi
fi

if [ "$mode" = test ]; then
  # NDI runtime for the NDI sink tests (`cargo test --features ndi --test video_ndi`): its licence
  # forbids committing it, so take libndi.so.6 from PyPI's ndi-python wheel into target/.
  ndi_dir=target/ndi-runtime
  if [ ! -f "$ndi_dir/libndi.so.6" ]; then
    tmp=$(mktemp -d)
    # The peer's venv brings its own pip (Debian's python3 may have none).
    if "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$tmp" ndi-python; then
      mkdir -p "$ndi_dir"
      python3 - "$tmp" "$ndi_dir" <<'PY'
import glob, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/ndi_python-*.whl")[0]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + "/libndi.so.6", "wb") as out:
    out.write(z.read("NDIlib/libndi.so.6"))
PY
    else
      echo "setup: could not fetch the NDI runtime (ndi-python wheel); NDI delivery test will fail" >&2
    fi
    rm -rf "$tmp"
  fi
fi
