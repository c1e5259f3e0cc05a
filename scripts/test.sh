#!/usr/bin/env bash
# Everything CI checks, runnable on a fresh machine: install the test infrastructure, then
# format, lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$PWD/tests/peer/.venv/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# The real-time audio callback must not allocate (allocation-checking allocator).
cargo test --features alloc-guard --test audio_alloc_guard
# MIDI through real JACK ports (test-only feature: swaps ALSA for JACK in midir and cpal).
cargo clippy --features jack --test midi_jack -- -D warnings
cargo test --features jack --test midi_jack
# NDI sink with gst-plugin-ndi built in and the runtime fetched by setup.sh.
cargo test --features ndi --test video_ndi
