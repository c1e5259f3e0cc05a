//! The real-time side of every source: a pre-allocated lock-free SPSC ring (rtrb) and atomic
//! counters. [`RingWriter::write_frames`] is the whole body of the cpal callback: it converts,
//! mixes down or picks a channel, copies into the ring and bumps atomics. No allocation, lock,
//! syscall or log (the `alloc-guard` test enforces the allocation part).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cpal::FromSample;

/// Counters shared between the callback and the rest of the program.
#[derive(Debug, Default)]
pub struct RingStats {
    /// Mono frames written into the ring.
    pub frames: AtomicU64,
    /// Frames dropped because the ring was full (analysis fell behind: an overrun).
    pub overruns: AtomicU64,
    /// Callback invocations (a stalled count means the device stopped delivering).
    pub callbacks: AtomicU64,
}

/// The producer end of the ring, plus how to turn device frames into mono samples.
pub struct RingWriter {
    producer: rtrb::Producer<f32>,
    channels: usize,
    channel: u32,
    stats: Arc<RingStats>,
}

/// Creates a ring of `capacity` mono samples. `channels` is the device's channel count,
/// `channel` the one to keep (1-based) or 0 to mix all down.
pub fn ring(
    capacity: usize,
    channels: u16,
    channel: u32,
    stats: Arc<RingStats>,
) -> (RingWriter, rtrb::Consumer<f32>) {
    let (producer, consumer) = rtrb::RingBuffer::new(capacity);
    (
        RingWriter {
            producer,
            channels: usize::from(channels.max(1)),
            channel,
            stats,
        },
        consumer,
    )
}

impl RingWriter {
    /// The callback body: converts interleaved `data` to mono f32 and copies it into the ring.
    /// Frames that do not fit are counted as overruns, never waited for.
    #[inline]
    pub fn write_frames<T>(&mut self, data: &[T])
    where
        T: Copy,
        f32: FromSample<T>,
    {
        let ch = self.channels;
        let frames = data.len() / ch;
        let free = self.producer.slots();
        let take = frames.min(free);
        if take > 0 {
            if let Ok(chunk) = self.producer.write_chunk_uninit(take) {
                let pick = self.channel as usize;
                let it = data.chunks_exact(ch).take(take).map(|f| {
                    if ch == 1 {
                        <f32 as FromSample<T>>::from_sample_(f[0])
                    } else if pick >= 1 && pick <= ch {
                        <f32 as FromSample<T>>::from_sample_(f[pick - 1])
                    } else {
                        let mut s = 0.0f32;
                        for &v in f {
                            s += <f32 as FromSample<T>>::from_sample_(v);
                        }
                        s / ch as f32
                    }
                });
                chunk.fill_from_iter(it);
            }
        }
        self.stats.frames.fetch_add(take as u64, Ordering::Relaxed);
        if frames > take {
            self.stats
                .overruns
                .fetch_add((frames - take) as u64, Ordering::Relaxed);
        }
        self.stats.callbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Convenience for non-real-time sources that already have mono f32.
    pub(crate) fn write_mono(&mut self, data: &[f32]) {
        let save = self.channels;
        self.channels = 1;
        self.write_frames(data);
        self.channels = save;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_mixes_and_counts_overruns() {
        let stats = Arc::new(RingStats::default());
        let (mut w, mut r) = ring(4, 2, 0, stats.clone());
        w.write_frames(&[i16::MAX, 0, 0, i16::MIN, 16384, 16384]);
        assert_eq!(r.pop().unwrap(), (32767.0 / 32768.0) / 2.0);
        assert_eq!(r.pop().unwrap(), -0.5);
        assert_eq!(r.pop().unwrap(), 0.5);
        w.write_frames(&[0.1f32, 0.3, 0.1, 0.3, 0.1, 0.3, 0.1, 0.3, 0.1, 0.3]);
        assert_eq!(stats.frames.load(Ordering::Relaxed), 7);
        assert_eq!(stats.overruns.load(Ordering::Relaxed), 1);
        assert_eq!(stats.callbacks.load(Ordering::Relaxed), 2);
        let (mut w, mut r) = ring(8, 2, 2, stats);
        w.write_frames(&[0.1f32, 0.9]);
        assert_eq!(r.pop().unwrap(), 0.9);
    }
}
