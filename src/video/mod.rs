//! Received video → GStreamer → sinks (v4l2loopback, NDI, shm, file, window, custom).
