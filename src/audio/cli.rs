//! The audio subcommands (`analyze`, `audio-devices`, `bench audio`), run before any runtime
//! starts. Only the requested output goes to stdout; problems go to stderr.

use crate::audio::config::AudioConfig;
use crate::audio::dsp::beat::TrackerKind;
use crate::cli::{Command, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE};

/// Runs an audio subcommand if `cmd` is one; returns the exit code, or `None` for other
/// commands.
#[allow(clippy::print_stdout)]
pub(crate) fn dispatch(cmd: Option<&Command>, cfg: &AudioConfig) -> Option<u8> {
    match cmd? {
        Command::Analyze {
            files,
            beat_tracker,
            beat_model,
            ..
        } => {
            let mut cfg = cfg.clone();
            if let Some(t) = beat_tracker {
                cfg.beat_tracker = *t;
            }
            if let Some(path) = beat_model {
                if let Err(e) = use_beat_model(path, *beat_tracker) {
                    eprintln!("scope-deck analyze: --beat-model {}: {e}", path.display());
                    return Some(EXIT_USAGE);
                }
                cfg.beat_tracker = TrackerKind::Learned;
            }
            let (map, failed) = crate::audio::analyze::analyze_files(files, &cfg, &mut |e| {
                eprintln!("scope-deck analyze: {e}");
            });
            Some(match serde_json::to_string(&map) {
                Ok(s) => {
                    println!("{s}");
                    if failed > 0 {
                        eprintln!(
                            "scope-deck analyze: {failed} of {} file(s) failed",
                            map.len()
                        );
                        EXIT_RUNTIME
                    } else {
                        EXIT_OK
                    }
                }
                Err(e) => {
                    eprintln!("scope-deck analyze: {e}");
                    EXIT_RUNTIME
                }
            })
        }
        Command::AudioDevices => Some(match crate::audio::source::device::list_inputs() {
            Ok(list) => {
                for (i, name) in list.iter().enumerate() {
                    println!("{i}\t{name}");
                }
                if list.is_empty() {
                    eprintln!("no audio input devices found");
                }
                EXIT_OK
            }
            Err(e) => {
                eprintln!("scope-deck: {e}");
                EXIT_RUNTIME
            }
        }),
        Command::Bench { what, write_set } => Some(if what == "audio" {
            if let Some(dir) = write_set {
                if let Err(e) = crate::audio::eval::write_set(dir) {
                    eprintln!("scope-deck bench: cannot write {}: {e}", dir.display());
                    return Some(EXIT_RUNTIME);
                }
            }
            print!("{}", crate::audio::eval::run_bench());
            EXIT_OK
        } else {
            eprintln!("scope-deck bench: unknown target `{what}` (known: audio)");
            EXIT_USAGE
        }),
        _ => None,
    }
}

/// Loads `analyze --beat-model`'s weights in place of the compiled-in ones.
fn use_beat_model(path: &std::path::Path, tracker: Option<TrackerKind>) -> Result<(), String> {
    if tracker == Some(TrackerKind::Dsp) {
        return Err("needs the learned tracker, not --beat-tracker dsp".into());
    }
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    crate::audio::dsp::learned::gru::override_model(bytes).map_err(|e| e.to_string())
}
