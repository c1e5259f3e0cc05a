//! Wiring: load config, start logging, spawn the edges and the engine, and shut down in order
//! (inputs stop → transport says goodbye → devices drop → terminal restored → logs flushed).

pub mod engine;
pub(crate) mod journal;
pub(crate) mod outputs;
pub mod preflight;
pub(crate) mod server_check;
pub(crate) mod setlist_watch;
pub(crate) mod shutdown;
pub(crate) mod signals;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

use crate::cli::{Cli, Command, EXIT_CONFIG, EXIT_OK, EXIT_RUNTIME, EXIT_USAGE};
use crate::config::{self, LoadedConfig};
use crate::core::msg::Msg;
use crate::core::snapshot::UiSnapshot;
use crate::core::state::{AppState, CoreSettings};
use crate::transport::config::Backend;
use crate::ui::{headless, tui};

/// Capacity of the engine's input queue (keys, stdin, MIDI actions, audio events).
pub const INPUT_CAPACITY: usize = 1024;

/// Exit code when a task panicked (the report is in the log).
pub(crate) const EXIT_PANIC: u8 = 101;

/// Runs the program for parsed command-line arguments.
#[allow(clippy::print_stdout)]
pub fn run(cli: Cli) -> ExitCode {
    // One TLS provider for reqwest and DTLS alike, for every command (two would make rustls
    // panic at handshake; none makes the first HTTP client panic).
    let _ = rustls::crypto::ring::default_provider().install_default();
    if cli.print_default_config {
        print!("{}", config::DEFAULT_CONFIG);
        return ExitCode::from(EXIT_OK);
    }
    if let Some(dir) = &cli.config_dir {
        if !dir.is_dir() {
            eprintln!(
                "scope-deck: --config-dir {}: no such folder (nothing was started)",
                dir.display()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    }
    let loaded = match config::load(cli.config_dir.as_deref()) {
        Ok(l) => l,
        Err(errs) => {
            eprintln!("{errs}");
            eprintln!(
                "scope-deck: {} problem(s) in the configuration; nothing was started.",
                errs.0.len()
            );
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let mut loaded = loaded;
    if let Some(path) = &cli.setlist {
        match config::setlist::load_setlist(path, &loaded.themes, &loaded.looks) {
            Ok(s) => loaded.setlist = Some((path.clone(), s)),
            Err(errs) => {
                eprintln!("{}", config::diagnostics::ConfigErrors(errs.clone()));
                eprintln!(
                    "scope-deck: {} problem(s) in the setlist; nothing was started.",
                    errs.len()
                );
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    if let Some(Command::Attach { socket, headless }) = &cli.command {
        return ExitCode::from(crate::service::client::run(
            socket.clone(),
            *headless,
            &loaded,
        ));
    }
    if let Some(code) = crate::audio::cli::dispatch(cli.command.as_ref(), &loaded.app.audio) {
        return ExitCode::from(code);
    }
    if cli.check_config || matches!(cli.command, Some(Command::CheckConfig)) {
        let backend = if cli.dry_run {
            Backend::DryRun
        } else {
            loaded.app.server.backend
        };
        let problems = preflight::check(&loaded, backend);
        // Every server asked for: each `--server`, or with `--check-servers` every configured
        // output's (one report each, prefixed with the output's name when there are several).
        let mut targets: Vec<server_check::ServerTarget> = cli
            .server
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let mut t = server_check::ServerTarget::bare(&loaded, backend, url);
                if cli.server.len() > 1 {
                    // Named as the show would name them (docs/outputs.md).
                    t.label = format!("out{}", i + 1);
                }
                t
            })
            .collect();
        if cli.check_servers && targets.is_empty() {
            targets = server_check::ServerTarget::configured(&loaded, cli.dry_run);
        }
        let mut server_problems = 0;
        for target in &targets {
            let report = match check_server(&loaded, target) {
                Ok(r) => r,
                Err(code) => return ExitCode::from(code),
            };
            let prefix = target.prefix();
            for n in &report.notes {
                println!("{prefix}: {n}");
            }
            for p in &report.problems {
                eprintln!("{prefix}: {p}");
            }
            server_problems += report.problems.len();
        }
        if !problems.is_empty() || server_problems > 0 {
            if !problems.is_empty() {
                eprintln!("{}", config::diagnostics::ConfigErrors(problems.clone()));
            }
            eprintln!(
                "scope-deck: the files parse, but {} problem(s) would fail at show time.",
                problems.len() + server_problems
            );
            return ExitCode::from(EXIT_CONFIG);
        }
        match &loaded.setlist {
            Some((p, s)) => println!(
                "configuration ok: {}; setlist {} ok: {} cues",
                loaded.files.join(", "),
                p.display(),
                s.cues.len()
            ),
            None => println!("configuration ok: {}", loaded.files.join(", ")),
        }
        return ExitCode::from(EXIT_OK);
    }
    if let [url] = cli.server.as_slice() {
        match url::Url::parse(url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                loaded.app.server.url = url.clone()
            }
            _ => {
                eprintln!(
                    "scope-deck: --server {url}: expected an http:// or https:// URL with a host"
                );
                return ExitCode::from(EXIT_USAGE);
            }
        }
    }
    // Several outputs (`[[outputs]]`, or `--server` given twice or more); none = the single
    // `[server]` exactly as before.
    let outputs = match config::outputs::resolve(&loaded.app, &cli.server, cli.dry_run) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("scope-deck: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let filter = cli
        .log_level
        .clone()
        .unwrap_or_else(|| loaded.app.logging.level.clone());
    let log_dir = if loaded.app.logging.dir.is_empty() {
        crate::logging::default_log_dir()
    } else {
        loaded.app.logging.dir.clone().into()
    };
    // The dashboard shows recent log records; headless mode has no pane.
    let (pane, pane_rx) = if cli.headless {
        (None, None)
    } else {
        let (layer, rx, _dropped) = crate::ui::log_layer::PaneLayer::new(256);
        (Some(layer), Some(rx))
    };
    let guard = match crate::logging::init(&log_dir, &filter, pane) {
        Ok(g) => g,
        Err(e) => {
            eprintln!(
                "scope-deck: cannot write logs in {}: {e}",
                log_dir.display()
            );
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    tracing::info!(version = env!("CARGO_PKG_VERSION"), files = ?loaded.files, "starting");
    if let Some(Command::Replay {
        file,
        speed,
        compare,
        server,
        ..
    }) = &cli.command
    {
        let opts = crate::record::replay::Options {
            file: file.clone(),
            speed: *speed,
            compare: *compare,
            server: server.clone(),
        };
        let code = crate::record::replay::run(&opts, &loaded);
        drop(guard);
        return ExitCode::from(code);
    }
    // The state journal: taken (--resume), offered (terminal) or left (headless) before any
    // edge starts, so the first connect already carries a resumed show.
    let journal_path = cli.state_file.clone().unwrap_or_else(journal::default_path);
    let offer = if cli.resume {
        journal::Offer::Take
    } else if cli.headless || matches!(cli.command, Some(Command::Serve { .. })) {
        // No one to ask: a service takes the last show back only with --resume.
        journal::Offer::Ignore
    } else {
        journal::Offer::Ask
    };
    let resume = journal::startup(&journal_path, offer);
    // A resumed show runs its setlist again when none is given.
    if let (Some(file), None) = (
        resume.as_ref().and_then(|j| j.setlist_file.clone()),
        &loaded.setlist,
    ) {
        match config::setlist::load_setlist(&file, &loaded.themes, &loaded.looks) {
            Ok(s) => loaded.setlist = Some((file, s)),
            Err(errs) => tracing::error!(
                "resume: setlist {} not loaded: {}",
                file.display(),
                config::diagnostics::ConfigErrors(errs)
            ),
        }
    }
    let resume = resume.map(|j| j.state);
    let code = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => {
            let journal = (journal_path, resume);
            let code = rt.block_on(run_async(cli, loaded, outputs, pane_rx, journal));
            // Stdin readers sit on a blocking thread; do not wait for them.
            rt.shutdown_timeout(Duration::from_millis(200));
            code
        }
        Err(e) => {
            tracing::error!("cannot start the async runtime: {e}");
            EXIT_RUNTIME
        }
    };
    tracing::info!(code, "exit");
    drop(guard); // flush logs last
    ExitCode::from(code)
}

/// The engine's state before `Msg::Started`: settings, themes, setlist, looks (also what
/// `replay` starts from).
pub(crate) fn initial_state(loaded: &LoadedConfig, dry_run: bool) -> AppState {
    let mut state = AppState::new(settings(loaded, dry_run));
    state.audio.source = loaded.app.audio.source_label();
    state.mapping = crate::mapping::slice::MappingSlice::new(
        loaded.themes.clone(),
        &loaded.app.ui.theme,
        loaded.app.audio.beats_per_bar,
    );
    crate::core::cue::load(&mut state, loaded.setlist.as_ref().map(|(_, s)| s.clone()));
    state.looks.list = loaded.looks.clone();
    state.tempo = crate::core::tempo::TempoSlice::new(crate::core::tempo::TempoSettings {
        sources: loaded.app.tempo.sources(),
        latency: Duration::from_millis(loaded.app.server.latency_ms),
        measure_latency: loaded.app.server.measure_latency,
    });
    state
}

fn settings(loaded: &LoadedConfig, dry_run: bool) -> CoreSettings {
    let app = &loaded.app;
    let backend = if dry_run {
        Backend::DryRun
    } else {
        app.server.backend
    };
    CoreSettings {
        backend: backend.label().to_string(),
        server: if backend == Backend::Daydream {
            app.daydream.api_url.clone()
        } else {
            app.server.url.clone()
        },
        panic_mode: app.controls.panic,
        safe_prompt: app.controls.safe_prompt.clone(),
        confirm_quit: app.controls.confirm_quit,
        initial_prompt: app.prompt.initial.clone(),
        beats_per_bar: app.audio.beats_per_bar,
        video: app.video.settings(loaded.dir.as_deref()),
        looks_dir: loaded.dir.as_ref().map(|d| d.join("looks")),
        key_recorders: app.video.sinks.iter().filter(|s| s.on_key()).count(),
        ..CoreSettings::default()
    }
}

async fn run_async(
    cli: Cli,
    loaded: LoadedConfig,
    outputs: Vec<config::outputs::ResolvedOutput>,
    pane_rx: Option<mpsc::Receiver<crate::ui::log_layer::LogLine>>,
    journal: (std::path::PathBuf, Option<crate::core::recall::Recall>),
) -> u8 {
    let cancel = CancellationToken::new();
    // `serve`: take the socket before anything starts, so a second deck fails at once.
    let serving = match &cli.command {
        Some(Command::Serve { socket }) => {
            let path = socket
                .clone()
                .unwrap_or_else(crate::service::socket::default_path);
            match crate::service::socket::bind(&path) {
                Ok(l) => Some((path, l)),
                Err(e) => {
                    tracing::error!("{e}");
                    crate::service::client::say(&e.to_string());
                    return EXIT_RUNTIME;
                }
            }
        }
        _ => None,
    };
    let clock = crate::service::protocol::DeckClock::start();
    let (inputs_tx, inputs_rx) = mpsc::channel::<Msg>(INPUT_CAPACITY);
    // The resumed show is the first input, queued before any edge (stdin, MIDI, video) can
    // send one: folded right after `Started`, so no early action lands on the un-resumed state.
    let (journal_path, resume) = journal;
    if let Some(r) = resume {
        let _ = inputs_tx.try_send(Msg::Resume(Box::new(r)));
    }
    let (tev_rx, video, video_input, transport, mut multi) = if outputs.is_empty() {
        let (tev_tx, tev_rx) = mpsc::channel(crate::transport::EVENT_CAPACITY);
        // Video edge: the output pipeline runs when `[video]` lists sinks, the input when
        // `[video.input]` has a source; the transport feeds/reads them through `VideoPorts`.
        let (video_ports, video, video_input) = start_video(&loaded, &cancel, &inputs_tx);
        let transport = match spawn_transport(&loaded, cli.dry_run, tev_tx, video_ports) {
            Ok(t) => t,
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("scope-deck: {e}");
                return EXIT_RUNTIME;
            }
        };
        (tev_rx, video, video_input, transport, None)
    } else {
        // One transport, video edge and event channel per output (src/app/outputs.rs).
        match outputs::start(&loaded, &outputs, cli.dry_run, &cancel, &inputs_tx) {
            Ok(o) => {
                let names = outputs.iter().map(|r| r.spec.name.clone()).collect();
                let (rest, first, first_events, video, video_input) = o.split(names);
                (first_events, video, video_input, first, Some(rest))
            }
            Err(e) => {
                tracing::error!("{e}");
                eprintln!("scope-deck: {e}");
                return EXIT_RUNTIME;
            }
        }
    };
    let mut state = initial_state(&loaded, cli.dry_run);
    if !outputs.is_empty() {
        state.outputs = crate::core::outputs::OutputsSlice::new(
            outputs.iter().map(|r| r.spec.clone()).collect(),
        );
    }
    // Before any front end: a recording that cannot start stops the deck with a clear line.
    let (record_tap, record_writer) = match start_recording(&cli, &loaded, &state) {
        Ok(Some((r, w))) => (Some(r), Some(w)),
        Ok(None) => (None, None),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("scope-deck: {e}");
            goodbye_all(&transport, multi.as_ref());
            return EXIT_RUNTIME;
        }
    };
    let (snap_tx, snap_rx) = watch::channel(Arc::new(UiSnapshot::of(&state, Duration::ZERO)));

    let signals = tokio::spawn(signals::forward_with(
        inputs_tx.clone(),
        cancel.clone(),
        serving.is_none(),
    ));
    let tui_mode = !cli.headless && serving.is_none();
    // Theme hot reload: edits to the user's themes/ apply on save.
    let _theme_watch = loaded
        .dir
        .clone()
        .and_then(|d| crate::mapping::reload::spawn(d, inputs_tx.clone(), cancel.clone()));
    // Setlist hot reload: a bad save keeps the running list and names file:line.
    let _setlist_watch = loaded.setlist.as_ref().and_then(|(p, _)| {
        crate::app::setlist_watch::spawn(
            p.clone(),
            loaded.themes.clone(),
            loaded.looks.clone(),
            inputs_tx.clone(),
            cancel.clone(),
        )
    });

    // Front end.
    let (events_tx, frontend) = if let Some((path, listener)) = serving {
        // No terminal: clients on the socket (docs/service.md); removed again at the end.
        let (etx, erx) = mpsc::channel(4096);
        let io = crate::service::ServiceIo {
            inputs: inputs_tx.clone(),
            events: erx,
            snapshots: snap_rx.clone(),
            logs: pane_rx,
            clock,
            backend: state.settings.backend.clone(),
            preview: video.as_ref().map(|v| v.preview.clone()),
        };
        let c = cancel.clone();
        tracing::info!(socket = %path.display(), "serving");
        (
            Some(etx),
            tokio::spawn(async move {
                crate::service::serve(listener, io, c).await;
                let _ = std::fs::remove_file(&path);
                Ok(())
            }),
        )
    } else if cli.headless {
        let (etx, erx) = mpsc::channel(4096);
        tokio::spawn(headless::read_stdin(inputs_tx.clone(), cancel.clone()));
        let inputs = inputs_tx.clone();
        (
            Some(etx),
            tokio::spawn(async move {
                headless::write_stdout(erx, clock, inputs).await;
                Ok(())
            }),
        )
    } else {
        let guard = match tui::TerminalGuard::enter() {
            Ok(g) => g,
            Err(e) => {
                eprintln!("scope-deck: cannot use this terminal ({e}); try --headless");
                goodbye_all(&transport, multi.as_ref());
                return EXIT_RUNTIME;
            }
        };
        tui::install_panic_hook();
        let style = loaded.style.clone().for_terminal();
        let fe = tokio::spawn(tui::run(
            guard,
            tui::TuiSetup {
                keymap: loaded.keymap.clone(),
                style,
                logs: pane_rx,
                preview: video.as_ref().map(|v| v.preview.clone()),
                preview_wanted: None,
            },
            inputs_tx.clone(),
            snap_rx.clone(),
            loaded.app.ui.fps,
            cancel.clone(),
            cli.crash_test,
        ));
        (None, fe)
    };

    // Audio: source + analysis threads; onsets/beats/problems arrive on the input queue.
    let (audio, audio_frames, tempo_commands) =
        crate::audio::runtime::start_for_engine(&loaded.app.audio, inputs_tx.clone());
    let (tempo_io, tempo_edges) = crate::tempo::start(&loaded, &inputs_tx);
    let clocks = engine::Clocks::from_hz(loaded.app.engine.control_hz, loaded.app.ui.fps);
    // The router flushes on the control clock, not the dashboard's frame.
    let midi = crate::controls::midi::io::spawn_for(
        &loaded,
        clocks.control,
        &inputs_tx,
        &snap_rx,
        &cancel,
    );
    let io = engine::EngineIo {
        tempo: tempo_io,
        inputs: inputs_rx,
        transport_events: tev_rx,
        transport: transport.link.clone(),
        audio_frames,
        video_stats: video.as_ref().map(|v| v.stats.clone()),
        video_changes: match &multi {
            Some(m) => m.video_changes(video.as_ref()),
            None => video.iter().map(|v| (0, v.changes.clone())).collect(),
        },
        tempo_commands,
        events: events_tx,
        snapshots: snap_tx,
        // With several outputs one blackout/fade reaches every pipeline.
        video_control: match &multi {
            Some(m) => Some(m.control.clone()),
            None => video.as_ref().map(|v| v.control.clone()),
        },
        midi_learn: midi.as_ref().map(|m| m.learn.clone()),
    };
    let setlist_file = loaded
        .setlist
        .as_ref()
        .map(|(p, _)| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()));
    let (journal_tap, journal_writer) = journal::spawn(journal_path, setlist_file);
    let taps = engine::Taps {
        journal: Some(journal_tap),
        record: record_tap,
    };
    let links = multi.as_ref().map(|m| m.links()).unwrap_or_default();
    let engine = tokio::spawn(engine::run_outputs(state, io, clocks, taps, links));
    drop(inputs_tx);

    // If the front end dies (panic, terminal gone) the engine must still shut down in order.
    let mut frontend = frontend;
    let mut code = EXIT_OK;
    let engine_result = tokio::select! {
        r = engine => Some(r),
        fe = &mut frontend => {
            code = frontend_code(fe);
            None
        }
    };
    // From here every edge stops within its deadline; past the hard limit the watchdog exits.
    let _watchdog = shutdown::watchdog(tui_mode);
    let mut stuck = shutdown::Stuck::default();
    let engine_result = match engine_result {
        Some(r) => r,
        None => {
            // Ask the engine to stop through the signal path and wait for it.
            signals::request_stop(&transport.link);
            cancel.cancel();
            stuck
                .wait("transport", engine::GOODBYE_TIMEOUT, transport.task)
                .await;
            if let Some(m) = multi.take() {
                m.goodbye();
                m.stop(&mut stuck, engine::GOODBYE_TIMEOUT).await;
            }
            stuck.add(
                crate::audio::runtime::stop_in_background(audio, shutdown::EDGE_DEADLINE).await,
            );
            signals.abort();
            return stuck.finish(code);
        }
    };
    cancel.cancel();
    journal_writer.finish(shutdown::EDGE_DEADLINE).await;
    if let Some(w) = record_writer {
        let _ = tokio::task::spawn_blocking(move || w.finish(shutdown::EDGE_DEADLINE)).await;
    }
    stuck.add(crate::audio::runtime::stop_in_background(audio, shutdown::EDGE_DEADLINE).await);
    stuck.add(tempo_edges.stop(shutdown::EDGE_DEADLINE));
    if let Some(m) = midi {
        stuck.wait("midi", shutdown::EDGE_DEADLINE, m.task).await;
    }
    match engine_result {
        Ok((_state, dropped)) => {
            if dropped > 0 {
                tracing::warn!(
                    dropped,
                    "headless events dropped (stdout not read fast enough)"
                );
            }
        }
        Err(e) => {
            tracing::error!("engine task failed: {e}");
            code = if e.is_panic() {
                EXIT_PANIC
            } else {
                EXIT_RUNTIME
            };
        }
    }
    match tokio::time::timeout(shutdown::EDGE_DEADLINE, frontend).await {
        Ok(fe) => {
            let c = frontend_code(fe);
            if code == EXIT_OK {
                code = c;
            }
        }
        Err(_) => {
            tracing::error!(
                "terminal front end did not stop within {:?}",
                shutdown::EDGE_DEADLINE
            );
            stuck.add(["terminal"]);
        }
    }
    stuck
        .wait("transport", shutdown::EDGE_DEADLINE, transport.task)
        .await;
    if let Some(m) = multi.take() {
        m.stop(&mut stuck, shutdown::EDGE_DEADLINE).await;
    }
    if let Some(i) = video_input {
        stuck
            .wait("video input", shutdown::EDGE_DEADLINE, i.shutdown())
            .await;
    }
    if let Some(v) = video {
        // Sinks get end-of-stream so recordings are finalised.
        stuck
            .wait("video output", shutdown::VIDEO_DEADLINE, v.shutdown())
            .await;
    }
    signals.abort();
    stuck.finish(code)
}

/// Starts `--record FILE`, if asked: the header names the backend, control rate and themes.
/// Asks every transport to say goodbye (the deck stops before its engine ran).
fn goodbye_all(first: &crate::transport::TransportHandle, rest: Option<&outputs::Rest>) {
    let _ = first.link.send(crate::transport::TransportCmd::Shutdown);
    if let Some(m) = rest {
        m.goodbye();
    }
}

fn start_recording(
    cli: &Cli,
    loaded: &LoadedConfig,
    state: &AppState,
) -> Result<Option<(crate::record::Recorder, crate::record::RecordWriter)>, String> {
    let Some(path) = &cli.record else {
        return Ok(None);
    };
    let header = crate::record::Header {
        format: crate::record::format::FORMAT.into(),
        version: crate::record::format::VERSION,
        deck_version: env!("CARGO_PKG_VERSION").into(),
        started_unix_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        backend: state.settings.backend.clone(),
        control_hz: loaded.app.engine.control_hz,
        config_files: loaded.files.clone(),
        themes: loaded.themes.iter().map(|t| t.id.clone()).collect(),
        outputs: state
            .outputs
            .list
            .iter()
            .map(|o| o.spec.name.clone())
            .collect(),
    };
    crate::record::start(path, &header)
        .map(Some)
        .map_err(|e| format!("--record {}: {e}", path.display()))
}

/// Starts the configured transport with the video ports (the hosted Daydream backend has its own
/// section and preset; it uses the same ports: WHEP into `rtp_out`, WHIP from `samples_in`).
fn spawn_transport(
    loaded: &LoadedConfig,
    dry_run: bool,
    events: mpsc::Sender<crate::transport::TransportEvent>,
    video: crate::transport::VideoPorts,
) -> Result<crate::transport::TransportHandle, crate::transport::StartError> {
    if loaded.app.server.backend == Backend::Daydream && !dry_run {
        return crate::transport::daydream::spawn(
            &loaded.app.daydream,
            loaded.dir.as_deref(),
            events,
            video,
        );
    }
    crate::transport::spawn_with_video(&loaded.app.server, dry_run, events, video)
}

/// Starts the video edge: the output pipeline when `[video]` lists sinks, the input when
/// `[video.input]` has a source. Errors are logged; the show goes on without video.
fn start_video(
    loaded: &LoadedConfig,
    cancel: &CancellationToken,
    inputs: &mpsc::Sender<Msg>,
) -> (
    crate::transport::VideoPorts,
    Option<crate::video::VideoHandle>,
    Option<crate::video::input::InputHandle>,
) {
    let cfg = &loaded.app.video;
    let mut ports = crate::transport::VideoPorts::default();
    let mut output = None;
    if !cfg.sinks.is_empty() {
        match crate::video::start(cfg, cancel.clone()) {
            Ok((tx, handle)) => {
                ports.rtp_out = Some(tx);
                ports.keyframe_requests = Some(handle.keyframe_requests.clone());
                output = Some(handle);
            }
            Err(e) => tracing::error!("video output not started: {e}"),
        }
    }
    let mut input = None;
    if cfg.input.source != crate::video::config::InputSource::None {
        let (tx, rx) = mpsc::channel(crate::video::input::SAMPLE_CAPACITY);
        // The codec follows the backend: the hosted gateway accepts H.264 only.
        let mut input_cfg = cfg.input.clone();
        input_cfg.codec = input_codec(loaded.app.server.backend);
        match crate::video::input::start_with_health(
            &input_cfg,
            tx,
            cancel.clone(),
            Some(inputs.clone()),
        ) {
            Ok(h) => {
                ports.samples_in = Some(Arc::new(tokio::sync::Mutex::new(rx)));
                ports.input_keyframes = Some(h.keyframes.clone());
                input = Some(h);
            }
            Err(e) => tracing::error!("video input not started: {e}"),
        }
    }
    (ports, output, input)
}

/// The video input's codec for `backend`: H.264 for the hosted gateway (it closes anything
/// else, docs/daydream-api.md), VP8 for Scope (what its own UI sends).
pub(crate) fn input_codec(backend: Backend) -> crate::transport::types::VideoCodec {
    match backend {
        Backend::Daydream => crate::transport::types::VideoCodec::H264,
        _ => crate::transport::types::VideoCodec::Vp8,
    }
}

fn frontend_code(r: Result<std::io::Result<()>, tokio::task::JoinError>) -> u8 {
    match r {
        Ok(Ok(())) => EXIT_OK,
        Ok(Err(e)) => {
            tracing::error!("terminal failed: {e}");
            EXIT_RUNTIME
        }
        Err(e) if e.is_panic() => EXIT_PANIC,
        Err(_) => EXIT_RUNTIME,
    }
}

/// `--check-config --server URL` / `--check-servers`: the URL is checked like `--server` is for
/// a show, then the server is asked on a small runtime of its own (the show's runtime is never
/// started).
#[allow(clippy::print_stderr)]
fn check_server(
    loaded: &LoadedConfig,
    target: &server_check::ServerTarget,
) -> Result<server_check::ServerReport, u8> {
    let url = &target.url;
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {}
        _ => {
            eprintln!(
                "scope-deck: --server {url}: expected an http:// or https:// URL with a host"
            );
            return Err(EXIT_USAGE);
        }
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("scope-deck: cannot start the runtime for the server check: {e}");
            EXIT_RUNTIME
        })?;
    Ok(rt.block_on(server_check::check(loaded, target)))
}
