//! Theme hot reload through the real file watcher (inotify via notify): saving a theme file in
//! the user's themes/ folder produces `Msg::ThemesReloaded` with the new themes, and an invalid
//! save produces the located error instead (the reducer then keeps the running theme; see
//! `mapping::tests::invalid_reload_keeps_the_running_theme_and_shows_the_error`).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use scope_deck::core::msg::Msg;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

const WAIT: Duration = Duration::from_secs(10);

async fn next_reload(rx: &mut mpsc::Receiver<Msg>) -> Result<Vec<String>, String> {
    match tokio::time::timeout(WAIT, rx.recv()).await {
        Ok(Some(Msg::ThemesReloaded(r))) => r.map(|t| t.into_iter().map(|t| t.id).collect()),
        other => panic!("expected a reload, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_reload_and_invalid_saves_report_file_line_key() {
    let dir = tempfile::tempdir().unwrap();
    let themes = dir.path().join("themes");
    std::fs::create_dir(&themes).unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    let cancel = CancellationToken::new();
    let task = scope_deck::mapping::reload::spawn(dir.path().to_path_buf(), tx, cancel.clone())
        .expect("watcher starts");

    let file = themes.join("gig.toml");
    std::fs::write(&file, "name = \"Gig\"\nprompts = [\"stage lights\"]\n").unwrap();
    let ids = next_reload(&mut rx).await.unwrap();
    assert!(ids.contains(&"gig".to_string()), "{ids:?}");
    assert!(
        ids.contains(&"neon-foundry".to_string()),
        "built-ins stay: {ids:?}"
    );

    std::fs::write(
        &file,
        "name = \"Gig\"\nprompts = [\"stage lights\"]\n[[mappings]]\nsource = \"energy\"\ntarget = \"noise_scale\"\ncurve = \"wobbly\"\n",
    )
    .unwrap();
    let err = next_reload(&mut rx).await.unwrap_err();
    assert!(
        err.contains(&format!("{}:6:", file.display())) && err.contains("key `mappings[0].curve`"),
        "{err}"
    );

    // Files that are not themes do not trigger reloads.
    std::fs::write(themes.join("notes.txt"), "hello").unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(600), rx.recv())
            .await
            .is_err(),
        "a .txt file must not reload"
    );

    cancel.cancel();
    tokio::time::timeout(WAIT, task).await.unwrap().unwrap();
}

#[test]
fn no_themes_folder_means_no_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (tx, _rx) = mpsc::channel(1);
    let h = rt.block_on(async {
        scope_deck::mapping::reload::spawn(dir.path().to_path_buf(), tx, CancellationToken::new())
    });
    assert!(h.is_none());
}
