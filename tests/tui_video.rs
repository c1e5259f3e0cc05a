//! The dashboard shows what the audience sees: the real binary in a real terminal (tmux),
//! connected to the aiortc test peer, which sends generated video back over WebRTC. The video
//! output runs (a `fakesink` sink, so nothing else is needed) with its preview branch; the
//! connection panel's video row counts decoded frames, and `v` opens the preview overlay, drawn
//! with half-block cells from the downscaled frames.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::peer::{Peer, PeerOptions};
use common::tmux::Tmux;

const T: Duration = Duration::from_secs(45);

/// The decoded frame rate shown in the connection panel's video row.
fn video_fps(screen: &str) -> Option<f32> {
    let line = screen
        .lines()
        .find(|l| l.contains("video ") && l.contains(" fps"))?;
    let after = line.split("video ").nth(1)?;
    after.split_whitespace().next()?.parse().ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_shows_the_received_video() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "[server]\nbackend = \"scope\"\nurl = \"{}\"\npipeline_ids = [\"longlive\"]\n\
         status_poll_ms = 50\nhealth_poll_ms = 200\nwarmup_expected_s = 1.0\n\n\
         [[video.sinks]]\nkind = \"custom\"\npipeline = \"fakesink sync=false\"\n\n\
         [video.preview]\nenabled = true\nfps = 6\nwidth = 32\nheight = 16\n",
        peer.url()
    ));
    let cmd = common::tmux::app_command(&sb, "", "");
    let t = Tmux::start(&cmd, 100, 30);
    t.wait_for_text("STREAMING", T);
    // Frames are decoded: the video row's rate becomes positive.
    common::wait_for("decoded frames in the video row", T, || {
        video_fps(&t.screen()).filter(|f| *f > 0.0)
    });
    t.keys(&["v"]);
    let screen = t.wait_for_text("┌ video preview", T);
    // The preview itself: half-block cells inside the overlay (the peer's frames are not black).
    let cells = common::wait_for("preview cells", T, || {
        let s = t.screen();
        let n = s.matches('▀').count();
        (n >= 32).then_some(n)
    });
    assert!(cells >= 32, "{screen}");
    // Closing it brings the meters back; keys kept working while it was open.
    t.keys(&["v"]);
    t.wait_for_text("┌ audio", T);
    t.keys(&["q", "q"]);
    let screen = t.wait_for_text("EXIT:", T);
    assert!(screen.contains("EXIT:0"), "{screen}\n{}", peer.stderr());
}
