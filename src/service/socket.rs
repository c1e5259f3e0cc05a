//! The deck's control socket on disk: where it lives, who may reach it, and what to do with one
//! left behind (docs/service.md, "Security").

use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Socket file name inside the deck's runtime folder.
pub const SOCKET_NAME: &str = "deck.sock";

/// The caller's effective uid (the only uid the socket serves).
pub(crate) fn my_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// The default socket: `$XDG_RUNTIME_DIR/scope-deck/deck.sock` (a per-user tmpfs the login
/// creates 0700), else `/tmp/scope-deck-<uid>/deck.sock`.
pub(crate) fn default_path() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir).join("scope-deck").join(SOCKET_NAME),
        None => std::env::temp_dir()
            .join(format!("scope-deck-{}", my_uid()))
            .join(SOCKET_NAME),
    }
}

/// Why `serve` cannot listen.
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// A deck answers on the socket already.
    #[error("another deck is already serving on {0} (attach to it, or stop it first)")]
    Busy(PathBuf),
    /// Something that is not a socket sits at the path.
    #[error("{0} exists and is not a socket; not touching it")]
    NotASocket(PathBuf),
    /// The folder belongs to someone else or others can enter it.
    #[error("{path}: {why}")]
    UnsafeDir {
        /// The folder.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// Any other I/O error, with the path it happened on.
    #[error("{path}: {source}")]
    Io {
        /// Where.
        path: PathBuf,
        /// What.
        source: io::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> BindError + '_ {
    move |source| BindError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Makes sure the socket's folder exists, is ours and is closed to others (0700). A folder we
/// own with looser bits is tightened; one owned by another user is refused.
pub(crate) fn prepare_dir(dir: &Path) -> Result<(), BindError> {
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(io_err(dir))?,
        Err(e) => return Err(io_err(dir)(e)),
        Ok(_) => {}
    }
    let meta = std::fs::symlink_metadata(dir).map_err(io_err(dir))?;
    if !meta.is_dir() {
        return Err(BindError::UnsafeDir {
            path: dir.to_path_buf(),
            why: "not a folder (a symlink is not followed)".into(),
        });
    }
    if meta.uid() != my_uid() {
        return Err(BindError::UnsafeDir {
            path: dir.to_path_buf(),
            why: format!("owned by uid {}, not by you (uid {})", meta.uid(), my_uid()),
        });
    }
    if meta.mode() & 0o077 != 0 {
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(io_err(dir))?;
    }
    Ok(())
}

/// What sits at the socket path.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// Nothing.
    None,
    /// A socket nobody answers on (a deck that died): safe to remove.
    Stale,
    /// A socket a process answers on.
    Live,
    /// A file of another kind.
    NotASocket,
}

/// Looks at the path without changing anything.
pub(crate) fn probe(path: &Path) -> Existing {
    use std::os::unix::fs::FileTypeExt;
    match std::fs::symlink_metadata(path) {
        Err(_) => Existing::None,
        Ok(m) if !m.file_type().is_socket() => Existing::NotASocket,
        Ok(_) => match std::os::unix::net::UnixStream::connect(path) {
            Ok(_) => Existing::Live,
            Err(_) => Existing::Stale,
        },
    }
}

/// Binds the socket at `path`: folder 0700, socket 0600, a stale socket replaced, a live one or
/// a foreign file refused. Call from inside a tokio runtime.
pub fn bind(path: &Path) -> Result<tokio::net::UnixListener, BindError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    prepare_dir(dir)?;
    match probe(path) {
        Existing::Live => return Err(BindError::Busy(path.to_path_buf())),
        Existing::NotASocket => return Err(BindError::NotASocket(path.to_path_buf())),
        Existing::Stale => {
            tracing::info!(path = %path.display(), "removing a stale deck socket");
            std::fs::remove_file(path).map_err(io_err(path))?;
        }
        Existing::None => {}
    }
    let listener = tokio::net::UnixListener::bind(path).map_err(io_err(path))?;
    // The folder is 0700 already, so nobody else could reach it between bind and chmod.
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(io_err(path))?;
    Ok(listener)
}

/// Whether a connection from `peer_uid` may use a deck run by `own_uid`: only the same user
/// (root is not special: it can read the socket's folder anyway, but a deck does not take
/// orders from another account).
pub(crate) fn peer_allowed(peer_uid: u32, own_uid: u32) -> bool {
    peer_uid == own_uid
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn another_users_connection_is_refused() {
        // The rule on made-up credentials; tests/service.rs runs a real client as `nobody`
        // against the service, which applies it to `UnixStream::peer_cred()` of every connection.
        assert!(peer_allowed(1000, 1000));
        assert!(!peer_allowed(1001, 1000));
        assert!(!peer_allowed(0, 1000), "root is another user too");
    }

    #[tokio::test]
    async fn bind_makes_a_private_folder_and_socket_and_replaces_a_stale_one() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("deck");
        let path = dir.join(SOCKET_NAME);
        let l = bind(&path).unwrap();
        let dmode = std::fs::metadata(&dir).unwrap().mode() & 0o777;
        let smode = std::fs::metadata(&path).unwrap().mode() & 0o777;
        assert_eq!((dmode, smode), (0o700, 0o600));
        assert_eq!(probe(&path), Existing::Live);
        assert!(matches!(bind(&path), Err(BindError::Busy(_))));
        drop(l);
        // The listener is gone but its file stays: stale, replaced by the next bind.
        assert_eq!(probe(&path), Existing::Stale);
        let _l = bind(&path).unwrap();
        assert_eq!(probe(&path), Existing::Live);
    }

    #[test]
    fn a_loose_folder_is_tightened_and_a_plain_file_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("loose");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_dir(&dir).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = dir.join(SOCKET_NAME);
        std::fs::write(&file, "notes").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt.block_on(async { bind(&file).map(|_| ()) });
        assert!(matches!(r, Err(BindError::NotASocket(_))), "{r:?}");
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "notes");
    }
}
