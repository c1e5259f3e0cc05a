//! The real binary in a real pseudo-terminal (tmux): it starts, reacts to keys, and leaves the
//! terminal as it found it after `q`, SIGTERM and a forced panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::tmux::Tmux;

const T: Duration = Duration::from_secs(30);

/// Runs the binary in a shell that afterwards prints its exit code and the terminal modes, so the
/// test can check raw mode was switched off.
fn start(sb: &common::Sandbox, extra: &str) -> Tmux {
    let cmd = common::tmux::app_command(
        sb,
        &format!("--dry-run {extra}"),
        "stty -a | tr ' ;' '\\n\\n' | grep -x -e '-\\?icanon' -e '-\\?echo' | tr '\\n' ' '; echo MODES-END;",
    );
    Tmux::start(&cmd, 100, 30)
}

fn assert_restored(t: &Tmux, screen: &str) {
    assert_eq!(
        t.format("#{alternate_on}"),
        "0",
        "still on the alternate screen:\n{screen}"
    );
    assert_eq!(t.format("#{cursor_flag}"), "1", "cursor left hidden");
    let modes = screen
        .lines()
        .find(|l| l.contains("icanon"))
        .unwrap_or_default();
    assert!(
        modes.contains("icanon") && !modes.contains("-icanon"),
        "raw mode left on: {modes:?}"
    );
    assert!(!modes.contains("-echo"), "echo left off: {modes:?}");
}

fn pid_of(sb: &common::Sandbox) -> String {
    common::wait_for("scope-deck pid", T, || {
        let pattern = format!("--config-dir {}", sb.config_dir().display());
        let out = Command::new("pgrep")
            .args(["-f", "--", &pattern])
            .output()
            .ok()?;
        let s = String::from_utf8_lossy(&out.stdout);
        // The wrapping shell's command line matches too: keep the scope-deck process itself.
        s.lines()
            .map(str::trim)
            .find(|pid| {
                std::fs::read_to_string(format!("/proc/{pid}/comm"))
                    .is_ok_and(|c| c.trim() == "scope-deck")
            })
            .map(str::to_string)
    })
}

#[test]
fn starts_reacts_to_keys_and_quits_with_confirmation() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "");
    t.wait_for_text("STREAMING", T);
    t.keys(&["r"]);
    t.wait_for_text("key   reset cache", T);
    t.keys(&["?"]);
    t.wait_for_text("help — keymap Default", T);
    t.keys(&["Escape"]);
    common::wait_for("help closed", T, || {
        (!t.screen().contains("help — keymap")).then_some(())
    });
    t.keys(&["e"]);
    t.wait_for_text("editing (enter sends", T);
    t.keys(&["C-u"]);
    for _ in 0..60 {
        t.keys(&["BSpace"]);
    }
    t.type_text("neon rain");
    t.keys(&["Enter"]);
    t.wait_for_text("│neon rain", T);
    assert!(!t.screen().contains("editing (enter sends"));
    // Streaming: the first q only asks.
    t.keys(&["q"]);
    t.wait_for_text("press quit again", T);
    t.keys(&["q"]);
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
    assert_restored(&t, &screen);
}

#[test]
fn sigterm_restores_the_terminal() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "");
    t.wait_for_text("STREAMING", T);
    let pid = pid_of(&sb);
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
    assert_restored(&t, &screen);
    assert!(
        sb.log().contains("Terminate"),
        "signal not logged:\n{}",
        sb.log()
    );
}

#[test]
fn a_panic_restores_the_terminal_and_lands_in_the_log() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "--crash-test");
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:101"), "{screen}");
    assert_restored(&t, &screen);
    let log = common::wait_for("panic report in the log", T, || {
        let l = sb.log();
        l.contains("crash test requested").then_some(l)
    });
    assert!(log.contains("panic"), "{log}");
}

/// The audio panel: the rows between the top border and the level line, left column only.
fn audio_panel(screen: &str) -> Vec<String> {
    screen
        .lines()
        .skip(2)
        .take_while(|l| !l.contains("lvl "))
        .map(|l| l.chars().take(50).collect())
        .collect()
}

#[test]
fn the_demo_source_moves_the_meters_and_finds_the_tempo() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "");
    t.wait_for_text("audio · demo", T);
    // The tracker locks onto the demo's tempo: a number replaces `--.-`.
    common::wait_for("a detected tempo", T, || {
        let s = t.screen();
        s.lines()
            .any(|l| l.contains(" BPM ") && !l.contains("--.-"))
            .then_some(())
    });
    // Meters move: several different spectrum pictures with bars in them.
    let mut pictures = std::collections::HashSet::new();
    common::wait_for("moving spectrum bars", T, || {
        let panel = audio_panel(&t.screen());
        if panel.iter().any(|l| l.contains('█')) {
            pictures.insert(panel);
        }
        (pictures.len() >= 3).then_some(())
    });
    t.keys(&["q"]);
    t.wait_for_text("press q again", T);
    t.keys(&["q"]);
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
}

/// The layout follows the terminal: a resize (SIGWINCH) redraws at the new size, with the wide
/// layout's theme list appearing and going again. (The TUI sizes its viewport from resize
/// events, not by asking the terminal before every frame.)
#[test]
fn the_layout_follows_a_terminal_resize() {
    let sb = common::Sandbox::new();
    let cmd = common::tmux::app_command(&sb, "--dry-run", "");
    let t = Tmux::start(&cmd, 80, 24);
    let screen = t.wait_for_text("STREAMING", T);
    assert!(!screen.contains("┌ themes "), "{screen}");
    t.resize(160, 48);
    let wide = t.wait_for_text("┌ themes ", T);
    // The frame spans the new width: the bottom panels' right border sits in the last column.
    let last_border = wide
        .lines()
        .filter(|l| l.starts_with('└'))
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0);
    assert_eq!(last_border, 160, "{wide}");
    t.resize(80, 24);
    let narrow = common::wait_for("the narrow layout again", T, || {
        let s = t.screen();
        (!s.contains("┌ themes ")).then_some(s)
    });
    assert!(narrow.lines().all(|l| l.chars().count() <= 80), "{narrow}");
    t.keys(&["q", "q"]);
    let screen = t.wait_for_text("EXIT:", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
}

/// Show mode and the log view through a real terminal: `K` locks, `c` then asks for a second
/// press (shown in the status bar), `L` opens the history over the panels and `esc` closes it.
#[test]
fn show_mode_asks_before_reconnect_and_the_log_view_opens() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "");
    t.wait_for_text("STREAMING", T);
    t.keys(&["K"]);
    t.wait_for_text("SHOW", T);
    t.keys(&["c"]);
    t.wait_for_text("press again: reconnect", T);
    t.keys(&["space"]);
    t.wait_for_text("PAUSED", T);
    t.keys(&["L"]);
    t.wait_for_text("PgUp PgDn Home End scroll", T);
    t.keys(&["Escape"]);
    common::wait_for("log view closed", T, || {
        (!t.screen().contains("Home End scroll")).then_some(())
    });
    // Quit in show mode: twice, and that is enough even while streaming.
    t.keys(&["q"]);
    t.wait_for_text("press again: quit", T);
    t.keys(&["q"]);
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
    assert_restored(&t, &screen);
}

/// SIGHUP (the terminal or SSH session hung up) is a clean stop: exit 0, terminal restored.
#[test]
fn sighup_stops_cleanly_and_restores_the_terminal() {
    let sb = common::Sandbox::new();
    let t = start(&sb, "");
    t.wait_for_text("STREAMING", T);
    let pid = pid_of(&sb);
    assert!(
        Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .unwrap()
            .success()
    );
    let screen = t.wait_for_text("MODES-END", T);
    assert!(screen.contains("EXIT:0"), "{screen}");
    assert_restored(&t, &screen);
    assert!(sb.log().contains("Hangup"), "{}", sb.log());
}

/// A real SSH drop without tmux: the terminal itself goes away (the pane is killed, its pty
/// closes, SIGHUP arrives) while the dashboard draws. Writing to the dead terminal must not turn
/// into a panic (exit 101): the deck stops in order and exits 0.
#[test]
fn a_closed_terminal_is_a_clean_stop_not_a_panic() {
    let sb = common::Sandbox::new();
    let code = sb.root.path().join("exit.code");
    // The wrapping shell ignores SIGHUP so it outlives the terminal and can write the code.
    let cmd = format!(
        "trap '' HUP; env XDG_STATE_HOME='{}' '{}' --config-dir '{}' --dry-run; echo $? > '{}'",
        sb.state_home().display(),
        common::bin().display(),
        sb.config_dir().display(),
        code.display()
    );
    let t = Tmux::start(&cmd, 100, 30);
    t.wait_for_text("STREAMING", T);
    t.kill_pane();
    let exit = common::wait_for("the exit code", T, || {
        std::fs::read_to_string(&code)
            .ok()
            .filter(|s| !s.trim().is_empty())
    });
    let log = sb.log();
    assert_eq!(exit.trim(), "0", "{log}");
    assert!(!log.contains("panic"), "{log}");
    assert!(log.contains("exit"), "{log}");
}
