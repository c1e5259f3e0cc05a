//! `--check-config` as a pre-flight: after the files parse, check what would only fail at show
//! time — features this build lacks, devices and files that are not there, a panic the backend
//! cannot perform — and report every problem in one run, located like parse errors.

use std::path::{Path, PathBuf};

use crate::audio::config::SourceKind;
use crate::config::LoadedConfig;
use crate::config::diagnostics::ConfigError;
use crate::transport::config::Backend;
use crate::video::config::{InputSource, SinkConfig};

/// The optional cargo features compiled into this build, for `--version` and the checks below.
pub(crate) fn build_features() -> &'static [&'static str] {
    &[
        #[cfg(feature = "ndi")]
        "ndi",
        #[cfg(feature = "jack")]
        "jack",
    ]
}

/// `--version` text: the version and the optional features this build has.
pub fn version_text() -> String {
    let f = build_features();
    if f.is_empty() {
        format!("{} (no optional features)", env!("CARGO_PKG_VERSION"))
    } else {
        format!("{} (features: {})", env!("CARGO_PKG_VERSION"), f.join(", "))
    }
}

/// Every show-time problem the configuration has on this machine. `backend` is the one that
/// will run (the dry run when `--dry-run` is given).
pub(crate) fn check(loaded: &LoadedConfig, backend: Backend) -> Vec<ConfigError> {
    let app = &loaded.app;
    let dir = loaded.dir.as_deref();
    let mut out = Vec::new();
    let mut err = |key: String, msg: String| out.push(app.error_at(&key, msg));

    // Audio input.
    if app.audio.source == SourceKind::File {
        let p = resolve(dir, &app.audio.file);
        if let Err(why) = readable_file(&p) {
            err(
                "audio.file".into(),
                format!("audio file {}: {why}", p.display()),
            );
        }
    }

    // Video sinks and input: `[video]`, and each output's own (`[[outputs]]`).
    video_checks(&app.video, "video", dir, &mut err);
    for (i, o) in app.outputs.iter().enumerate() {
        if let Some(v) = &o.video {
            video_checks(v, &format!("outputs[{i}].video"), dir, &mut err);
        }
    }

    // Server-side features and the backend.
    for (i, img) in app.video.vace.ref_images.iter().enumerate() {
        let p = resolve(dir, img);
        if let Err(why) = readable_file(&p) {
            err(
                format!("video.vace.ref_images[{i}]"),
                format!("reference image {}: {why}", p.display()),
            );
        }
    }
    if let Some(why) = app.controls.panic.unsupported_on(backend.label()) {
        err("controls.panic".into(), why.into());
    }
    if backend != Backend::Scope && !app.video.scope_outputs.enable.is_empty() {
        err(
            "video.scope_outputs.enable".into(),
            format!(
                "the Scope server's own outputs exist only on the scope backend (this run uses \
                 {})",
                backend.label()
            ),
        );
    }
    out
}

/// A relative path in a config file is relative to the config folder.
fn resolve(dir: Option<&Path>, p: &str) -> PathBuf {
    let path = PathBuf::from(p);
    match dir {
        Some(d) if path.is_relative() => d.join(path),
        _ => path,
    }
}

fn parent_dir(p: &Path) -> PathBuf {
    match p.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn readable_file(p: &Path) -> Result<(), String> {
    if p.as_os_str().is_empty() {
        return Err("no path given".into());
    }
    match std::fs::File::open(p) {
        Ok(f) => match f.metadata() {
            Ok(m) if m.is_file() => Ok(()),
            Ok(_) => Err("not a file".into()),
            Err(e) => Err(e.to_string()),
        },
        Err(e) => Err(e.to_string()),
    }
}

/// `None` when the folder exists and is writable, or could be created (its nearest existing
/// ancestor is a writable folder); otherwise why not.
fn creatable_dir(p: &Path) -> Option<String> {
    let mut at = p.to_path_buf();
    loop {
        match std::fs::metadata(&at) {
            Ok(m) if m.is_dir() => {
                return if m.permissions().readonly() {
                    Some(format!("{} is read-only", at.display()))
                } else {
                    None
                };
            }
            Ok(_) => return Some(format!("{} is not a folder", at.display())),
            Err(_) => match at.parent() {
                Some(parent) if !parent.as_os_str().is_empty() => at = parent.to_path_buf(),
                _ => return None,
            },
        }
    }
}

/// What would fail at show time in one output's video sinks and input (`prefix` is its key
/// path: `video`, `outputs[1].video`).
fn video_checks(
    video: &crate::video::config::VideoConfig,
    prefix: &str,
    dir: Option<&Path>,
    err: &mut impl FnMut(String, String),
) {
    // Video sinks.
    for (i, sink) in video.sinks.iter().enumerate() {
        let key = format!("{prefix}.sinks[{i}]");
        match sink {
            SinkConfig::Ndi { .. } if !build_features().contains(&"ndi") => err(
                format!("{key}.kind"),
                "an NDI sink needs a build with the `ndi` feature (`cargo build --release \
                 --features ndi`); this build has none"
                    .into(),
            ),
            SinkConfig::V4l2loopback { device, .. } if !Path::new(device).exists() => err(
                format!("{key}.device"),
                format!(
                    "no device {device}: load the v4l2loopback kernel module (e.g. `sudo \
                     modprobe v4l2loopback video_nr=10 exclusive_caps=1`) or fix the path"
                ),
            ),
            SinkConfig::Shm { socket, .. } => {
                let parent = parent_dir(&resolve(dir, socket));
                if !parent.is_dir() {
                    err(
                        format!("{key}.socket"),
                        format!("folder {} does not exist", parent.display()),
                    );
                }
            }
            SinkConfig::File { dir: rec, .. } => {
                let p = resolve(dir, rec);
                if let Some(why) = creatable_dir(&p) {
                    err(
                        format!("{key}.dir"),
                        format!("recordings folder {}: {why}", p.display()),
                    );
                }
            }
            SinkConfig::Window {} => {
                let display = std::env::var_os("DISPLAY").is_some()
                    || std::env::var_os("WAYLAND_DISPLAY").is_some();
                if !display {
                    err(
                        key,
                        "a window sink needs a display (DISPLAY or WAYLAND_DISPLAY is not set; \
                         over SSH use shm, v4l2loopback, NDI or a file instead)"
                            .into(),
                    );
                }
            }
            _ => {}
        }
    }

    // Video input.
    match video.input.source {
        InputSource::File => {
            let p = resolve(dir, &video.input.file);
            if let Err(why) = readable_file(&p) {
                err(
                    format!("{prefix}.input.file"),
                    format!("video input {}: {why}", p.display()),
                );
            }
        }
        InputSource::Webcam => {
            let dev = &video.input.device;
            if !dev.is_empty() && !Path::new(dev).exists() {
                err(
                    format!("{prefix}.input.device"),
                    format!("no camera device {dev}"),
                );
            }
        }
        InputSource::None | InputSource::TestPattern => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loaded(cfg: &str, dir: &Path) -> LoadedConfig {
        std::fs::write(dir.join("config.toml"), cfg).expect("write config");
        match crate::config::load(Some(dir)) {
            Ok(l) => l,
            Err(e) => panic!("config should parse: {e}"),
        }
    }

    #[test]
    fn a_clean_default_config_has_no_problems() {
        let d = tempfile::tempdir().expect("tempdir");
        let l = loaded("", d.path());
        assert!(check(&l, Backend::Scope).is_empty());
    }

    #[test]
    fn every_show_time_problem_is_reported_in_one_run() {
        let d = tempfile::tempdir().expect("tempdir");
        let cfg = r#"
[audio]
source = "file"
file = "missing.wav"

[controls]
panic = "pause"

[[video.sinks]]
kind = "v4l2loopback"
device = "/dev/video-not-here-77"

[video.input]
source = "file"
file = "nope.mp4"

[video.vace]
ref_images = ["gone.png"]
"#;
        let l = loaded(cfg, d.path());
        let problems = check(&l, Backend::Daydream);
        let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
        let has = |key: &str| problems.iter().any(|p| p.key == key);
        for key in [
            "audio.file",
            "video.sinks[0].device",
            "video.input.file",
            "video.vace.ref_images[0]",
            "controls.panic",
        ] {
            assert!(has(key), "no problem for {key}: {text:#?}");
        }
        // Located like parse errors: the user's file and a line.
        let sink = problems
            .iter()
            .find(|p| p.key == "video.sinks[0].device")
            .expect("sink problem");
        assert!(
            sink.file.ends_with("config.toml") && sink.line > 0,
            "{sink}"
        );
        assert!(sink.message.contains("modprobe v4l2loopback"), "{sink}");
    }

    #[cfg(not(feature = "ndi"))]
    #[test]
    fn an_ndi_sink_without_the_feature_is_refused() {
        let d = tempfile::tempdir().expect("tempdir");
        let l = loaded("[[video.sinks]]\nkind = \"ndi\"\n", d.path());
        let problems = check(&l, Backend::Scope);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("--features ndi"));
        assert!(!version_text().contains("ndi"));
    }

    #[test]
    fn the_default_panic_works_on_every_backend_and_pause_is_refused_on_daydream_with_its_line() {
        let d = tempfile::tempdir().expect("tempdir");
        let l = loaded("[controls]\nconfirm_quit = true\n", d.path());
        for b in [Backend::Scope, Backend::DryRun, Backend::Daydream] {
            assert!(
                !check(&l, b).iter().any(|p| p.key == "controls.panic"),
                "{b:?}"
            );
        }
        let l = loaded("[controls]\n\npanic = \"pause\"\n", d.path());
        let p = check(&l, Backend::Daydream);
        let p = p
            .iter()
            .find(|p| p.key == "controls.panic")
            .expect("refused");
        assert_eq!(p.line, 3, "{p}");
        assert!(p.message.contains("\"auto\""), "{p}");
        let l = loaded("[controls]\npanic = \"blackout\"\n", d.path());
        assert!(check(&l, Backend::Daydream).is_empty());
    }

    #[test]
    fn the_pause_panic_is_fine_where_the_backend_can_pause() {
        let d = tempfile::tempdir().expect("tempdir");
        let l = loaded("[controls]\npanic = \"pause\"\n", d.path());
        assert!(check(&l, Backend::Scope).is_empty());
        assert!(check(&l, Backend::DryRun).is_empty());
    }
}
