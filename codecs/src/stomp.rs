//! STOMP 1.0 / 1.1 / 1.2 frames (placeholder until the codec lands).
