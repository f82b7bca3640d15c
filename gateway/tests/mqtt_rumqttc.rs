//! Black-box MQTT tests with a third-party Rust client, `rumqttc` (3.1.1 and 5), against the real
//! `gateway` binary: QoS 0/1/2 both ways, retained messages and a persistent session surviving a
//! crash (SIGKILL) and restart, and MQTT 5 properties end to end.

// rumqttc's ConnectionError is large; these tests only unwrap it.
#![allow(clippy::result_large_err)]

mod support;

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use support::{TestGateway, WAIT};

/// Polls a 3.1.1 event loop until `want` returns Some, or fails after [`WAIT`].
async fn poll_until<T>(
    eventloop: &mut EventLoop,
    what: &str,
    mut want: impl FnMut(&Event) -> Option<T>,
) -> T {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let event = tokio::time::timeout_at(deadline, eventloop.poll())
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
            .unwrap_or_else(|e| panic!("connection error while waiting for {what}: {e}"));
        if let Some(found) = want(&event) {
            return found;
        }
    }
}

/// Polls a 3.1.1 event loop for `n` incoming PUBLISH packets.
async fn receive_publishes(eventloop: &mut EventLoop, n: usize) -> Vec<rumqttc::Publish> {
    let mut got = Vec::new();
    while got.len() < n {
        let p = poll_until(eventloop, "a PUBLISH", |e| match e {
            Event::Incoming(Packet::Publish(p)) => Some(p.clone()),
            _ => None,
        })
        .await;
        got.push(p);
    }
    got
}

fn options(gw: &TestGateway, client_id: &str, clean: bool) -> MqttOptions {
    let mut o = MqttOptions::new(client_id, "127.0.0.1", gw.ports.mqtt);
    o.set_keep_alive(Duration::from_secs(30));
    o.set_clean_session(clean);
    o
}

async fn connect(gw: &TestGateway, client_id: &str, clean: bool) -> (AsyncClient, EventLoop, bool) {
    let (client, mut eventloop) = AsyncClient::new(options(gw, client_id, clean), 64);
    let session_present = poll_until(&mut eventloop, "CONNACK", |e| match e {
        Event::Incoming(Packet::ConnAck(ack)) => {
            assert_eq!(ack.code, rumqttc::ConnectReturnCode::Success);
            Some(ack.session_present)
        }
        _ => None,
    })
    .await;
    (client, eventloop, session_present)
}

async fn subscribe(client: &AsyncClient, eventloop: &mut EventLoop, filter: &str, qos: QoS) {
    client
        .subscribe(filter, qos)
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e}"));
    let codes = poll_until(eventloop, "SUBACK", |e| match e {
        Event::Incoming(Packet::SubAck(ack)) => Some(ack.return_codes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(codes, vec![rumqttc::SubscribeReasonCode::Success(qos)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn qos_0_1_2_both_ways_with_wildcards() {
    let gw = TestGateway::start();
    let (sub, mut sub_loop, _) = connect(&gw, "rumqttc-sub", true).await;
    subscribe(&sub, &mut sub_loop, "rt/+/temp", QoS::ExactlyOnce).await;

    let (publisher, mut pub_loop, _) = connect(&gw, "rumqttc-pub", true).await;
    for (i, qos) in [QoS::AtMostOnce, QoS::AtLeastOnce, QoS::ExactlyOnce]
        .into_iter()
        .enumerate()
    {
        publisher
            .publish(
                format!("rt/{i}/temp"),
                qos,
                false,
                format!("reading {i} ✓ 🌡"),
            )
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }
    // The publisher's flows complete: PUBACK for QoS 1, PUBREC + PUBCOMP for QoS 2.
    let mut puback = false;
    let mut pubcomp = false;
    while !(puback && pubcomp) {
        poll_until(&mut pub_loop, "PUBACK / PUBCOMP", |e| match e {
            Event::Incoming(Packet::PubAck(_)) => {
                puback = true;
                Some(())
            }
            Event::Incoming(Packet::PubComp(_)) => {
                pubcomp = true;
                Some(())
            }
            _ => None,
        })
        .await;
    }

    let mut got = receive_publishes(&mut sub_loop, 3).await;
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.topic, format!("rt/{i}/temp"));
        assert_eq!(p.payload.as_ref(), format!("reading {i} ✓ 🌡").as_bytes());
        // Delivered at the publish QoS (the subscription allows up to 2).
        assert_eq!(p.qos as u8, i as u8, "QoS of {}", p.topic);
        assert!(!p.retain);
    }
    // rumqttc completes the inbound QoS 2 flow (PUBREC -> PUBREL -> PUBCOMP) itself; drive it
    // until the gateway's PUBREL has arrived so that nothing is left half done.
    poll_until(&mut sub_loop, "PUBREL", |e| match e {
        Event::Incoming(Packet::PubRel(_)) => Some(()),
        _ => None,
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistent_session_and_retained_message_survive_a_crash() {
    let mut gw = TestGateway::start();

    // A persistent subscriber registers, then goes away.
    {
        let (sub, mut sub_loop, _) = connect(&gw, "rumqttc-durable", false).await;
        subscribe(&sub, &mut sub_loop, "jobs/#", QoS::AtLeastOnce).await;
        sub.disconnect()
            .await
            .unwrap_or_else(|e| panic!("disconnect: {e}"));
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            while sub_loop.poll().await.is_ok() {}
        })
        .await;
    }

    // While it is offline: three QoS 1 jobs and one retained configuration, each PUBACKed.
    let (publisher, mut pub_loop, _) = connect(&gw, "rumqttc-producer", true).await;
    for i in 0..3 {
        publisher
            .publish(
                format!("jobs/{i}"),
                QoS::AtLeastOnce,
                false,
                format!("job {i}"),
            )
            .await
            .unwrap_or_else(|e| panic!("publish: {e}"));
    }
    publisher
        .publish("config/site", QoS::AtLeastOnce, true, "threshold=7")
        .await
        .unwrap_or_else(|e| panic!("publish retained: {e}"));
    let mut acks = 0;
    while acks < 4 {
        poll_until(&mut pub_loop, "PUBACK", |e| match e {
            Event::Incoming(Packet::PubAck(_)) => Some(()),
            _ => None,
        })
        .await;
        acks += 1;
    }
    drop(publisher);
    drop(pub_loop);

    gw.crash_and_restart();

    // The session is still there, with its queued jobs, in order.
    let (_sub, mut sub_loop, session_present) = connect(&gw, "rumqttc-durable", false).await;
    assert!(session_present, "the persistent session must be resumed");
    let got = receive_publishes(&mut sub_loop, 3).await;
    let topics: Vec<_> = got.iter().map(|p| p.topic.clone()).collect();
    assert_eq!(topics, vec!["jobs/0", "jobs/1", "jobs/2"]);
    for (i, p) in got.iter().enumerate() {
        assert_eq!(p.payload.as_ref(), format!("job {i}").as_bytes());
        assert_eq!(p.qos, QoS::AtLeastOnce);
    }

    // A late subscriber gets the retained message, flagged as retained.
    let (late, mut late_loop, _) = connect(&gw, "rumqttc-late", true).await;
    subscribe(&late, &mut late_loop, "config/+", QoS::AtLeastOnce).await;
    let retained = receive_publishes(&mut late_loop, 1).await;
    assert_eq!(retained[0].topic, "config/site");
    assert_eq!(retained[0].payload.as_ref(), b"threshold=7");
    assert!(retained[0].retain);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt5_properties_round_trip() {
    use rumqttc::v5::mqttbytes::v5::{Packet as Packet5, PublishProperties};
    use rumqttc::v5::mqttbytes::QoS as QoS5;
    use rumqttc::v5::{AsyncClient as Client5, Event as Event5, MqttOptions as Options5};

    let gw = TestGateway::start();

    async fn next5<T>(
        eventloop: &mut rumqttc::v5::EventLoop,
        what: &str,
        mut want: impl FnMut(&Event5) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let event = tokio::time::timeout_at(deadline, eventloop.poll())
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
                .unwrap_or_else(|e| panic!("connection error while waiting for {what}: {e}"));
            if let Some(found) = want(&event) {
                return found;
            }
        }
    }

    let mut sub_opts = Options5::new("rumqttc5-sub", "127.0.0.1", gw.ports.mqtt);
    sub_opts.set_keep_alive(Duration::from_secs(30));
    let (sub, mut sub_loop) = Client5::new(sub_opts, 16);
    next5(&mut sub_loop, "CONNACK", |e| match e {
        Event5::Incoming(Packet5::ConnAck(_)) => Some(()),
        _ => None,
    })
    .await;
    sub.subscribe("v5/props", QoS5::AtLeastOnce)
        .await
        .unwrap_or_else(|e| panic!("subscribe: {e}"));
    next5(&mut sub_loop, "SUBACK", |e| match e {
        Event5::Incoming(Packet5::SubAck(_)) => Some(()),
        _ => None,
    })
    .await;

    let mut pub_opts = Options5::new("rumqttc5-pub", "127.0.0.1", gw.ports.mqtt);
    pub_opts.set_keep_alive(Duration::from_secs(30));
    let (publisher, mut pub_loop) = Client5::new(pub_opts, 16);
    next5(&mut pub_loop, "CONNACK", |e| match e {
        Event5::Incoming(Packet5::ConnAck(_)) => Some(()),
        _ => None,
    })
    .await;
    let properties = PublishProperties {
        payload_format_indicator: Some(1),
        message_expiry_interval: Some(3600),
        response_topic: Some("v5/replies".to_owned()),
        correlation_data: Some(bytes::Bytes::from_static(b"\x00corr\xff")),
        user_properties: vec![
            ("tenant".to_owned(), "acme".to_owned()),
            ("tenant".to_owned(), "second value kept".to_owned()),
            ("emoji".to_owned(), "🚀".to_owned()),
        ],
        content_type: Some("application/json".to_owned()),
        ..Default::default()
    };
    publisher
        .publish_with_properties(
            "v5/props",
            QoS5::AtLeastOnce,
            false,
            r#"{"ok":true}"#,
            properties,
        )
        .await
        .unwrap_or_else(|e| panic!("publish: {e}"));
    next5(&mut pub_loop, "PUBACK", |e| match e {
        Event5::Incoming(Packet5::PubAck(_)) => Some(()),
        _ => None,
    })
    .await;

    let p = next5(&mut sub_loop, "PUBLISH", |e| match e {
        Event5::Incoming(Packet5::Publish(p)) => Some(p.clone()),
        _ => None,
    })
    .await;
    assert_eq!(p.topic.as_ref(), b"v5/props");
    assert_eq!(p.payload.as_ref(), br#"{"ok":true}"#);
    let props = p
        .properties
        .unwrap_or_else(|| panic!("the PUBLISH lost its properties"));
    assert_eq!(props.payload_format_indicator, Some(1));
    assert_eq!(props.response_topic.as_deref(), Some("v5/replies"));
    assert_eq!(
        props.correlation_data.as_deref(),
        Some(b"\x00corr\xff".as_slice())
    );
    assert_eq!(props.content_type.as_deref(), Some("application/json"));
    assert_eq!(
        props.user_properties,
        vec![
            ("tenant".to_owned(), "acme".to_owned()),
            ("tenant".to_owned(), "second value kept".to_owned()),
            ("emoji".to_owned(), "🚀".to_owned()),
        ]
    );
    // The expiry counts down from 3600 (the time spent in the gateway is subtracted).
    let expiry = props
        .message_expiry_interval
        .unwrap_or_else(|| panic!("message expiry interval lost"));
    assert!(
        (3590..=3600).contains(&expiry),
        "message expiry interval {expiry}"
    );
}
