//! Errors from audio sources and decoding, phrased for the performer.

/// Something went wrong opening or reading an audio source.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    /// A file could not be read or decoded.
    #[error("{path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// The input device could not be found or opened.
    #[error("audio device: {0}")]
    Device(String),
    /// A GStreamer pipeline could not be built or failed.
    #[error("GStreamer: {0}")]
    Gstreamer(String),
}

impl AudioError {
    /// A file error.
    pub(crate) fn file(path: impl std::fmt::Display, message: impl std::fmt::Display) -> Self {
        AudioError::File {
            path: path.to_string(),
            message: message.to_string(),
        }
    }
}
