//! The video vocabulary the engine shares with the GStreamer edge (stats for the dashboard), the
//! video reducer, and the pure half of the Scope video API (payload builders, hardware info).

pub mod change;
pub mod reduce;
pub mod scope_api;

/// State of one sink for the dashboard.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize, serde::Serialize)]
pub struct SinkStatus {
    /// `shm:/tmp/x`, `ndi:name`...
    pub label: String,
    /// Running now.
    pub running: bool,
    /// Not running because it waits for the first received frame (a recording of the stream as
    /// received is built for its codec): a state, not a failure.
    pub waiting: bool,
    /// Frames handed to it.
    pub frames_in: u64,
    /// Frames that reached the sink element.
    pub frames_out: u64,
    /// Frames dropped because the sink was behind.
    pub dropped: u64,
    /// Rebuilds after failures.
    pub restarts: u64,
    /// Connected readers (shm).
    pub clients: u64,
    /// Last failure, explained.
    pub last_error: Option<String>,
    /// The recording being written (file sink).
    pub file: Option<std::path::PathBuf>,
    /// A recorder idle until the `record` key (`on_key = true`); shown as `waiting` too, so it
    /// is never counted as a failure.
    pub armed: bool,
}

/// Output statistics, published every 250 ms.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub struct VideoStats {
    /// RTP packets received from the transport.
    pub packets_in: u64,
    /// RTP packets dropped before the jitter buffer (channel or input full).
    pub packets_dropped: u64,
    /// Packets the jitter buffer counted lost or too late.
    pub packets_lost: u64,
    /// Decoded frames ("frames in").
    pub frames_in: u64,
    /// Frames rendered, summed over sinks ("frames out").
    pub frames_out: u64,
    /// Frames dropped because a sink was behind, summed over sinks.
    pub frames_dropped: u64,
    /// Decoder errors (corrupt frames, undecodable input).
    pub decode_errors: u64,
    /// Added latency of the last frame: RTP arrival → decoded frame handed to the sinks.
    pub latency_ms: f32,
    /// Mean of the same since start.
    pub latency_ms_mean: f32,
    /// Output pipeline rebuilds.
    pub rebuilds: u64,
    /// Key frames requested from the sender.
    pub keyframe_requests: u64,
    /// Per sink.
    pub sinks: Vec<SinkStatus>,
    /// The last output pipeline error, explained.
    pub last_error: Option<String>,
}
