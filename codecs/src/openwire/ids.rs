//! Identifiers, destinations, transaction ids and Java throwables: the
//! structures nested inside commands.

use std::fmt;

use bytes::Bytes;

use super::command::Structure;
use super::wire::{Reader, Writer};
use super::{data_type, OpenWireDecodeError, OpenWireEncodeError};

/// `ConnectionId`: the client-chosen connection identifier
/// (`ID:host-port-time-n:c`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConnectionId {
    /// The identifier text.
    pub value: Option<String>,
}

/// `SessionId`: a connection id and a session number.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct SessionId {
    /// The owning connection's id text.
    pub connection_id: Option<String>,
    /// The session number within the connection.
    pub value: i64,
}

/// `ProducerId`: connection, session and producer numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ProducerId {
    /// The owning connection's id text.
    pub connection_id: Option<String>,
    /// The producer number within the session.
    pub value: i64,
    /// The session number.
    pub session_id: i64,
}

/// `ConsumerId`: connection, session and consumer numbers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct ConsumerId {
    /// The owning connection's id text.
    pub connection_id: Option<String>,
    /// The session number.
    pub session_id: i64,
    /// The consumer number within the session.
    pub value: i64,
}

/// `BrokerId`: a broker's identifier text.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct BrokerId {
    /// The identifier text.
    pub value: Option<String>,
}

/// `MessageId`: the producer id and its sequence number (the JMSMessageID is
/// `<producer id>:<sequence>`), or, from version 10, a free text view.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct MessageId {
    /// An explicit JMSMessageID text (version 10 and later; else `None`).
    pub text_view: Option<String>,
    /// The producer that sent the message.
    pub producer_id: Option<ProducerId>,
    /// The producer's sequence number for the message.
    pub producer_sequence_id: i64,
    /// The broker's sequence number (0 from clients).
    pub broker_sequence_id: i64,
}

/// `LocalTransactionId`: a connection-scoped local transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct LocalTransactionId {
    /// The transaction number within the connection.
    pub value: i64,
    /// The owning connection.
    pub connection_id: Option<ConnectionId>,
}

/// `XATransactionId`: an XA transaction branch (the javax.transaction `Xid`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct XaTransactionId {
    /// The Xid format identifier.
    pub format_id: i32,
    /// The global transaction id bytes.
    pub global_transaction_id: Option<Bytes>,
    /// The branch qualifier bytes.
    pub branch_qualifier: Option<Bytes>,
}

/// A transaction id: local or XA.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TransactionId {
    /// A local (JMS session) transaction.
    Local(LocalTransactionId),
    /// An XA transaction branch.
    Xa(XaTransactionId),
}

/// Which kind of destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DestinationKind {
    /// `ActiveMQQueue` (`queue://`).
    Queue,
    /// `ActiveMQTopic` (`topic://`).
    Topic,
    /// `ActiveMQTempQueue` (`temp-queue://`).
    TempQueue,
    /// `ActiveMQTempTopic` (`temp-topic://`).
    TempTopic,
}

impl DestinationKind {
    /// The data type byte.
    pub fn data_type(&self) -> u8 {
        match self {
            DestinationKind::Queue => data_type::ACTIVEMQ_QUEUE,
            DestinationKind::Topic => data_type::ACTIVEMQ_TOPIC,
            DestinationKind::TempQueue => data_type::ACTIVEMQ_TEMP_QUEUE,
            DestinationKind::TempTopic => data_type::ACTIVEMQ_TEMP_TOPIC,
        }
    }

    /// The kind a data type byte names.
    pub fn from_data_type(t: u8) -> Option<Self> {
        match t {
            data_type::ACTIVEMQ_QUEUE => Some(DestinationKind::Queue),
            data_type::ACTIVEMQ_TOPIC => Some(DestinationKind::Topic),
            data_type::ACTIVEMQ_TEMP_QUEUE => Some(DestinationKind::TempQueue),
            data_type::ACTIVEMQ_TEMP_TOPIC => Some(DestinationKind::TempTopic),
            _ => None,
        }
    }

    /// Queues (temporary or not) are point-to-point.
    pub fn is_queue(&self) -> bool {
        matches!(self, DestinationKind::Queue | DestinationKind::TempQueue)
    }

    /// Temporary destinations live as long as their connection.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            DestinationKind::TempQueue | DestinationKind::TempTopic
        )
    }

    /// The URL scheme ActiveMQ prints: `queue://`, `topic://`, `temp-queue://`, `temp-topic://`.
    pub fn scheme(&self) -> &'static str {
        match self {
            DestinationKind::Queue => "queue://",
            DestinationKind::Topic => "topic://",
            DestinationKind::TempQueue => "temp-queue://",
            DestinationKind::TempTopic => "temp-topic://",
        }
    }
}

/// `ActiveMQDestination`: a queue, topic or temporary destination by its
/// physical name. A composite destination is one name with `,` between
/// members (each member may carry its own `queue://`/`topic://` prefix).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    /// Queue, topic or temporary.
    pub kind: DestinationKind,
    /// The physical name, e.g. `orders` or `ID:host-1:1:1` for a temporary one.
    pub physical_name: Option<String>,
}

impl Destination {
    /// A queue.
    pub fn queue(name: impl Into<String>) -> Self {
        Destination {
            kind: DestinationKind::Queue,
            physical_name: Some(name.into()),
        }
    }

    /// A topic.
    pub fn topic(name: impl Into<String>) -> Self {
        Destination {
            kind: DestinationKind::Topic,
            physical_name: Some(name.into()),
        }
    }

    /// The physical name, empty when null.
    pub fn name(&self) -> &str {
        self.physical_name.as_deref().unwrap_or("")
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.kind.scheme(), self.name())
    }
}

impl fmt::Display for ProducerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.connection_id.as_deref().unwrap_or(""),
            self.session_id,
            self.value
        )
    }
}

impl fmt::Display for ConsumerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}",
            self.connection_id.as_deref().unwrap_or(""),
            self.session_id,
            self.value
        )
    }
}

impl fmt::Display for MessageId {
    /// The JMSMessageID text: the text view if set, else `<producer id>:<sequence>`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(text) = &self.text_view {
            return f.write_str(text);
        }
        match &self.producer_id {
            Some(p) => write!(f, "{p}:{}", self.producer_sequence_id),
            None => write!(f, ":{}", self.producer_sequence_id),
        }
    }
}

/// One frame of a Java stack trace.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StackTraceElement {
    /// Declaring class.
    pub class_name: Option<String>,
    /// Method name.
    pub method_name: Option<String>,
    /// Source file name.
    pub file_name: Option<String>,
    /// Line number.
    pub line_number: i32,
}

/// A marshalled `java.lang.Throwable`: its class name and message (the
/// client re-creates an exception of that class, e.g.
/// `javax.jms.InvalidSelectorException`) and, when the connection
/// negotiated `StackTraceEnabled`, its stack trace and cause.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JavaThrowable {
    /// Fully qualified exception class name.
    pub class_name: Option<String>,
    /// The exception message.
    pub message: Option<String>,
    /// Stack frames (only on the wire with `StackTraceEnabled`).
    pub stack_trace: Vec<StackTraceElement>,
    /// The cause (only on the wire with `StackTraceEnabled`).
    pub cause: Option<Box<JavaThrowable>>,
}

impl JavaThrowable {
    /// An exception of `class_name` with `message`, no stack trace.
    pub fn new(class_name: impl Into<String>, message: impl Into<String>) -> Self {
        JavaThrowable {
            class_name: Some(class_name.into()),
            message: Some(message.into()),
            stack_trace: Vec::new(),
            cause: None,
        }
    }

    /// Reads a nullable throwable.
    pub(crate) fn read(r: &mut Reader) -> Result<Option<Self>, OpenWireDecodeError> {
        if !r.bool()? {
            return Ok(None);
        }
        r.enter()?;
        let class_name = r.string()?;
        let message = r.string()?;
        let mut stack_trace = Vec::new();
        let mut cause = None;
        if r.ctx.stack_trace {
            let count = r.array_count()?;
            stack_trace.reserve(count);
            for _ in 0..count {
                stack_trace.push(StackTraceElement {
                    class_name: r.string()?,
                    method_name: r.string()?,
                    file_name: r.string()?,
                    line_number: r.i32()?,
                });
            }
            cause = JavaThrowable::read(r)?.map(Box::new);
        }
        r.leave();
        Ok(Some(JavaThrowable {
            class_name,
            message,
            stack_trace,
            cause,
        }))
    }

    /// Writes a nullable throwable.
    pub(crate) fn write(t: Option<&Self>, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.bool(t.is_some());
        let Some(t) = t else { return Ok(()) };
        w.string(t.class_name.as_deref())?;
        w.string(t.message.as_deref())?;
        if w.ctx.stack_trace {
            w.array_count(t.stack_trace.len())?;
            for e in &t.stack_trace {
                w.string(e.class_name.as_deref())?;
                w.string(e.method_name.as_deref())?;
                w.string(e.file_name.as_deref())?;
                w.i32(e.line_number);
            }
            JavaThrowable::write(t.cause.as_deref(), w)?;
        }
        Ok(())
    }
}

impl Structure for ConnectionId {
    const NAME: &'static str = "ConnectionId";
    fn accepts(t: u8) -> bool {
        t == data_type::CONNECTION_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(ConnectionId { value: r.string()? })
    }
    fn data_type(&self) -> u8 {
        data_type::CONNECTION_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.value.as_deref())
    }
}

impl Structure for SessionId {
    const NAME: &'static str = "SessionId";
    fn accepts(t: u8) -> bool {
        t == data_type::SESSION_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(SessionId {
            connection_id: r.string()?,
            value: r.i64()?,
        })
    }
    fn data_type(&self) -> u8 {
        data_type::SESSION_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.connection_id.as_deref())?;
        w.i64(self.value);
        Ok(())
    }
}

impl Structure for ProducerId {
    const NAME: &'static str = "ProducerId";
    fn accepts(t: u8) -> bool {
        t == data_type::PRODUCER_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(ProducerId {
            connection_id: r.string()?,
            value: r.i64()?,
            session_id: r.i64()?,
        })
    }
    fn data_type(&self) -> u8 {
        data_type::PRODUCER_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.connection_id.as_deref())?;
        w.i64(self.value);
        w.i64(self.session_id);
        Ok(())
    }
}

impl Structure for ConsumerId {
    const NAME: &'static str = "ConsumerId";
    fn accepts(t: u8) -> bool {
        t == data_type::CONSUMER_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(ConsumerId {
            connection_id: r.string()?,
            session_id: r.i64()?,
            value: r.i64()?,
        })
    }
    fn data_type(&self) -> u8 {
        data_type::CONSUMER_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.connection_id.as_deref())?;
        w.i64(self.session_id);
        w.i64(self.value);
        Ok(())
    }
}

impl Structure for BrokerId {
    const NAME: &'static str = "BrokerId";
    fn accepts(t: u8) -> bool {
        t == data_type::BROKER_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(BrokerId { value: r.string()? })
    }
    fn data_type(&self) -> u8 {
        data_type::BROKER_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.value.as_deref())
    }
}

impl Structure for MessageId {
    const NAME: &'static str = "MessageId";
    fn accepts(t: u8) -> bool {
        t == data_type::MESSAGE_ID
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        let text_view = if r.ctx.version >= 10 {
            r.string()?
        } else {
            None
        };
        Ok(MessageId {
            text_view,
            producer_id: r.nested("MessageId.producerId")?,
            producer_sequence_id: r.i64()?,
            broker_sequence_id: r.i64()?,
        })
    }
    fn data_type(&self) -> u8 {
        data_type::MESSAGE_ID
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        if w.ctx.version >= 10 {
            w.string(self.text_view.as_deref())?;
        }
        w.nested(self.producer_id.as_ref())?;
        w.i64(self.producer_sequence_id);
        w.i64(self.broker_sequence_id);
        Ok(())
    }
}

impl Structure for TransactionId {
    const NAME: &'static str = "TransactionId";
    fn accepts(t: u8) -> bool {
        t == data_type::ACTIVEMQ_LOCAL_TRANSACTION_ID || t == data_type::ACTIVEMQ_XA_TRANSACTION_ID
    }
    fn decode_body(t: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        if t == data_type::ACTIVEMQ_LOCAL_TRANSACTION_ID {
            Ok(TransactionId::Local(LocalTransactionId {
                value: r.i64()?,
                connection_id: r.nested("LocalTransactionId.connectionId")?,
            }))
        } else {
            Ok(TransactionId::Xa(XaTransactionId {
                format_id: r.i32()?,
                global_transaction_id: r.byte_sequence()?,
                branch_qualifier: r.byte_sequence()?,
            }))
        }
    }
    fn data_type(&self) -> u8 {
        match self {
            TransactionId::Local(_) => data_type::ACTIVEMQ_LOCAL_TRANSACTION_ID,
            TransactionId::Xa(_) => data_type::ACTIVEMQ_XA_TRANSACTION_ID,
        }
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        match self {
            TransactionId::Local(l) => {
                w.i64(l.value);
                w.nested(l.connection_id.as_ref())
            }
            TransactionId::Xa(x) => {
                w.i32(x.format_id);
                w.byte_sequence(x.global_transaction_id.as_deref())?;
                w.byte_sequence(x.branch_qualifier.as_deref())
            }
        }
    }
}

impl Structure for Destination {
    const NAME: &'static str = "ActiveMQDestination";
    fn accepts(t: u8) -> bool {
        DestinationKind::from_data_type(t).is_some()
    }
    fn decode_body(t: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        let kind = DestinationKind::from_data_type(t).unwrap_or(DestinationKind::Queue);
        Ok(Destination {
            kind,
            physical_name: r.string()?,
        })
    }
    fn data_type(&self) -> u8 {
        self.kind.data_type()
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        w.string(self.physical_name.as_deref())
    }
}
