//! Audio files: WAV through the built-in reader (no plugin needed), everything else through
//! GStreamer's decodebin. Plus the mono mix-down / channel pick shared by every source.

use std::path::Path;
use std::time::Duration;

use crate::audio::error::AudioError;
use crate::audio::source::gst::GstReader;
use crate::audio::source::wav::WavReader;

/// Mixes interleaved frames down to mono (`channel` 0) or picks channel `channel` (1-based;
/// out-of-range picks fall back to the mix), appending to `out`. Allocation-free when `out` has
/// capacity.
pub(crate) fn mixdown(interleaved: &[f32], channels: usize, channel: u32, out: &mut Vec<f32>) {
    let ch = channels.max(1);
    let pick = channel as usize;
    if ch == 1 {
        out.extend_from_slice(interleaved);
    } else if pick >= 1 && pick <= ch {
        out.extend(interleaved.chunks_exact(ch).map(|f| f[pick - 1]));
    } else {
        let k = 1.0 / ch as f32;
        out.extend(
            interleaved
                .chunks_exact(ch)
                .map(|f| f.iter().sum::<f32>() * k),
        );
    }
}

/// A decoder for one file.
pub(crate) enum FileDecoder {
    /// The built-in WAV reader.
    Wav(WavReader),
    /// GStreamer decodebin.
    Gst(Box<GstReader>),
}

fn is_wav(path: &Path) -> bool {
    let mut magic = [0u8; 12];
    std::fs::File::open(path)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut magic))
        .is_ok()
        && &magic[0..4] == b"RIFF"
        && &magic[8..12] == b"WAVE"
}

impl FileDecoder {
    /// Opens a file. `monitor` plays it audibly too (through GStreamer, which then paces it).
    pub(crate) fn open(path: &Path, monitor: bool) -> Result<Self, AudioError> {
        if !path.exists() {
            return Err(AudioError::file(path.display(), "no such file"));
        }
        if !monitor && is_wav(path) {
            if let Ok(w) = WavReader::open(path) {
                return Ok(FileDecoder::Wav(w));
            }
        }
        Ok(FileDecoder::Gst(Box::new(GstReader::open_file(
            path, monitor,
        )?)))
    }

    /// Whether GStreamer paces playback itself (audible monitor).
    pub(crate) fn self_paced(&self) -> bool {
        matches!(self, FileDecoder::Gst(_))
    }

    /// (channels, sample rate).
    pub(crate) fn format(&mut self) -> Result<(u16, u32), AudioError> {
        match self {
            FileDecoder::Wav(w) => Ok((w.channels(), w.sample_rate())),
            FileDecoder::Gst(g) => g.format(Duration::from_secs(10)),
        }
    }

    /// Appends about `frames` interleaved frames; `Ok(None)` at the end.
    pub(crate) fn read(
        &mut self,
        out: &mut Vec<f32>,
        frames: usize,
    ) -> Result<Option<usize>, AudioError> {
        match self {
            FileDecoder::Wav(w) => {
                let n = w.read(out, frames)?;
                Ok((n > 0).then_some(n))
            }
            FileDecoder::Gst(g) => g.pull(out, Duration::from_millis(200)),
        }
    }
}

/// Decodes a whole file to mono (or one channel). Returns (samples, sample rate).
pub fn decode_mono(path: &Path, channel: u32) -> Result<(Vec<f32>, u32), AudioError> {
    let mut d = FileDecoder::open(path, false)?;
    let (ch, rate) = d.format()?;
    let mut inter = Vec::new();
    let mut mono = Vec::new();
    while let Some(_n) = d.read(&mut inter, 65_536)? {
        mixdown(&inter, usize::from(ch), channel, &mut mono);
        inter.clear();
    }
    Ok((mono, rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixdown_and_pick() {
        let x = [1.0, 3.0, 2.0, 4.0];
        let mut o = Vec::new();
        mixdown(&x, 2, 0, &mut o);
        assert_eq!(o, vec![2.0, 3.0]);
        o.clear();
        mixdown(&x, 2, 2, &mut o);
        assert_eq!(o, vec![3.0, 4.0]);
        o.clear();
        mixdown(&x, 1, 0, &mut o);
        assert_eq!(o, x.to_vec());
    }

    #[test]
    fn missing_file_names_the_file() {
        let e = decode_mono(Path::new("/nonexistent/song.flac"), 0)
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("/nonexistent/song.flac") && e.contains("no such file"),
            "{e}"
        );
    }

    #[test]
    fn flac_decodes_through_gstreamer() {
        // Real GStreamer: write a WAV, convert with the flac encoder if present, decode back.
        let dir = tempfile::tempdir().unwrap();
        let wav = dir.path().join("t.wav");
        let x: Vec<f32> = (0..48_000).map(|i| 0.3 * (i as f32 * 0.05).sin()).collect();
        crate::audio::source::wav::write_wav(&wav, 48_000, &x).unwrap();
        let flac = dir.path().join("t.flac");
        let ok = std::process::Command::new("gst-launch-1.0")
            .args([
                "-q",
                "filesrc",
                &format!("location={}", wav.display()),
                "!",
                "wavparse",
                "!",
                "audioconvert",
                "!",
                "flacenc",
                "!",
                "filesink",
            ])
            .arg(format!("location={}", flac.display()))
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "gst-launch-1.0 with flacenc is part of the test setup");
        let (y, rate) = decode_mono(&flac, 0).unwrap();
        assert_eq!(rate, 48_000);
        assert_eq!(y.len(), x.len());
        assert!((y[1000] - x[1000]).abs() < 1e-3);
    }
}
