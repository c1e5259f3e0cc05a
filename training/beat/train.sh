#!/usr/bin/env bash
# Retrains assets/beat/model.safetensors from data/ (run make-data.sh first), then golden.json.
set -euo pipefail
cd "$(dirname "$0")"
nice -n 10 .venv/bin/python train.py --minutes "${MINUTES:-25}" --seed 1 "$@"
.venv/bin/python golden.py
