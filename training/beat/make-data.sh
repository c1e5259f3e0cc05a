#!/usr/bin/env bash
# Regenerates training/beat/data/{train,trainx,trainy,valid,heldout,final,final2,final3,final4,final5,final6,final7,final8,final9,final10,final11,validx,validk,trainn,trainz,trainp,trainb,trainr,trainm} deterministically (seed 1)
# and caches features. Needs: ./setup.sh (fluidsynth, the four soundfonts, the AVL drum kits, espeak-ng, the venv).
set -euo pipefail
cd "$(dirname "$0")"
SEED="${SEED:-1}"
PY=.venv/bin/python
rm -rf data/train data/trainx data/trainy data/valid data/heldout data/final data/final2 data/final3 data/final4 data/final5 data/final6 data/final7 data/final8 data/final9 data/final10 data/final11 data/validx data/validk data/trainn data/trainz data/trainp data/trainb data/trainr data/trainm data/cache
# final2 first: the second split measured only at the end (the failure modes of issue 23 on
# another soundfont, own seed stream); generated before any model or decoder change.
nice -n 10 $PY gen.py --split final2 --count 60 --seed "$SEED"
# final3 (round 5): the third untouched split, generated before that round's decoder/model changes.
nice -n 10 $PY gen.py --split final3 --count 60 --seed "$SEED"
# final4 (round 6): the fourth untouched split, generated before that round's changes.
nice -n 10 $PY gen.py --split final4 --count 60 --seed "$SEED"
# final5 (round 7): the fifth untouched split, generated before that round's retrain.
nice -n 10 $PY gen.py --split final5 --count 60 --seed "$SEED"
# final6 (round 8): the sixth untouched split, generated before that round's changes.
nice -n 10 $PY gen.py --split final6 --count 60 --seed "$SEED"
# final7 (round 9): the seventh untouched split (MuseScore General soundfont), before that round's changes.
nice -n 10 $PY gen.py --split final7 --count 60 --seed "$SEED"
# final8 (round 10): the eighth untouched split (TimGM6mb, synth kit J), before that round's changes.
nice -n 10 $PY gen.py --split final8 --count 60 --seed "$SEED"
# final9 (round 11): the ninth untouched split (OPL3 FM soundfont, synth kit L), before that round's changes.
nice -n 10 $PY gen.py --split final9 --count 60 --seed "$SEED"
# final10 (round 12): the tenth untouched split (recorded AVL drum kits, synth kit M, a club master on half), before that round's changes.
nice -n 10 $PY gen.py --split final10 --count 60 --seed "$SEED"
# final11 (round 13): the eleventh untouched split, what a DJ's line-in sees live (DJ mixer bass kills
# and filter sweeps, a small-club room mic with a crowd, synth kit N), before that round's changes.
nice -n 10 $PY gen.py --split final11 --count 60 --seed "$SEED"
nice -n 10 $PY gen.py --split valid --count 70 --seed "$SEED"
nice -n 10 $PY gen.py --split heldout --count 70 --seed "$SEED"
nice -n 10 $PY gen.py --split train --count 400 --seed "$SEED"
# The styles the real-music failures name (issue 23) and a split measured only at the end.
nice -n 10 $PY gen.py --split trainx --count 160 --seed "$SEED"
# trainy (round 7): bars, drumless songs in four styles and dense guitars, for downbeats.
nice -n 10 $PY gen.py --split trainy --count 150 --seed "$SEED"
# trainn (round 7): negatives for training (loud noise, speech, noise floor, sweeps).
nice -n 10 $PY gen.py --split trainn --count 60 --seed "$SEED"
# trainz (round 8): the FluidR3 kits no other split uses, softer kicks, synth kit Z.
nice -n 10 $PY gen.py --split trainz --count 200 --seed "$SEED"
# trainp (round 9): phase contrast for kick-every-beat music (soft kicks, loud off-beats, kick gaps).
nice -n 10 $PY gen.py --split trainp --count 160 --seed "$SEED"
# trainb (round 9, no model yet): the same phase contrast for breakbeats (dnb, half time, hip-hop).
nice -n 10 $PY gen.py --split trainb --count 120 --seed "$SEED"
# trainr (round 11): every drum song on its own random synth kit, drumless intros.
nice -n 10 $PY gen.py --split trainr --count 280 --seed "$SEED"
# trainm (round 12): 70 % of the songs through a random master chain (pump, EQ, reverb, 1-/3-band
# compression, saturation, lo-fi, limiter/clipper), random synth and FluidR3 kits; covers final10's master.
nice -n 10 $PY gen.py --split trainm --count 280 --seed "$SEED"
nice -n 10 $PY gen.py --split final --count 60 --seed "$SEED"
# validx: decoder tuning only (negatives and stops; round 5).
nice -n 10 $PY gen.py --split validx --count 45 --seed "$SEED"  # 35-44: drumless (round 6)
# validk: decoder tuning only (round 7): kick-every-beat music with 62-85 Hz synthesised kicks.
nice -n 10 $PY gen.py --split validk --count 30 --seed "$SEED"
nice -n 10 $PY cache.py train trainx trainy trainn trainz trainp trainb trainr trainm valid heldout final final2 final3 final4 final5 final6 final7 final8 final9 final10 final11
