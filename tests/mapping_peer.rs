//! Themes through the real transport to the aiortc test peer: the active theme's defaults and
//! prompt ride in the offer's initial parameters, and theme switches, prompt steps and persona
//! changes arrive on the data channel as Scope `transition` crossfades.
//!
//! The default demo audio runs, so Synthwave Highway's server-quantised switch is sent at once
//! (with `_quantized`) or, before the beat grid locks, lands at once; the beat-locked path
//! (demo audio → analysis → mapping → data channel) is `mapping_e2e.rs`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::deck::{Deck, scope_server};
use common::peer::{Peer, PeerOptions};
use serde_json::{Value, json};

fn first_text(v: &Value) -> String {
    v["target_prompts"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The first prompt texts of the first `n` transitions on the data channel (10 s deadline).
async fn transitions(peer: &Peer, n: usize) -> Vec<String> {
    peer.wait_log(Duration::from_secs(10), |e| {
        let t: Vec<String> = e
            .iter()
            .filter(|x| x["kind"] == "message")
            .filter_map(|x| x["data"].get("transition").map(first_text))
            .collect();
        (t.len() >= n).then_some(t)
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn theme_prompt_and_persona_changes_reach_the_peer() {
    let peer = Peer::start(PeerOptions::default()).await;
    let sb = common::Sandbox::new();
    sb.write_config(&format!(
        "{}[ui]\ntheme = \"neon-foundry\"\n",
        scope_server(&peer.url())
    ));
    let mut deck = Deck::start(&sb);
    deck.wait_streaming(Duration::from_secs(30));

    // The offer carried Neon Foundry.
    let initial = peer.wait_initial(Duration::from_secs(10)).await;
    // The theme's default schedule, or — when the demo audio already moved the energy mapping
    // before the offer went out — one of the mapping's own schedules.
    let schedules = [
        json!([1000, 750, 500, 250]),
        json!([1000, 750, 500]),
        json!([1000, 500]),
    ];
    assert!(
        schedules.contains(&initial["denoising_step_list"]),
        "{}",
        initial["denoising_step_list"]
    );
    // The demo audio may already have moved the mapped noise within the theme's range.
    let noise = initial["noise_scale"].as_f64().unwrap();
    assert!((0.4..=0.9).contains(&noise), "{noise}");
    assert!(
        initial["prompts"][0]["text"]
            .as_str()
            .unwrap()
            .starts_with("robotic arms forging glowing circuits"),
        "{initial}"
    );

    // Synthwave Highway is theme #5: without a beat grid it lands at once, as a crossfade.
    deck.send(json!({"action": "select_theme", "index": 4}));
    let tr = peer
        .wait_message(Duration::from_secs(10), |m| m.get("transition").is_some())
        .await["transition"]
        .clone();
    assert_eq!(tr["num_steps"], json!(6));
    assert!(
        first_text(&tr).starts_with("androgynous cartoon magical dj driving"),
        "{tr}"
    );

    // Next prompt, then a persona change: each one crossfade, nothing else reloaded. Each is
    // waited for before the next (sent back to back, the transport may merge the two
    // crossfades into one, latest wins).
    deck.send(json!({"action": "prompt_next"}));
    let texts = transitions(&peer, 2).await;
    assert!(texts[1].starts_with("androgynous cartoon magical dj under a giant setting sun"));
    deck.send(json!({"action": "set_persona", "name": "female"}));
    let texts = transitions(&peer, 3).await;
    assert!(texts[2].starts_with("female cartoon magical dj under a giant setting sun"));
    // No pipeline reload for any of it: one load at start-up.
    let requests = peer.requests().await;
    let loads = requests
        .iter()
        .filter(|r| r["method"] == "POST" && r["path"] == "/api/v1/pipeline/load")
        .count();
    assert_eq!(loads, 1, "{requests:?}");

    deck.quit();
}
