//! The Daydream API key: read from `DAYDREAM_API_KEY` or a file only its owner can read, and kept
//! in a type that prints `***` so it cannot reach a log line, the dashboard or an error message
//! by accident. Only the API client reads the secret (for its `Authorization` header); WHIP and
//! WHEP requests never get it (their URLs are pre-signed; a key there causes 401/403).

use std::path::Path;

/// Environment variable holding the key.
pub(crate) const ENV_VAR: &str = "DAYDREAM_API_KEY";

/// A secret that never prints itself.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl std::fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::fmt::Display for ApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// Why no key could be had. Messages never contain the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum KeyError {
    /// Neither the variable nor a file.
    #[error(
        "no Daydream API key: set {ENV_VAR} or [daydream] api_key_file (a file with mode 0600)"
    )]
    Missing,
    /// The file is readable by group or others.
    #[error(
        "refusing the API key file {path}: its mode is {mode:o}, it must be readable by you only (chmod 600 {path})"
    )]
    Permissions {
        /// The file.
        path: String,
        /// Its permission bits.
        mode: u32,
    },
    /// The file could not be read.
    #[error("cannot read the API key file {path}: {why}")]
    Unreadable {
        /// The file.
        path: String,
        /// Why.
        why: String,
    },
    /// The file or variable is empty or has more than one line.
    #[error("the API key from {0} is empty or not a single line")]
    Malformed(String),
}

impl ApiKey {
    /// Wraps a key (tests).
    pub fn new(s: impl Into<String>) -> Self {
        ApiKey(s.into())
    }

    /// The secret itself, for the `Authorization` header of API requests only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// The key from `env_value` (the variable's value, if set and non-empty), else from `file`.
    pub(crate) fn load(env_value: Option<String>, file: Option<&Path>) -> Result<ApiKey, KeyError> {
        if let Some(v) = env_value.filter(|v| !v.is_empty()) {
            return single_line(&v).ok_or_else(|| KeyError::Malformed(ENV_VAR.into()));
        }
        let Some(path) = file else {
            return Err(KeyError::Missing);
        };
        let shown = path.display().to_string();
        let meta = std::fs::metadata(path).map_err(|e| KeyError::Unreadable {
            path: shown.clone(),
            why: e.to_string(),
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::Permissions { path: shown, mode });
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| KeyError::Unreadable {
            path: shown.clone(),
            why: e.to_string(),
        })?;
        single_line(&text).ok_or(KeyError::Malformed(shown))
    }

    /// The key from the process environment or `file`.
    pub(crate) fn from_env_or_file(file: Option<&Path>) -> Result<ApiKey, KeyError> {
        Self::load(std::env::var(ENV_VAR).ok(), file)
    }
}

fn single_line(s: &str) -> Option<ApiKey> {
    let t = s.trim();
    (!t.is_empty() && !t.contains(['\n', '\r', ' '])).then(|| ApiKey(t.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    const SECRET: &str = "daydream_live_SECRET123";

    #[test]
    fn debug_and_display_are_redacted() {
        let k = ApiKey::new(SECRET);
        assert_eq!(format!("{k:?} {k}"), "*** ***");
        assert!(!format!("{:?}", Some(&k)).contains("SECRET"));
    }

    #[test]
    fn environment_wins_and_file_must_be_private() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("key");
        std::fs::write(&p, format!("{SECRET}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
        let e = ApiKey::load(None, Some(&p)).unwrap_err();
        assert!(matches!(e, KeyError::Permissions { mode: 0o644, .. }));
        assert!(e.to_string().contains("chmod 600"));
        assert!(!e.to_string().contains("SECRET"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(ApiKey::load(None, Some(&p)).unwrap().expose(), SECRET);
        assert_eq!(
            ApiKey::load(Some("daydream_live_env".into()), Some(&p))
                .unwrap()
                .expose(),
            "daydream_live_env"
        );
        assert_eq!(
            ApiKey::load(Some(String::new()), None),
            Err(KeyError::Missing)
        );
        assert!(matches!(
            ApiKey::load(None, Some(&dir.path().join("nope"))),
            Err(KeyError::Unreadable { .. })
        ));
    }
}
