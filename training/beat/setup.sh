#!/usr/bin/env bash
# Creates training/beat/.venv (Python 3.11) and the Debian tools the generator calls.
set -euo pipefail
cd "$(dirname "$0")"
if ! command -v fluidsynth >/dev/null || [ ! -f /usr/share/sounds/sf2/FluidR3_GM.sf2 ] || [ ! -f /usr/share/sounds/sf2/TimGM6mb.sf2 ] || [ ! -f /usr/share/sounds/sf3/MuseScore_General_Lite.sf3 ] || [ ! -f /usr/share/sounds/sf2/OPL-3_FM_128M.sf2 ] || [ ! -f /usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2 ] || ! command -v espeak-ng >/dev/null; then
  apt-get install -y --no-install-recommends fluidsynth fluid-soundfont-gm timgm6mb-soundfont musescore-general-soundfont-small opl3-soundfont avldrums.lv2-soundfont espeak-ng
fi
[ -x .venv/bin/python ] || python3.11 -m venv .venv
.venv/bin/pip install -q -r requirements.txt
