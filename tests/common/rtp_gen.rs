//! Test-side RTP VP8 generator: frames carrying a 32-bit counter in their top 32 pixel rows
//! (32 equal-width cells, MSB first, white = 1), encoded with the real `vp8enc` and packetised by
//! the real `rtpvp8pay`, exactly like the aiortc test peer's frames.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use scope_deck::transport::types::{RtpPacket, VideoCodec};
use tokio::sync::mpsc;

/// An I420 frame of `w`×`h` with counter `n` drawn in the top 32 rows.
pub fn counter_frame_i420(n: u32, w: usize, h: usize) -> Vec<u8> {
    let mut f = vec![0u8; w * h * 3 / 2];
    let cell = w / 32;
    for y in 0..h {
        for x in 0..w {
            let v = if y < 32 {
                let bit = (x / cell).min(31);
                if n >> (31 - bit) & 1 == 1 { 235 } else { 16 }
            } else {
                // Moving gradient so the encoder has real work to do.
                ((x + y + n as usize * 4) % 200 + 28) as u8
            };
            f[y * w + x] = v;
        }
    }
    for b in &mut f[w * h..] {
        *b = 128;
    }
    f
}

/// Reads the counter back from an I420 (or any planar 8-bit luma-first) frame.
pub fn read_counter_luma(y_plane: &[u8], w: usize) -> u32 {
    let cell = w / 32;
    let mut n = 0u32;
    for bit in 0..32 {
        let x = bit * cell + cell / 2;
        let v = y_plane[16 * w + x];
        n = n << 1 | u32::from(v > 128);
    }
    n
}

/// RTP packets of `count` counter frames, grouped per frame (last packet has the marker bit).
pub fn encode_frames(count: u32, w: usize, h: usize, first: u32) -> Vec<Vec<Bytes>> {
    encode_with(
        "vp8enc deadline=1 cpu-used=8 target-bitrate=3000000 keyframe-max-dist=30 lag-in-frames=0 ! \
         rtpvp8pay pt=96 mtu=1200",
        count,
        w,
        h,
        first,
    )
}

/// Like [`encode_frames`] in H.264 (baseline, key frame every 30 frames, payload type 102), as
/// a Scope server answering H.264 sends it.
pub fn encode_frames_h264(count: u32, w: usize, h: usize, first: u32) -> Vec<Vec<Bytes>> {
    encode_with(
        "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=30 bitrate=3000 ! \
         video/x-h264,profile=constrained-baseline ! rtph264pay pt=102 mtu=1200 config-interval=-1",
        count,
        w,
        h,
        first,
    )
}

fn encode_with(enc: &str, count: u32, w: usize, h: usize, first: u32) -> Vec<Vec<Bytes>> {
    gst::init().unwrap();
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=I420,width={w},height={h},framerate=30/1 ! \
         {enc} ! appsink name=out sync=false"
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let src = pipeline
        .by_name("src")
        .unwrap()
        .downcast::<gst_app::AppSrc>()
        .unwrap();
    let out = pipeline
        .by_name("out")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let feeder = std::thread::spawn(move || {
        for i in 0..count {
            let mut buf = gst::Buffer::from_mut_slice(counter_frame_i420(first + i, w, h));
            {
                let b = buf.get_mut().unwrap();
                b.set_pts(gst::ClockTime::from_nseconds(u64::from(i) * 33_333_333));
                b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
            }
            src.push_buffer(buf).unwrap();
        }
        src.end_of_stream().unwrap();
    });
    let mut frames = Vec::new();
    let mut cur = Vec::new();
    while let Ok(s) = out.pull_sample() {
        let b = s.buffer().unwrap().map_readable().unwrap();
        let pkt = Bytes::copy_from_slice(b.as_slice());
        let marker = pkt[1] & 0x80 != 0;
        cur.push(pkt);
        if marker {
            frames.push(std::mem::take(&mut cur));
        }
    }
    feeder.join().unwrap();
    pipeline.set_state(gst::State::Null).unwrap();
    assert_eq!(frames.len(), count as usize, "encoder produced every frame");
    frames
}

/// Sends frames paced at `fps` as the transport would.
pub async fn send_paced(tx: &mpsc::Sender<RtpPacket>, frames: &[Vec<Bytes>], fps: u32) {
    send_paced_as(tx, frames, fps, VideoCodec::Vp8, 96).await;
}

/// Like [`send_paced`] for any codec and payload type.
pub async fn send_paced_as(
    tx: &mpsc::Sender<RtpPacket>,
    frames: &[Vec<Bytes>],
    fps: u32,
    codec: VideoCodec,
    payload_type: u8,
) {
    let start = Instant::now();
    for (i, f) in frames.iter().enumerate() {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(fps));
        tokio::time::sleep_until(due.into()).await;
        for p in f {
            tx.send(RtpPacket {
                data: p.clone(),
                codec,
                payload_type,
                clock_rate: 90_000,
                arrival: Instant::now(),
            })
            .await
            .unwrap();
        }
    }
}

/// A second process reading scope-deck's shm sink (`gst-launch-1.0 shmsrc ! fdsink`), every
/// I420 frame's counter decoded on a reader thread (what a local consumer such as OBS would
/// receive). Killed on drop.
pub struct ShmReader {
    child: std::process::Child,
    thread: Option<std::thread::JoinHandle<()>>,
    counters: std::sync::Arc<std::sync::Mutex<Vec<u32>>>,
    lumas: std::sync::Arc<std::sync::Mutex<Vec<f32>>>,
}

/// Mean luma below the counter band (rows 32..), sampled on a 4-pixel grid: 16 is black.
pub fn picture_luma(y_plane: &[u8], w: usize, h: usize) -> f32 {
    let (mut sum, mut n) = (0u64, 0u64);
    for y in (32..h).step_by(4) {
        for x in (0..w).step_by(4) {
            sum += u64::from(y_plane[y * w + x]);
            n += 1;
        }
    }
    if n == 0 { 0.0 } else { sum as f32 / n as f32 }
}

impl ShmReader {
    /// Starts reading `socket` as `w`×`h` I420 frames.
    pub fn start(socket: &std::path::Path, w: usize, h: usize) -> ShmReader {
        use std::io::Read;
        let mut child = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "shmsrc",
                &format!("socket-path={}", socket.display()),
                "is-live=true",
                "!",
                &format!("video/x-raw,format=I420,width={w},height={h},framerate=30/1"),
                "!",
                "fdsink",
                "fd=1",
                "sync=false",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("gst-launch-1.0 is installed (scripts/setup.sh test)");
        let mut out = child.stdout.take().expect("piped stdout");
        let counters = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let c2 = counters.clone();
        let lumas = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let l2 = lumas.clone();
        let thread = std::thread::spawn(move || {
            let mut frame = vec![0u8; w * h * 3 / 2];
            while out.read_exact(&mut frame).is_ok() {
                let n = read_counter_luma(&frame[..w * h], w);
                let l = picture_luma(&frame[..w * h], w, h);
                // Luma first: a reader of `frames_read` then always finds its luma.
                match l2.lock() {
                    Ok(mut v) => v.push(l),
                    Err(_) => return,
                }
                match c2.lock() {
                    Ok(mut v) => v.push(n),
                    Err(_) => return,
                }
            }
        });
        ShmReader {
            child,
            thread: Some(thread),
            counters,
            lumas,
        }
    }

    /// The counters read so far.
    pub fn counters(&self) -> Vec<u32> {
        self.counters.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// Mean picture luma of every frame read so far (see [`picture_luma`]).
    pub fn lumas(&self) -> Vec<f32> {
        self.lumas.lock().map(|v| v.clone()).unwrap_or_default()
    }

    /// How many frames were read so far.
    pub fn frames_read(&self) -> usize {
        self.counters.lock().map(|v| v.len()).unwrap_or(0)
    }

    /// Waits until `more` frames beyond the `before` already read have come, or panics naming
    /// `what` after `within` (frames come from another process: polled). Self-contained: some
    /// tests and benches include this file without the rest of tests/common.
    pub fn wait_frames(&self, what: &str, before: usize, more: usize, within: Duration) {
        let deadline = Instant::now() + within;
        while self.frames_read() < before + more {
            assert!(
                Instant::now() < deadline,
                "{what}: {} of {more} frames within {within:?}",
                self.frames_read().saturating_sub(before)
            );
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// Stops the reader and returns every counter it read.
    pub fn stop(mut self) -> Vec<u32> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.counters()
    }
}

impl Drop for ShmReader {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (up to `timeout`, woken by each published change) until the video edge's statistics
/// satisfy `cond`; panics naming `what` with the last statistics.
pub async fn wait_stats(
    rx: &mut tokio::sync::watch::Receiver<scope_deck::video::VideoStats>,
    what: &str,
    timeout: Duration,
    cond: impl Fn(&scope_deck::video::VideoStats) -> bool,
) -> scope_deck::video::VideoStats {
    let deadline = Instant::now() + timeout;
    loop {
        {
            let s = rx.borrow_and_update();
            if cond(&s) {
                return s.clone();
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || tokio::time::timeout(left, rx.changed()).await.is_err() {
            panic!("timed out waiting for {what}: {:#?}", rx.borrow());
        }
    }
}
