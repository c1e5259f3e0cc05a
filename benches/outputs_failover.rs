//! Benchmark (not a test): failover to the first frame (issue 20 item 4). The real binary
//! (headless) drives two aiortc peers, `wall` with a shm video sink and `spare` as its standby
//! (`failover_after_secs = 0.5`, the least allowed); the wall's peer is killed and the bench
//! times, from the kill: the deck seeing the wall's server lost (its `output_connection` event),
//! the failover (its notice), and the first frame from the standby read at the wall's sink (a
//! GStreamer `shmsrc` reader, polled every millisecond: the shm consumer has no event to wait on).
//!
//! Run: `nice -n 10 cargo bench --bench outputs_failover` (release; needs `scripts/setup.sh test`
//! and GStreamer). `FAILOVER_RUNS` (default 5) sets the runs. Results go to docs/performance.md
//! under "Several outputs".
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    missing_docs,
    clippy::print_stdout
)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/outputs_deck/mod.rs"]
mod outputs_deck;

use std::time::{Duration, Instant};

use common::deck::Deck;
use common::peer::{Peer, PeerOptions};
use outputs_deck::SERVER;

struct Run {
    lost: Duration,
    switched: Duration,
    first_frame: Duration,
}

async fn one_run() -> Run {
    let primary = Peer::start(PeerOptions::default()).await;
    let standby = Peer::start(PeerOptions::default()).await;
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("wall.shm");
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{SERVER}[[outputs]]\nname = \"wall\"\nurl = \"{}\"\nstandby = \"spare\"\n\
         failover_after_secs = 0.5\n\
         [[outputs.video.sinks]]\nkind = \"shm\"\nsocket = \"{}\"\n\
         [[outputs]]\nname = \"spare\"\nurl = \"{}\"\n",
        primary.url(),
        socket.display(),
        standby.url()
    ));
    let mut deck = Deck::start(&sb);
    deck.wait_output("wall", "streaming", Duration::from_secs(60));
    deck.wait_output("spare", "streaming", Duration::from_secs(60));
    common::wait_for("shm socket", Duration::from_secs(10), || {
        socket.exists().then_some(())
    });
    let reader = common::rtp_gen::ShmReader::start(&socket, 128, 64);
    common::wait_for("frames from the primary", Duration::from_secs(20), || {
        (reader.frames_read() >= 15).then_some(())
    });

    let killed = Instant::now();
    drop(primary);
    deck.wait("the wall's server lost", Duration::from_secs(20), |v| {
        v["event"] == "output_connection" && v["output"] == "wall" && v["state"] != "streaming"
    });
    let lost = killed.elapsed();
    deck.wait("the failover notice", Duration::from_secs(20), |v| {
        v["event"] == "notice"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("move to spare"))
    });
    let switched = killed.elapsed();
    let before = reader.frames_read();
    let first_frame = common::wait_for("a frame from the standby", Duration::from_secs(20), || {
        (reader.frames_read() > before).then(|| killed.elapsed())
    });
    drop(reader);
    deck.quit();
    Run {
        lost,
        switched,
        first_frame,
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn summary(name: &str, mut v: Vec<f64>) -> String {
    v.sort_by(f64::total_cmp);
    format!(
        "{name}: p50 {:.0} ms, min {:.0} ms, max {:.0} ms",
        v[v.len() / 2],
        v[0],
        v[v.len() - 1]
    )
}

fn main() {
    let runs: usize = std::env::var("FAILOVER_RUNS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(5)
        .max(1);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut all = Vec::new();
    for i in 0..runs {
        let r = rt.block_on(one_run());
        println!(
            "run {}: kill → lost {:.0} ms, → failover {:.0} ms, → first standby frame at the wall's sink {:.0} ms (switch → frame {:.0} ms)",
            i + 1,
            ms(r.lost),
            ms(r.switched),
            ms(r.first_frame),
            ms(r.first_frame - r.switched)
        );
        all.push(r);
    }
    println!(
        "{}",
        summary("kill → lost", all.iter().map(|r| ms(r.lost)).collect())
    );
    println!(
        "{}",
        summary(
            "kill → failover (failover_after_secs = 0.5)",
            all.iter().map(|r| ms(r.switched)).collect()
        )
    );
    println!(
        "{}",
        summary(
            "failover → first standby frame at the wall's sink",
            all.iter().map(|r| ms(r.first_frame - r.switched)).collect()
        )
    );
    println!(
        "{}",
        summary(
            "kill → first standby frame",
            all.iter().map(|r| ms(r.first_frame)).collect()
        )
    );
}
