//! Command line: flags override config.toml; exit codes are part of the interface.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Clean exit: quit, or a handled SIGINT/SIGTERM/SIGHUP.
pub(crate) const EXIT_OK: u8 = 0;
/// Something failed at run time (terminal unavailable, transport could not start, ...).
pub(crate) const EXIT_RUNTIME: u8 = 1;
/// Bad command line (clap's own code).
pub(crate) const EXIT_USAGE: u8 = 2;
/// The configuration, a theme or a keymap is invalid.
pub(crate) const EXIT_CONFIG: u8 = 3;
/// Shutdown finished, but an edge (audio, MIDI, video, transport, terminal) did not stop within
/// its deadline and was abandoned; stderr and the log name it.
pub const EXIT_STUCK: u8 = 4;

const EXAMPLES: &str = "\
Examples:
  scope-deck --dry-run                      rehearse: demo audio, nothing sent anywhere
  scope-deck --server http://gpu-box:8000   steer a Scope server
  scope-deck --server https://<pod>-8000.proxy.runpod.net
  scope-deck --headless --dry-run           JSON-lines actions on stdin, events on stdout
      echo '{\"action\":\"reset_cache\"}' | scope-deck --headless --dry-run
  scope-deck --check-config --config-dir ./my-show
  scope-deck audio-devices                  list audio inputs for [audio] device
  scope-deck analyze set.flac --json        beats, onsets, tempo (offline, same analysis)
  scope-deck serve --dry-run                the show with no terminal, on a control socket
  scope-deck attach                         the dashboard on it (q leaves, the show goes on)
      echo '{\"cmd\":\"get_state\"}' | scope-deck attach --headless
  scope-deck --resume                       take the last show back (state journal)
  scope-deck --record set.jsonl.gz          record the set; replay it with `replay`
  scope-deck replay set.jsonl.gz --compare  re-run it (dry run) and diff what is sent

Exit codes:
  0  clean exit (quit, or SIGINT/SIGTERM/SIGHUP handled)
  1  run-time failure (see the log)
  2  bad command line
  3  invalid config.toml, theme or keymap, or a pre-flight problem (every problem is listed
     with file:line: key)
  4  an edge did not stop within its deadline (named on stderr and in the log); exited anyway
     (101 and 1 win when a task also panicked or failed)

Files:
  config   $XDG_CONFIG_HOME/scope-deck/{config.toml,themes/*.toml,keymaps/*.toml}
  log      $XDG_STATE_HOME/scope-deck/scope-deck.log
  journal  $XDG_STATE_HOME/scope-deck/state.json (--state-file)";

/// scope-deck: play real-time AI video like an instrument.
#[derive(Debug, Parser)]
#[command(name = "scope-deck", version, about, after_help = EXAMPLES)]
pub struct Cli {
    /// No terminal UI: read JSON-lines actions on stdin, write JSON-lines events on stdout.
    #[arg(long)]
    pub(crate) headless: bool,
    /// No server: the transport records what it would send and shows it.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Scope server URL (overrides [server] url), e.g. http://127.0.0.1:8000. Given twice or
    /// more: one output per server, all driven at once (docs/outputs.md).
    #[arg(long, value_name = "URL")]
    pub(crate) server: Vec<String>,
    /// Folder with config.toml, themes/ and keymaps/ (default: $XDG_CONFIG_HOME/scope-deck).
    #[arg(long, value_name = "DIR")]
    pub(crate) config_dir: Option<PathBuf>,
    /// Log level or filter (overrides [logging] level), e.g. debug or scope_deck=trace.
    #[arg(long, value_name = "LEVEL")]
    pub(crate) log_level: Option<String>,
    /// Validate config, themes and keymaps, then pre-flight what would fail at show time
    /// (features not built in, missing devices and files, a panic the backend cannot do);
    /// print every problem and exit (3 if any).
    #[arg(long)]
    pub(crate) check_config: bool,
    /// With --check-config: also ask every configured server ([server] url, or each
    /// [[outputs]] output's) what the show needs, as --server URL does for one URL.
    #[arg(long)]
    pub(crate) check_servers: bool,
    /// Setlist (cue list) file to load (overrides [show] setlist); with --check-config only
    /// validates it.
    #[arg(long, value_name = "FILE")]
    pub(crate) setlist: Option<PathBuf>,
    /// Take the last show back from the state journal (theme, prompts, the performer's values,
    /// toggles, macros, tempo, cue position). Without it the terminal asks; headless ignores it.
    #[arg(long)]
    pub(crate) resume: bool,
    /// State journal file (default: $XDG_STATE_HOME/scope-deck/state.json).
    #[arg(long, value_name = "FILE")]
    pub(crate) state_file: Option<PathBuf>,
    /// Record every action, audio event, analysis frame and transport message as JSON lines
    /// (gzip when FILE ends in .gz) for `scope-deck replay`.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    /// Print the built-in config.toml (a commented template) and exit.
    #[arg(long)]
    pub(crate) print_default_config: bool,
    /// Test hook: panic in the terminal front end after the first frame (checks that a panic
    /// restores the terminal and lands in the log).
    #[arg(long, hide = true)]
    pub(crate) crash_test: bool,
    /// Subcommands.
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
}

/// The output and exit-status contract of `analyze`, shown by `analyze --help`.
const ANALYZE_HELP: &str = "\
Output: one JSON object on stdout, one entry per file, keyed by the file's name; when two
different paths share a name (a/set.wav, b/set.wav) both are keyed by the path as given. Each
entry has `path` (as given) and either the analysis (beats, onsets, bpm, beat_detect_times,
onset_detect_times, beat_confidence, beat_in_bar, downbeats, sample_rate, duration, tracker,
model_version) or `error`. Files are decoded and analysed in blocks: memory does not grow with
length. `--beat-tracker dsp|learned` overrides `[audio] beat_tracker` for this run;
`--beat-model FILE` runs the learned tracker with other weights (a safetensors file that
training/beat/train.py wrote; `model_version` in the JSON says which).

Exit status: 0 every file was analysed; 1 one or more files failed (each failure is printed on
stderr and is an `error` entry in the JSON, the other files are still analysed); 2 bad command
line; 3 bad configuration.";

/// Subcommands besides the main job.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Validate configuration (same as --check-config).
    CheckConfig,
    /// Analyse audio files faster than real time with the live (causal) analysis and print
    /// beats, onsets, tempo and when each event was emitted, as JSON keyed by file name.
    #[command(after_help = ANALYZE_HELP)]
    Analyze {
        /// Audio files (WAV natively; FLAC, MP3, OGG, ... through GStreamer).
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// Print JSON (the only output format; accepted for clarity in scripts).
        #[arg(long)]
        json: bool,
        /// Beat tracker to run instead of the configured `[audio] beat_tracker`, e.g. to
        /// compare both on the same files.
        #[arg(long, value_enum, value_name = "TRACKER")]
        beat_tracker: Option<crate::audio::dsp::beat::TrackerKind>,
        /// Run the learned tracker with these weights instead of the compiled-in ones (a
        /// training candidate, scored without rebuilding).
        #[arg(long, value_name = "FILE")]
        beat_model: Option<PathBuf>,
    },
    /// Play a recording (`--record FILE`) back into the engine: its actions, audio events and
    /// analysis frames at their recorded engine times, in real time or faster, against the
    /// dry run (default) or a server; `--compare` diffs the data-channel messages with the
    /// recorded ones (exit 1 on a difference). Loads `--config-dir` like a show.
    Replay {
        /// The recording (`.jsonl`, or `.gz`).
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Playback speed: 1 real time, 2 twice as fast, 0 as fast as possible.
        #[arg(long, default_value_t = 1.0, value_name = "X")]
        speed: f64,
        /// Report where the sent messages differ from the recorded ones (exit 1 if any).
        #[arg(long)]
        compare: bool,
        /// Send nothing anywhere (the default).
        #[arg(long, conflicts_with = "server")]
        dry_run: bool,
        /// Send to this Scope server instead of the dry run.
        #[arg(long, value_name = "URL")]
        server: Option<String>,
    },
    /// List audio input devices (index and name) for `[audio] device`.
    AudioDevices,
    /// Run the show with no terminal and serve it on a Unix socket for `attach` (and scripts):
    /// JSON lines, docs/service.md. An SSH drop does not stop it (SIGHUP is ignored).
    Serve {
        /// Socket path (default: $XDG_RUNTIME_DIR/scope-deck/deck.sock, else
        /// /tmp/scope-deck-<uid>/deck.sock).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    /// Open the dashboard on a running `serve` (same screens and keys; q, Ctrl-C or a closed
    /// terminal leave the dashboard, the show goes on).
    Attach {
        /// Socket path (as given to `serve`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
        /// No dashboard: stdin lines go to the deck, its lines (hello, events, replies) to
        /// stdout.
        #[arg(long)]
        headless: bool,
    },
    /// Developer benchmarks: `bench audio` prints the audio accuracy table and speed.
    #[command(hide = true)]
    Bench {
        /// What to benchmark (`audio`).
        what: String,
        /// Also write the generated evaluation set (WAV + truth.json) into this folder.
        #[arg(long, value_name = "DIR")]
        write_set: Option<PathBuf>,
    },
}
