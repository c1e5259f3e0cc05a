#!/usr/bin/env bash
# Everything CI checks, runnable on a fresh machine: install the test infrastructure, then
# format, lint and test.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
export PATH="$PWD/tests/peer/.venv/bin:$PATH"
cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
# Test-only features, built once together:
#  - alloc-guard: the real-time audio callback must not allocate (allocation-checking allocator,
#    installed only inside that test binary);
#  - jack: MIDI through real JACK ports (swaps ALSA for JACK in midir and cpal), MIDI clock out;
#  - ndi: the NDI sink with gst-plugin-ndi built in and the runtime fetched by setup.sh.
FEATURES="alloc-guard jack ndi"
cargo clippy --features "$FEATURES" --test audio_alloc_guard --test midi_jack --test midi_clock_out --test video_ndi -- -D warnings
cargo test --features "$FEATURES" --test audio_alloc_guard --test midi_jack --test midi_clock_out --test video_ndi
