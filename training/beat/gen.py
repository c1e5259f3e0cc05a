"""Deterministic generator of music with exact beat/downbeat grids (and negatives).

Every file is a pure function of (split, index, seed): python gen.py --split train --count 300
--seed 1. Melodic parts (and half of the drum tracks) are rendered by fluidsynth with FluidR3_GM
from MIDI written here; the other drum tracks are synthesised in numpy. Note times come from the
beat grid, so tempo steps, ramps and swing stay exact. See README.md for the recipe and splits.

Everything that differs between splits is one SplitSpec in SPLITS (below the constants): adding
a split is one entry there (plus its cycle, kit and program constants).
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from multiprocessing import Pool

import mido
import numpy as np
import soundfile as sf
from scipy import ndimage, signal

SF2 = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
# "final2" renders with another General MIDI soundfont (Debian timgm6mb-soundfont): every drum kit
# and instrument there is a sample set no other split has heard (final3 and final8 use it too;
# no training split does).
SF2_FINAL2 = "/usr/share/sounds/sf2/TimGM6mb.sf2"
# "final7" renders everything with a third soundfont (Debian musescore-general-soundfont-small,
# MIT). It is partly adapted from a mono FluidR3 (train's soundfont), re-edited and mixed with
# other samples, so some of its sounds are close relatives of train's, not strangers.
SF3_FINAL7 = "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
# "final9" renders everything with a fourth soundfont (Debian opl3-soundfont, CC-BY-SA-4.0):
# samples of an OPL3 FM chip, so every instrument and its one drum kit are FM sounds no other
# split has (not a relative of FluidR3 like MuseScore General; the full MuseScore General,
# Debian musescore-general-soundfont, has the Lite one's drum kits and differs in five presets).
SF_FINAL9 = "/usr/share/sounds/sf2/OPL-3_FM_128M.sf2"
# "final10" plays its GM-drum songs on recorded acoustic drum kits (Debian avldrums.lv2-soundfont,
# AVL Drumkits by Glen MacArthur, CC-BY-SA-3.0): a Pearl and a Ludwig kit with Sabian/Zildjian
# cymbals, five velocity layers per drum -- the first recorded kits any split has (every GM kit so
# far is a GM soundfont's). Each file holds one whole kit as preset 0 of bank 0 (no bank 128), so
# the drums get their own fluidsynth pass on a melodic channel; the kits have no shaker (GM 70),
# so the tambourine (54) plays its part. csound-soundfont (sf_GMbank.sf2, public domain) was
# looked at and not taken: 318 of its 488 samples are TimGM6mb's, bit for bit.
AVL_KITS = ("/usr/share/sounds/sf2/Black_Pearl_4_LV2.sf2",
            "/usr/share/sounds/sf2/Red_Zeppelin_4_LV2.sf2")
AVL_NOTE = {"shaker": 54}  # GM[voice] unless here
SR = 44100
HERE = os.path.dirname(os.path.abspath(__file__))

# What is held out: GM drum kits (SplitSpec.kits), GM programs (these) and pattern variants used
# only in "heldout" (and in each final split).
TRAIN_PROGS = {
    "bass": [33, 34, 38, 39],
    "guitar": [29, 30, 27],
    "pad": [88, 89, 90, 92, 94, 48, 49],
    "keys": [0, 4, 5],
    "lead": [80, 81, 84],
}
HELDOUT_PROGS = {
    "bass": [35, 36],
    "guitar": [29, 30, 31],
    "pad": [91, 95, 50, 51],
    "keys": [1, 2, 6],
    "lead": [82, 87],
}
# The "final" split (measured once, at the end): its own programs; guitars 29/30 are shared.
FINAL_PROGS = {
    "bass": [32, 37],
    "guitar": [29, 30, 28],
    "pad": [93, 52],
    "keys": [3, 7],
    "lead": [83, 85],
}
# "final2" (the second untouched split): TimGM6mb renderings; pads/keys/leads/acoustic
# guitars that no other split uses; basses and distorted guitars sound different there.
FINAL2_PROGS = {
    "bass": [34, 38],
    "guitar": [29, 30, 25],
    "pad": [53, 54, 100],
    "keys": [11, 16, 18],
    "lead": [86, 81],
}
# "final3" (the third untouched split, 2026-12-06 round 5): TimGM6mb again, with programs no
# other split plays from that soundfont (its distorted guitars 29/30 are shared with final2).
FINAL3_PROGS = {
    "bass": [33, 35, 39],
    "guitar": [29, 30, 26],
    "pad": [96, 97, 99],
    "keys": [8, 10, 12],
    "lead": [84, 87],
}
# "final4" (round 6): FluidR3 again, with programs no split has used (contrabass/tuba basses,
# organ/strings/crystal pads, mallets and plucked keys, brass/reed leads, steel guitar).
FINAL4_PROGS = {
    "bass": [43, 58],
    "guitar": [29, 30, 25],
    "pad": [19, 44, 98],
    "keys": [9, 13, 15],
    "lead": [62, 71],
}
# "final5" (round 7): FluidR3, programs no split has used (cello/trombone/baritone sax basses,
# reed organ/accordion/brass pads, tubular bells/percussive organ/harmonica keys, trumpet/
# soprano sax/flute/ocarina leads; the distorted guitars 29/30 are shared).
FINAL5_PROGS = {
    "bass": [42, 57, 67],
    "guitar": [29, 30],
    "pad": [20, 21, 61],
    "keys": [14, 17, 22],
    "lead": [56, 64, 73, 79],
}
# "final6" (round 8): FluidR3, programs no split has used (bassoon/french horn/viola basses,
# goblins/echoes/synth brass pads, accordion/tenor sax/clarinet keys, alto sax/oboe/recorder/
# pan flute leads; the distorted guitars 29/30 are shared).
FINAL6_PROGS = {
    "bass": [70, 60, 41],
    "guitar": [29, 30],
    "pad": [101, 102, 63],
    "keys": [23, 66, 72],
    "lead": [65, 68, 74, 75],
}
FINAL7_PROGS = {  # final7 (round 9): MuseScore General's renderings (see SF3_FINAL7)
    "bass": [33, 34, 35, 38, 39],
    "guitar": [29, 30],
    "pad": [88, 89, 90, 91, 95],
    "keys": [0, 4, 5, 11],
    "lead": [80, 81, 82],
}
FINAL8_PROGS = {  # final8 (round 10): final7's program numbers, TimGM6mb's renderings
    "bass": [33, 34, 35, 38, 39],
    "guitar": [29, 30],
    "pad": [88, 89, 90, 91, 95],
    "keys": [0, 4, 5, 11],
    "lead": [80, 81, 82],
}
# final9 (round 11): OPL3 FM renderings of program numbers final7/final8 did not use (acoustic,
# slap and contrabass basses; muted guitar; bowed/metallic/halo pads and string ensembles;
# electric grand, harpsichord, clavinet, marimba; charang, voice, fifths and bass+lead leads).
FINAL9_PROGS = {
    "bass": [32, 36, 37, 43],
    "guitar": [29, 30, 28],
    "pad": [92, 93, 94, 48, 50],
    "keys": [2, 6, 7, 12],
    "lead": [84, 85, 86, 87],
}
# final10 (round 12): TimGM6mb's renderings (the melodic parts; the drums are AVL_KITS or synth
# kit M) of programs TimGM6mb has never played in any split and, but for the basses, final7-9 did
# not use: acoustic and slap basses (all eight GM basses are in final7-9; these three only on
# OPL3), clean guitar beside the distorted 29/30, slow strings/synth strings 2/choir/crystal/
# goblins pads, bright piano, honky-tonk, glockenspiel and percussive organ keys, chiffer lead,
# synth brass 2, tenor sax and clarinet leads.
FINAL10_PROGS = {
    "bass": [32, 36, 37],
    "guitar": [29, 30, 27],
    "pad": [49, 51, 52, 98, 101],
    "keys": [1, 3, 9, 17],
    "lead": [83, 63, 66, 71],
}
# final4's drumless songs: the style decides the "keys" part's program and pattern.
FINAL4_DRUMLESS = {
    "pads": ([19, 44, 98], "beat"),  # sustained pads, a soft pad voice on the beats
    "keys": ([1, 15, 9], "8th"),  # keys/mallets in eighths
    "plucked": ([45, 46, 24, 105, 107, 108], "8th"),  # pizzicato, harp, nylon, banjo, koto, kalimba
    "arp": ([13, 46, 108], "16th"),  # sixteenth arpeggios
}
# final5's drumless songs (round 7), the same four styles with programs no split has used.
FINAL5_DRUMLESS = {
    "pads": ([20, 21, 61], "beat"),
    "keys": ([14, 17, 22], "8th"),
    "plucked": ([104, 106], "8th"),  # sitar, shamisen
    "arp": ([14, 106, 17], "16th"),
}
# final6's drumless songs (round 8): programs no training split has used.
FINAL6_DRUMLESS = {
    "pads": ([101, 102, 63], "beat"),
    "keys": ([23, 66, 72], "8th"),
    "plucked": ([24, 105, 46], "8th"),  # nylon, banjo, harp (only final4's drumless had them)
    "arp": ([23, 72, 46], "16th"),
}
# final7's drumless songs (round 9): MuseScore General's sounds.
FINAL7_DRUMLESS = {
    "pads": ([88, 89, 91], "beat"),
    "keys": ([0, 4, 11], "8th"),
    "plucked": ([24, 45, 46], "8th"),
    "arp": ([0, 11, 46], "16th"),
}
# final8's drumless songs (round 10): final7's programs, TimGM6mb's sounds.
FINAL8_DRUMLESS = {
    "pads": ([88, 89, 91], "beat"),
    "keys": ([0, 4, 11], "8th"),
    "plucked": ([24, 45, 46], "8th"),
    "arp": ([0, 11, 46], "16th"),
}
# final9's drumless songs (round 11): other programs than final8's, OPL3 FM sounds.
FINAL9_DRUMLESS = {
    "pads": ([92, 94, 50], "beat"),
    "keys": ([2, 6, 7], "8th"),
    "plucked": ([25, 105, 107], "8th"),  # steel guitar, banjo, koto
    "arp": ([7, 12, 108], "16th"),  # clavinet, marimba, kalimba
}
# final10's drumless songs (round 12): TimGM6mb, programs it has never played in any split.
FINAL10_DRUMLESS = {
    "pads": ([49, 51, 98], "beat"),
    "keys": ([1, 3, 17], "8th"),
    "plucked": ([104, 106, 15], "8th"),  # sitar, shamisen, dulcimer
    "arp": ([13, 9, 3], "16th"),  # xylophone, glockenspiel, honky-tonk
}
# trainy's drumless songs (round 7): the same four styles with train's programs and plucked
# programs no held-out split uses (clean guitar, tinkle bell, steel drums).
TRAIN_DRUMLESS = {
    "pads": ([88, 89, 90, 92, 94, 48, 49], "beat"),
    "keys": ([0, 4, 5], "8th"),
    "plucked": ([27, 112, 114], "8th"),
    "arp": ([0, 4, 5, 27], "16th"),
}
GM = {"kick": 36, "snare": 38, "clap": 39, "chh": 42, "ohh": 46, "ride": 51, "crash": 49,
      "tom": 45, "rim": 37, "shaker": 70, "phh": 44}

GENRES = ["house", "trance", "dnb", "halftime", "hiphop", "rock", "metal", "drumless",
          "waltz", "tempo_change", "negative"]
# relative weight of each genre in a split
WEIGHTS = [14, 8, 12, 7, 9, 12, 11, 8, 5, 9, 5]


# Styles the real-music failures say the first set under-represents (issue 23); used by the
# "trainx" (extra training) and "final" splits only, so train/valid/heldout stay reproducible.
GENRES_X = ["techno", "rock_dense", "halftime_fast", "hiphop_sync", "house", "trance", "dnb",
            "halftime", "hiphop", "rock", "metal", "drumless", "waltz", "tempo_change", "negative"]
WEIGHTS_X = [14, 14, 12, 12, 4, 6, 8, 3, 3, 5, 5, 3, 3, 5, 2]

# The genre cycles (one pass = the split; what each split is for: its entry in SPLITS), the kinds
# of negative a split's negatives take in turn and the styles of its drumless songs in turn.
FINAL_CYCLE = ["techno", "rock_dense", "halftime_fast", "hiphop_sync", "house", "trance", "dnb",
               "halftime", "hiphop", "rock", "metal", "drumless", "waltz", "tempo_change",
               "negative", "dnb", "techno", "rock_dense", "halftime_fast", "hiphop_sync"]
# final2: 60 files, one pass through this list.
FINAL2_CYCLE = (["techno"] * 12 + ["halftime_fast"] * 10 + ["rock_dense"] * 10 + ["metal"] * 5
                + ["tempo_change"] * 8 + ["house"] * 3 + ["dnb"] * 3 + ["hiphop_sync"] * 2
                + ["drumless"] * 1 + ["negative"] * 6)
# final2's negatives: mostly loud noise (one loud-noise file got 26 beats on "final").
FINAL2_NEGATIVES = ["loud_noise", "loud_noise", "loud_noise", "loud_noise", "sweep", "speech"]
FINAL3_CYCLE = (["techno"] * 8 + ["halftime_fast"] * 8 + ["rock_dense"] * 8 + ["bars"] * 8
                + ["tempo_change"] * 6 + ["house"] * 3 + ["metal"] * 3 + ["dnb"] * 3
                + ["hiphop_sync"] * 2 + ["drumless"] * 2 + ["negative"] * 9)
FINAL3_NEGATIVES = ["loud_noise", "noise_floor", "sweep", "speech", "loud_noise", "noise_floor",
                    "loud_noise", "sweep", "speech"]
VALIDX_CYCLE = (["negative"] * 15 + ["techno", "house", "rock", "rock_dense", "halftime_fast",
                                     "dnb", "metal", "hiphop", "tempo_change", "trance"] * 2)
VALIDX_NEGATIVES = ["loud_noise"] * 9 + ["noise_floor", "noise_floor", "sweep", "sweep", "speech",
                                         "speech"]
FINAL4_CYCLE = (["drumless"] * 8 + ["bars"] * 8 + ["halftime_fast"] * 8 + ["rock_dense"] * 8
                + ["dnb"] * 5 + ["tempo_change"] * 7 + ["house"] * 3 + ["techno"] * 3
                + ["negative"] * 10)
FINAL4_NEGATIVES = ["speech", "loud_noise", "noise_floor", "sweep", "speech", "loud_noise",
                    "speech", "noise_floor", "loud_noise", "sweep"]
FINAL4_DRUMLESS_STYLES = ["pads", "keys", "plucked", "arp", "plucked", "pads", "arp", "keys"]
FINAL5_CYCLE = (["drumless"] * 10 + ["bars"] * 8 + ["house"] * 6 + ["halftime_fast"] * 6
                + ["rock_dense"] * 6 + ["techno"] * 4 + ["dnb"] * 4 + ["tempo_change"] * 4
                + ["hiphop_sync"] * 2 + ["metal"] * 2 + ["negative"] * 8)
FINAL5_NEGATIVES = ["speech", "loud_noise", "speech", "noise_floor", "sweep", "speech",
                    "loud_noise", "noise_floor"]
FINAL5_DRUMLESS_STYLES = ["pads", "keys", "plucked", "arp", "pads", "keys", "plucked", "arp",
                          "pads", "keys"]
FINAL6_CYCLE = (["house"] * 8 + ["techno"] * 8 + ["hiphop_sync"] * 6 + ["bars"] * 6
                + ["drumless"] * 6 + ["metal"] * 5 + ["trance"] * 4 + ["halftime_fast"] * 4
                + ["rock_dense"] * 4 + ["dnb"] * 2 + ["tempo_change"] * 2 + ["negative"] * 5)
FINAL6_NEGATIVES = ["speech", "loud_noise", "speech", "noise_floor", "speech"]
FINAL6_DRUMLESS_STYLES = ["pads", "keys", "plucked", "arp", "keys", "plucked"]
FINAL7_CYCLE = (["house"] * 10 + ["techno"] * 10 + ["drumless"] * 6 + ["hiphop_sync"] * 4
                + ["trance"] * 4 + ["bars"] * 4 + ["metal"] * 3 + ["rock_dense"] * 3
                + ["halftime_fast"] * 3 + ["dnb"] * 3 + ["tempo_change"] * 3 + ["hiphop"] * 2
                + ["negative"] * 5)
FINAL7_NEGATIVES = ["speech", "loud_noise", "speech", "noise_floor", "sweep"]
FINAL7_DRUMLESS_STYLES = ["pads", "keys", "plucked", "arp", "keys", "plucked"]
FINAL8_CYCLE = (["dnb"] * 8 + ["techno"] * 8 + ["hiphop_sync"] * 6 + ["trance"] * 6
                + ["drumless"] * 6 + ["house"] * 4 + ["bars"] * 4 + ["tempo_change"] * 4
                + ["halftime_fast"] * 3 + ["metal"] * 2 + ["rock_dense"] * 2 + ["hiphop"] * 2
                + ["negative"] * 5)
FINAL8_NEGATIVES = ["speech", "loud_noise", "speech", "noise_floor", "speech"]
FINAL8_DRUMLESS_STYLES = ["pads", "keys", "plucked", "arp", "pads", "arp"]
FINAL9_CYCLE = (["trance"] * 8 + ["hiphop_sync"] * 8 + ["dnb"] * 6 + ["metal"] * 6
                + ["rock_dense"] * 5 + ["drumless"] * 6 + ["halftime_fast"] * 4 + ["techno"] * 3
                + ["house"] * 3 + ["tempo_change"] * 3 + ["bars"] * 3 + ["negative"] * 5)
FINAL9_NEGATIVES = ["speech", "loud_noise", "speech", "sweep", "speech"]
FINAL9_DRUMLESS_STYLES = ["keys", "pads", "arp", "plucked", "keys", "pads"]
# final10: final9's weights, one more half time at 160-190 (learned 0.397 on final9) for one
# trance and one syncopated hip-hop; 60 files.
FINAL10_CYCLE = (["trance"] * 7 + ["hiphop_sync"] * 7 + ["dnb"] * 6 + ["metal"] * 6
                 + ["rock_dense"] * 5 + ["drumless"] * 6 + ["halftime_fast"] * 5 + ["techno"] * 4
                 + ["house"] * 3 + ["tempo_change"] * 3 + ["bars"] * 3 + ["negative"] * 5)
FINAL10_NEGATIVES = ["speech", "loud_noise", "speech", "noise_floor", "speech"]
FINAL10_DRUMLESS_STYLES = ["arp", "plucked", "keys", "pads", "arp", "plucked"]
# final11: final10's genre cycle and drumless styles; its negatives have a club crowd without
# music (`room_capture`) where final10's have a noise floor.
FINAL11_CYCLE = FINAL10_CYCLE
FINAL11_NEGATIVES = ["speech", "crowd", "speech", "loud_noise", "speech"]
# final11's live conditions by file index (see `dj_mixer`, `room_capture`): 22 mixer, 22 room
# and 11 neither of its 55 music files, spread over the genres.
FINAL11_LIVE = ["mixer", "room", "mixer", "room", None]
TRAINZ_CYCLE = ["techno", "house", "techno", "house", "trance", "rock", "hiphop_sync", "metal",
                "techno", "house", "rock_dense", "dnb", "halftime_fast", "bars", "hiphop"]
TRAINP_CYCLE = ["techno", "house", "techno", "house", "trance", "techno", "house", "tempo_change"]
RANDOM_KIT = -1  # SplitSpec.synth_kit: every song draws its own kit (random_kit)
TRAINR_CYCLE = ["house", "techno", "trance", "rock_dense", "hiphop_sync", "halftime_fast", "house",
                "techno", "dnb", "metal", "bars", "trance", "rock", "hiphop"]
# trainm (round 12, extra training): weighted to what is weak on final9/final10 -- half time at
# 160-190 5, syncopated hip-hop 5, house 4, dense guitars 4, metal 3, techno 3, trance 3, dnb 3,
# `bars` 2, drumless 2 -- per 34 files, interleaved.
TRAINM_CYCLE = ["halftime_fast", "hiphop_sync", "house", "rock_dense", "metal", "techno", "trance",
                "dnb", "halftime_fast", "hiphop_sync", "house", "bars", "drumless", "rock_dense",
                "metal", "halftime_fast", "hiphop_sync", "techno", "trance", "dnb", "house",
                "rock_dense", "halftime_fast", "hiphop_sync", "metal", "techno", "bars", "trance",
                "dnb", "drumless", "halftime_fast", "hiphop_sync", "house", "rock_dense"]
TRAINB_CYCLE = ["dnb", "dnb", "halftime_fast", "dnb", "hiphop_sync", "dnb", "rock_dense", "dnb"]
TRAINN_NEGATIVES = ["loud_noise", "loud_noise", "speech", "noise_floor", "sweep", "loud_noise"]
VALIDK_CYCLE = ["techno", "house", "techno", "house", "trance", "rock", "techno", "house",
                "halftime_fast", "dnb"]
TRAINY_CYCLE = ["bars", "bars", "drumless", "rock_dense", "bars", "drumless"]


@dataclass(frozen=True)
class SplitSpec:
    """Everything that makes one split differ from another.

    A split draws its GM drum kits, GM programs, pattern variants and soundfont from its `pool`
    (a split with held-out sounds is its own pool; the training and tuning splits use "train"'s);
    the fields marked "(pool)" are read from the pool's entry, all others from the split's own.
    The defaults are train's: a field left out means the split does as train does."""
    id: int  # the seed stream: file i is np.random.default_rng([seed, id, i]); never reuse one
    pool: str = "train"  # whose GM kits, programs, pattern variants and soundfont it uses
    # -- sounds
    programs: dict | None = None  # (pool) GM programs per part ("bass", "guitar", "pad", ...)
    kits: list | None = None  # GM drum kits; None: the pool's
    soundfont: str = SF2  # (pool) what fluidsynth renders the MIDI with
    # (pool) whole-kit soundfonts (preset 0 each) the GM drums play from instead, one per song, in
    # their own fluidsynth pass, mixed like the synth kit (None: `kits` of `soundfont`)
    drum_soundfonts: tuple | None = None
    variant: str | None = None  # (pool) its own pattern variant (drum_pattern), on half the songs
    borrowed_variants: bool = False  # (pool) half the songs take one of variants C-F at random
    bars_variant: str = "A"  # (pool) `bars`' second pattern's variant (if the song's is not E/F)
    synth_kit: int = 0  # the numpy drum kit's ranges (synth_voice's kitb)
    synth_name: str = "synth-A"  # meta["drums"] when that kit plays
    gm_drums_p: float = 0.5  # how often a song's drums are GM (fluidsynth), not the synth kit
    synth_drums_only: bool = False  # every song with drums plays the synth kit
    # -- genres and negatives
    cycle: list | None = None  # the genres in turn (one pass = the split); None: drawn by weight
    after_cycle: str | None = None  # the genre of every file after one pass (None: cycle again)
    genres: list | None = None  # drawn from when there is no cycle (None: GENRES)
    weights: list | None = None  # their weights (None: WEIGHTS)
    # the kinds its negatives take in turn (None: random): the n-th negative of the cycle takes
    # kind n, or with negatives_per_file file i takes kind i
    negatives: list | None = None
    negatives_per_file: bool = False
    voices: list | None = None  # espeak-ng voices of its speech negatives (None: train's)
    # -- features of the songs
    pickups: bool = False  # 40% of the songs start on beat 2, 3 or 4 of a bar
    tempo_step_p: float = 0.5  # how often a tempo change is a step (not a ramp)
    drumless_intros: bool = False  # 60% of the drum songs start with 2-8 bars without drums
    several_endings: bool = False  # 60% of the songs stop (not 30%): a "cut", "ring" or "hit"
    more_hit_endings: bool = False  # and 35% of those stops a `hit`
    # drumless songs in styles: style -> (programs of the "keys" part, its pattern) (None: none)
    drumless: dict | None = None
    drumless_styles: list | None = None  # the styles of its drumless songs in turn (None: random)
    soft_kick: bool = False  # the kick 0.35-1x as loud as the rest of the kit
    phase_contrast: bool = False  # the kick 0.3-1x, the other drums 1-1.5x
    kick_drops: bool = False  # bars whose kick drops out (an intro, one or two gaps)
    ghost_snares: bool = False  # two or three ghost snares at random 16ths of every bar
    loud_bass: bool = False  # the (off-beat) bass at full velocity
    # how often a song goes through a master chain and stays loud after augment (at the chain's
    # ceiling): `club_master` (final10: the music ducked by the kick, hall reverb, bus
    # compression, tape saturation, a brickwall limiter pushed hard) or `random_master`
    master_p: float = 0.0
    master_chain: str = "club"  # "club": `club_master`; "random": `random_master` (trainm)
    # the GM drums in their own fluidsynth pass (the pool's soundfont, channel 9), mixed like the
    # synth kit, so a master's pump can duck the music and not the drums (trainm)
    gm_drum_pass: bool = False
    # final11: the live condition of file i, live[i % len(live)] (FINAL11_LIVE: "mixer" -- DJ
    # mixer moves, `dj_mixer` --, "room" -- a room-mic capture with a crowd, `room_capture` -- or
    # None); None: no such stage (and no "live" in the JSON)
    live: list | None = None
    # -- other
    renders_as: str | None = None  # its songs are made as this split's (fixtures.py)
    cli: bool = True  # a --split choice


SPLITS = {
    "train": SplitSpec(id=1, pool="train", programs=TRAIN_PROGS, kits=[0, 16, 24, 25]),
    "valid": SplitSpec(id=2),
    "heldout": SplitSpec(id=3, pool="heldout", programs=HELDOUT_PROGS, kits=[8, 32], variant="B",
                         synth_kit=1, synth_name="synth-B"),
    # CI fixtures (fixtures.py, through make_one): heldout's settings, their own seed stream.
    "fixture": SplitSpec(id=4, pool="heldout", renders_as="heldout", cli=False),
    # "final": every genre in turn (about 4 files each), so each has a row in the table.
    "final": SplitSpec(id=5, pool="final", programs=FINAL_PROGS, kits=[40], variant="C",
                       synth_kit=2, synth_name="synth-C", cycle=FINAL_CYCLE, pickups=True),
    # "trainx" (extra training): the styles of GENRES_X.
    "trainx": SplitSpec(id=6, genres=GENRES_X, weights=WEIGHTS_X, pickups=True),
    # "final2": the failure modes issue 23 names, weighted to them (techno with off-beat hats and
    # bass, half time at 160-190, buried kicks under dense guitars, loud-noise negatives, tempo
    # changes); TimGM6mb's kits (other samples than FluidR3's).
    "final2": SplitSpec(id=7, pool="final2", programs=FINAL2_PROGS, kits=[0, 16, 24, 25],
                        soundfont=SF2_FINAL2, variant="D", synth_kit=3, synth_name="synth-D",
                        cycle=FINAL2_CYCLE, negatives=FINAL2_NEGATIVES, pickups=True,
                        drumless_intros=True),
    # "final3" (round 5): what is still not met after final2 -- negatives of every kind, music that
    # stops into silence with several endings, downbeat-heavy songs ("bars": a clear bar structure
    # whose drum pattern changes every 4 bars, fills and a crash on the next downbeat), half time at
    # 160-190, techno with off-beat hats and bass, dense guitars, drumless intros, tempo steps;
    # TimGM6mb's room/jazz/brush kits (no other split has them).
    "final3": SplitSpec(id=8, pool="final3", programs=FINAL3_PROGS, kits=[8, 32, 40],
                        soundfont=SF2_FINAL2, variant="E", bars_variant="E", synth_kit=4,
                        synth_name="synth-E", cycle=FINAL3_CYCLE, negatives=FINAL3_NEGATIVES,
                        pickups=True, tempo_step_p=0.8, drumless_intros=True,
                        several_endings=True),
    # "validx" (round 5, decoder tuning only, next to valid): what valid has too little of to tune
    # the noise gate and the stop on -- negatives (mostly loud noise) and songs that stop, with the
    # train split's kits and programs; files 35-44 (round 6): drumless songs, to tune the
    # decoder's gate on music without drums.
    "validx": SplitSpec(id=9, cycle=VALIDX_CYCLE, after_cycle="drumless",
                        negatives=VALIDX_NEGATIVES, negatives_per_file=True,
                        several_endings=True),
    # "final4" (round 6, generated before that round's changes): drumless songs of several styles,
    # music that stops (half of the endings a `hit`), negatives of every kind with more speech,
    # `bars`, half time at 160-190, dense guitars, dnb, tempo steps; FluidR3's Power 2, Room 3,
    # Jazz 2, Standard 5 and Orchestra kits.
    "final4": SplitSpec(id=10, pool="final4", programs=FINAL4_PROGS, kits=[18, 11, 34, 5, 48],
                        variant="F", bars_variant="F", synth_kit=5, synth_name="synth-F",
                        cycle=FINAL4_CYCLE, negatives=FINAL4_NEGATIVES,
                        # speech negatives in voices no other split has (so do final5-final9)
                        voices=["it", "pt", "nl", "en-gb", "en+f4", "en+m1"],
                        pickups=True, drumless_intros=True, several_endings=True,
                        more_hit_endings=True, drumless=FINAL4_DRUMLESS,
                        drumless_styles=FINAL4_DRUMLESS_STYLES),
    # "trainy" (round 7, extra training for downbeats and music without drums): `bars` (a pattern
    # change every 4 bars, fills, a crash on the next downbeat), drumless songs and dense guitars,
    # with train's kits and programs; songs stop with the three endings as in validx.
    "trainy": SplitSpec(id=11, cycle=TRAINY_CYCLE, pickups=True, drumless_intros=True,
                        several_endings=True, drumless=TRAIN_DRUMLESS),
    # "final5" (round 7, generated before that round's changes): more drumless songs, `bars`, house
    # (round 6's weakest genre), half time at 160-190, dense guitars, techno, dnb, tempo steps,
    # negatives with speech in voices no other split has; FluidR3's Power 3, Brush 1, Jazz 4,
    # Room 6 and Standard 7 kits.
    "final5": SplitSpec(id=12, pool="final5", programs=FINAL5_PROGS, kits=[19, 41, 36, 14, 7],
                        borrowed_variants=True, bars_variant="D", synth_kit=6,
                        synth_name="synth-G", cycle=FINAL5_CYCLE, negatives=FINAL5_NEGATIVES,
                        voices=["sv", "pl", "cs", "en-us+m2", "en+f2", "hi"], pickups=True,
                        drumless_intros=True, several_endings=True, more_hit_endings=True,
                        drumless=FINAL5_DRUMLESS, drumless_styles=FINAL5_DRUMLESS_STYLES),
    # "validk" (round 7, decoder tuning only): kick-every-beat music whose synthesised kick has its
    # fundamental at 62-85 Hz (train's synth kicks: 40-55 Hz), with train's programs -- to tune the
    # off-beat rejection's kick band, which final5's synth kit G (70-78 Hz) showed too low.
    "validk": SplitSpec(id=13, synth_kit=7, synth_name="synth-K", synth_drums_only=True,
                        cycle=VALIDK_CYCLE, pickups=True),
    # "trainn" (round 7, training only): negatives -- loud noise (the round-7 candidate network
    # pulsed on it), speech in train's voices, noise floor, sweeps.
    "trainn": SplitSpec(id=14, cycle=["negative"], negatives=TRAINN_NEGATIVES,
                        negatives_per_file=True),
    # "final6" (round 8, generated before that round's changes): what final5 left unmet -- house and
    # techno (off-beat locking), syncopated hip-hop, metal, trance, `bars`, drumless songs, speech
    # negatives in voices no other split has; FluidR3 kits and programs no split has used (Power 1,
    # Brush 2, Jazz 3, Room 4 and Standard 2 kits), synth kit H.
    "final6": SplitSpec(id=15, pool="final6", programs=FINAL6_PROGS, kits=[17, 42, 35, 12, 2],
                        borrowed_variants=True, bars_variant="C", synth_kit=8,
                        synth_name="synth-H", cycle=FINAL6_CYCLE, negatives=FINAL6_NEGATIVES,
                        voices=["da", "fi", "hu", "ro", "en+m4", "en+f1"], pickups=True,
                        drumless_intros=True, several_endings=True, more_hit_endings=True,
                        drumless=FINAL6_DRUMLESS, drumless_styles=FINAL6_DRUMLESS_STYLES),
    # "trainz" (round 8, extra training): kick-every-beat music and the other drum genres with the
    # kits below, the kick softened (0.35-1x velocity) under off-beat hats and bass, synth kit Z
    # (kick fundamentals 40-90 Hz); train's programs. Its kits: the FluidR3 kits no other split
    # uses -- Standard 1, 3, 4 and 6, Room 1, 2, 5 and 7, Jazz 1 (round 7 and 8's untouched splits
    # put house and techno on the off-beat with kits whose kick is softer than train's four kits').
    "trainz": SplitSpec(id=16, kits=[1, 3, 4, 6, 9, 10, 13, 15, 33], synth_kit=9,
                        synth_name="synth-Z", gm_drums_p=0.7, cycle=TRAINZ_CYCLE, pickups=True,
                        soft_kick=True),
    # "final7" (round 9, generated before that round's changes): the seventh untouched split, on a
    # soundfont no split has used (MuseScore General; see SF3_FINAL7) and synth kit I; weighted to
    # what final6 left unmet -- house and techno (the off-beat coin toss), drumless songs,
    # syncopated hip-hop, trance. MuseScore General's Standard, Room, Power, Electronic, TR-808,
    # Jazz and Brush kits.
    "final7": SplitSpec(id=17, pool="final7", programs=FINAL7_PROGS,
                        kits=[0, 8, 16, 24, 25, 32, 40], soundfont=SF3_FINAL7,
                        borrowed_variants=True, bars_variant="E", synth_kit=10,
                        synth_name="synth-I", cycle=FINAL7_CYCLE, negatives=FINAL7_NEGATIVES,
                        voices=["el", "tr", "ru", "id", "en+f5", "en+m5"], pickups=True,
                        drumless_intros=True, several_endings=True, more_hit_endings=True,
                        drumless=FINAL7_DRUMLESS, drumless_styles=FINAL7_DRUMLESS_STYLES),
    # "trainp" (round 9, extra training): phase contrast for kick-every-beat music -- the kick 0.3-1x
    # and everything else 1-1.5x as loud as the pattern says, the off-beat bass at full velocity, and
    # bars where the kick drops out under the off-beat hats and bass (an intro on half of the files,
    # gaps later), labels unchanged: the kick's timbre and the genre's convention (open hat and bass
    # between the beats) must decide the phase, not which onset is loudest. Train's kits and
    # programs, synth kit Z.
    "trainp": SplitSpec(id=18, synth_kit=9, synth_name="synth-Z", cycle=TRAINP_CYCLE,
                        pickups=True, phase_contrast=True, kick_drops=True, loud_bass=True),
    # "trainb" (round 9, extra training, not yet in a model): trainp's phase contrast for breakbeats
    # and other music without a kick on every beat -- the kick 0.3-1x and the rest 1-1.5x, bars
    # without the kick, two or three ghost snares at random 16ths per bar -- because 12-07f, a
    # fine-tune with trainp alone, lost on dnb what it won on techno (docs/performance.md, round 9).
    "trainb": SplitSpec(id=19, synth_kit=9, synth_name="synth-Z", cycle=TRAINB_CYCLE,
                        pickups=True, phase_contrast=True, kick_drops=True, ghost_snares=True),
    # "trainr" (round 11, extra training): every drum song on its own random synth kit
    # (`random_kit`), 60% with drumless intros, for the off-beat locks round 11 found: the
    # network fires between the kicks of synth kits it never heard, or keeps the phase a
    # drumless intro's bass suggested after the kicks come in.
    "trainr": SplitSpec(id=22, synth_kit=RANDOM_KIT, synth_name="synth-R", synth_drums_only=True,
                        cycle=TRAINR_CYCLE, pickups=True, drumless_intros=True,
                        several_endings=True),
    # "final8" (round 10, generated before that round's changes): the eighth untouched split, TimGM6mb
    # soundfont and kits with synth kit J; weighted to what round 9 left unmet -- dnb, techno,
    # syncopated hip-hop, trance, drumless songs. TimGM6mb's Standard, Room, Power, Electronic,
    # TR-808, Jazz and Brush kits (see SF2_FINAL2; final2 and final3 had some of them, no training
    # split has).
    "final8": SplitSpec(id=20, pool="final8", programs=FINAL8_PROGS,
                        kits=[0, 8, 16, 24, 25, 32, 40], soundfont=SF2_FINAL2,
                        borrowed_variants=True, bars_variant="E", synth_kit=11,
                        synth_name="synth-J", cycle=FINAL8_CYCLE, negatives=FINAL8_NEGATIVES,
                        voices=["ko", "vi", "bg", "ca", "en+m6", "en+steph"], pickups=True,
                        drumless_intros=True, several_endings=True, more_hit_endings=True,
                        drumless=FINAL8_DRUMLESS, drumless_styles=FINAL8_DRUMLESS_STYLES),
    # "final9" (round 11, generated before that round's changes): the ninth untouched split, on a
    # fourth soundfont no split has used (OPL3 FM; see SF_FINAL9) -- its one drum kit (GM kit 0,
    # FM drums) -- and synth kit L; weighted to what is still weak -- trance, syncopated hip-hop,
    # dnb, metal, dense guitars, drumless songs -- with half time at 160-190, techno, house, tempo
    # changes, `bars` (alternating with variant D) and negatives with more speech.
    "final9": SplitSpec(id=21, pool="final9", programs=FINAL9_PROGS, kits=[0],
                        soundfont=SF_FINAL9, borrowed_variants=True, bars_variant="D",
                        synth_kit=12, synth_name="synth-L", cycle=FINAL9_CYCLE,
                        negatives=FINAL9_NEGATIVES,
                        voices=["sk", "uk", "lt", "hr", "en+m7", "en+Annie"], pickups=True,
                        drumless_intros=True, several_endings=True, more_hit_endings=True,
                        drumless=FINAL9_DRUMLESS, drumless_styles=FINAL9_DRUMLESS_STYLES),
    # "final10" (round 12, generated before that round's changes): the tenth untouched split. Its
    # GM drums are recorded acoustic kits (AVL_KITS: no split has heard a recorded kit), its other
    # drum songs play synth kit M (outside every synth kit's and trainr's ranges; see
    # synth_voice_m), and half of its songs go through a club master no split has (`club_master`:
    # the music pumping under the kick, a hall, glue compression, tape, a limiter pushed hard).
    # Melodic parts from TimGM6mb with programs it never played; weighted as final9 (trance,
    # syncopated hip-hop, dnb, metal, dense guitars, drumless songs, half time at 160-190, ...).
    "final10": SplitSpec(id=23, pool="final10", programs=FINAL10_PROGS, kits=[0],
                         soundfont=SF2_FINAL2, drum_soundfonts=AVL_KITS, borrowed_variants=True,
                         bars_variant="C", synth_kit=13, synth_name="synth-M",
                         cycle=FINAL10_CYCLE, negatives=FINAL10_NEGATIVES,
                         voices=["is", "lv", "sl", "cy", "en+m8", "en+grandma"], pickups=True,
                         drumless_intros=True, several_endings=True, more_hit_endings=True,
                         drumless=FINAL10_DRUMLESS, drumless_styles=FINAL10_DRUMLESS_STYLES,
                         master_p=0.5),
    # "trainm" (round 12, extra training; made after final10 was scored, from its result: beat F
    # 0.63 on its club-mastered files against 0.79 on the rest, and no training split had any
    # mastering): 70 % of the songs through `random_master`, a chain drawn per song (pump,
    # EQ, reverb, one- or three-band compression, saturation, lo-fi, limiter or clipper, each on
    # or off; its ranges beside final10's above `_rms`). It covers final10's master condition
    # (pump depth/release, glue compression, the limiter pushed 7-13 dB into -1 dBFS): a model
    # trained on it has heard mastering, so final10's mastered files are no longer an unheard
    # condition for it, only a relative of what it heard. Drums: trainr's random synth kits
    # (`random_kit`) and the FluidR3 kits of train and trainz, the GM drums in their own pass so
    # the pump ducks the music only; never final10's recorded AVL kits or synth kit M. Train's
    # programs; weighted to what is weak on final9/final10 (TRAINM_CYCLE); pickups, drumless
    # intros and several endings as in trainr.
    "trainm": SplitSpec(id=24, kits=[0, 16, 24, 25, 1, 3, 4, 6, 9, 10, 13, 15, 33],
                        synth_kit=RANDOM_KIT, synth_name="synth-R", gm_drum_pass=True,
                        cycle=TRAINM_CYCLE, pickups=True, drumless_intros=True,
                        several_endings=True, drumless=TRAIN_DRUMLESS, master_p=0.7,
                        master_chain="random"),
    # "final11" (round 13, generated before that round's changes): the eleventh untouched split,
    # about what a DJ's line-in sees live (FINAL11_LIVE, by file index): on 2 of every 5 files
    # DJ mixer moves (`dj_mixer`: an isolator's bass kill held 4-16 bars, resonant high- or
    # low-pass sweeps over 4-16 bars), on 2 of 5 a room-mic capture (`room_capture`: a small
    # club's IR with a 50-90 Hz boom and a flutter echo, a chattering and cheering crowd 6-20 dB
    # under the music, a mic's response), on 1 of 5 neither; its other drum songs play synth kit
    # N (an FM drum machine outside every kit's ranges in shape; see synth_voice_n); speech
    # negatives in voices no other split uses, and a crowd without music. Its GM drums, programs,
    # soundfont and pattern variants are final10's (pool "final10": the recorded AVL kits,
    # TimGM6mb's programs; in no training split), so its None files are final10's conditions
    # unmastered; weighted as final10.
    "final11": SplitSpec(id=25, pool="final10", synth_kit=14, synth_name="synth-N",
                         cycle=FINAL11_CYCLE, negatives=FINAL11_NEGATIVES,
                         voices=["af", "sq", "et", "eu", "en+Gene", "en+announcer"],
                         pickups=True, drumless_intros=True, several_endings=True,
                         more_hit_endings=True, drumless=FINAL10_DRUMLESS,
                         drumless_styles=FINAL10_DRUMLESS_STYLES, live=FINAL11_LIVE),
}
assert len({s.id for s in SPLITS.values()}) == len(SPLITS), "two splits share a seed stream"
assert all(SPLITS[s.pool].programs and SPLITS[s.pool].kits for s in SPLITS.values())


# ---------------------------------------------------------------- beat grids
def make_grid(rng, bpm_fn, n_beats, t0=0.0):
    """Beat times from a per-beat tempo function."""
    t = [t0]
    for i in range(n_beats):
        t.append(t[-1] + 60.0 / bpm_fn(i))
    return np.array(t)


def pos_to_time(grid, pos):
    """Time of a fractional beat position (linear within a beat, extrapolated at the ends)."""
    pos = np.asarray(pos, dtype=float)
    i = np.clip(np.floor(pos).astype(int), 0, len(grid) - 2)
    frac = pos - i
    return grid[i] + frac * (grid[i + 1] - grid[i])


# ---------------------------------------------------------------- patterns (16 steps / 4 beats)
def steps(*s):
    return [x / 4.0 for x in s]


def drum_pattern(genre, rng, variant):
    """List of (beat position within bar, voice, velocity); bar length in beats."""
    p = []
    bar = 4
    if genre in ("house", "tempo_change_house"):
        p += [(b, "kick", 115) for b in range(4)]
        p += [(b + 0.5, "ohh", 90) for b in range(4)]
        if rng.random() < 0.7:
            p += [(b, "clap", 100) for b in (1, 3)]
        if rng.random() < 0.6:
            p += [(x, "chh", 60) for x in steps(1, 3, 5, 7, 9, 11, 13, 15)]
        if variant == "B":  # heldout-only: shuffled 16ths and a shaker
            p += [(x + 0.04, "shaker", 55) for x in steps(1, 5, 9, 13)]
            p += [(3.75, "rim", 70)]
        if variant == "C":  # final-only: ride on the off-beat, rim syncopation
            p += [(b + 0.5, "ride", 80) for b in range(4)] + [(x, "rim", 75) for x in steps(3, 10)]
        if variant == "D":  # final2-only: off-beat claps on top of the open hat
            p += [(b + 0.5, "clap", 70) for b in range(4)]
        if variant == "E":  # final3-only: 16th shaker, rim on the a of 3
            p += [(x, "shaker", 65) for x in steps(*range(16))] + [(2.75, "rim", 80)]
        if variant == "F":  # final4-only: pedal hat on the beats, tom on the a of 4
            p += [(b, "phh", 70) for b in range(4)] + [(3.75, "tom", 85)]
    elif genre == "techno":
        # the hats and the off-beat louder than the kick (kick quiet, hats hard)
        p += [(b, "kick", 75) for b in range(4)]
        p += [(b + 0.5, "ohh", 127) for b in range(4)]
        p += [(x, "chh", 110 if x % 1 else 85) for x in steps(*range(0, 16, 2))]
        if rng.random() < 0.5:
            p += [(x, "rim", 90) for x in steps(3, 6, 11, 14)]
        if variant == "C":
            p += [(x, "shaker", 100) for x in steps(*range(1, 16, 2))]
        if variant == "D":  # final2-only: clap on 2 and 4, loud pedal hat on the off-beat
            p += [(b, "clap", 95) for b in (1, 3)] + [(x, "phh", 110) for x in steps(2, 6, 10, 14)]
        if variant == "E":  # final3-only: off-beat ride, no kick on beat 4
            p = [h for h in p if not (h[1] == "kick" and h[0] == 3)]
            p += [(b + 0.5, "ride", 110) for b in range(4)]
        if variant == "F":  # final4-only: claps on every off-beat 16th before the beat
            p += [(x, "clap", 80) for x in steps(3, 7, 11, 15)]
    elif genre == "halftime_fast":
        # punk/metal/dnb at 160-190 felt in half time: snare on 3, kick on 1, 8th hats
        p += [(0, "kick", 120), (2, "snare", 120)]
        if rng.random() < 0.5:
            p += [(1.5, "kick", 100), (3.5, "kick", 90)]
        hat = "ride" if rng.random() < 0.4 else "chh"
        p += [(x / 2, hat, 85 if x % 2 == 0 else 60) for x in range(8)]
        if variant == "C":
            p += [(3.75, "snare", 70), (2.75, "kick", 95)]
        if variant == "D":  # final2-only: ghost snare, pushed kick, 16th ride bell
            p += [(1.75, "snare", 60), (3.25, "kick", 95)] + [(x, "ride", 50) for x in steps(1, 5, 9, 13)]
        if variant == "E":  # final3-only: crash on 1, a kick on the and of 2
            p += [(0, "crash", 90), (2.5, "kick", 100)]
        if variant == "F":  # final4-only: tom on 4, a kick on the a of 1
            p += [(3, "tom", 100), (1.75, "kick", 95)]
    elif genre == "hiphop_sync":
        # syncopated: kicks off the beat, ghost snares, swung 16th hats
        p += [(0, "kick", 115), (0.75, "kick", 95), (1.5, "kick", 100), (2.25, "kick", 105),
              (2.75, "kick", 90), (1, "snare", 110), (3, "snare", 110)]
        p += [(x, "snare", 40) for x in steps(7, 13) if rng.random() < 0.6]
        p += [(x, "chh", 70 if x % 0.5 == 0 else 45) for x in steps(*range(16))]
        if variant == "C":
            p = [h for h in p if not (h[1] == "kick" and h[0] == 0)] + [(0.25, "kick", 110)]
    elif genre == "trance":
        p += [(b, "kick", 120) for b in range(4)]
        p += [(b + 0.5, "ohh", 95) for b in range(4)]
        p += [(b, "clap", 90) for b in (1, 3)]
        p += [(x, "chh", 50) for x in steps(*range(16))] if rng.random() < 0.5 else []
        if variant == "B":
            p += [(x, "ride", 60) for x in steps(2, 6, 10, 14)]
        if variant == "C":
            p += [(x, "chh", 90) for x in steps(*range(1, 16, 2))]
    elif genre == "dnb":
        breaks = [
            [(0, "kick"), (4, "snare"), (10, "kick"), (12, "snare")],
            [(0, "kick"), (2, "kick"), (4, "snare"), (7, "snare"), (9, "snare"), (10, "kick"),
             (12, "snare"), (15, "snare")],  # amen-ish
            [(0, "kick"), (4, "snare"), (6, "kick"), (10, "kick"), (12, "snare"), (14, "snare")],
        ]
        if variant == "B":  # heldout-only break
            br = [(0, "kick"), (3, "kick"), (4, "snare"), (8, "kick"), (11, "snare"),
                  (12, "snare"), (14, "kick")]
        elif variant == "C":  # final-only break
            br = [(0, "kick"), (4, "snare"), (7, "kick"), (9, "kick"), (12, "snare"), (13, "snare"),
                  (15, "kick")]
        elif variant == "D":  # final2-only break
            br = [(0, "kick"), (4, "snare"), (6, "snare"), (10, "kick"), (11, "kick"), (12, "snare"),
                  (14, "kick")]
        elif variant == "E":  # final3-only break
            br = [(0, "kick"), (2, "kick"), (4, "snare"), (8, "kick"), (10, "snare"), (12, "snare"),
                  (13, "kick")]
        elif variant == "F":  # final4-only break
            br = [(0, "kick"), (3, "snare"), (4, "snare"), (6, "kick"), (10, "kick"), (12, "snare"),
                  (15, "snare")]
        else:
            br = breaks[rng.integers(len(breaks))]
        p += [(s / 4.0, v, 115 if v == "kick" else 105) for s, v in br]
        hat = "ride" if rng.random() < 0.3 else "chh"
        hs = range(0, 16, 2) if rng.random() < 0.5 else range(16)
        p += [(s / 4.0, hat, 70 if s % 2 == 0 else 45) for s in hs]
        p += [(s / 4.0, "snare", 35) for s in (3, 11) if rng.random() < 0.5]  # ghosts
    elif genre == "halftime":
        p += [(0, "kick", 120), (2, "snare", 115)]
        if rng.random() < 0.5:
            p += [(2.75, "kick", 100)]
        p += [(x, "chh", 70) for x in steps(*range(0, 16, 2))]
        if variant == "B":
            p += [(x, "chh", 45) for x in (1 / 3, 2 / 3, 4 / 3, 5 / 3)]
        if variant == "C":
            p += [(3.5, "kick", 90), (1.25, "rim", 70)]
    elif genre == "hiphop":
        p += [(0, "kick", 115), (1.75, "kick", 95), (2.5, "kick", 105), (1, "snare", 110),
              (3, "snare", 110)]
        p += [(x, "chh", 75 if x % 1 == 0 else 55) for x in steps(*range(0, 16, 2))]
        if variant == "B":
            p += [(3.75, "snare", 50), (0.75, "kick", 80)]
        if variant == "C":
            p += [(2.25, "kick", 85), (1.5, "rim", 60)]
    elif genre in ("rock", "metal", "tempo_change_rock"):
        kicks = [0, 2] + ([2.5] if rng.random() < 0.5 else []) + ([1.5] if rng.random() < 0.3 else [])
        if genre == "metal" and rng.random() < 0.5:
            kicks = [x / 2 for x in range(8)]  # double-kick eighths
        p += [(x, "kick", 115) for x in kicks]
        p += [(b, "snare", 115) for b in (1, 3)]
        hat = "ride" if rng.random() < 0.35 else "chh"
        p += [(x / 2, hat, 80 if x % 2 == 0 else 60) for x in range(8)]
        if variant == "B":  # heldout-only: tom fill on beat 4
            p += [(3 + x / 4, "tom", 90) for x in range(4)]
        if variant == "C":  # final-only: crash-ride accents on the and of 4
            p += [(3.5, "crash", 85), (1.5, "snare", 50)]
        if variant == "D":  # final2-only: 16th hats between the eighths, a kick on the and of 1
            p += [(x, "chh", 45) for x in steps(1, 3, 5, 7, 9, 11, 13, 15)] + [(0.5, "kick", 100)]
        if variant == "E":  # final3-only: ride bell on the beats, a kick on the and of 3
            p += [(b, "ride", 75) for b in range(4)] + [(2.5, "kick", 105)]
        if variant == "F":  # final4-only: open hat on the and of 4, a kick on the a of 2
            p += [(3.5, "ohh", 90), (1.75, "kick", 100)]
    elif genre == "waltz":
        bar = 3
        p += [(0, "kick", 110), (1, "chh", 70), (2, "chh", 70)]
        if rng.random() < 0.5:
            p += [(1, "snare", 80), (2, "snare", 80)]
        if variant == "C":
            p += [(2.5, "chh", 60)]
    return p, bar


# ---------------------------------------------------------------- numpy drum synth
def clap_or_rim(x, voice):
    """A snare hit x made into the voice asked for (`synth_voice`'s kits and kit M; kit N has its
    own clap and rim): the clap is the hit with two echoes 10 and 20 ms later (0.6x each), the rim
    the hit halved, the snare the hit as it is."""
    if voice == "clap":
        n = len(x)
        for d in (0.01, 0.02):
            k = int(d * SR)
            x[k:] += 0.6 * x[: n - k]
    return x * (0.5 if voice == "rim" else 1.0)


def synth_voice(voice, rng, kitb, drawn=None):
    """One drum hit as a numpy array at SR; kitb 1 / 2 / 3 / 4 / 5 / 6 / 7 / 8 / 9 / 10 / 11 / 12 selects
    the heldout / final / final2 / final3 / final4 / final5 / validk / final6 / trainz / final7 /
    final8 / final9 ranges (0: train's; 11, synth kit J: a 58-66 Hz kick swept down from 420-500 Hz,
    snares 0.8x as long as train's, dark hats high-passed at 1.3-1.8 kHz; 12, synth kit L: a 46-53
    Hz kick swept down from 700-900 Hz (a clicky attack), snares 2.2x as long as train's, bright
    hats high-passed at 9.5-12.5 kHz). kitb -1 (`RANDOM_KIT`): every song draws its own ranges
    (`drawn`, from `random_kit`). kitb 13 (`KIT_M`, final10's synth kit M): `synth_voice_m`;
    kitb 14 (`KIT_N`, final11's synth kit N): `synth_voice_n`."""
    if kitb == KIT_M and voice != "tom":
        return synth_voice_m(voice, rng)
    if kitb == KIT_N and voice != "tom":
        return synth_voice_n(voice, rng)

    def env(n, tau):
        return np.exp(-np.arange(n) / (tau * SR))
    if voice == "kick":
        n = int(0.35 * SR)
        f0 = rng.uniform(*drawn["f0"]) if kitb == RANDOM_KIT else rng.uniform(*[(40, 55), (58, 70), (33, 40), (48, 56), (44, 50), (60, 66), (70, 78), (62, 85), (54, 64),
                               (40, 90), (50, 58), (58, 66), (46, 53)][kitb])
        f1 = rng.uniform(*drawn["f1"]) if kitb == RANDOM_KIT else rng.uniform(*[(120, 200), (220, 300), (300, 420), (85, 110), (500, 700), (150, 180), (110, 130), (120, 260), (180, 240),
                               (100, 400), (260, 340), (420, 500), (700, 900)][kitb])
        f = f0 + (f1 - f0) * env(n, 0.025)
        ph = 2 * np.pi * np.cumsum(f) / SR
        x = np.sin(ph) * env(n, rng.uniform(0.08, 0.25))
        x[:200] += rng.normal(0, 0.3, 200) * env(200, 0.001)
        return x
    if voice in ("snare", "clap", "rim"):
        n = int(0.25 * SR)
        noise = rng.normal(0, 1, n)
        b, a = signal.butter(2, [rng.uniform(800, 2000) / (SR / 2), 0.45], "band")
        noise = signal.lfilter(b, a, noise)
        tone = np.sin(2 * np.pi * rng.uniform(160, 240) * np.arange(n) / SR)
        tau = 0.06 if voice == "snare" else 0.03
        tau *= drawn["snare"] if kitb == RANDOM_KIT else [1.0, 1.6, 0.7, 1.3, 2.0, 0.5, 2.6, 1.0, 1.8, 1.4, 1.2, 0.8, 2.2][kitb]
        return clap_or_rim((0.7 * noise + 0.4 * tone) * env(n, tau), voice)
    if voice in ("chh", "ohh", "shaker", "phh", "ride", "crash"):
        dur = {"chh": 0.06, "ohh": 0.35, "shaker": 0.08, "phh": 0.05, "ride": 0.6, "crash": 1.2}[voice]
        n = int(dur * 2.5 * SR)
        noise = rng.normal(0, 1, n)
        lo = rng.uniform(*drawn["hat"]) if kitb == RANDOM_KIT else rng.uniform(*[(5000, 8000), (3500, 5000), (8500, 11000), (2500, 3500),
                           (1800, 2500), (6000, 7000), (11000, 13000), (5000, 8000),
                           (7000, 9500), (2000, 12000), (4000, 5500), (1300, 1800),
                           (9500, 12500)][kitb])
        b, a = signal.butter(2, min(lo / (SR / 2), 0.9), "high")
        x = signal.lfilter(b, a, noise) * env(n, dur / 2.5) * 0.5
        return x
    if voice == "tom":
        n = int(0.3 * SR)
        f = rng.uniform(90, 180) * (1 + 0.5 * env(n, 0.03))
        return np.sin(2 * np.pi * np.cumsum(f) / SR) * env(n, 0.1)
    return np.zeros(1)


KIT_M = 13  # SplitSpec.synth_kit of final10's synth kit M (synth_voice_m)
# The TR-808's six cymbal/hat square-wave oscillators (Hz); kit M's metallic hats and cymbals.
METAL_HZ = (205.3, 304.4, 369.6, 522.7, 540.0, 800.0)


def synth_voice_m(voice, rng):
    """Synth kit M (final10, round 12): drums outside every other kit's and trainr's ranges
    (`synth_voice`, `random_kit`) in their shape, not only in their numbers. Every other kit's
    kick is a clean sine swept down from at most 900 Hz (trainr: 715) with a 25 ms pitch time
    constant and an 80-250 ms body; M's kick (its 45-50 Hz fundamental is inside the others'
    ranges) sweeps down from 1.1-1.4 kHz in 8 ms, its body decays in 30-50 ms and is driven 4-8x
    into tanh (near-square, odd harmonics; no other kit saturates): a short, clicky, distorted kick. Its snare rings at 280-340 Hz (others 160-240) under noise
    band-passed from 3-4.5 kHz (others from 0.8-2 kHz) with 3.2x train's decay (others and
    trainr at most 2.8x). Its hats and cymbals are metallic, the TR-808's six square waves
    (detuned together by +-5 %) band-passed at 6-8.5 kHz, with a little noise: every other kit's
    hats are high-passed noise. Toms as every kit's (`synth_voice`)."""
    def env(n, tau):
        return np.exp(-np.arange(n) / (tau * SR))
    if voice == "kick":
        n = int(0.25 * SR)
        f0, f1 = rng.uniform(45, 50), rng.uniform(1100, 1400)
        f = f0 + (f1 - f0) * env(n, 0.008)
        body = np.sin(2 * np.pi * np.cumsum(f) / SR) * env(n, rng.uniform(0.03, 0.05))
        drive = rng.uniform(4, 8)
        x = np.tanh(drive * body) / np.tanh(drive)
        x[:150] += rng.normal(0, 0.4, 150) * env(150, 0.0007)
        return x
    if voice in ("snare", "clap", "rim"):
        tau = (0.06 if voice == "snare" else 0.03) * 3.2
        n = int(6 * tau * SR)
        noise = rng.normal(0, 1, n)
        b, a = signal.butter(2, [rng.uniform(3000, 4500) / (SR / 2), 0.6], "band")
        noise = signal.lfilter(b, a, noise)
        tone = np.sin(2 * np.pi * rng.uniform(280, 340) * np.arange(n) / SR)
        return clap_or_rim((0.7 * noise + 0.4 * tone) * env(n, tau), voice)
    if voice in ("chh", "ohh", "shaker", "phh", "ride", "crash"):
        dur = {"chh": 0.06, "ohh": 0.35, "shaker": 0.08, "phh": 0.05, "ride": 0.6, "crash": 1.2}[voice]
        n = int(dur * 2.5 * SR)
        t = np.arange(n) / SR
        detune = rng.uniform(0.95, 1.05)
        sq = sum(np.sign(np.sin(2 * np.pi * hz * detune * t + rng.uniform(0, 2 * np.pi)))
                 for hz in METAL_HZ)
        b, a = signal.butter(2, [rng.uniform(6000, 8500) / (SR / 2), 0.9], "band")
        metal = signal.lfilter(b, a, sq)
        metal /= np.sqrt(np.mean(metal**2)) + 1e-12
        noise = signal.lfilter(b, a, rng.normal(0, 1, n))
        noise /= np.sqrt(np.mean(noise**2)) + 1e-12
        return (0.8 * metal + 0.3 * noise) * env(n, dur / 2.5) * 0.5
    return np.zeros(1)


KIT_N = 14  # SplitSpec.synth_kit of final11's synth kit N (synth_voice_n)


def synth_voice_n(voice, rng):
    """Synth kit N (final11): a lo-fi FM drum machine, outside every other kit's (`synth_voice`,
    `synth_voice_m`) and trainr's (`random_kit`) ranges in shape. Every other kick is one sine
    (M: driven into tanh) whose pitch falls with a 25 ms (M: 8 ms) time constant, whose level
    decays from its first sample, with a noise click; N's is frequency-modulated (a modulator at
    1.4-1.8x the carrier, index 2-4 decaying in 10-20 ms: an inharmonic knock, no noise), its pitch
    falls from 2.5-3.5x to 52-62 Hz with a slow 40-70 ms time constant, and its level holds for
    15-30 ms before decaying (60-110 ms). Every other snare is band-passed noise from 0.8-4.5 kHz
    over a 160-340 Hz sine, decaying exponentially; N's is low-passed noise (5-7 kHz) over an FM
    tone at 125-150 Hz, gated: flat for 60-120 ms, then cut in 10 ms. Every other clap is its
    snare at 0/10/20 ms and every rim its snare halved; N's clap is four narrow-band bursts at
    1-1.6 kHz, 6-14 ms apart, then a gated tail, and its rim two inharmonic sines at 0.8-1 kHz
    and 1.6-1.8x that. Every other kit's hats and cymbals are high-passed white noise (M: the
    TR-808's squares), decaying exponentially; N's are sample-and-hold noise (held 3-5 samples,
    8.8-14.7 kHz, quantised to 5-7 bits: an early sampler's aliased images) high-passed at 4-6
    kHz, gated: flat for 40-70 % of the voice's length, then a fast release. Toms as every kit's
    (`synth_voice`)."""
    def env(n, tau):
        return np.exp(-np.arange(n) / (tau * SR))

    def gate(n, hold, release):  # flat for `hold` s, then an exponential release
        k = np.arange(n) / SR
        return np.where(k < hold, 1.0, np.exp(-(k - hold) / release))
    if voice == "kick":
        n = int(0.4 * SR)
        f0 = rng.uniform(52, 62)
        f1 = f0 * rng.uniform(2.5, 3.5)
        f = f0 + (f1 - f0) * env(n, rng.uniform(0.04, 0.07))
        ph = 2 * np.pi * np.cumsum(f) / SR
        index = rng.uniform(2, 4) * env(n, rng.uniform(0.01, 0.02))
        x = np.sin(ph + index * np.sin(rng.uniform(1.4, 1.8) * ph))
        return x * gate(n, rng.uniform(0.015, 0.03), rng.uniform(0.06, 0.11))
    if voice == "snare":
        n = int(0.3 * SR)
        noise = _zp(rng.normal(0, 1, n), 2, rng.uniform(5000, 7000))
        noise /= _rms(noise)
        fc = rng.uniform(125, 150)
        ph = 2 * np.pi * np.cumsum(fc * (1 + 0.5 * env(n, 0.015))) / SR
        tone = np.sin(ph + 1.5 * env(n, 0.02) * np.sin(1.41 * ph)) * env(n, 0.05)
        return (0.45 * noise + 0.5 * tone) * gate(n, rng.uniform(0.06, 0.12), 0.01)
    if voice == "clap":
        n = int(0.3 * SR)
        fc = rng.uniform(1000, 1600)
        band = _zp(rng.normal(0, 1, n), 2, [0.8 * fc, 1.25 * fc], "band")
        band /= _rms(band)
        x = np.zeros(n)
        s = 0
        for _ in range(4):  # four bursts, 6-14 ms apart
            m = n - s
            x[s:] += band[:m] * env(m, rng.uniform(0.003, 0.005))
            s += int(rng.uniform(0.006, 0.014) * SR)
        m = n - s
        x[s:] += 0.5 * band[:m] * gate(m, rng.uniform(0.04, 0.08), 0.015)
        return 0.5 * x
    if voice == "rim":
        n = int(0.08 * SR)
        t = np.arange(n) / SR
        f1 = rng.uniform(800, 1000)
        f2 = f1 * rng.uniform(1.6, 1.8)
        return 0.6 * (np.sin(2 * np.pi * f1 * t) + 0.7 * np.sin(2 * np.pi * f2 * t)) * env(
            n, rng.uniform(0.008, 0.015))
    if voice in ("chh", "ohh", "shaker", "phh", "ride", "crash"):
        dur = {"chh": 0.06, "ohh": 0.35, "shaker": 0.08, "phh": 0.05, "ride": 0.6, "crash": 1.2}[voice]
        n = int(dur * 2.5 * SR)
        hold = int(rng.integers(3, 6))
        q = 2 ** (int(rng.integers(5, 8)) - 1)
        held = np.repeat(rng.normal(0, 1, n // hold + 1), hold)[:n]
        held = np.round(np.clip(held / 3, -1, 1) * q) / q
        b, a = signal.butter(2, rng.uniform(4000, 6000) / (SR / 2), "high")
        x = signal.lfilter(b, a, held)
        x /= _rms(x[: max(1, int(dur * SR))])
        return 0.4 * x * gate(n, dur * rng.uniform(0.4, 0.7), dur / 10)
    return np.zeros(1)


def random_kit(rng):
    """One song's own synth kit ranges (kitb RANDOM_KIT; round 11's trainr): kick 30-95 Hz swept
    down from 80-650 Hz, snares 0.4-2.8x train's length, hats high-passed at 1.2-9 kHz. The
    sweeps above 650 Hz and hats above 9 kHz stay out, so final9's synth kit L (700-900 Hz,
    9.5-12.5 kHz) is still a kit no training split has; final10's kit M (synth_voice_m) is
    outside it in kind: a saturated 30-50 ms kick swept from 1.1-1.4 kHz, metallic hats; and so is
    final11's kit N (synth_voice_n): an FM kick with a slow glide and a held level, gated snares,
    sample-and-hold hats."""
    f0 = rng.uniform(30, 95)
    f1 = rng.uniform(max(80, 1.5 * f0), 650)
    hat = rng.uniform(1200, 9000)
    return {"f0": (0.95 * f0, 1.05 * f0), "f1": (0.9 * f1, 1.1 * f1),
            "snare": float(rng.uniform(0.4, 2.8)), "hat": (0.9 * hat, min(9000, 1.1 * hat))}


def render_synth_drums(hits, total_n, rng, kitb):
    """hits: list of (time_s, voice, velocity)."""
    out = np.zeros(total_n + SR)
    bank = {}
    drawn = random_kit(rng) if kitb == RANDOM_KIT else None
    for v in sorted(set(h[1] for h in hits)):  # sorted: set order depends on the hash seed
        bank[v] = [synth_voice(v, rng, kitb, drawn) for _ in range(3)]  # round robin
    for i, (t, v, vel) in enumerate(hits):
        s = int(round(t * SR))
        if s < 0 or s >= total_n:
            continue
        x = bank[v][i % 3] * (vel / 127.0) ** 1.5
        e = min(len(out), s + len(x))
        out[s:e] += x[: e - s]
    return out[:total_n]


# ---------------------------------------------------------------- master chains (final10, trainm)
# final10's `club_master` (after the kick-keyed `sidechain_gain` on its music bus) and trainm's
# `random_master` are built from the stages below. A stage draws its parameters from the ranges
# it is given, in a fixed order (a (lo, hi) tuple is drawn uniformly; a plain number is used as it
# is and draws nothing), so final10 draws exactly what it drew before trainm existed and its files
# stay byte-identical. No stage delays the audio: dry paths are untouched, compressor and limiter
# gains are computed from the whole file (look-ahead without latency), every filter is zero-phase
# (filtfilt) -- so the beat grid stays exact.
#
# The ranges, final10 (every stage on every mastered song, 50 % of its songs) against trainm
# (70 % of its songs; each stage on or off at random, drawn per song):
#   pump        final10  6-14 dB, attack 2-6 ms, hold 10-30 ms, release 120-300 ms, raised-cosine
#                        recovery; every mastered song with kicks on a drum bus
#               trainm   3-16 dB, attack 0.5-10 ms, hold 0-40 ms, release 80-300 ms, exponential
#                        or linear recovery (never final10's raised cosine); 60 % of them
#   reverb      final10  hall: one noise tail low-passed at 3-6 kHz, RT60 1.8-3.2 s, pre-delay
#                        15-40 ms, 8-14 dB under the dry mix
#               trainm   room (RT60 0.3-1.2 s) or hall (1.2-4 s): 3-8 early reflections 5-60 ms
#                        after a 0-30 ms pre-delay and a tail whose highs (above 2-8 kHz) die
#                        1.5-3x faster, wet 5-30 % of the dry RMS (10.5-26 dB under it); 50 %
#   compressor  final10  one band: threshold 0-4 dB over the file's RMS, ratio 2-4, attack 5-20
#                        ms, release 80-250 ms
#               trainm   one band (60 %) or three (crossovers 100-300 Hz and 2-5 kHz, zero-phase,
#                        the bands sum back to the input), each: threshold -2..+6 dB over its
#                        RMS, ratio 1.5-8, attack 1-30 ms, release 40-400 ms; 70 %
#   saturation  final10  tape: asymmetric tanh (bias 0.05-0.15), drive 4-10 dB, 15 Hz high-pass,
#                        11-16 kHz roll-off
#               trainm   tanh or cubic soft clip (drive 1-14 dB), or the tape with a bias of
#                        0-0.05 (never final10's asymmetry) and a 14-20 kHz roll-off; 50 %
#   EQ          final10  none (its tape's roll-off aside)
#               trainm   low cut at 20-150 Hz and/or a high shelf of -6..+6 dB from 2-10 kHz; 50 %
#   lo-fi       final10  none
#               trainm   6-12 bits or a low-pass at 8-16 kHz; 12 %
#   limiter     final10  brickwall pushed 7-13 dB into -1 dBFS, 3 ms look-ahead, release 30-120 ms
#               trainm   the same brickwall pushed 3-15 dB into -0.3..-1.5 dBFS, 1-5 ms
#                        look-ahead, release 10-250 ms (77 %), or a hard clip pushed 1-6 dB into
#                        the ceiling (13 %), or none (10 %: the file is scaled to peak at it)
# What trainm covers of final10's master (trainm is made after final10 was scored, from its
# result): the pump's depth, attack, hold and release; glue compression in all of final10's
# ranges; the brickwall limiter itself, pushed as hard into the same ceiling; the loudness and
# crest factor those give; halls with final10's RT60 (another IR) up to 10.5 dB under the mix.
# Not covered: the pump's raised-cosine recovery, final10's hall IR and its wettest 8-10.5 dB,
# tape at final10's 0.05-0.15 bias, and the whole chain on recorded kits and synth kit M (trainm
# plays neither). So FINAL10'S MASTER CONDITION IS NO LONGER UNHEARD for a model trained on
# trainm: on such a model, final10's mastered-vs-rest gap measures generalisation from trainm's
# chains to a near relative, not a first meeting with mastered audio.
def _rms(x):
    return float(np.sqrt(np.mean(x**2))) + 1e-12


def _blocks(x, hop):
    """Mean square of x in blocks of `hop` samples (the last one padded with zeros)."""
    m = -(-len(x) // hop)
    return np.pad(x**2, (0, m * hop - len(x))).reshape(m, hop).mean(axis=1)


def _draw(rng, r):
    """A (lo, hi) range drawn uniformly; a plain number as it is (no draw)."""
    return float(rng.uniform(*r)) if isinstance(r, tuple) else r


def _zp(x, order, hz, kind="low"):
    """Zero-phase Butterworth filter (forward and back: no delay, the magnitude squared)."""
    return signal.sosfiltfilt(signal.butter(order, hz, kind, fs=SR, output="sos"), x)


HOP = 32  # block length of the compressor's and the limiter's gain computation (0.73 ms)


def sidechain_gain(kicks, n, rng, depth_db=(6, 14), attack=(0.002, 0.006), hold=(0.01, 0.03),
                   release=(0.12, 0.3), shape="cos"):
    """The music bus's gain under a sidechain compressor keyed by the kick (`kicks`: (time_s,
    velocity)): from each kick's own onset (never before it) the music dips `depth_db` in
    `attack`, holds and comes back over `release` -- the dance-music pump, whose swell peaks
    between the kicks. shape "cos" (final10): a raised-cosine recovery; "exp": exponential (a
    compressor's release, -40 dB of the dip left at `release`); "lin": linear (a volume shaper).
    The defaults are final10's. Returns (gain per sample, description)."""
    depth_db = _draw(rng, depth_db)
    att, hold, rel = (_draw(rng, attack), _draw(rng, hold), _draw(rng, release))
    na, nh, nr = int(att * SR), int(hold * SR), int(rel * SR)
    k = np.arange(nr)
    tail = {"cos": lambda: 0.5 + 0.5 * np.cos(np.pi * k / nr),
            "exp": lambda: (np.exp(-4.6 * k / nr) - 0.01) / 0.99,
            "lin": lambda: 1 - k / nr}[shape]()
    curve = np.concatenate([np.linspace(0, 1, na, endpoint=False), np.ones(nh), tail])
    duck = np.zeros(n)
    for t, vel in kicks:
        s = int(round(t * SR))
        if s < 0 or s >= n:
            continue
        e = min(n, s + len(curve))
        duck[s:e] = np.maximum(duck[s:e], curve[: e - s] * min(1.0, vel / 110.0))
    return 10 ** (-depth_db * duck / 20), {"pump_db": round(depth_db, 1),
                                           "pump_release_s": round(rel, 3)}


def _add_wet(x, ir, wet_db):
    """x plus its convolution with ir (the reverb return), `wet_db` re x's RMS; the dry path as
    it is."""
    wet = signal.fftconvolve(x, ir)[:len(x)]
    return x + wet * _rms(x) / _rms(wet) * 10 ** (wet_db / 20)


def hall_ir(rng, rt60=(1.8, 3.2), lp_hz=(3000, 6000), predelay=(0.015, 0.04)):
    """final10's hall: decaying noise darkened by a one-pole low-pass after a pre-delay.
    Returns (ir, rt60)."""
    rt60 = _draw(rng, rt60)
    m = int(min(1.2 * rt60, 4.0) * SR)
    ir = rng.normal(0, 1, m) * np.exp(-6.91 * np.arange(m) / (rt60 * SR))
    b, a = signal.butter(1, _draw(rng, lp_hz) / (SR / 2))
    ir = np.concatenate([np.zeros(int(_draw(rng, predelay) * SR)), signal.lfilter(b, a, ir)])
    return ir, rt60


def room_ir(rng, rt60, predelay=(0.0, 0.03), split_hz=(2000, 8000), hf_faster=(1.5, 3.0)):
    """trainm's rooms and halls (another construction than `hall_ir`): after a pre-delay, 3-8
    early reflections (single taps of either sign, 5-60 ms later) and a diffuse noise tail that
    fades in over 10 ms and whose highs (above `split_hz`) decay `hf_faster` times faster than its
    lows. Returns (ir, rt60)."""
    rt60 = _draw(rng, rt60)
    m = int(min(1.2 * rt60, 4.8) * SR)
    pre = int(_draw(rng, predelay) * SR)
    noise = rng.normal(0, 1, m)
    low = _zp(noise, 2, _draw(rng, split_hz))
    k = np.arange(m) / (rt60 * SR)
    tail = low * np.exp(-6.91 * k) + (noise - low) * np.exp(-6.91 * _draw(rng, hf_faster) * k)
    tail *= np.minimum(1.0, np.arange(m) / (0.01 * SR))
    ir = np.zeros(pre + m)
    ir[pre:] = tail
    # each reflection carries 4-36 % of the energy of the tail's first 50 ms
    scale = _rms(tail[: int(0.05 * SR)]) * np.sqrt(0.05 * SR)
    for _ in range(int(rng.integers(3, 9))):
        ir[pre + int(_draw(rng, (0.005, 0.06)) * SR)] += (
            scale * _draw(rng, (0.2, 0.6)) * (1 if rng.random() < 0.5 else -1))
    return ir, rt60


def compress(x, rng, thr_db=(0, 4), ratio=(2, 4), attack=(0.005, 0.02), release=(0.08, 0.25)):
    """A feed-forward compressor on the level in dB of HOP-sample blocks: attack/release smoothing,
    `ratio` above a threshold `thr_db` over x's RMS, the gain interpolated between block centres
    (no delay; the gain follows the level as a compressor's does). Defaults: final10's glue
    compression. Returns (x, ratio, the largest gain reduction in dB)."""
    n, hop = len(x), HOP
    lev = 10 * np.log10(_blocks(x, hop) + 1e-12)
    thr = 20 * np.log10(_rms(x)) + _draw(rng, thr_db)
    ratio = _draw(rng, ratio)
    ka = np.exp(-hop / (_draw(rng, attack) * SR))
    kr = np.exp(-hop / (_draw(rng, release) * SR))
    env = np.empty_like(lev)
    e = lev[0]
    for i, v in enumerate(lev):
        k = ka if v > e else kr
        e = k * e + (1 - k) * v
        env[i] = e
    gr_db = -np.maximum(0.0, env - thr) * (1 - 1 / ratio)
    centers = (np.arange(len(lev)) + 0.5) * hop
    x = x * 10 ** (np.interp(np.arange(n), centers, gr_db) / 20)
    return x, ratio, float(-gr_db.min())


def tape(x, rng, drive_db=(4, 10), bias=(0.05, 0.15), lp_hz=(11000, 16000)):
    """Asymmetric tanh saturation (x scaled to peak 1, then driven `drive_db` into the knee with a
    `bias`), its DC and lows under 15 Hz removed and the highs rolled off from `lp_hz`, both
    zero-phase. Defaults: final10's tape. Returns (y, drive as a gain)."""
    drive = 10 ** (_draw(rng, drive_db) / 20)
    bias = _draw(rng, bias)
    y = x / np.max(np.abs(x))
    y = np.tanh(drive * (y + bias)) - np.tanh(drive * bias)
    b, a = signal.butter(2, 15 / (SR / 2), "high")
    y = signal.filtfilt(b, a, y)
    b, a = signal.butter(1, _draw(rng, lp_hz) / (SR / 2))
    y = signal.filtfilt(b, a, y)
    return y, drive


def limiter(y, rng, push_db=(7, 13), ceil_db=-1, release=(0.03, 0.12), lookahead=0.003):
    """Brickwall limiter: peaks pushed `push_db` over a `ceil_db` ceiling; the gain each sample
    needs, its minimum over +-lookahead then averaged over the look-ahead (so it reaches every
    peak's need in time and is never above it), recovering over `release` after each reduction.
    Defaults: final10's. Returns (y, push in dB, the largest gain reduction in dB)."""
    n, hop = len(y), HOP
    push = _draw(rng, push_db)
    ceil = 10 ** (_draw(rng, ceil_db) / 20)
    y = y / np.max(np.abs(y)) * ceil * 10 ** (push / 20)
    need = np.minimum(1.0, ceil / np.maximum(np.abs(y), 1e-12))
    la = int(_draw(rng, lookahead) * SR) // 2 * 2
    g = ndimage.uniform_filter1d(ndimage.minimum_filter1d(need, 2 * la + 1), la + 1)
    gb = ndimage.minimum_filter1d(g, hop)[hop // 2::hop]  # each block's least gain
    kr = np.exp(-hop / (_draw(rng, release) * SR))
    rel = np.empty_like(gb)
    e = 1.0
    for i, v in enumerate(gb):
        e = v if v < e else kr * e + (1 - kr) * 1.0
        rel[i] = e
    g = np.minimum(g, np.interp(np.arange(n), np.arange(len(gb)) * hop + hop // 2, rel))
    y = np.clip(y * g, -ceil, ceil)
    return y, push, float(-20 * np.log10(g.min()))


def club_master(x, rng):
    """final10's master bus, on the whole mix (after the stop, so a hall tail rings into the
    silence): a hall reverb return (`hall_ir`, 8-14 dB under the dry mix), glue compression,
    tape saturation and a brickwall limiter pushed 7-13 dB into -1 dBFS (a club track's
    loudness); the stages' defaults are its ranges. Returns (audio, description)."""
    if _rms(x) < 1e-9:
        return x, {}
    desc = {}
    ir, rt60 = hall_ir(rng)
    wet_db = float(rng.uniform(-14, -8))
    x = _add_wet(x, ir, wet_db)
    desc.update(hall_rt60_s=round(rt60, 2), hall_db=round(wet_db, 1))
    x, ratio, gr = compress(x, rng)
    desc.update(comp_ratio=round(ratio, 2), comp_max_gr_db=round(gr, 1))
    y, drive = tape(x, rng)
    desc["tape_drive_db"] = round(float(20 * np.log10(drive)), 1)
    y, push, gr = limiter(y, rng)
    desc.update(limiter_push_db=round(push, 1), limiter_max_gr_db=round(gr, 1))
    return y, desc


# trainm's pump (see the table above); on 60 % of its mastered songs with kicks on a drum bus
TRAINM_PUMP = {"depth_db": (3, 16), "attack": (0.0005, 0.01), "hold": (0.0, 0.04),
               "release": (0.08, 0.3)}


def random_master(x, rng):
    """trainm's master bus, on the whole mix (after the stop): every stage of the table above on
    or off at random, in a mastering engineer's order -- EQ, reverb return, compression (one or
    three bands), saturation, lo-fi, limiter or clipper -- with parameters drawn per song; the file
    ends peaking at its ceiling (-0.3..-1.5 dBFS), which augment keeps. Nothing delays the audio.
    Returns (audio, description; "ceiling_dbfs" always in it)."""
    if _rms(x) < 1e-9:
        return x, {}
    ceil_db = round(float(rng.uniform(-1.5, -0.3)), 2)
    desc = {"ceiling_dbfs": ceil_db}
    on = {k: bool(rng.random() < p) for k, p in
          (("eq", 0.5), ("reverb", 0.5), ("comp", 0.7), ("sat", 0.5), ("lofi", 0.12))}
    if on["eq"]:  # low cut, high shelf or both (zero-phase)
        r = rng.random()
        if r < 2 / 3:
            hz = _draw(rng, (20, 150))
            x = _zp(x, 2, hz, "high")
            desc["eq_low_cut_hz"] = round(hz)
        if r >= 1 / 3:
            hz, g_db = _draw(rng, (2000, 10000)), _draw(rng, (-6, 6))
            x = x + (10 ** (g_db / 20) - 1) * _zp(x, 1, hz, "high")
            desc.update(eq_shelf_hz=round(hz), eq_shelf_db=round(g_db, 1))
    if on["reverb"]:
        kind = "room" if rng.random() < 0.5 else "hall"
        ir, rt60 = room_ir(rng, (0.3, 1.2) if kind == "room" else (1.2, 4.0))
        wet_db = _draw(rng, (-26, -10.5))
        x = _add_wet(x, ir, wet_db)
        desc.update(reverb=kind, reverb_rt60_s=round(rt60, 2), reverb_db=round(wet_db, 1))
    if on["comp"]:
        comp = {"thr_db": (-2, 6), "ratio": (1.5, 8), "attack": (0.001, 0.03),
                "release": (0.04, 0.4)}
        if rng.random() < 0.4:  # three bands that sum back to x (zero-phase crossovers)
            f1, f2 = _draw(rng, (100, 300)), _draw(rng, (2000, 5000))
            low = _zp(x, 2, f1)
            mid = _zp(x - low, 2, f2)
            bands = [low, mid, x - low - mid]
            out, ratios, grs = 0, [], []
            for band in bands:
                y, ratio, gr = compress(band, rng, **comp)
                out, ratios, grs = out + y, ratios + [round(ratio, 2)], grs + [round(gr, 1)]
            x = out
            desc.update(comp="3-band", comp_xover_hz=[round(f1), round(f2)], comp_ratio=ratios,
                        comp_max_gr_db=grs)
        else:
            x, ratio, gr = compress(x, rng, **comp)
            desc.update(comp="1-band", comp_ratio=round(ratio, 2), comp_max_gr_db=round(gr, 1))
    if on["sat"]:
        kind = str(rng.choice(["tanh", "soft", "tape"]))
        if kind == "tape":
            x, drive = tape(x, rng, drive_db=(1, 14), bias=(0.0, 0.05), lp_hz=(14000, 20000))
        else:
            drive = 10 ** (_draw(rng, (1, 14)) / 20)
            y = x / np.max(np.abs(x)) * drive
            if kind == "tanh":
                x = np.tanh(y)
            else:  # cubic soft clip: linear at first, flat from 1
                y = np.clip(y, -1, 1)
                x = 1.5 * y - 0.5 * y**3
        desc.update(sat=kind, sat_drive_db=round(float(20 * np.log10(drive)), 1))
    if on["lofi"]:
        if rng.random() < 0.5:
            bits = int(rng.integers(6, 13))
            peak, q = np.max(np.abs(x)), 2 ** (bits - 1)
            x = np.round(x / peak * q) / q * peak
            desc["lofi_bits"] = bits
        else:
            hz = _draw(rng, (8000, 16000))
            x = _zp(x, 4, hz)
            desc["lofi_lowpass_hz"] = round(hz)
    r = rng.random()
    ceil = 10 ** (ceil_db / 20)
    if r < 0.10:  # no limiter: the file scaled to peak at the ceiling
        x = x / np.max(np.abs(x)) * ceil
        desc["limiter"] = None
    elif r < 0.23:  # a hard clip into the ceiling
        push = _draw(rng, (1, 6))
        x = np.clip(x / np.max(np.abs(x)) * ceil * 10 ** (push / 20), -ceil, ceil)
        desc.update(limiter="clip", limiter_push_db=round(push, 1))
    else:
        x, push, gr = limiter(x, rng, push_db=(3, 15), ceil_db=ceil_db, release=(0.01, 0.25),
                              lookahead=(0.001, 0.005))
        desc.update(limiter="brickwall", limiter_push_db=round(push, 1),
                    limiter_max_gr_db=round(gr, 1))
    return x, desc


# ---------------------------------------------------------------- live capture (final11)
# final11 is about what a DJ's line-in sees live. Its music files take in turn (SplitSpec.live,
# FINAL11_LIVE, by file index) one of two conditions no other split has, on the whole mix after
# the stop:
#   mixer  `dj_mixer`: one or two DJ mixer moves, each 4-16 bars from a bar line: half of them
#          an isolator's bass kill (the band below 150-250 Hz cut by 20-30 dB, engaged and
#          released within 5-250 ms, up to a quarter beat early), the others a resonant filter
#          sweep: a high-pass from 20 Hz up to 1-2 kHz, or a low-pass from 18 kHz down to
#          300-1000 Hz, and back (a build-up: up over the whole move and snapped back at its
#          end, or up and then down again), Q 1-2 per pass (a resonant peak of +2.5..+12.6 dB).
#   room   `room_capture`: the PA in a small club through a room mic: the club's impulse
#          response (`club_ir`: the direct sound at 0, one or two boom modes at 50-90 Hz ringing
#          for 0.5-1.2 s, 10-16 dB over the room's mean response at 150-1000 Hz, a flutter echo
#          between parallel walls -- a bright tap every 12-35 ms, each 0.6-0.85x the last --,
#          and a short dark tail, RT60 0.4-0.9 s, 0-8 dB under the direct sound), a crowd
#          (`crowd_noise`: 6-16 chattering talkers and 1-3 cheering swells, 6-20 dB under the
#          music) in the same room, and the microphone's response (high-pass at 80-150 Hz, a
#          +3..+8 dB presence bump at 2.5-6 kHz, highs rolled off from 9-15 kHz).
#   None   neither (the comparison third).
# Every filter is zero-phase (forward and backward: sosfiltfilt, or `_sweep_filter` for the
# moving cutoff), so nothing delays the audio and the beat grid stays exact: clicks on a 128 BPM
# grid through 40 drawn mixers (2186 beats inside moves) come out peaking on their own sample,
# the energy centroid of each response within 0.004 ms (below 150 Hz within 0.30 ms), and kicks
# (synth kits A and N) cross-correlate with their dry selves at lag 0. The room's IR has its
# direct sound at sample 0, its largest tap (its boom and flutter arrive after it, as in a room).


def _biquads(kind, fc, q):
    """RBJ-cookbook resonant 2nd-order low- or high-pass sections (one sos row per cutoff)."""
    w0 = 2 * np.pi * np.asarray(fc, float) / SR
    cw, al = np.cos(w0), np.sin(w0) / (2 * q)
    b0, b1 = ((1 - cw) / 2, 1 - cw) if kind == "low" else ((1 + cw) / 2, -(1 + cw))
    a0 = 1 + al
    return np.stack([b0 / a0, b1 / a0, b0 / a0, np.ones_like(w0), -2 * cw / a0, (1 - al) / a0], 1)


def _sweep_filter(x, kind, fc, q, block=32):
    """x through a resonant 2nd-order `kind`-pass whose cutoff moves (fc: one value per `block`
    samples), run forward and then backward in time with the same cutoff at each sample: like
    filtfilt, zero-phase (no delay) with the magnitude squared, while the cutoff moves slowly."""
    nb = len(fc)
    xp = np.pad(x, (0, nb * block - len(x)))
    sos = _biquads(kind, fc, q)
    y = np.empty_like(xp)
    zi = np.zeros((1, 2))
    for i in range(nb):
        b = slice(i * block, (i + 1) * block)
        y[b], zi = signal.sosfilt(sos[i:i + 1], xp[b], zi=zi)
    zi = np.zeros((1, 2))
    for i in range(nb - 1, -1, -1):
        b = slice(i * block, (i + 1) * block)
        out, zi = signal.sosfilt(sos[i:i + 1], y[b][::-1], zi=zi)
        y[b] = out[::-1]
    return y[:len(x)]


def _ramp(n, s, e, n_in, n_out):
    """0 outside [s, e), 1 inside, raised-cosine ramps of n_in samples from s and n_out up to e."""
    w = np.zeros(n)
    s, e = max(0, s), min(n, e)
    if e <= s:
        return w
    w[s:e] = 1.0
    for a, m, up in ((s, n_in, True), (e - n_out, n_out, False)):
        a0, m = max(a, s), min(m, e - s)
        if m > 0:
            r = 0.5 - 0.5 * np.cos(np.pi * (np.arange(m) + 0.5) / m)
            w[a0:a0 + m] *= r if up else r[::-1]
    return w


def dj_mixer(x, rng, bar_times, bar, lo_bar, end_bar):
    """final11's DJ mixer moves (see FINAL11_LIVE) on the whole mix: one or two moves between bar
    `lo_bar` (the drums' entry, if any) and the stop at `end_bar`; bar_times[b] is bar b's
    downbeat, `bar` its beats. Returns (audio, description)."""
    n = len(x)
    moves = []
    cur = lo_bar
    n_moves = 1 if rng.random() < 0.5 else 2
    for k in range(n_moves):
        room = end_bar - cur
        if room < 4:
            break
        bars = min(int(rng.choice([4, 8, 8, 12, 16])), room)
        spare = room - bars
        b0 = cur + int(rng.integers(0, (spare if k == n_moves - 1 else spare // 2) + 1))
        kind = str(rng.choice(["bass_kill", "hpf", "lpf"], p=[0.5, 0.25, 0.25]))
        t0, t1 = float(bar_times[b0]), float(bar_times[b0 + bars])
        m = {"move": kind, "bars": bars}
        if kind == "bass_kill":  # the isolator's low knob to kill, held, and back
            beat_s = (float(bar_times[b0 + 1]) - float(bar_times[b0])) / bar
            t0 -= float(rng.uniform(0, 0.25)) * beat_s
            t1 -= float(rng.uniform(0, 0.25)) * beat_s
            hz, cut_db = _draw(rng, (150, 250)), _draw(rng, (20, 30))
            n_in, n_out = (int(_draw(rng, (0.005, 0.25)) * SR) for _ in range(2))
            low = _zp(x, 4, hz)  # the zero-phase low band; x - low the rest (they sum to x)
            w = _ramp(n, int(t0 * SR), int(t1 * SR), n_in, n_out)
            x = x - (1 - 10 ** (-cut_db / 20)) * w * low
            m.update(below_hz=round(hz), cut_db=round(cut_db, 1))
        else:  # the filter knob: a resonant sweep and back, or up and snapped back at the end
            q = _draw(rng, (1.0, 2.0))
            ends = (20.0, _draw(rng, (1000, 2000))) if kind == "hpf" else (
                18000.0, _draw(rng, (300, 1000)))
            shape = "snap" if rng.random() < 0.5 else "back"
            up = 1.0 if shape == "snap" else _draw(rng, (0.5, 0.8))  # the share going there
            curve = _draw(rng, (1.0, 2.5))  # >1: the knob turned faster towards the peak
            pad = int(1.0 * SR)  # the filter settles at its start cutoff before the move
            s0, s1 = int(t0 * SR), int(t1 * SR)
            a, b = max(0, s0 - pad), min(n, s1 + pad)
            block = 32
            tc = (np.arange(a, b, block) + block / 2 - s0) / max(1, s1 - s0)  # 0..1 in the move
            u = np.clip(tc / up, 0, 1) ** curve
            if shape == "back":
                down = np.clip((tc - up) / (1 - up), 0, 1)
                u = np.where(tc <= up, u, 0.5 + 0.5 * np.cos(np.pi * down))
            fc = np.exp(np.log(ends[0]) + (np.log(ends[1]) - np.log(ends[0])) * u)
            wet = _sweep_filter(x[a:b], "high" if kind == "hpf" else "low", fc, q, block)
            n_out = int(_draw(rng, (0.01, 0.05)) * SR) if shape == "snap" else int(0.02 * SR)
            w = _ramp(b - a, s0 - a, s1 - a, int(0.02 * SR), n_out)
            x = x.copy()
            x[a:b] += w * (wet - x[a:b])
            m.update(peak_hz=round(ends[1]), q=round(q, 2), shape=shape,
                     peak_s=round(t0 + up * (t1 - t0), 4))
        m.update(start_s=round(t0, 4), end_s=round(t1, 4))
        moves.append(m)
        cur = b0 + bars + 1
    return x, {"live": "mixer", "moves": moves}


def club_ir(rng):
    """final11's small club as its room mic hears the PA (another shape than final10's
    `hall_ir` and trainm's `room_ir`, which have a pre-delay, single early taps and a noise tail
    only): the direct sound at sample 0; a flutter echo between parallel walls (taps every 12-35
    ms after a first reflection at 4-20 ms, each 0.6-0.85x the last, from 0.2-0.4x the direct
    sound, band-passed at 0.7-8 kHz); a dark tail (noise low-passed at 2-5 kHz, RT60 0.4-0.9 s,
    fading in over 5 ms) whose energy is 0-8 dB under the direct sound's; and one or two boom
    modes (decaying sines at 50-90 Hz and, on half, a second at 1.25-1.7x that, 3-8 dB weaker)
    ringing for 0.5-1.2 s (RT60), the first standing 10-16 dB over the rest's mean response at
    150-1000 Hz (the mic's high-pass takes 2-10 dB of it back). Returns (ir, description)."""
    m = int(1.3 * SR)
    t = np.arange(m) / SR
    ir = np.zeros(m)
    ir[0] = 1.0
    period, first = _draw(rng, (0.012, 0.035)), _draw(rng, (0.004, 0.02))
    tap, decay = _draw(rng, (0.2, 0.4)), _draw(rng, (0.6, 0.85))
    flutter = np.zeros(m)
    k, amp = first, tap
    while amp > 0.003 and k < 0.6:
        flutter[int(k * SR)] += amp
        k, amp = k + period, amp * decay
    ir += _zp(flutter, 1, [700, 8000], "band")
    rt = _draw(rng, (0.4, 0.9))
    tail = _zp(rng.normal(0, 1, m), 2, _draw(rng, (2000, 5000))) * np.exp(-6.91 * t / rt)
    tail *= np.minimum(1.0, t / 0.005)
    drr = _draw(rng, (0, 8))
    ir += tail / np.sqrt(np.sum(tail**2)) * 10 ** (-drr / 20)
    spec = np.abs(np.fft.rfft(ir)) ** 2
    f_ax = np.fft.rfftfreq(m, 1 / SR)
    p_mid = float(np.mean(spec[(f_ax >= 150) & (f_ax <= 1000)]))  # the rest's mean power
    f_boom, boom_db = _draw(rng, (50, 90)), _draw(rng, (10, 16))
    modes = [(f_boom, 0.0)]
    if rng.random() < 0.5:
        modes.append((f_boom * _draw(rng, (1.25, 1.7)), -_draw(rng, (3, 8))))
    for f, rel_db in modes:
        h = np.exp(-6.91 * t / _draw(rng, (0.5, 1.2))) * np.sin(2 * np.pi * f * t)
        g = np.abs(np.sum(h * np.exp(-2j * np.pi * f * t)))  # its gain at f
        ir += h / g * np.sqrt(p_mid * (10 ** ((boom_db + rel_db) / 10) - 1))
    return ir, {"boom_hz": [round(f, 1) for f, _ in modes], "boom_db": round(boom_db, 1),
                "flutter_ms": round(1000 * period, 1), "tail_rt60_s": round(rt, 2),
                "tail_db": round(-drr, 1)}


def crowd_noise(rng, n):
    """A club crowd (final11): 6-16 talkers -- noise band-passed around a formant-like 0.3-2.5 kHz,
    each switched by its own random syllable envelope (low-passed noise at 3-6 Hz, above a
    threshold) inside phrases (a 0.2-0.5 Hz one) -- and 1-3 cheering swells (noise at 0.4-6 kHz
    rising over 0.4-1.5 s, held 0.5-3 s, falling over 1-4 s, 4-12 dB over the chatter), half of
    them with a whistle (2-3.5 kHz, vibrato 5-8 Hz). Nothing in it repeats at a tempo. Returns
    (crowd, cheers [{peak_s, ...}])."""
    t = np.arange(n) / SR
    chatter = np.zeros(n)
    for _ in range(int(rng.integers(6, 17))):
        f = float(np.exp(rng.uniform(np.log(300), np.log(2500))))
        voice = _zp(rng.normal(0, 1, n), 1, [f / 1.5, min(f * 1.5, 0.45 * SR)], "band")
        syl = _zp(rng.normal(0, 1, n), 2, _draw(rng, (3, 6)))
        syl = np.maximum(0.0, syl / _rms(syl) - _draw(rng, (0.0, 0.8)))
        phrase = _zp(rng.normal(0, 1, n), 1, _draw(rng, (0.2, 0.5)))
        phrase = (phrase > _rms(phrase) * _draw(rng, (-0.5, 0.5))).astype(float)
        talk = voice / _rms(voice) * syl * _zp(phrase, 1, 20.0)
        chatter += talk * 10 ** (_draw(rng, (-6, 6)) / 20)
    chatter /= _rms(chatter)
    crowd = chatter.copy()
    cheers = []
    for _ in range(int(rng.integers(1, 4))):
        att, hold, rel = _draw(rng, (0.4, 1.5)), _draw(rng, (0.5, 3.0)), _draw(rng, (1.0, 4.0))
        t0 = _draw(rng, (0.0, max(0.1, n / SR - att - hold)))
        s0, s1 = int(t0 * SR), int((t0 + att + hold) * SR)
        e = _ramp(n, s0, min(n, s1 + int(rel * SR)), int(att * SR), int(rel * SR))
        roar = _zp(rng.normal(0, 1, n), 2, [400, 6000], "band")
        db = _draw(rng, (4, 12))
        crowd += roar / _rms(roar) * e * 10 ** (db / 20)
        c = {"peak_s": round(t0 + att, 3), "db": round(db, 1)}
        if rng.random() < 0.5:
            w0, wl = t0 + att * _draw(rng, (0.3, 1.0)), _draw(rng, (0.5, 1.5))
            f = _draw(rng, (2000, 3500)) * (1 + 0.03 * np.sin(2 * np.pi * _draw(rng, (5, 8)) * t))
            ws = _ramp(n, int(w0 * SR), int((w0 + wl) * SR), int(0.05 * SR), int(0.15 * SR))
            crowd += 1.5 * np.sin(2 * np.pi * np.cumsum(f) / SR) * ws
            c["whistle"] = True
        cheers.append(c)
    return crowd, cheers


def room_capture(x, rng, music_n):
    """final11's room-mic capture of the whole mix x (see FINAL11_LIVE): x through the club's IR
    (`club_ir`: its direct sound at 0, not delayed), a crowd (`crowd_noise`) through the same
    room 6-20 dB under the music's RMS over its first music_n samples (music_n 0: a crowd-only
    negative, at its own level), then the mic's response, zero-phase: a high-pass (1st order,
    both ways) at 80-150 Hz, a presence bump of +3..+8 dB at 2.5-6 kHz and a roll-off (1st order)
    from 9-15 kHz. Returns (audio, description)."""
    n = len(x)
    ir, desc = club_ir(rng)
    crowd, cheers = crowd_noise(rng, n)
    room = signal.fftconvolve(x, ir)[:n]
    crowd = signal.fftconvolve(crowd, ir)[:n]
    scr = _draw(rng, (6, 20))
    if music_n > 0 and _rms(room[:music_n]) > 1e-9:
        room = room + crowd * _rms(room[:music_n]) / _rms(crowd) * 10 ** (-scr / 20)
        desc["crowd_db"] = round(-scr, 1)
    else:
        room = room + crowd * 0.1 / _rms(crowd)
    hp, pres, pres_db, lp = (_draw(rng, (80, 150)), _draw(rng, (2500, 6000)), _draw(rng, (3, 8)),
                             _draw(rng, (9000, 15000)))
    y = _zp(room, 1, hp, "high")
    y = y + (10 ** (pres_db / 20) - 1) * _zp(y, 1, [pres / 1.6, pres * 1.6], "band")
    y = _zp(y, 1, lp)
    desc.update(cheers=cheers, mic_highpass_hz=round(hp), presence_hz=round(pres),
                presence_db=round(pres_db, 1), mic_rolloff_hz=round(lp))
    return y, dict({"live": "room"}, **desc)


# ---------------------------------------------------------------- MIDI + fluidsynth
class Midi:
    def __init__(self):
        self.events = []  # (time_s, order, msg)
        self.chan_prog = {}

    def program(self, ch, prog):
        self.chan_prog[ch] = prog

    def note(self, ch, t, dur, note, vel):
        if t < 0:
            return
        note = int(np.clip(note, 0, 127))
        vel = int(np.clip(vel, 1, 127))
        self.events.append((t, 1, mido.Message("note_on", channel=ch, note=note, velocity=vel)))
        self.events.append((t + dur, 0, mido.Message("note_off", channel=ch, note=note, velocity=0)))

    def write(self, path, drum_kit):
        mf = mido.MidiFile(ticks_per_beat=1000)
        tr = mido.MidiTrack()
        mf.tracks.append(tr)
        tr.append(mido.MetaMessage("set_tempo", tempo=500000, time=0))  # 2000 ticks per second
        if drum_kit is not None:
            tr.append(mido.Message("program_change", channel=9, program=drum_kit, time=0))
        for ch, pr in self.chan_prog.items():
            tr.append(mido.Message("program_change", channel=ch, program=pr, time=0))
        last = 0
        for t, _, msg in sorted(self.events, key=lambda e: (e[0], e[1])):
            tick = int(round(t * 2000))
            tr.append(msg.copy(time=max(0, tick - last)))
            last = max(last, tick)
        mf.save(path)


def fluid_render(midi, drum_kit, total_n, rng, sf2=SF2):
    with tempfile.TemporaryDirectory() as d:
        mp, wp = os.path.join(d, "a.mid"), os.path.join(d, "a.wav")
        midi.write(mp, drum_kit)
        rev = "1" if rng.random() < 0.5 else "0"
        subprocess.run(["fluidsynth", "-ni", "-q", "-g", "0.6", "-R", rev, "-C", "0", "-r", str(SR),
                        "-F", wp, sf2, mp], check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        x, sr = sf.read(wp, dtype="float64", always_2d=True)
    x = x.mean(axis=1)
    out = np.zeros(total_n)
    out[: min(total_n, len(x))] = x[:total_n]
    return out


# ---------------------------------------------------------------- songs
CHORDS = [[0, 4, 7], [9, 12, 16], [5, 9, 12], [7, 11, 14], [2, 5, 9], [4, 7, 11]]


def song(genre, rng, split, dur, opts=None):
    """Render one piece. Returns (audio@SR, beats [(t, beat_in_bar)], meta)."""
    opts = opts or {}
    spec = SPLITS[split]
    pool = SPLITS[spec.pool]  # whose GM kits, programs, pattern variants and soundfont
    progs = pool.programs
    variant = "A"
    if pool.variant is not None and rng.random() < 0.5:  # heldout's "B", final's "C", ...
        variant = pool.variant
    if pool.borrowed_variants and rng.random() < 0.5:
        variant = str(rng.choice(["C", "D", "E", "F"]))  # held-out variants, new kits/programs
    variant = opts.get("variant", variant)
    meta = {"genre": genre, "variant": variant}
    sub = genre
    if genre == "tempo_change":
        sub = "tempo_change_house" if rng.random() < 0.5 else "tempo_change_rock"
    if genre in ("rock_dense", "bars"):
        sub = "rock"
    if genre == "bars" and rng.random() < 0.4:
        sub = "house"
    lo_hi = {"house": (120, 132), "tempo_change_house": (110, 140), "trance": (136, 140),
             "dnb": (170, 178), "halftime": (140, 140), "hiphop": (85, 95), "rock": (100, 160),
             "tempo_change_rock": (90, 170), "metal": (160, 190), "drumless": (70, 140),
             "waltz": (90, 180), "techno": (124, 136), "halftime_fast": (160, 190),
             "hiphop_sync": (80, 100)}[sub]
    bpm0 = float(rng.uniform(*lo_hi))
    if sub == "halftime":
        bpm0 = float(rng.choice([139.0, 140.0, 140.0, 141.0]))
    bpm0 = float(opts.get("bpm", bpm0))
    n_beats = int(dur * 200 / 60) + 8
    bpm_fn = lambda i: bpm0
    tempo_desc = {"bpm": round(bpm0, 3)}
    if genre == "tempo_change":
        bpm1 = float(np.clip(bpm0 * rng.choice([0.8, 0.88, 1.12, 1.25]), 80, 180))
        at = int(rng.integers(16, 40)) // 4 * 4
        if rng.random() < spec.tempo_step_p:  # step
            bpm_fn = lambda i: bpm0 if i < at else bpm1
            kind = "step"
            ramp = 0
        else:
            ramp = int(rng.choice([8, 16, 32]))
            bpm_fn = lambda i: bpm0 + (bpm1 - bpm0) * float(np.clip((i - at) / ramp, 0, 1))
            kind = "ramp"
        tempo_desc = {"bpm": None, "tempo_change": kind, "bpm_from": round(bpm0, 3),
                      "bpm_to": round(bpm1, 3), "change_at_beat": at, "ramp_beats": ramp}
    lead_in = float(opts.get("lead_in", rng.uniform(0.0, 1.5)))
    grid = make_grid(rng, bpm_fn, n_beats, lead_in)
    # pickup: the music starts on beat 2, 3 or 4 of a bar (its first beats are not downbeats);
    # the grid moves so that beat `phase0` sits at lead_in and earlier beats fall before 0 s.
    phase0 = 0
    if spec.pickups and not opts.get("plain") and rng.random() < 0.4:
        phase0 = int(rng.integers(1, 4))
        grid = grid - (grid[phase0] - lead_in)
    meta["first_beat_in_bar"] = phase0 + 1
    pat, bar = drum_pattern(sub if sub != "drumless" else "", rng, variant)
    if genre == "drumless":
        bar = 3 if rng.random() < 0.15 else 4
    total_n = int(dur * SR)
    # structure: intro without drums, 8-bar breakdown, stop into silence
    n_bars = int((np.searchsorted(grid, dur) - 1) // bar)
    plain = opts.get("plain", False)  # no intro, breakdown or stop (test fixtures)
    drum_start_bar = int(rng.choice([0, 0, 2, 4])) if genre != "drumless" else 10**6
    if spec.drumless_intros and genre != "drumless" and rng.random() < 0.6:
        drum_start_bar = int(rng.choice([2, 4, 4, 8]))  # drumless intros, more and longer
    drum_start_bar = 0 if plain else drum_start_bar
    breakdown = None
    # (final2's intros of up to 8 bars need the longer song; for the other splits this is n_bars > 20.)
    if genre != "drumless" and n_bars > max(20, drum_start_bar + 14) and rng.random() < 0.35 and not plain:
        b0 = int(rng.integers(drum_start_bar + 4, n_bars - 10))
        breakdown = (b0, b0 + 8)
    end_bar = n_bars
    music_end = dur
    ending = None
    endings = spec.several_endings  # several endings, more stops
    if rng.random() < (0.6 if endings else 0.3) and not plain:
        end_bar = max(8, n_bars - int(rng.integers(2, 6)))
        music_end = float(grid[end_bar * bar])
        # final3: several endings -- "cut" (the last notes ring 0.9 beat, as elsewhere), "ring"
        # (the last bar's sound decays over 1-3 s), "hit" (a last kick + crash + chord on the
        # next downbeat, which is labelled, then a 1-3 s decay)
        ending = str(rng.choice(["cut", "ring", "hit"])) if endings else "cut"
        if spec.more_hit_endings and rng.random() < 0.35:
            ending = "hit"  # final4: more `hit` endings (round 5's late beats)
        if ending == "hit":
            meta["last_hit_s"] = round(music_end, 4)
    meta["ending"] = ending
    meta.update(tempo_desc)
    meta["meter"] = bar

    def drums_on(bar_i):
        if bar_i < drum_start_bar or bar_i >= end_bar:
            return False
        return not (breakdown and breakdown[0] <= bar_i < breakdown[1])

    swing = float(rng.uniform(0.05, 0.15)) if sub == "hiphop" else 0.0
    hum = 0.004 if sub in ("rock", "metal", "tempo_change_rock", "waltz") else 0.001

    def t_of(pos):
        f = pos % 1.0
        if swing and abs(f - 0.5) < 1e-6:
            pos = pos + swing
        if swing and abs(f - 0.25) < 1e-6:
            pos = pos + swing / 2
        if swing and abs(f - 0.75) < 1e-6:
            pos = pos + swing / 2
        return float(pos_to_time(grid, pos)) + float(rng.normal(0, hum))

    # "bars" (final3): the pattern changes every 4 bars (verse / chorus), the 4th bar of each
    # phrase ends in a tom/snare fill and the next phrase opens with a crash and a hard kick.
    pat_b = None
    if genre == "bars":
        pat_b, _ = drum_pattern(sub, rng, pool.bars_variant if variant not in ("E", "F") else "A")
        pat_b = [h for h in pat_b if h[1] not in ("chh", "ohh")] + [
            (x / 2, "ride", 85 if x % 2 == 0 else 55) for x in range(bar * 2)]

    # trainp and trainb (round 9): bars whose kick drops out while the hats, claps and bass go on (labels
    # unchanged): an intro of 2-8 bars on half of the files and one or two 2-4 bar gaps later.
    kick_drop = set()
    if spec.kick_drops and genre != "drumless":
        if rng.random() < 0.5:
            kick_drop.update(range(drum_start_bar, drum_start_bar + int(rng.choice([2, 4, 8]))))
        for _ in range(int(rng.integers(1, 3))):
            b0 = int(rng.integers(drum_start_bar + 4, max(drum_start_bar + 5, end_bar - 4)))
            kick_drop.update(range(b0, b0 + int(rng.integers(2, 5))))
        meta["kick_drop_bars"] = sorted(kick_drop)

    hits = []
    for bi in range(end_bar):
        if not drums_on(bi):
            continue
        cur = pat
        if pat_b is not None:
            cur = pat_b if (bi // 4) % 2 else pat
            if bi % 4 == 3:  # fill on the last beat (or two) of the phrase
                cur = [h for h in cur if h[0] < bar - 1] + [
                    (bar - 1 + x / 4, "tom" if x < 2 else "snare", 100 + 5 * x) for x in range(4)]
            if bi % 4 == 0:
                hits.append((t_of(bi * bar), "crash", 115))
                hits.append((t_of(bi * bar), "kick", 125))
        if bi in kick_drop:  # after the choice of pattern, so `bars` would lose its kick too
            cur = [h for h in cur if h[1] != "kick"]
        if spec.ghost_snares:  # ghost snares on two or three random 16ths of every bar
            cur = cur + [(float(x) / 4, "snare", float(rng.uniform(30, 60)))
                         for x in rng.choice(bar * 4, int(rng.integers(2, 4)), replace=False)]
        for pos, v, vel in cur:
            vel = vel * rng.uniform(0.85, 1.0)
            hits.append((t_of(bi * bar + pos), v, vel))
        if bi % 8 == 0 and sub in ("rock", "metal", "trance", "dnb", "tempo_change_rock") and rng.random() < 0.6:
            hits.append((t_of(bi * bar), "crash", 100))
    if genre == "rock_dense":  # the kick buried under loud guitars
        hits = [(t, v, vel * 0.55) for t, v, vel in hits]
    if ending == "hit" and hits:
        hits += [(music_end, "kick", 125), (music_end, "crash", 120), (music_end, "snare", 100)]
    if phase0:
        hits = [h for h in hits if h[0] >= 0]
    if spec.soft_kick:  # a softer kick than the rest of the kit
        soft = float(rng.uniform(0.35, 1.0))
        hits = [(t, v, vel * soft if v == "kick" else vel) for t, v, vel in hits]
    if spec.phase_contrast:  # phase contrast: the kick's loudness says nothing
        soft, loud = float(rng.uniform(0.3, 1.0)), float(rng.uniform(1.0, 1.5))
        hits = [(t, v, vel * soft if v == "kick" else min(127.0, vel * loud)) for t, v, vel in hits]
        meta["kick_gain"], meta["other_drums_gain"] = round(soft, 3), round(loud, 3)
    drums_start = min([h[0] for h in hits], default=None)
    meta["drums_start_s"] = round(drums_start, 4) if drums_start is not None else None

    midi = Midi()
    use_gm_drums = ((rng.random() < spec.gm_drums_p and hits)
                    if "gm_drums" not in opts else opts["gm_drums"])
    kits = spec.kits if spec.kits is not None else pool.kits
    kit = int(rng.choice(kits)) if use_gm_drums else None
    kit_sf = None  # final10: a recorded kit, in its own pass (AVL_KITS); trainm: the GM kit's
    pass_kit = None  # the GM kit of that pass (trainm's gm_drum_pass; final10's kits are preset 0)
    if use_gm_drums and pool.drum_soundfonts is not None:
        kit_sf = str(rng.choice(pool.drum_soundfonts))
        drum_midi = Midi()
        drum_midi.program(0, kit)  # the kit is preset 0 of bank 0: a melodic channel
        for t, v, vel in hits:
            drum_midi.note(0, t, 0.1, AVL_NOTE.get(v, GM[v]), vel)
    elif use_gm_drums and spec.gm_drum_pass:
        kit_sf, pass_kit = pool.soundfont, kit
        drum_midi = Midi()
        for t, v, vel in hits:
            drum_midi.note(9, t, 0.1, GM[v], vel)
    elif use_gm_drums:
        for t, v, vel in hits:
            midi.note(9, t, 0.1, GM[v], vel)
    key = int(rng.integers(0, 12))
    prog_seq = [int(rng.integers(len(CHORDS))) for _ in range(4)]
    parts = {}
    # bass
    if rng.random() < 0.9 or plain:
        parts["bass"] = int(rng.choice(progs["bass"]))
        midi.program(0, parts["bass"])
        for bi in range(end_bar):
            root = 36 + key + CHORDS[prog_seq[bi % 4]][0]
            if sub in ("house", "tempo_change_house", "techno"):
                poss = [b + 0.5 for b in range(bar)]
                if sub == "techno" and rng.random() < 0.5:  # rolling off-beat bass
                    poss = [b + x for b in range(bar) for x in (0.5, 0.75)]
            elif sub == "halftime_fast":
                poss = [0.0, 1.5, 2.0] if rng.random() < 0.5 else [x / 2 for x in range(bar * 2)]
            elif sub == "hiphop_sync":
                poss = [0.0, 0.75, 1.5, 2.25, 3.5]
            elif sub == "trance":
                poss = [b + x for b in range(bar) for x in (0.25, 0.5, 0.75)]
            elif sub in ("dnb", "halftime"):
                poss = [0.0, 2.5] if rng.random() < 0.7 else [0.0]
            elif sub in ("rock", "metal", "tempo_change_rock"):
                poss = [x / 2 for x in range(bar * 2)]
            elif sub == "waltz" or bar == 3:
                poss = [0.0]
            else:
                poss = [0.0, 1.5, 2.0] if bar == 4 else [0.0]
            for pos in poss:
                t = t_of(bi * bar + pos)
                ln = (grid[min(len(grid) - 1, bi * bar + 1)] - grid[bi * bar]) * (0.45 if len(poss) > 2 else 1.5)
                bvel = 120 if sub == "techno" else 100
                if spec.loud_bass:  # the off-beat bass as loud as anything in the mix
                    bvel = 127
                midi.note(0, t, float(ln), root, bvel * rng.uniform(0.8, 1))
    # chords: guitar power chords for rock/metal, keys/pads otherwise
    if genre == "rock_dense" or sub == "halftime_fast" and rng.random() < 0.7:
        # dense distorted guitars: two or three layers, every eighth, loud
        for ch, oct_ in ((1, 40), (4, 52), (5, 47)):
            midi.program(ch, int(rng.choice([29, 30])))
            parts[f"guitar{ch}"] = midi.chan_prog[ch]
            for bi in range(end_bar):
                root = oct_ + (key + CHORDS[prog_seq[bi % 4]][0]) % 12
                for x in range(bar * 2):
                    t = t_of(bi * bar + x / 2) + float(rng.normal(0, 0.006))
                    for iv in (0, 7, 12):
                        midi.note(ch, t, 60 / bpm_fn(bi * bar) * 0.48, root + iv, 120 * rng.uniform(0.9, 1))
    elif sub in ("rock", "metal", "tempo_change_rock") and rng.random() < 0.95:
        parts["guitar"] = int(rng.choice(progs["guitar"]))
        midi.program(1, parts["guitar"])
        eighths = rng.random() < 0.7
        for bi in range(end_bar):
            root = 40 + (key + CHORDS[prog_seq[bi % 4]][0]) % 12
            poss = [x / 2 for x in range(bar * 2)] if eighths else [0.0, 1.5, 2.0, 3.0][:bar]
            for pos in poss:
                t = t_of(bi * bar + pos)
                ln = 60 / bpm_fn(bi * bar) * (0.45 if eighths else 1.4)
                for iv in (0, 7, 12):
                    midi.note(1, t, ln, root + iv, 105 * rng.uniform(0.85, 1))
        if rng.random() < 0.5:  # second guitar sustaining chords
            midi.program(4, int(rng.choice(progs["guitar"])))
            for bi in range(end_bar):
                root = 52 + (key + CHORDS[prog_seq[bi % 4]][0]) % 12
                t = t_of(bi * bar)
                for iv in (0, 7, 12):
                    midi.note(4, t, 60 / bpm_fn(bi * bar) * bar * 0.95, root + iv, 80)
    if rng.random() < 0.8 or genre == "drumless":
        parts["pad"] = int(rng.choice(progs["pad"]))
        midi.program(2, parts["pad"])
        for bi in range(end_bar):
            ch = CHORDS[prog_seq[bi % 4]]
            t = t_of(bi * bar)
            for iv in ch:
                midi.note(2, t, 60 / bpm_fn(bi * bar) * bar * 0.98, 60 + key % 12 + iv, 70)
    if rng.random() < 0.6 or genre == "drumless":
        parts["keys"] = int(rng.choice(progs["keys"] + progs["lead"]))
        arp = rng.choice(["8th", "beat", "16th", "offbeat"]) if sub not in ("dnb",) else "8th"
        if spec.drumless is not None and genre == "drumless":
            table = spec.drumless
            style = opts.get("drumless_style") or str(rng.choice(list(table)))
            parts["keys"] = int(rng.choice(table[style][0]))
            arp = table[style][1]
            meta["drumless_style"] = style
        midi.program(3, parts["keys"])
        for bi in range(end_bar):
            ch = CHORDS[prog_seq[bi % 4]]
            if arp == "16th":
                poss = [x / 4 for x in range(bar * 4)]
            elif arp == "8th":
                poss = [x / 2 for x in range(bar * 2)]
            elif arp == "offbeat":
                poss = [b + 0.5 for b in range(bar)]
            else:
                poss = [float(b) for b in range(bar)]
            for j, pos in enumerate(poss):
                note = 72 + key % 12 + ch[j % 3] + (12 if j % 4 == 3 else 0)
                accent = 1.0 if pos % 1 == 0 else 0.75
                midi.note(3, t_of(bi * bar + pos), 60 / bpm_fn(bi * bar) * 0.22, note,
                          95 * accent * rng.uniform(0.8, 1))
    if ending == "hit":  # the band's last chord on the last hit
        ch0 = 2 if "pad" in parts else 0
        if ch0 not in midi.chan_prog:
            midi.program(ch0, int(rng.choice(progs["pad"])))
        for iv in CHORDS[0]:
            midi.note(ch0, music_end, 1.5, 48 + key % 12 + iv, 115)
    meta["gm_drum_kit"] = kit
    meta["gm_programs"] = parts
    mel = fluid_render(midi, None if kit_sf else kit, total_n, rng, pool.soundfont)
    synth = np.zeros(total_n)
    if hits and not use_gm_drums:
        synth = render_synth_drums(hits, total_n, rng, kitb=spec.synth_kit)
        meta["drums"] = spec.synth_name
    elif hits and kit_sf:  # the recorded kit (or trainm's GM kit), mixed like the synth kit
        synth = fluid_render(drum_midi, pass_kit, total_n, rng, kit_sf)
        meta["drums"] = "gm"
        if pool.drum_soundfonts is not None:
            meta["drum_soundfont"] = os.path.basename(kit_sf)
    elif hits:
        meta["drums"] = "gm"
    else:
        meta["drums"] = None
    drum_bus = bool(hits) and (not use_gm_drums or kit_sf is not None)
    # mix: drums relative to the rest
    dr_gain = 10 ** (rng.uniform(-8, 4) / 20)
    if genre == "rock_dense":
        dr_gain = 10 ** (rng.uniform(-16, -8) / 20)
    rms_m = np.sqrt(np.mean(mel**2)) + 1e-9
    rms_s = np.sqrt(np.mean(synth**2)) + 1e-9
    music = mel / rms_m * 0.1
    master = spec.master_p > 0 and rng.random() < spec.master_p  # final10's, trainm's masters
    if master and drum_bus:  # the music (not the drums) ducked by the kick
        kicks = [(t, vel) for t, v, vel in hits if v == "kick"]
        if kicks and spec.master_chain == "club":
            pump, pdesc = sidechain_gain(kicks, total_n, rng)
            music = music * pump
            meta["pump"] = pdesc
        elif kicks and rng.random() < 0.6:  # trainm: on 60 %, another recovery than final10's
            curve = "exp" if rng.random() < 0.5 else "lin"
            pump, pdesc = sidechain_gain(kicks, total_n, rng, shape=curve, **TRAINM_PUMP)
            music = music * pump
            meta["pump"] = dict(pdesc, pump_shape=curve)
    x = music + (synth / rms_s * 0.1 * dr_gain if drum_bus else 0)
    if music_end < dur and ending in ("ring", "hit"):
        # the sound after the last beat (or the last hit) decays over 1-3 s, then silence
        s0 = int((music_end + (0.05 if ending == "hit" else 0.0)) * SR)
        tau = float(rng.uniform(0.25, 0.7))
        n = total_n - s0
        if n > 0:
            x[s0:] *= np.exp(-np.arange(n) / (tau * SR))
            x[min(total_n, s0 + int(4.5 * tau * SR)):] = 0
    elif music_end < dur:
        fade = int(0.02 * SR)
        e = int((music_end + 60 / bpm_fn(end_bar * bar) * 0.9) * SR)  # last notes ring a bit
        e = min(e, total_n)
        x[e:] = 0
        x[max(0, e - fade):e] *= np.linspace(1, 0, e - max(0, e - fade))
    live = opts.get("live") if spec.live is not None else None  # final11's live capture
    if live == "mixer":
        bar_times = [float(grid[b * bar]) for b in range(end_bar + 1)]
        first = 1 if bar_times[0] < 0 else 0  # a pickup's bar 0 starts before the file
        lo = max(first, drum_start_bar if hits and end_bar - drum_start_bar >= 4 else 0)
        x, meta["live"] = dj_mixer(x, rng, bar_times, bar, lo, end_bar)
    elif live == "room":
        x, meta["live"] = room_capture(x, rng, int(music_end * SR))
    elif spec.live is not None:
        meta["live"] = None
    if master:
        chain = club_master if spec.master_chain == "club" else random_master
        x, meta["master"] = chain(x, rng)
    elif spec.master_p > 0:
        meta["master"] = None
    n_lab = end_bar * bar + (1 if ending == "hit" else 0)
    beats = [(float(grid[i]), (i % bar) + 1) for i in range(min(len(grid), n_lab))
             if 0 <= grid[i] < dur]
    meta["music_end_s"] = round(music_end, 4)
    return x, beats, meta


def negative(rng, dur, kind=None, voices=None):
    n = int(dur * SR)
    if kind is None:
        kind = rng.choice(["silence", "noise_floor", "loud_noise", "sweep", "speech"])
    t = np.arange(n) / SR
    if kind == "silence":
        x = np.zeros(n)
    elif kind == "noise_floor":
        x = rng.normal(0, 10 ** (rng.uniform(-80, -55) / 20), n)
    elif kind == "loud_noise":
        x = rng.normal(0, 1, n)
        if rng.random() < 0.5:  # pink-ish
            b, a = signal.butter(1, 0.02)
            x = signal.lfilter(b, a, x)
        x = x / np.max(np.abs(x)) * 10 ** (rng.uniform(-12, -1) / 20)
    elif kind == "crowd":  # final11: a club crowd through its room mic, no music
        x, live = room_capture(np.zeros(n), rng, 0)
    elif kind == "sweep":
        f0, f1 = rng.uniform(20, 200), rng.uniform(2000, 18000)
        ph = 2 * np.pi * f0 * dur / np.log(f1 / f0) * (np.exp(t / dur * np.log(f1 / f0)) - 1)
        x = 0.5 * np.sin(ph)
    else:
        words = ("the beat drops when the lights go down and everyone waits for the next bar "
                 "tempo rhythm music speaker microphone stage hello testing one two three "
                 "video model prompt scene colour night city river forest").split()
        text = " ".join(rng.choice(words, 80))
        voice = str(rng.choice(voices or ["en", "en-us", "de", "fr", "es", "en+f3", "en+m3"]))
        with tempfile.TemporaryDirectory() as d:
            wp = os.path.join(d, "s.wav")
            subprocess.run(["espeak-ng", "-v", voice, "-s", str(int(rng.integers(130, 200))),
                            "-w", wp, text], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
            s, ssr = sf.read(wp, dtype="float64")
        s = signal.resample_poly(s, SR, ssr)
        x = np.zeros(n)
        x[: min(n, len(s))] = s[:n] * 0.5
    meta = {"genre": "negative", "negative": True, "kind": str(kind), "bpm": None,
            "drums_start_s": None, "music_end_s": None}
    if kind == "crowd":
        meta["live"] = live
    return x, meta


# ---------------------------------------------------------------- augmentation
def augment(x, rng, strength=1.0, keep_loud=None):
    """keep_loud (mastered songs): the peak level in dBFS the file stays at (final10's club
    masters -1, trainm's its ceiling; the random level is drawn, not used)."""
    desc = {}
    if rng.random() < 0.6 * strength:  # EQ: random tilt / band cut
        b, a = signal.butter(2, rng.uniform(80, 400) / (SR / 2), "high" if rng.random() < 0.5 else "low")
        if a is not None and rng.random() < 0.5:
            y = signal.lfilter(b, a, x)
            g = rng.uniform(0.3, 0.8)
            x = (1 - g) * x + g * y
            desc["eq"] = True
    if rng.random() < 0.4 * strength:  # reverb
        n = int(rng.uniform(0.2, 1.5) * SR)
        ir = rng.normal(0, 1, n) * np.exp(-np.arange(n) / (rng.uniform(0.05, 0.4) * SR))
        ir[0] = 0
        wet = signal.fftconvolve(x, ir)[: len(x)]
        wet *= np.sqrt(np.mean(x**2) + 1e-12) / (np.sqrt(np.mean(wet**2)) + 1e-12)
        x = x + wet * rng.uniform(0.1, 0.5)
        desc["reverb"] = True
    if rng.random() < 0.5 * strength:  # compression / saturation
        drive = 10 ** (rng.uniform(0, 15) / 20)
        peak = np.max(np.abs(x)) + 1e-12
        x = np.tanh(x / peak * drive) / np.tanh(drive) * peak
        desc["compress_db"] = round(20 * np.log10(drive), 1)
    peak = np.max(np.abs(x)) + 1e-12
    level = 10 ** (rng.uniform(-30, -0.5) / 20) if strength > 0 else 10 ** (-3 / 20)
    if keep_loud is not None:
        level = 10 ** (keep_loud / 20)
    x = x / peak * level if peak > 1e-9 else x
    if rng.random() < 0.35 * strength:
        snr = rng.uniform(10, 45)
        rms = np.sqrt(np.mean(x**2)) + 1e-12
        x = x + rng.normal(0, rms * 10 ** (-snr / 20), len(x))
        desc["noise_snr_db"] = round(snr, 1)
    return np.clip(x, -1, 1), desc


def out_rate(rng):
    return int(rng.choice([8000, 11025, 16000, 22050, 22050, 32000, 44100, 44100, 44100, 48000]))


# ---------------------------------------------------------------- driver
def make_one(args):
    split, idx, seed, out_dir, forced = args
    spec = SPLITS[split]
    rng = np.random.default_rng([seed, spec.id, idx])
    if forced:
        genre, dur = forced["genre"], forced["dur"]
    elif spec.cycle is not None:
        cycle = spec.cycle
        if idx < len(cycle) or spec.after_cycle is None:
            genre = cycle[idx % len(cycle)]
        else:
            genre = spec.after_cycle  # validx's files 35-44
        dur = float(rng.uniform(30, 45))
    else:
        w = np.array(spec.weights if spec.weights is not None else WEIGHTS, float)
        genre = str(rng.choice(spec.genres if spec.genres is not None else GENRES, p=w / w.sum()))
        dur = float(rng.uniform(30, 45))
    if genre == "negative":
        neg_kind, voices = None, spec.voices
        if spec.negatives is not None and spec.negatives_per_file:
            kinds = spec.negatives
            neg_kind = kinds[idx % len(kinds)]
        elif spec.negatives is not None:  # the n-th negative of the split's cycle gets kind n
            cycle, kinds = spec.cycle, spec.negatives
            neg_kind = kinds[sum(g == "negative" for g in cycle[:idx % len(cycle)]) % len(kinds)]
        x, meta = negative(rng, dur, neg_kind, voices)
        beats = []
    else:
        opts = forced.get("opts") if forced else None
        if spec.drumless_styles is not None and genre == "drumless":
            # the n-th drumless song of the split's cycle gets style n
            cycle, styles = spec.cycle, spec.drumless_styles
            opts = {"drumless_style": styles[
                sum(g == "drumless" for g in cycle[:idx % len(cycle)]) % len(styles)]}
        if spec.synth_drums_only:
            opts = {"gm_drums": False}  # the synthesised high kick on every file
        if spec.live is not None:  # final11: the file's live condition, in turn
            opts = dict(opts or {}, live=spec.live[idx % len(spec.live)])
        x, beats, meta = song(genre, rng, spec.renders_as or split, dur, opts)
        meta["negative"] = False
    strength = forced.get("aug", 1.0) if forced else 1.0
    if genre != "negative" or meta.get("kind") in ("speech", "loud_noise", "crowd"):
        m = meta.get("master")  # a master's ceiling (final10's: -1 dBFS) stays
        x, aug = augment(x, rng, strength, keep_loud=m.get("ceiling_dbfs", -1) if m else None)
        meta["augment"] = aug
    # varispeed (time-stretch with pitch): exact, the grid scales with it
    speed = 1.0
    if not forced and genre not in ("negative", "halftime", "trance") and rng.random() < 0.3:
        speed = float(rng.uniform(0.97, 1.03))
    sr = forced["sr"] if forced else out_rate(rng)
    # resample SR -> sr/speed-equivalent: play SR-sampled audio `speed` times faster
    src = SR * speed
    up, down = sr, int(round(src))
    g = np.gcd(up, down)
    y = signal.resample_poly(x, up // g, down // g) if (up, down) != (SR, SR) else x
    y = np.clip(y, -1, 1)
    beats = [(t / speed, b) for t, b in beats]
    for k in ("drums_start_s", "music_end_s", "last_hit_s"):
        if meta.get(k) is not None:
            meta[k] = round(meta[k] / speed, 4)
    for k in ("bpm", "bpm_from", "bpm_to"):
        if meta.get(k) is not None:
            meta[k] = round(meta[k] * speed, 3)
    for m in (meta.get("live") or {}).get("moves", []) + (meta.get("live") or {}).get("cheers", []):
        for k in ("start_s", "end_s", "peak_s"):  # final11's mixer moves and cheers
            if k in m:
                m[k] = round(m[k] / speed, 4)
    meta["speed"] = round(speed, 4)
    meta["sample_rate"] = sr
    meta["duration_s"] = round(len(y) / sr, 4)
    meta["seed"] = seed
    meta["split"] = split
    name = forced["name"] if forced else f"{split}_{idx:04d}_{genre}"
    d = out_dir if forced else os.path.join(out_dir, split, genre)
    os.makedirs(d, exist_ok=True)
    sf.write(os.path.join(d, name + ".flac"), y.astype(np.float32), sr, subtype="PCM_16")
    with open(os.path.join(d, name + ".beats"), "w") as f:
        for t, b in beats:
            f.write(f"{t:.6f} {b}\n")
    with open(os.path.join(d, name + ".json"), "w") as f:
        json.dump(meta, f, indent=1, default=lambda o: o.item() if hasattr(o, "item") else str(o))
    return len(y) / sr


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--split", required=True,
                    choices=[name for name, spec in SPLITS.items() if spec.cli])
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--start", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default=os.path.join(HERE, "data"))
    ap.add_argument("--jobs", type=int, default=2)
    a = ap.parse_args()
    jobs = [(a.split, i, a.seed, a.out, None) for i in range(a.start, a.start + a.count)]
    with Pool(a.jobs) as p:
        total = sum(p.imap_unordered(make_one, jobs, chunksize=1))
    print(f"{a.split}: {a.count} files, {total / 60:.1f} min", file=sys.stderr)


if __name__ == "__main__":
    main()
