//! Unit tests for the AMQP 0-9-1 codec.
