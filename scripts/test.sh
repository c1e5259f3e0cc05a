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
#  - jack: MIDI through real JACK ports (swaps ALSA for JACK in midir and cpal), MIDI clock out,
#    client connect/close churn from four threads (midir's patched close order);
#  - ndi: the NDI sink with gst-plugin-ndi built in and the runtime fetched by setup.sh;
#  - link: Ableton Link (a GPL build, never the default): the Link edge against an independent
#    aalink peer inside a private network namespace (unshare -rn). Building Link's C++ library
#    adds about 3 minutes on 2 cores to this one feature build.
FEATURES="alloc-guard jack ndi link"
TESTS=(--test audio_alloc_guard --test midi_jack --test midi_jack_stress --test midi_clock_out --test video_ndi
  --test link_session)
cargo clippy --features "$FEATURES" --lib "${TESTS[@]}" -- -D warnings
cargo test --features "$FEATURES" "${TESTS[@]}"
