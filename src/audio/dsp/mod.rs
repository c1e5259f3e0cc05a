//! Pure DSP on `&[f32]`: no I/O, no threads, no allocation after construction.

pub mod analyzer;
pub mod beat;
pub(crate) mod frontend;
pub mod learned;
pub(crate) mod onset;

#[cfg(test)]
mod input_fault_tests;
