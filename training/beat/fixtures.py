"""Writes the CI fixtures tests/fixtures/audio/{four_on_floor_128,break_174}.{flac,beats,json}.

Heldout-style settings (heldout GM programs and kits / heldout synth kit, fixture seed stream), so
they are not training files: python fixtures.py (see README.md).
"""

import os

from gen import make_one

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "tests", "fixtures", "audio")

if __name__ == "__main__":
    common = {"dur": 20.0, "sr": 22050, "aug": 0.0}
    make_one(("fixture", 0, 7, OUT, {**common, "genre": "house", "name": "four_on_floor_128",
                                      "opts": {"bpm": 128.0, "plain": True, "variant": "A",
                                               "gm_drums": False, "lead_in": 0.5}}))
    make_one(("fixture", 1, 7, OUT, {**common, "genre": "dnb", "name": "break_174",
                                      "opts": {"bpm": 174.0, "plain": True, "variant": "A",
                                               "gm_drums": False, "lead_in": 0.5}}))
    print("wrote", OUT)
