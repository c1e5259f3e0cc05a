//! `scope-deck replay FILE`: folds a recording's inputs into a fresh engine state at their
//! recorded engine times (paced in wall-clock time by `--speed`, or as fast as possible with
//! `--speed 0`), hands the resulting commands to a live transport (the dry run, or `--server`),
//! and with `--compare` compares the data-channel messages the recorded show sent with the ones
//! the replay makes, aligned so one extra or missing message is one difference (`wire.rs`).
//!
//! The recording replaces every input edge (audio, keys, MIDI, the transport's reports): the
//! live transport is only an output here, so the fold, and with it every data-channel
//! update, is the same as in the show whatever the replay's own timing. Stream timestamps inside
//! audio events and frames travel unchanged.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::cli::{EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE};
use crate::config::LoadedConfig;
use crate::core::effect::Effect;
use crate::core::outputs::update_routed;
use crate::record::format::{FORMAT, Header, Input, Line, VERSION};
use crate::record::wire::{Diff, WireCompare};
use crate::transport::lanes::LaneError;
use crate::transport::types::{ConnState, TransportCmd, TransportEvent};

/// Exit status when `--compare` found a difference.
pub(crate) const EXIT_DIFFERENT: u8 = 1;

/// What `replay` was asked.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The recording.
    pub(crate) file: PathBuf,
    /// 1 = real time; 0 = as fast as possible.
    pub(crate) speed: f64,
    /// Diff the updates against the recorded ones.
    pub(crate) compare: bool,
    /// A Scope server instead of the dry run.
    pub(crate) server: Option<String>,
}

/// What a replay did.
#[derive(Debug, Clone, Default)]
pub(crate) struct Report {
    /// Inputs folded.
    pub(crate) folded: u64,
    /// Recorded lines not replayed (statistics, reloads; the wire payloads are compared, not
    /// replayed), by count.
    pub(crate) skipped: u64,
    /// Names of the skipped kinds that can change what is sent (`themes_reloaded`, ...).
    pub(crate) not_replayable: Vec<String>,
    /// Parameter updates the recording holds (the engine's requests, before the transport
    /// merged them into messages).
    pub(crate) recorded_updates: u64,
    /// Parameter updates the replay produced.
    pub(crate) replayed_updates: u64,
    /// Payloads the replay's transport put on the wire (or would have, dry run).
    pub(crate) wire_sent: u64,
    /// Commands the replay's transport could not take (its lane was full).
    pub(crate) transport_dropped: u64,
    /// Lines the recorder dropped while recording (the file has gaps).
    pub(crate) recording_overflow: u64,
    /// Lines that could not be read.
    pub(crate) unreadable: u64,
    /// The first unreadable line, with its number.
    pub(crate) first_unreadable: Option<String>,
    /// The file ended early (a truncated gzip stream: the deck was killed).
    pub(crate) truncated: Option<String>,
    /// Recorded engine time span, seconds.
    pub(crate) span_s: f64,
    /// Wall-clock replay time, seconds.
    pub(crate) wall_s: f64,
    /// How late each update was produced against its scaled time: max and p99, ms.
    pub(crate) late_ms: (f64, f64),
    /// The comparison (the first output's, or the single server's).
    pub(crate) diff: Diff,
    /// Several outputs: every output's comparison by name, in order (the first is `diff`).
    pub(crate) output_diffs: Vec<(String, Diff)>,
    /// The recording's outputs differ from the configuration's (named).
    pub(crate) outputs_mismatch: Option<String>,
}

impl Report {
    /// Differences over every output.
    pub(crate) fn differences(&self) -> u64 {
        if self.output_diffs.is_empty() {
            self.diff.count()
        } else {
            self.output_diffs.iter().map(|(_, d)| d.count()).sum()
        }
    }
}

/// Runs the subcommand; returns the exit code.
#[allow(clippy::print_stdout, clippy::print_stderr)]
pub(crate) fn run(opts: &Options, loaded: &LoadedConfig) -> u8 {
    if !opts.speed.is_finite() || opts.speed < 0.0 {
        eprintln!("scope-deck replay: --speed must be 0 or more");
        return EXIT_USAGE;
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("scope-deck replay: cannot start the async runtime: {e}");
            return EXIT_RUNTIME;
        }
    };
    let result = rt.block_on(replay(opts, loaded));
    rt.shutdown_timeout(Duration::from_millis(200));
    match result {
        Ok(report) => {
            print!("{}", render(opts, &report));
            if opts.compare && report.differences() > 0 {
                EXIT_DIFFERENT
            } else {
                EXIT_OK
            }
        }
        Err((code, e)) => {
            eprintln!("scope-deck replay: {e}");
            code
        }
    }
}

/// The summary printed on stdout.
pub(crate) fn render(opts: &Options, r: &Report) -> String {
    let mut s = format!(
        "replay {}: {} inputs folded over {:.3} s of engine time in {:.3} s (speed {}), {} update(s) (recorded {}), {} payload(s) on the replay's wire\n",
        opts.file.display(),
        r.folded,
        r.span_s,
        r.wall_s,
        if opts.speed == 0.0 {
            "max".to_string()
        } else {
            opts.speed.to_string()
        },
        r.replayed_updates,
        r.recorded_updates,
        r.wire_sent,
    );
    s += &format!(
        "timing: engine times as recorded; updates produced late by max {:.1} ms, p99 {:.1} ms (wall clock against recorded time / speed)\n",
        r.late_ms.0, r.late_ms.1
    );
    if r.recording_overflow > 0 {
        s += &format!(
            "warning: the recording dropped {} line(s) while recording; the replay has gaps\n",
            r.recording_overflow
        );
    }
    if !r.not_replayable.is_empty() {
        s += &format!(
            "warning: not replayed: {} (they may change what is sent)\n",
            r.not_replayable.join(", ")
        );
    }
    if let Some(l) = &r.first_unreadable {
        s += &format!("warning: {} unreadable line(s); first: {l}\n", r.unreadable);
    }
    if let Some(t) = &r.truncated {
        s += &format!("warning: the recording ends early: {t}\n");
    }
    if r.transport_dropped > 0 {
        s += &format!(
            "warning: the replay's transport could not take {} command(s) (lane full)\n",
            r.transport_dropped
        );
    }
    if let Some(m) = &r.outputs_mismatch {
        s += &format!("warning: {m}\n");
    }
    if opts.compare {
        if r.output_diffs.is_empty() {
            s += &render_diff("compare", &r.diff);
        } else {
            for (name, d) in &r.output_diffs {
                s += &render_diff(&format!("compare {name}"), d);
            }
        }
    }
    s
}

/// One output's (or the single server's) comparison, `label` first on each line.
fn render_diff(label: &str, d: &Diff) -> String {
    let mut s = String::new();
    match &d.first {
        None => {
            s += &format!(
                "{label}: identical: {} data-channel message(s), same content, same order\n",
                d.recorded
            )
        }
        Some(f) => {
            s += &format!(
                "{label}: {} difference(s) in {} recorded / {} replayed data-channel message(s): {} inserted, {} missing, {} changed; first at {:.3} s engine time ({} message #{}):\n  recorded: {}\n  replayed: {}\n",
                d.count(),
                d.recorded,
                d.replayed,
                d.inserted,
                d.missing,
                d.changed,
                f.t,
                f.kind,
                f.index,
                f.recorded.as_deref().unwrap_or("(none)"),
                f.replayed.as_deref().unwrap_or("(none)")
            )
        }
    }
    if d.after_end > 0 {
        s += &format!(
            "{label}: {} update(s) after the recording's last message, not compared (the show had stopped sending)\n",
            d.after_end
        );
    }
    s
}

/// The outputs to replay into: the configuration's `[[outputs]]` (with their overrides), or,
/// when the show ran several `--server`s, plain outputs of the recorded names; none for a
/// single server. A mismatch with the recording is named.
fn replay_outputs(
    loaded: &LoadedConfig,
    header: &Header,
) -> (Vec<crate::core::outputs::OutputSpec>, Option<String>) {
    if header.outputs.is_empty() {
        return (Vec::new(), None);
    }
    let configured: Vec<crate::core::outputs::OutputSpec> =
        crate::config::outputs::resolve(&loaded.app, &[], true)
            .unwrap_or_default()
            .into_iter()
            .map(|o| o.spec)
            .collect();
    if configured.is_empty() {
        let plain = header
            .outputs
            .iter()
            .map(|name| crate::core::outputs::OutputSpec {
                name: name.clone(),
                backend: "dry-run".into(),
                target: "replay".into(),
                ..Default::default()
            })
            .collect();
        return (plain, None);
    }
    let names: Vec<&str> = configured.iter().map(|o| o.name.as_str()).collect();
    let mismatch = (names != header.outputs.iter().map(String::as_str).collect::<Vec<_>>())
        .then(|| {
            format!(
                "the recording has outputs {} but the configuration {}; outputs are compared by position",
                header.outputs.join(", "),
                names.join(", ")
            )
        });
    (configured, mismatch)
}

type Fail = (u8, String);

fn read_header(src: &mut dyn BufRead, file: &str) -> Result<Header, Fail> {
    let mut first = String::new();
    src.read_line(&mut first)
        .map_err(|e| (EXIT_RUNTIME, format!("{file}: {e}")))?;
    let h: Header = serde_json::from_str(first.trim()).map_err(|e| {
        (
            EXIT_RUNTIME,
            format!("{file}:1: not a scope-deck recording ({e})"),
        )
    })?;
    if h.format != FORMAT {
        return Err((
            EXIT_RUNTIME,
            format!(
                "{file}:1: not a scope-deck recording (format `{}`)",
                h.format
            ),
        ));
    }
    if h.version > VERSION {
        return Err((
            EXIT_RUNTIME,
            format!(
                "{file}:1: recording version {} is newer than this deck's {VERSION}",
                h.version
            ),
        ));
    }
    Ok(h)
}

async fn replay(opts: &Options, loaded: &LoadedConfig) -> Result<Report, Fail> {
    // One TLS provider for reqwest and DTLS alike, as for a show.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let file = opts.file.display().to_string();
    let mut src =
        super::open_source(&opts.file).map_err(|e| (EXIT_RUNTIME, format!("{file}: {e}")))?;
    let header = read_header(&mut src, &file)?;
    let ids: Vec<String> = loaded.themes.iter().map(|t| t.id.clone()).collect();
    if ids != header.themes {
        tracing::warn!(recorded = ?header.themes, loaded = ?ids, "replay: other themes than recorded");
    }
    let mut state = crate::app::initial_state(loaded, opts.server.is_none());
    state.settings.backend = header.backend.clone();
    let (outputs, outputs_mismatch) = replay_outputs(loaded, &header);
    if let Some(m) = &outputs_mismatch {
        tracing::warn!("replay: {m}");
    }
    let names: Vec<String> = outputs.iter().map(|o| o.name.clone()).collect();
    if !outputs.is_empty() {
        state.outputs = crate::core::outputs::OutputsSlice::new(outputs);
    }

    // The live transport: an output only.
    let mut server = loaded.app.server.clone();
    if let Some(url) = &opts.server {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                server.url = url.clone()
            }
            _ => {
                return Err((
                    EXIT_USAGE,
                    format!("--server {url}: expected an http:// or https:// URL with a host"),
                ));
            }
        }
    }
    let (tev_tx, mut tev_rx) = mpsc::channel(crate::transport::EVENT_CAPACITY);
    let transport = crate::transport::spawn_with_video(
        &server,
        opts.server.is_none(),
        tev_tx,
        crate::transport::VideoPorts::default(),
    )
    .map_err(|e| (EXIT_CONFIG, e.to_string()))?;
    let link = transport.link.clone();
    let drain = tokio::spawn(async move {
        let mut sent = 0u64;
        while let Some(ev) = tev_rx.recv().await {
            match ev {
                TransportEvent::Sent { .. } => sent += 1,
                TransportEvent::Stopped => break,
                _ => {}
            }
        }
        sent
    });

    let mut report = Report {
        outputs_mismatch,
        ..Report::default()
    };
    // One comparison per output (output 0's is the single server's).
    let mut wires: Vec<WireCompare> = (0..names.len().max(1))
        .map(|_| WireCompare::default())
        .collect();
    let mut published_outputs_rev = None;
    let mut lates: Vec<f64> = Vec::new();
    let mut published_rev = None;
    let mut shutdown_sent = false;
    let start = Instant::now();
    let mut last_t = 0u64;
    let mut text = String::new();
    let mut line_no = 1u64;
    loop {
        text.clear();
        line_no += 1;
        match src.read_line(&mut text) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                report.truncated = Some(format!("line {line_no}: {e}"));
                break;
            }
        }
        if text.trim().is_empty() {
            continue;
        }
        let line: Line = match serde_json::from_str(text.trim()) {
            Ok(l) => l,
            Err(e) => {
                report.unreadable += 1;
                if report.first_unreadable.is_none() {
                    report.first_unreadable = Some(format!("{file}:{line_no}: {e}"));
                }
                continue;
            }
        };
        match line {
            Line::Overflow { overflow } => report.recording_overflow = overflow,
            Line::Cmd { cmd, output, .. } => {
                if matches!(cmd.as_str(), "connect" | "reconnect" | "download_models") {
                    if let Some(w) = wires.get_mut(output.unwrap_or(0)) {
                        w.expect_full_state();
                    }
                }
            }
            Line::Out { .. } => report.recorded_updates += 1,
            Line::In {
                t,
                input: Input::Sent { payload },
            } => {
                // What the show's transport put on the wire: the recorded side of --compare.
                last_t = last_t.max(t);
                wires[0].sent(t, &payload);
            }
            Line::In {
                t,
                input: Input::Output { output, event },
            } if matches!(*event, Input::Sent { .. }) => {
                last_t = last_t.max(t);
                if let (Some(w), Input::Sent { payload }) = (wires.get_mut(output), &*event) {
                    w.sent(t, payload);
                }
            }
            Line::In { t, input } => {
                last_t = last_t.max(t);
                let (who, report_of) = match &input {
                    Input::Output { output, event } => (*output, &**event),
                    other => (0, other),
                };
                if let Input::Connection {
                    state: ConnState::Connecting | ConnState::Reconnecting,
                    ..
                } = report_of
                {
                    if let Some(w) = wires.get_mut(who) {
                        w.expect_full_state();
                    }
                }
                let Some(msg) = input.to_msg() else {
                    report.skipped += 1;
                    if let crate::record::format::Input::Other { name } = &input {
                        let matters = name == "themes_reloaded" || name == "setlist_reloaded";
                        if matters && !report.not_replayable.contains(name) {
                            report.not_replayable.push(name.clone());
                        }
                    }
                    continue;
                };
                let due = Duration::from_nanos(t);
                if opts.speed > 0.0 {
                    tokio::time::sleep_until(start + due.div_f64(opts.speed)).await;
                }
                report.folded += 1;
                let mut cmds = Vec::new();
                for fx in update_routed(&mut state, msg, due) {
                    match fx {
                        Effect::Transport(cmd) => cmds.push((0, cmd)),
                        Effect::Output { output, cmd } => cmds.push((output, cmd)),
                        _ => {}
                    }
                }
                if cmds.iter().any(|c| matches!(c.1, TransportCmd::Update(_))) && opts.speed > 0.0 {
                    let late = start
                        .elapsed()
                        .saturating_sub(due.div_f64(opts.speed))
                        .as_secs_f64()
                        * 1e3;
                    lates.push(late);
                }
                let store = &state.params.store;
                if state.outputs.list.is_empty() {
                    if published_rev != Some(store.revision()) {
                        published_rev = Some(store.revision());
                        wires[0].state(t, store.full_state());
                        // Settled for any schema the live transport reports: the values are
                        // the recording's (its own schema reports are folded from the file).
                        link.publish_fixed(store.full_state());
                    }
                } else if published_outputs_rev != Some((store.revision(), state.outputs.revision))
                {
                    // Each output's own desired state, as the engine publishes it.
                    published_outputs_rev = Some((store.revision(), state.outputs.revision));
                    let full = store.full_state();
                    for (i, w) in wires.iter_mut().enumerate() {
                        w.state(t, crate::core::outputs::desired_for(&state, i, &full));
                    }
                    link.publish_fixed(crate::core::outputs::desired_for(&state, 0, &full));
                }
                for (who, cmd) in cmds {
                    if let TransportCmd::Update(u) = &cmd {
                        report.replayed_updates += 1;
                        if let Some(w) = wires.get_mut(who) {
                            w.update(t, u.urgent, &u.values);
                        }
                    }
                    // The live transport plays the first output (the single server's part).
                    if who != 0 {
                        continue;
                    }
                    shutdown_sent |= matches!(cmd, TransportCmd::Shutdown);
                    match link.send(cmd) {
                        Ok(()) | Err(LaneError::Closed) => {}
                        Err(LaneError::Full(_)) => report.transport_dropped += 1,
                    }
                }
            }
        }
    }
    report.span_s = last_t as f64 / 1e9;
    report.wall_s = start.elapsed().as_secs_f64();
    if !shutdown_sent {
        let _ = link.send(TransportCmd::Shutdown);
    }
    report.wire_sent = tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .ok()
        .and_then(|r| r.ok())
        .unwrap_or(0);
    let _ = tokio::time::timeout(Duration::from_secs(2), transport.task).await;
    lates.sort_by(f64::total_cmp);
    let p99 = lates
        .get(((lates.len() as f64 * 0.99) as usize).min(lates.len().saturating_sub(1)))
        .copied()
        .unwrap_or(0.0);
    report.late_ms = (lates.last().copied().unwrap_or(0.0), p99);
    let mut diffs = wires.into_iter().map(WireCompare::finish);
    report.diff = diffs.next().unwrap_or_default();
    if !names.is_empty() {
        report.output_diffs = std::iter::once(report.diff.clone())
            .chain(diffs)
            .zip(names)
            .map(|(d, n)| (n, d))
            .collect();
    }
    Ok(report)
}
