//! A lapin 2 client for the Python black-box tests, which cannot write every field type
//! themselves (pika writes only some): `lapin_probe <amqp-port> publish-every-type <queue>`
//! publishes one message to `queue` (default exchange, publisher confirms) whose headers hold
//! every field-table value type lapin writes (`gateway/tests/support/lapin_values.rs`), prints
//! `OK` once the broker acked it, and exits non-zero on any failure.
//!
//! Built by `scripts/test` (`cargo build -p gateway --example lapin_probe`); read by
//! `tests/amqp091/test_properties.py`.

#[path = "../tests/support/lapin_values.rs"]
mod lapin_values;

use lapin::options::{BasicPublishOptions, ConfirmSelectOptions};
use lapin::{BasicProperties, Connection, ConnectionProperties};
use std::process::ExitCode;

async fn publish_every_type(port: u16, queue: &str) -> Result<(), String> {
    let uri = format!("amqp://guest:guest@127.0.0.1:{port}/%2f");
    let conn = Connection::connect(&uri, ConnectionProperties::default())
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let ch = conn
        .create_channel()
        .await
        .map_err(|e| format!("channel: {e}"))?;
    ch.confirm_select(ConfirmSelectOptions::default())
        .await
        .map_err(|e| format!("confirm.select: {e}"))?;
    let confirm = ch
        .basic_publish(
            "",
            queue,
            BasicPublishOptions::default(),
            b"every type",
            BasicProperties::default().with_headers(lapin_values::every_field_type()),
        )
        .await
        .map_err(|e| format!("publish: {e}"))?
        .await
        .map_err(|e| format!("confirm: {e}"))?;
    if !confirm.is_ack() {
        return Err(format!("not acked: {confirm:?}"));
    }
    let _ = conn.close(200, "done").await;
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(port), Some("publish-every-type"), Some(queue)) = (
        args.first().and_then(|p| p.parse::<u16>().ok()),
        args.get(1).map(String::as_str),
        args.get(2),
    ) else {
        eprintln!("usage: lapin_probe <amqp-port> publish-every-type <queue>");
        return ExitCode::from(2);
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(publish_every_type(port, queue)) {
        Ok(()) => {
            println!("OK");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}
