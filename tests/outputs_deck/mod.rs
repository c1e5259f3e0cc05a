//! Config pieces shared by the outputs_* tests added for issue 20's remainder (schema, recall,
//! latency, record) and the failover bench; the deck itself is tests/common's `Deck`.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

/// `[server]` with quick polls and reconnects, for loopback peers (each output names its URL).
pub const SERVER: &str = "[server]\nbackend = \"scope\"\npipeline_ids = [\"longlive\"]\n\
    status_poll_ms = 50\nhealth_poll_ms = 200\nhealth_probe_ms = 100\n\
    reconnect_initial_ms = 100\nreconnect_max_ms = 500\nwarmup_expected_s = 1.0\n";

/// A theme with prompts and no mappings: nothing but the test moves a value.
pub const PLAIN_THEME: &str = "name = \"Plain\"\nprompts = [\"plain one\", \"plain two\"]\n";

/// Writes [`PLAIN_THEME`] as `themes/plain.toml`.
pub fn write_plain_theme(sb: &crate::common::Sandbox) {
    sb.write_theme("plain", PLAIN_THEME);
}

/// A deck (plain theme) on two outputs, `wall` and `side` (`side_extra`: more keys for side's
/// `[[outputs]]` table), once both stream.
pub fn wall_and_side(
    sb: &crate::common::Sandbox,
    wall_url: &str,
    side_url: &str,
    side_extra: &str,
) -> crate::common::deck::Deck {
    sb.write_config(&format!(
        "{SERVER}[ui]\ntheme = \"plain\"\n\
         [[outputs]]\nname = \"wall\"\nurl = \"{wall_url}\"\n\
         [[outputs]]\nname = \"side\"\nurl = \"{side_url}\"\n{side_extra}"
    ));
    write_plain_theme(sb);
    let mut deck = crate::common::deck::Deck::start(sb);
    for name in ["wall", "side"] {
        deck.wait_output(name, "streaming", std::time::Duration::from_secs(60));
    }
    deck
}
