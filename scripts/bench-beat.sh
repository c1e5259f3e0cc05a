#!/usr/bin/env bash
# The beat-tracking benchmark: scope-deck and its peers (madmom online, BeatNet online, aubio,
# librosa offline) on the same files in the same run; prints per-genre and overall markdown tables.
# Installs what is missing first (Debian packages, bench/beat/.venv). Not part of CI.
#
#   scripts/bench-beat.sh [--bin PATH] [--trackers a,b] [--splits heldout,valid,final] [--limit N] [--out DIR] [DATA_DIR...]
#
# DATA_DIR defaults to training/beat/data (layout: <split>/<genre>/<name>.flac + .beats + .json).
# --bin: a scope-deck binary to measure instead of building this tree's release binary.
# madmom's models are CC BY-NC-SA: they live only in this venv, never in scope-deck's build.
set -euo pipefail
cd "$(dirname "$0")/.."

bin="" ; pass=() ; data=()
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift 2 ;;
    --trackers|--splits|--limit|--out) pass+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) data+=("$1"); shift ;;
  esac
done
[ "${#data[@]}" -gt 0 ] || data=(training/beat/data)

# Debian packages: aubio's command-line tools; a compiler and Python headers for madmom's build.
pkgs=(aubio-tools build-essential python3-dev python3-venv libsndfile1)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "bench-beat: installing ${missing[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11: madmom 0.16.1 and numpy 1.23 build and run there.
py=""
for c in python3.11 python3; do
  if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    py="$c"; break
  fi
done
[ -n "$py" ] || { echo "bench-beat: needs Python 3.11 (madmom 0.16.1 / numpy 1.23)" >&2; exit 1; }

venv=bench/beat/.venv
pip() { "$venv/bin/pip" install -q --disable-pip-version-check "$@"; }
if [ ! -x "$venv/bin/python" ]; then
  echo "bench-beat: creating $venv" >&2
  "$py" -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import madmom' 2>/dev/null; then
  echo "bench-beat: building madmom 0.16.1 from source" >&2
  pip -r bench/beat/requirements-build.txt
  tmp=$(mktemp -d)
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    madmom==0.16.1 -d "$tmp"
  tar xzf "$tmp"/madmom-0.16.1.tar.gz -C "$tmp"
  src="$tmp/madmom-0.16.1"
  # The shipped C files were made by an old Cython that does not build for 3.11: regenerate.
  find "$src" -name '*.c' -delete
  # Python 3.10 removed the collections aliases.
  sed -i 's/^from collections import MutableSequence/from collections.abc import MutableSequence/' \
    "$src/madmom/processors.py"
  pip --no-build-isolation --no-deps "$src"
  rm -rf "$tmp"
fi
if ! "$venv/bin/python" -c 'import librosa, torch, soxr' 2>/dev/null; then
  echo "bench-beat: installing librosa, torch" >&2
  pip -r bench/beat/requirements.txt
fi
# madmom and BeatNet import pkg_resources (gone in setuptools 81); a venv made before the pin
# in requirements.txt gets it here.
if ! "$venv/bin/python" -c 'import pkg_resources' 2>/dev/null; then
  pip 'setuptools<81'
fi
if ! "$venv/bin/python" -c 'import importlib.util as u, sys; sys.exit(u.find_spec("BeatNet") is None)'; then
  pip --no-deps beatnet==1.1.3
fi

if [ -z "$bin" ]; then
  echo "bench-beat: cargo build --release" >&2
  nice -n 10 cargo build --release -q
  bin=target/release/scope-deck
fi

# One thread per tracker so CPU seconds compare like with like.
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 NUMBA_NUM_THREADS=1
exec nice -n 10 "$venv/bin/python" -W ignore bench/beat/run.py --bin "$bin" "${pass[@]}" "${data[@]}"
