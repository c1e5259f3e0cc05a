//! Live input through cpal: list devices, choose by index or name, open the stream with the
//! device's native sample format, and hand back the ring's consumer. The callback is
//! [`RingWriter::write_frames`] and nothing else.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use cpal::traits::{DeviceTrait, HostTrait, StreamTrait};

use crate::audio::error::AudioError;
use crate::audio::ring::{RingStats, RingWriter, ring};

fn device_name(d: &cpal::Device) -> String {
    d.description()
        .map(|x| x.name().to_string())
        .or_else(|_| d.id().map(|i| i.to_string()))
        .unwrap_or_else(|_| "<unnamed>".into())
}

/// Names of the input devices of the default host, in index order.
pub(crate) fn list_inputs() -> Result<Vec<String>, AudioError> {
    let host = cpal::default_host();
    let devs = host
        .input_devices()
        .map_err(|e| AudioError::Device(format!("cannot list input devices: {e}")))?;
    Ok(devs.map(|d| device_name(&d)).collect())
}

/// Picks a device: empty = the default input, a number = that index in [`list_inputs`], else
/// the first whose name contains `sel` (case-insensitive).
fn find(sel: &str) -> Result<cpal::Device, AudioError> {
    let host = cpal::default_host();
    let sel = sel.trim();
    if sel.is_empty() {
        return host
            .default_input_device()
            .ok_or_else(|| AudioError::Device("no default input device".into()));
    }
    let devs: Vec<cpal::Device> = host
        .input_devices()
        .map_err(|e| AudioError::Device(format!("cannot list input devices: {e}")))?
        .collect();
    if let Ok(i) = sel.parse::<usize>() {
        return devs.into_iter().nth(i).ok_or_else(|| {
            AudioError::Device(format!(
                "no input device with index {i} (see `scope-deck audio-devices`)"
            ))
        });
    }
    let low = sel.to_lowercase();
    devs.into_iter()
        .find(|d| device_name(d).to_lowercase().contains(&low))
        .ok_or_else(|| {
            AudioError::Device(format!(
                "no input device matching \"{sel}\" (see `scope-deck audio-devices`)"
            ))
        })
}

/// An open input stream. Dropping it stops the callback.
pub(crate) struct DeviceStream {
    _stream: cpal::Stream,
    /// Device name.
    pub(crate) name: String,
    /// Sample rate of the stream.
    pub(crate) sample_rate: u32,
    /// Set by the error callback when the stream broke (device gone).
    pub(crate) failed: Arc<AtomicBool>,
}

/// Opens device `sel`, keeping `channel` (0 = mix down), with a ring of about `ring_secs`.
pub(crate) fn open(
    sel: &str,
    channel: u32,
    ring_secs: f32,
    stats: Arc<RingStats>,
) -> Result<(DeviceStream, rtrb::Consumer<f32>), AudioError> {
    let dev = find(sel)?;
    let name = device_name(&dev);
    let sup = dev
        .default_input_config()
        .map_err(|e| AudioError::Device(format!("{name}: no usable input configuration: {e}")))?;
    let format = sup.sample_format();
    let config = sup.config();
    let cap = ((config.sample_rate as f32 * ring_secs) as usize).max(4096);
    let (writer, consumer) = ring(cap, config.channels, channel, stats);
    let failed = Arc::new(AtomicBool::new(false));
    let f2 = failed.clone();
    let on_err = move |_e: cpal::Error| {
        // Only an atomic: the supervisor notices and reopens.
        f2.store(true, Ordering::Relaxed);
    };
    macro_rules! build {
        ($t:ty) => {{
            let mut w: RingWriter = writer;
            dev.build_input_stream::<$t, _, _>(
                config,
                move |data: &[$t], _: &cpal::InputCallbackInfo| w.write_frames(data),
                on_err,
                None,
            )
        }};
    }
    use cpal::SampleFormat as F;
    let stream = match format {
        F::F32 => build!(f32),
        F::I16 => build!(i16),
        F::I32 => build!(i32),
        F::U16 => build!(u16),
        F::I8 => build!(i8),
        F::U8 => build!(u8),
        F::F64 => build!(f64),
        other => {
            return Err(AudioError::Device(format!(
                "{name}: unsupported sample format {other}"
            )));
        }
    }
    .map_err(|e| AudioError::Device(format!("{name}: cannot open input stream: {e}")))?;
    stream
        .play()
        .map_err(|e| AudioError::Device(format!("{name}: cannot start input stream: {e}")))?;
    Ok((
        DeviceStream {
            _stream: stream,
            name,
            sample_rate: config.sample_rate,
            failed,
        },
        consumer,
    ))
}
