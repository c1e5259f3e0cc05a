#!/usr/bin/env bash
# Regenerates training/beat/data/{train,valid,heldout} deterministically (seed 1) and caches
# features. Needs: apt-get install fluidsynth fluid-soundfont-gm espeak-ng; ./setup.sh for the venv.
set -euo pipefail
cd "$(dirname "$0")"
SEED="${SEED:-1}"
PY=.venv/bin/python
rm -rf data/train data/valid data/heldout data/cache
nice -n 10 $PY gen.py --split valid --count 70 --seed "$SEED"
nice -n 10 $PY gen.py --split heldout --count 70 --seed "$SEED"
nice -n 10 $PY gen.py --split train --count 400 --seed "$SEED"
nice -n 10 $PY cache.py
