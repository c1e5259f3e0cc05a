//! Minimal streaming WAV (RIFF) reader and a 16-bit writer, so WAV needs no GStreamer plugin.
//! Reads PCM 8/16/24/32-bit, IEEE float 32/64-bit and WAVE_FORMAT_EXTENSIBLE of those.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use crate::audio::error::AudioError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Pcm,
    Float,
}

/// An open WAV file positioned at its sample data.
pub struct WavReader {
    r: BufReader<File>,
    path: String,
    enc: Encoding,
    bits: u16,
    channels: u16,
    sample_rate: u32,
    remaining: u64,
    buf: Vec<u8>,
}

fn rd_u16(b: &[u8], i: usize) -> u16 {
    u16::from_le_bytes([b[i], b[i + 1]])
}
fn rd_u32(b: &[u8], i: usize) -> u32 {
    u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]])
}

impl WavReader {
    /// Opens `path`; errors name the file and what is wrong with it.
    pub fn open(path: &Path) -> Result<Self, AudioError> {
        let p = path.display().to_string();
        let f = File::open(path).map_err(|e| AudioError::file(&p, e))?;
        let mut r = BufReader::new(f);
        let mut hdr = [0u8; 12];
        r.read_exact(&mut hdr)
            .map_err(|_| AudioError::file(&p, "too short to be a WAV file"))?;
        if &hdr[0..4] != b"RIFF" || &hdr[8..12] != b"WAVE" {
            return Err(AudioError::file(&p, "not a RIFF/WAVE file"));
        }
        let mut fmt: Option<(Encoding, u16, u16, u32)> = None;
        loop {
            let mut ch = [0u8; 8];
            r.read_exact(&mut ch)
                .map_err(|_| AudioError::file(&p, "no `data` chunk"))?;
            let id = [ch[0], ch[1], ch[2], ch[3]];
            let len = rd_u32(&ch, 4);
            match &id {
                b"fmt " => {
                    if !(16..=1024).contains(&len) {
                        return Err(AudioError::file(&p, "malformed `fmt ` chunk"));
                    }
                    let mut b = vec![0u8; len as usize];
                    r.read_exact(&mut b)
                        .map_err(|_| AudioError::file(&p, "truncated `fmt ` chunk"))?;
                    let mut tag = rd_u16(&b, 0);
                    if tag == 0xFFFE && b.len() >= 26 {
                        tag = rd_u16(&b, 24);
                    }
                    let enc = match tag {
                        1 => Encoding::Pcm,
                        3 => Encoding::Float,
                        t => {
                            return Err(AudioError::file(
                                &p,
                                format!("unsupported WAV encoding tag {t} (PCM and float only)"),
                            ));
                        }
                    };
                    let channels = rd_u16(&b, 2);
                    let rate = rd_u32(&b, 4);
                    let bits = rd_u16(&b, 14);
                    let ok = match enc {
                        Encoding::Pcm => matches!(bits, 8 | 16 | 24 | 32),
                        Encoding::Float => matches!(bits, 32 | 64),
                    };
                    if !ok || channels == 0 || !(1000..=768_000).contains(&rate) {
                        return Err(AudioError::file(
                            &p,
                            format!(
                                "unsupported WAV format: {bits}-bit, {channels} channel(s), {rate} Hz"
                            ),
                        ));
                    }
                    if len % 2 == 1 {
                        let _ = r.seek(SeekFrom::Current(1));
                    }
                    fmt = Some((enc, bits, channels, rate));
                }
                b"data" => {
                    let Some((enc, bits, channels, sample_rate)) = fmt else {
                        return Err(AudioError::file(&p, "`data` chunk before `fmt `"));
                    };
                    // Streams written live may carry 0 or 0xFFFFFFFF: read to the end then.
                    let remaining = if len == 0 || len == u32::MAX {
                        u64::MAX
                    } else {
                        u64::from(len)
                    };
                    return Ok(WavReader {
                        r,
                        path: p,
                        enc,
                        bits,
                        channels,
                        sample_rate,
                        remaining,
                        buf: Vec::new(),
                    });
                }
                _ => {
                    let skip = i64::from(len) + i64::from(len % 2);
                    r.seek(SeekFrom::Current(skip))
                        .map_err(|e| AudioError::file(&p, e))?;
                }
            }
        }
    }

    /// Channels.
    pub(crate) fn channels(&self) -> u16 {
        self.channels
    }

    /// Sample rate.
    pub(crate) fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    /// Appends up to `frames` interleaved frames as f32 to `out`; returns frames read (0 at
    /// the end).
    pub fn read(&mut self, out: &mut Vec<f32>, frames: usize) -> Result<usize, AudioError> {
        let bps = usize::from(self.bits / 8);
        let frame_bytes = bps * usize::from(self.channels);
        let want = (frames * frame_bytes).min(self.remaining.min(usize::MAX as u64) as usize);
        let want = want - want % frame_bytes;
        self.buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            match self.r.read(&mut self.buf[got..want]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(AudioError::file(&self.path, e)),
            }
        }
        let got = got - got % frame_bytes;
        if self.remaining != u64::MAX {
            self.remaining -= got as u64;
        }
        let b = &self.buf[..got];
        match (self.enc, self.bits) {
            (Encoding::Pcm, 8) => out.extend(b.iter().map(|&v| (f32::from(v) - 128.0) / 128.0)),
            (Encoding::Pcm, 16) => out.extend(
                b.chunks_exact(2)
                    .map(|c| f32::from(i16::from_le_bytes([c[0], c[1]])) / 32768.0),
            ),
            (Encoding::Pcm, 24) => out
                .extend(b.chunks_exact(3).map(|c| {
                    (i32::from_le_bytes([0, c[0], c[1], c[2]]) >> 8) as f32 / 8_388_608.0
                })),
            (Encoding::Pcm, _) => out
                .extend(b.chunks_exact(4).map(|c| {
                    i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32 / 2_147_483_648.0
                })),
            (Encoding::Float, 32) => out.extend(
                b.chunks_exact(4)
                    .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])),
            ),
            (Encoding::Float, _) => out.extend(b.chunks_exact(8).map(|c| {
                f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32
            })),
        }
        Ok(got / frame_bytes)
    }
}

/// Writes mono samples as a 16-bit PCM WAV file.
pub fn write_wav(path: &Path, sample_rate: u32, samples: &[f32]) -> std::io::Result<()> {
    let mut w = BufWriter::new(File::create(path)?);
    let data_len = (samples.len() * 2) as u32;
    w.write_all(b"RIFF")?;
    w.write_all(&(36 + data_len).to_le_bytes())?;
    w.write_all(b"WAVEfmt ")?;
    w.write_all(&16u32.to_le_bytes())?;
    w.write_all(&1u16.to_le_bytes())?;
    w.write_all(&1u16.to_le_bytes())?;
    w.write_all(&sample_rate.to_le_bytes())?;
    w.write_all(&(sample_rate * 2).to_le_bytes())?;
    w.write_all(&2u16.to_le_bytes())?;
    w.write_all(&16u16.to_le_bytes())?;
    w.write_all(b"data")?;
    w.write_all(&data_len.to_le_bytes())?;
    for s in samples {
        let v = (s.clamp(-1.0, 1.0) * 32767.0).round() as i16;
        w.write_all(&v.to_le_bytes())?;
    }
    w.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_16_bit() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("a.wav");
        let x: Vec<f32> = (0..1000).map(|i| ((i as f32) * 0.01).sin() * 0.5).collect();
        write_wav(&p, 44_100, &x).unwrap();
        let mut r = WavReader::open(&p).unwrap();
        assert_eq!((r.channels(), r.sample_rate()), (1, 44_100));
        let mut out = Vec::new();
        let mut total = 0;
        loop {
            let n = r.read(&mut out, 300).unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 1000);
        for (a, b) in x.iter().zip(&out) {
            assert!((a - b).abs() < 1e-4);
        }
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("b.wav");
        std::fs::write(&p, b"hello world, not audio").unwrap();
        let e = WavReader::open(&p).err().unwrap().to_string();
        assert!(e.contains("b.wav") && e.contains("RIFF"), "{e}");
        let e = WavReader::open(&dir.path().join("missing.wav"))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("missing.wav"), "{e}");
    }
}
