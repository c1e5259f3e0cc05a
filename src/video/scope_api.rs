//! Scope-side video features: the server's own NDI/Spout/Syphon outputs (`output_sinks`, with
//! availability from `/api/v1/hardware/info`), reference-image upload (`/api/v1/assets`) and the
//! VACE parameters. The pure payload builders live in the core crate; this file is the HTTP half.

use serde_json::Value;

pub use scope_deck_core::video::scope_api::*;

/// Uploads a reference image to `/api/v1/assets` and returns its server path (for
/// [`vace_update`]).
pub(crate) async fn upload_asset(
    client: &reqwest::Client,
    base: &str,
    file: &std::path::Path,
) -> Result<String, String> {
    let what = format!("reference image {}", file.display());
    let name = file
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| format!("{what}: not a file name"))?;
    let body = tokio::fs::read(file)
        .await
        .map_err(|e| format!("{what}: cannot read it: {e}"))?;
    let mut url = url::Url::parse(&format!("{}/api/v1/assets", base.trim_end_matches('/')))
        .map_err(|e| format!("server URL {base}: {e}"))?;
    url.query_pairs_mut().append_pair("filename", name);
    let resp = client
        .post(url.clone())
        .header("Content-Type", "application/octet-stream")
        .body(body)
        .send()
        .await
        .map_err(|e| format!("{what}: POST /api/v1/assets: no answer from the server ({e})"))?;
    let status = resp.status();
    if !status.is_success() {
        let text = resp.text().await.unwrap_or_default();
        let detail: String = text.trim().chars().take(200).collect();
        return Err(format!(
            "{what}: POST /api/v1/assets: HTTP {status} {detail}"
        ));
    }
    let v: Value = resp
        .json()
        .await
        .map_err(|e| format!("{what}: POST /api/v1/assets: not JSON: {e}"))?;
    asset_path(&v).ok_or_else(|| format!("{what}: POST /api/v1/assets: the answer has no `path`"))
}
