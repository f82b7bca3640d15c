//! Every method of AMQP 0-9-1 as RabbitMQ implements it, one struct each.
//!
//! Class and method ids, argument order and types follow RabbitMQ's
//! `amqp-rabbitmq-0.9.1.json` (rabbitmq-codegen). Reserved arguments
//! (`ticket`, `connection.open`'s `capabilities`/`insist`, `out-of-band`,
//! `channel-id`, `known-hosts`, `cluster-id`) are kept as fields so that a
//! frame re-encodes to the bytes it came from.

use bytes::{BufMut, Bytes, BytesMut};

use super::table::FieldTable;
use super::wire::{Reader, ShortStr, Writer};
use super::{Amqp091DecodeError, Amqp091EncodeError};

/// The Rust type of an argument domain.
macro_rules! arg_type {
    (octet) => {
        u8
    };
    (short) => {
        u16
    };
    (long) => {
        u32
    };
    (longlong) => {
        u64
    };
    (timestamp) => {
        u64
    };
    (bit) => {
        bool
    };
    (shortstr) => {
        ShortStr
    };
    (longstr) => {
        Bytes
    };
    (table) => {
        FieldTable
    };
}

macro_rules! methods {
    ($(
        $(#[doc = $doc:literal])*
        $name:ident = ($class:literal, $method:literal, $wire:literal, content = $content:literal) {
            $( $(#[doc = $fdoc:literal])* $field:ident : $kind:ident ),* $(,)?
        }
    )*) => {
        $(
            $(#[doc = $doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Default)]
            pub struct $name {
                $( $(#[doc = $fdoc])* pub $field: arg_type!($kind), )*
            }

            impl $name {
                /// The class id on the wire.
                pub const CLASS_ID: u16 = $class;
                /// The method id on the wire.
                pub const METHOD_ID: u16 = $method;
                /// The method's name, `class.method`.
                pub const NAME: &'static str = $wire;

                fn decode_args(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
                    let _ = &r;
                    Ok($name { $( $field: r.$kind()?, )* })
                }

                fn encode_args(&self, w: &mut Writer<'_>) -> Result<(), Amqp091EncodeError> {
                    let _ = &w;
                    $( w.$kind(&self.$field)?; )*
                    Ok(())
                }
            }

            impl From<$name> for Method {
                fn from(m: $name) -> Method {
                    Method::$name(m)
                }
            }
        )*

        /// Any AMQP 0-9-1 method, with its arguments.
        #[derive(Debug, Clone, PartialEq, Eq)]
        pub enum Method {
            $(
                #[doc = concat!("`", $wire, "`")]
                $name($name),
            )*
        }

        impl Method {
            /// The class id on the wire.
            pub fn class_id(&self) -> u16 {
                match self { $( Method::$name(_) => $class, )* }
            }

            /// The method id on the wire.
            pub fn method_id(&self) -> u16 {
                match self { $( Method::$name(_) => $method, )* }
            }

            /// The method's name, `class.method`, e.g. `"basic.publish"`.
            pub fn name(&self) -> &'static str {
                match self { $( Method::$name(_) => $wire, )* }
            }

            /// Whether a content header (and body frames) follow this method:
            /// `basic.publish`, `basic.return`, `basic.deliver`, `basic.get-ok`.
            pub fn has_content(&self) -> bool {
                match self { $( Method::$name(_) => $content, )* }
            }

            /// The name of the method with these ids, if there is one.
            pub fn name_of(class_id: u16, method_id: u16) -> Option<&'static str> {
                match (class_id, method_id) {
                    $( ($class, $method) => Some($wire), )*
                    _ => None,
                }
            }

            /// `(class-id, method-id, name)` of every method, in id order.
            pub const ALL: &'static [(u16, u16, &'static str)] = &[ $( ($class, $method, $wire), )* ];

            /// Argument domains of every method, for tests that generate wire bytes.
            #[cfg(test)]
            pub(crate) const SCHEMA: &'static [(u16, u16, &'static [&'static str])] =
                &[ $( ($class, $method, &[ $( stringify!($kind) ),* ]), )* ];

            /// The method with these ids and every argument zero, `false` or
            /// empty, if there is one.
            pub fn with_defaults(class_id: u16, method_id: u16) -> Option<Method> {
                match (class_id, method_id) {
                    $( ($class, $method) => Some(Method::$name($name::default())), )*
                    _ => None,
                }
            }

            /// Decodes the arguments of method `class_id.method_id` from `r`.
            fn decode_args(
                class_id: u16,
                method_id: u16,
                r: &mut Reader,
            ) -> Result<Self, Amqp091DecodeError> {
                match (class_id, method_id) {
                    $( ($class, $method) => Ok(Method::$name($name::decode_args(r)?)), )*
                    _ => Err(Amqp091DecodeError::UnknownMethod { class_id, method_id }),
                }
            }

            fn encode_args(&self, w: &mut Writer<'_>) -> Result<(), Amqp091EncodeError> {
                match self { $( Method::$name(m) => m.encode_args(w), )* }
            }
        }
    };
}

impl Method {
    /// Decodes a method frame's payload (class id, method id, arguments);
    /// `r` must hold exactly the payload.
    pub(crate) fn decode(r: &mut Reader) -> Result<Self, Amqp091DecodeError> {
        let class_id = r.short()?;
        r.class_id = class_id;
        let method_id = r.short()?;
        r.method_id = method_id;
        let method = Method::decode_args(class_id, method_id, r)?;
        r.finish()?;
        Ok(method)
    }

    /// Appends the method frame payload: class id, method id, arguments.
    pub(crate) fn encode(&self, dst: &mut BytesMut) -> Result<(), Amqp091EncodeError> {
        dst.put_u16(self.class_id());
        dst.put_u16(self.method_id());
        let mut w = Writer::new(dst);
        self.encode_args(&mut w)?;
        w.finish();
        Ok(())
    }
}

methods! {
    // ---------------------------------------------------------------- connection (10)

    /// `connection.start` (server): proposes authentication mechanisms and
    /// locales, and describes the server.
    ConnectionStart = (10, 10, "connection.start", content = false) {
        /// Protocol major version (0).
        version_major: octet,
        /// Protocol minor version (9).
        version_minor: octet,
        /// Server properties: `product`, `version`, `platform`, `capabilities`, ...
        server_properties: table,
        /// Space-separated SASL mechanisms, e.g. `PLAIN AMQPLAIN`.
        mechanisms: longstr,
        /// Space-separated locales, e.g. `en_US`.
        locales: longstr,
    }

    /// `connection.start-ok` (client): picks a mechanism and answers it.
    ConnectionStartOk = (10, 11, "connection.start-ok", content = false) {
        /// Client properties: `product`, `version`, `capabilities`, ...
        client_properties: table,
        /// The chosen SASL mechanism.
        mechanism: shortstr,
        /// The SASL response (for PLAIN: `\0user\0password`).
        response: longstr,
        /// The chosen locale.
        locale: shortstr,
    }

    /// `connection.secure` (server): a SASL challenge.
    ConnectionSecure = (10, 20, "connection.secure", content = false) {
        /// The challenge data.
        challenge: longstr,
    }

    /// `connection.secure-ok` (client): the answer to a SASL challenge.
    ConnectionSecureOk = (10, 21, "connection.secure-ok", content = false) {
        /// The response data.
        response: longstr,
    }

    /// `connection.tune` (server): proposes connection limits.
    ConnectionTune = (10, 30, "connection.tune", content = false) {
        /// Highest channel number the server allows (0: no limit).
        channel_max: short,
        /// Largest frame the server accepts, in octets (0: no limit).
        frame_max: long,
        /// Desired heartbeat interval in seconds (0: none).
        heartbeat: short,
    }

    /// `connection.tune-ok` (client): the negotiated limits.
    ConnectionTuneOk = (10, 31, "connection.tune-ok", content = false) {
        /// Highest channel number the client will use.
        channel_max: short,
        /// Largest frame the client accepts, in octets.
        frame_max: long,
        /// Heartbeat interval in seconds (0: none).
        heartbeat: short,
    }

    /// `connection.open` (client): opens a virtual host.
    ConnectionOpen = (10, 40, "connection.open", content = false) {
        /// The virtual host, e.g. `/`.
        virtual_host: shortstr,
        /// Reserved (`capabilities`), empty.
        capabilities: shortstr,
        /// Reserved (`insist`).
        insist: bit,
    }

    /// `connection.open-ok` (server): the virtual host is open.
    ConnectionOpenOk = (10, 41, "connection.open-ok", content = false) {
        /// Reserved (`known-hosts`), empty.
        known_hosts: shortstr,
    }

    /// `connection.close` (either peer): closes the connection, with a reason.
    ConnectionClose = (10, 50, "connection.close", content = false) {
        /// The reply code (see [`reply_code`](super::reply_code)).
        reply_code: short,
        /// Human-readable reason.
        reply_text: shortstr,
        /// Class id of the method that caused the close, or 0.
        class_id: short,
        /// Method id of the method that caused the close, or 0.
        method_id: short,
    }

    /// `connection.close-ok` (either peer): confirms `connection.close`.
    ConnectionCloseOk = (10, 51, "connection.close-ok", content = false) {}

    /// `connection.blocked` (server, RabbitMQ extension): publishing is blocked.
    ConnectionBlocked = (10, 60, "connection.blocked", content = false) {
        /// Why, e.g. `low on memory`.
        reason: shortstr,
    }

    /// `connection.unblocked` (server, RabbitMQ extension): publishing may resume.
    ConnectionUnblocked = (10, 61, "connection.unblocked", content = false) {}

    /// `connection.update-secret` (client, RabbitMQ extension): replaces the
    /// credentials (e.g. a refreshed token).
    ConnectionUpdateSecret = (10, 70, "connection.update-secret", content = false) {
        /// The new secret.
        new_secret: longstr,
        /// Why it changed.
        reason: shortstr,
    }

    /// `connection.update-secret-ok` (server): the secret was accepted.
    ConnectionUpdateSecretOk = (10, 71, "connection.update-secret-ok", content = false) {}

    // ---------------------------------------------------------------- channel (20)

    /// `channel.open` (client): opens a channel.
    ChannelOpen = (20, 10, "channel.open", content = false) {
        /// Reserved (`out-of-band`), empty.
        out_of_band: shortstr,
    }

    /// `channel.open-ok` (server): the channel is open.
    ChannelOpenOk = (20, 11, "channel.open-ok", content = false) {
        /// Reserved (`channel-id`), empty.
        channel_id: longstr,
    }

    /// `channel.flow` (either peer): asks the peer to pause or resume sending content.
    ChannelFlow = (20, 20, "channel.flow", content = false) {
        /// `true` to resume, `false` to pause.
        active: bit,
    }

    /// `channel.flow-ok` (either peer): confirms `channel.flow`.
    ChannelFlowOk = (20, 21, "channel.flow-ok", content = false) {
        /// The flow state now in effect.
        active: bit,
    }

    /// `channel.close` (either peer): closes the channel, with a reason.
    ChannelClose = (20, 40, "channel.close", content = false) {
        /// The reply code (see [`reply_code`](super::reply_code)).
        reply_code: short,
        /// Human-readable reason.
        reply_text: shortstr,
        /// Class id of the method that caused the close, or 0.
        class_id: short,
        /// Method id of the method that caused the close, or 0.
        method_id: short,
    }

    /// `channel.close-ok` (either peer): confirms `channel.close`.
    ChannelCloseOk = (20, 41, "channel.close-ok", content = false) {}

    // ---------------------------------------------------------------- access (30)

    /// `access.request` (client): deprecated access tickets, kept by RabbitMQ
    /// for old clients.
    AccessRequest = (30, 10, "access.request", content = false) {
        /// The realm, e.g. `/data`.
        realm: shortstr,
        /// Exclusive access.
        exclusive: bit,
        /// Passive access.
        passive: bit,
        /// Active access.
        active: bit,
        /// Write access.
        write: bit,
        /// Read access.
        read: bit,
    }

    /// `access.request-ok` (server): grants a ticket.
    AccessRequestOk = (30, 11, "access.request-ok", content = false) {
        /// The ticket.
        ticket: short,
    }

    // ---------------------------------------------------------------- exchange (40)

    /// `exchange.declare` (client): creates an exchange, or checks it exists.
    ExchangeDeclare = (40, 10, "exchange.declare", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The exchange name.
        exchange: shortstr,
        /// The exchange type, e.g. `direct`, `topic`, `fanout`, `headers`.
        exchange_type: shortstr,
        /// Only check that the exchange exists.
        passive: bit,
        /// Survive a broker restart.
        durable: bit,
        /// Delete when the last binding is removed.
        auto_delete: bit,
        /// Clients may not publish to it directly.
        internal: bit,
        /// Do not answer with `declare-ok`.
        no_wait: bit,
        /// Extra arguments, e.g. `alternate-exchange`.
        arguments: table,
    }

    /// `exchange.declare-ok` (server).
    ExchangeDeclareOk = (40, 11, "exchange.declare-ok", content = false) {}

    /// `exchange.delete` (client): deletes an exchange.
    ExchangeDelete = (40, 20, "exchange.delete", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The exchange name.
        exchange: shortstr,
        /// Only delete it if it has no bindings.
        if_unused: bit,
        /// Do not answer with `delete-ok`.
        no_wait: bit,
    }

    /// `exchange.delete-ok` (server).
    ExchangeDeleteOk = (40, 21, "exchange.delete-ok", content = false) {}

    /// `exchange.bind` (client, RabbitMQ extension): binds an exchange to an exchange.
    ExchangeBind = (40, 30, "exchange.bind", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The exchange that receives messages.
        destination: shortstr,
        /// The exchange messages come from.
        source: shortstr,
        /// The binding's routing key.
        routing_key: shortstr,
        /// Do not answer with `bind-ok`.
        no_wait: bit,
        /// Binding arguments (e.g. for `headers` exchanges).
        arguments: table,
    }

    /// `exchange.bind-ok` (server).
    ExchangeBindOk = (40, 31, "exchange.bind-ok", content = false) {}

    /// `exchange.unbind` (client, RabbitMQ extension): removes an exchange-to-exchange binding.
    ExchangeUnbind = (40, 40, "exchange.unbind", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The exchange that received messages.
        destination: shortstr,
        /// The exchange messages came from.
        source: shortstr,
        /// The binding's routing key.
        routing_key: shortstr,
        /// Do not answer with `unbind-ok`.
        no_wait: bit,
        /// Binding arguments.
        arguments: table,
    }

    /// `exchange.unbind-ok` (server). Its method id is 51, not 41.
    ExchangeUnbindOk = (40, 51, "exchange.unbind-ok", content = false) {}

    // ---------------------------------------------------------------- queue (50)

    /// `queue.declare` (client): creates a queue, or checks it exists.
    QueueDeclare = (50, 10, "queue.declare", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name; empty asks the server to name it.
        queue: shortstr,
        /// Only check that the queue exists.
        passive: bit,
        /// Survive a broker restart.
        durable: bit,
        /// Used by this connection only, deleted when it closes.
        exclusive: bit,
        /// Delete when the last consumer is cancelled.
        auto_delete: bit,
        /// Do not answer with `declare-ok`.
        no_wait: bit,
        /// Extra arguments, e.g. `x-message-ttl`, `x-dead-letter-exchange`, `x-max-priority`.
        arguments: table,
    }

    /// `queue.declare-ok` (server).
    QueueDeclareOk = (50, 11, "queue.declare-ok", content = false) {
        /// The queue's name (the generated one, if the client sent none).
        queue: shortstr,
        /// Messages ready in the queue.
        message_count: long,
        /// Active consumers of the queue.
        consumer_count: long,
    }

    /// `queue.bind` (client): binds a queue to an exchange.
    QueueBind = (50, 20, "queue.bind", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// The exchange name.
        exchange: shortstr,
        /// The binding's routing key.
        routing_key: shortstr,
        /// Do not answer with `bind-ok`.
        no_wait: bit,
        /// Binding arguments (e.g. for `headers` exchanges).
        arguments: table,
    }

    /// `queue.bind-ok` (server).
    QueueBindOk = (50, 21, "queue.bind-ok", content = false) {}

    /// `queue.purge` (client): removes all ready messages.
    QueuePurge = (50, 30, "queue.purge", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// Do not answer with `purge-ok`.
        no_wait: bit,
    }

    /// `queue.purge-ok` (server).
    QueuePurgeOk = (50, 31, "queue.purge-ok", content = false) {
        /// Messages purged.
        message_count: long,
    }

    /// `queue.delete` (client): deletes a queue.
    QueueDelete = (50, 40, "queue.delete", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// Only delete it if it has no consumers.
        if_unused: bit,
        /// Only delete it if it has no messages.
        if_empty: bit,
        /// Do not answer with `delete-ok`.
        no_wait: bit,
    }

    /// `queue.delete-ok` (server).
    QueueDeleteOk = (50, 41, "queue.delete-ok", content = false) {
        /// Messages deleted with the queue.
        message_count: long,
    }

    /// `queue.unbind` (client): removes a queue binding. Has no `no-wait`.
    QueueUnbind = (50, 50, "queue.unbind", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// The exchange name.
        exchange: shortstr,
        /// The binding's routing key.
        routing_key: shortstr,
        /// Binding arguments.
        arguments: table,
    }

    /// `queue.unbind-ok` (server).
    QueueUnbindOk = (50, 51, "queue.unbind-ok", content = false) {}

    // ---------------------------------------------------------------- basic (60)

    /// `basic.qos` (client): sets the prefetch window.
    BasicQos = (60, 10, "basic.qos", content = false) {
        /// Prefetch window in octets (0: no limit; RabbitMQ supports only 0).
        prefetch_size: long,
        /// Prefetch window in messages (0: no limit).
        prefetch_count: short,
        /// RabbitMQ: apply to the whole channel rather than each new consumer.
        global: bit,
    }

    /// `basic.qos-ok` (server).
    BasicQosOk = (60, 11, "basic.qos-ok", content = false) {}

    /// `basic.consume` (client): starts a consumer.
    BasicConsume = (60, 20, "basic.consume", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// The consumer tag; empty asks the server to generate one.
        consumer_tag: shortstr,
        /// Do not deliver messages this connection published.
        no_local: bit,
        /// Deliveries need no acknowledgement.
        no_ack: bit,
        /// The only consumer of the queue.
        exclusive: bit,
        /// Do not answer with `consume-ok`.
        no_wait: bit,
        /// Consumer arguments, e.g. `x-priority`.
        arguments: table,
    }

    /// `basic.consume-ok` (server).
    BasicConsumeOk = (60, 21, "basic.consume-ok", content = false) {
        /// The consumer tag (the generated one, if the client sent none).
        consumer_tag: shortstr,
    }

    /// `basic.cancel` (either peer; from the server when the queue goes away):
    /// ends a consumer.
    BasicCancel = (60, 30, "basic.cancel", content = false) {
        /// The consumer tag.
        consumer_tag: shortstr,
        /// Do not answer with `cancel-ok`.
        no_wait: bit,
    }

    /// `basic.cancel-ok` (either peer).
    BasicCancelOk = (60, 31, "basic.cancel-ok", content = false) {
        /// The consumer tag.
        consumer_tag: shortstr,
    }

    /// `basic.publish` (client): publishes a message; content follows.
    BasicPublish = (60, 40, "basic.publish", content = true) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The exchange name; empty is the default exchange.
        exchange: shortstr,
        /// The routing key.
        routing_key: shortstr,
        /// Return the message if it cannot be routed.
        mandatory: bit,
        /// Return the message if no consumer takes it at once (RabbitMQ refuses this).
        immediate: bit,
    }

    /// `basic.return` (server): returns an unroutable message; content follows.
    BasicReturn = (60, 50, "basic.return", content = true) {
        /// The reply code, e.g. 312 `NO_ROUTE`.
        reply_code: short,
        /// Human-readable reason.
        reply_text: shortstr,
        /// The exchange the message was published to.
        exchange: shortstr,
        /// The routing key it was published with.
        routing_key: shortstr,
    }

    /// `basic.deliver` (server): delivers a message to a consumer; content follows.
    BasicDeliver = (60, 60, "basic.deliver", content = true) {
        /// The consumer tag.
        consumer_tag: shortstr,
        /// The delivery tag, unique on the channel.
        delivery_tag: longlong,
        /// The message was delivered before.
        redelivered: bit,
        /// The exchange the message was published to.
        exchange: shortstr,
        /// The routing key it was published with.
        routing_key: shortstr,
    }

    /// `basic.get` (client): fetches one message.
    BasicGet = (60, 70, "basic.get", content = false) {
        /// Reserved (`ticket`), 0.
        ticket: short,
        /// The queue name.
        queue: shortstr,
        /// The message needs no acknowledgement.
        no_ack: bit,
    }

    /// `basic.get-ok` (server): the fetched message; content follows.
    BasicGetOk = (60, 71, "basic.get-ok", content = true) {
        /// The delivery tag, unique on the channel.
        delivery_tag: longlong,
        /// The message was delivered before.
        redelivered: bit,
        /// The exchange the message was published to.
        exchange: shortstr,
        /// The routing key it was published with.
        routing_key: shortstr,
        /// Messages left in the queue.
        message_count: long,
    }

    /// `basic.get-empty` (server): the queue had no message.
    BasicGetEmpty = (60, 72, "basic.get-empty", content = false) {
        /// Reserved (`cluster-id`), empty.
        cluster_id: shortstr,
    }

    /// `basic.ack` (either peer; from the server in confirm mode): acknowledges deliveries.
    BasicAck = (60, 80, "basic.ack", content = false) {
        /// The delivery tag (0 with `multiple`: all outstanding).
        delivery_tag: longlong,
        /// Acknowledge every tag up to and including this one.
        multiple: bit,
    }

    /// `basic.reject` (client): rejects one delivery.
    BasicReject = (60, 90, "basic.reject", content = false) {
        /// The delivery tag.
        delivery_tag: longlong,
        /// Requeue the message rather than discard or dead-letter it.
        requeue: bit,
    }

    /// `basic.recover-async` (client, deprecated): redelivers unacknowledged messages, no answer.
    BasicRecoverAsync = (60, 100, "basic.recover-async", content = false) {
        /// Requeue rather than redeliver to the same consumer.
        requeue: bit,
    }

    /// `basic.recover` (client): redelivers unacknowledged messages.
    BasicRecover = (60, 110, "basic.recover", content = false) {
        /// Requeue rather than redeliver to the same consumer.
        requeue: bit,
    }

    /// `basic.recover-ok` (server).
    BasicRecoverOk = (60, 111, "basic.recover-ok", content = false) {}

    /// `basic.nack` (either peer, RabbitMQ extension): rejects one or many deliveries.
    BasicNack = (60, 120, "basic.nack", content = false) {
        /// The delivery tag (0 with `multiple`: all outstanding).
        delivery_tag: longlong,
        /// Reject every tag up to and including this one.
        multiple: bit,
        /// Requeue rather than discard or dead-letter.
        requeue: bit,
    }

    // ---------------------------------------------------------------- confirm (85)

    /// `confirm.select` (client, RabbitMQ extension): puts the channel in
    /// publisher-confirm mode.
    ConfirmSelect = (85, 10, "confirm.select", content = false) {
        /// Do not answer with `select-ok`.
        no_wait: bit,
    }

    /// `confirm.select-ok` (server).
    ConfirmSelectOk = (85, 11, "confirm.select-ok", content = false) {}

    // ---------------------------------------------------------------- tx (90)

    /// `tx.select` (client): makes the channel transactional.
    TxSelect = (90, 10, "tx.select", content = false) {}

    /// `tx.select-ok` (server).
    TxSelectOk = (90, 11, "tx.select-ok", content = false) {}

    /// `tx.commit` (client): commits the current transaction.
    TxCommit = (90, 20, "tx.commit", content = false) {}

    /// `tx.commit-ok` (server).
    TxCommitOk = (90, 21, "tx.commit-ok", content = false) {}

    /// `tx.rollback` (client): abandons the current transaction.
    TxRollback = (90, 30, "tx.rollback", content = false) {}

    /// `tx.rollback-ok` (server).
    TxRollbackOk = (90, 31, "tx.rollback-ok", content = false) {}
}
