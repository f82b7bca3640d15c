//! Every command and structure of the loose encoding, versions 1 to 12.

use bytes::Bytes;

use super::ids::*;
use super::wire::{Reader, Writer};
use super::{data_type, OpenWireDecodeError, OpenWireEncodeError};

/// A structure that is marshalled behind a data type byte.
pub(crate) trait Structure: Sized {
    /// What a field of this type is called in errors.
    const NAME: &'static str;
    /// Whether a data type byte is (a subtype of) this structure.
    fn accepts(data_type: u8) -> bool;
    /// Reads the fields after the type byte.
    fn decode_body(data_type: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError>;
    /// The type byte to write.
    fn data_type(&self) -> u8;
    /// Writes the fields after the type byte.
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError>;
}

impl Reader {
    /// A nullable nested structure: a `boolean`, then the type byte and the
    /// body (loose `looseUnmarsalNestedObject`; with the marshal cache off,
    /// cached objects are written the same way).
    pub(crate) fn nested<T: Structure>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<T>, OpenWireDecodeError> {
        if !self.bool()? {
            return Ok(None);
        }
        let offset = self.offset();
        let t = self.u8()?;
        if !T::accepts(t) {
            return Err(if Command::accepts(t) {
                OpenWireDecodeError::UnexpectedDataType {
                    offset,
                    field,
                    expected: T::NAME,
                    data_type: t,
                }
            } else {
                OpenWireDecodeError::UnknownDataType {
                    offset,
                    data_type: t,
                }
            });
        }
        self.enter()?;
        let value = T::decode_body(t, self)?;
        self.leave();
        Ok(Some(value))
    }

    /// A nullable array of nested structures: a `boolean`, a `short` count,
    /// then each element as [`Reader::nested`] (a null element is an error,
    /// as the Java arrays never hold one from a real peer).
    pub(crate) fn nested_array<T: Structure>(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<T>>, OpenWireDecodeError> {
        if !self.bool()? {
            return Ok(None);
        }
        let count = self.array_count()?;
        let mut out = Vec::with_capacity(count);
        for _ in 0..count {
            let offset = self.offset();
            match self.nested(field)? {
                Some(v) => out.push(v),
                None => {
                    return Err(OpenWireDecodeError::UnexpectedDataType {
                        offset,
                        field,
                        expected: T::NAME,
                        data_type: data_type::NULL,
                    })
                }
            }
        }
        Ok(Some(out))
    }
}

impl Writer<'_> {
    /// Writes a nullable nested structure.
    pub(crate) fn nested<T: Structure>(
        &mut self,
        v: Option<&T>,
    ) -> Result<(), OpenWireEncodeError> {
        self.bool(v.is_some());
        if let Some(v) = v {
            self.u8(v.data_type());
            v.encode_body(self)?;
        }
        Ok(())
    }

    /// Writes a nullable array of nested structures.
    pub(crate) fn nested_array<T: Structure>(
        &mut self,
        v: Option<&[T]>,
    ) -> Result<(), OpenWireEncodeError> {
        self.bool(v.is_some());
        if let Some(items) = v {
            self.array_count(items.len())?;
            for item in items {
                self.nested(Some(item))?;
            }
        }
        Ok(())
    }
}

/// The fields every command (`BaseCommand`) starts with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CommandHeader {
    /// The sender's sequence number for the command; a `Response` names it
    /// in its correlation id.
    pub command_id: i32,
    /// Whether the sender waits for a `Response` (or `ExceptionResponse`).
    pub response_required: bool,
}

impl CommandHeader {
    fn read(r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        Ok(CommandHeader {
            command_id: r.i32()?,
            response_required: r.bool()?,
        })
    }

    fn write(&self, w: &mut Writer) {
        w.i32(self.command_id);
        w.bool(self.response_required);
    }
}

/// The magic that opens every `WireFormatInfo`.
pub const WIRE_FORMAT_MAGIC: [u8; 8] = *b"ActiveMQ";

/// `WireFormatInfo`: the first command each side sends, offering a protocol
/// version and options (a marshalled primitive map: `TightEncodingEnabled`,
/// `CacheEnabled`, `MaxFrameSize`, `MaxInactivityDuration`, ...). Not a
/// `BaseCommand`: it has no command id. See
/// [`WireFormatOptions`](super::WireFormatOptions) for the options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireFormatInfo {
    /// Must be [`WIRE_FORMAT_MAGIC`] for a valid peer.
    pub magic: [u8; 8],
    /// The highest OpenWire version the sender speaks.
    pub version: i32,
    /// The options as a marshalled primitive map (kept as bytes so the
    /// command re-encodes exactly; see [`PrimitiveMap::decode`](super::PrimitiveMap::decode)).
    pub marshalled_properties: Option<Bytes>,
}

impl WireFormatInfo {
    /// Whether the magic is `ActiveMQ`.
    pub fn is_valid(&self) -> bool {
        self.magic == WIRE_FORMAT_MAGIC
    }
}

/// `BrokerInfo`: the broker introduces itself after the wire format exchange.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BrokerInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The broker's id.
    pub broker_id: Option<BrokerId>,
    /// The URL the client connected to.
    pub broker_url: Option<String>,
    /// Peer brokers of a network of brokers.
    pub peer_broker_infos: Option<Vec<BrokerInfo>>,
    /// The broker's name.
    pub broker_name: Option<String>,
    /// Whether this is a slave broker.
    pub slave_broker: bool,
    /// Whether this is a master broker.
    pub master_broker: bool,
    /// Whether the broker is part of a fault-tolerant pair.
    pub fault_tolerant_configuration: bool,
    /// Duplex network connection (version 2+).
    pub duplex_connection: bool,
    /// Network connection (version 2+).
    pub network_connection: bool,
    /// Connection number (version 2+).
    pub connection_id: i64,
    /// Blob upload URL (version 3+).
    pub broker_upload_url: Option<String>,
    /// Network properties (version 3+).
    pub network_properties: Option<String>,
}

/// `ConnectionInfo`: opens a JMS connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The connection's id.
    pub connection_id: Option<ConnectionId>,
    /// The JMS client id.
    pub client_id: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// User name.
    pub user_name: Option<String>,
    /// Brokers the connection passed through (networks of brokers).
    pub broker_path: Option<Vec<BrokerId>>,
    /// Whether it is a broker's master connector.
    pub broker_master_connector: bool,
    /// Whether the connection may be managed through JMX.
    pub manageable: bool,
    /// Whether the client is a master (version 2+).
    pub client_master: bool,
    /// Whether the client uses a fault-tolerant (failover) transport (version 6+).
    pub fault_tolerant: bool,
    /// Whether this is a failover reconnect (version 6+).
    pub failover_reconnect: bool,
    /// The client's IP address (version 8+).
    pub client_ip: Option<String>,
}

/// `SessionInfo`: opens a session.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The session's id.
    pub session_id: Option<SessionId>,
}

/// `ConsumerInfo`: opens a consumer (or a queue browser).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The consumer's id.
    pub consumer_id: Option<ConsumerId>,
    /// Whether it is a queue browser.
    pub browser: bool,
    /// The destination consumed from.
    pub destination: Option<Destination>,
    /// How many messages the broker may dispatch ahead of acks; 0 means the
    /// consumer pulls with `MessagePull`.
    pub prefetch_size: i32,
    /// Limit of pending messages for slow topic consumers.
    pub maximum_pending_message_limit: i32,
    /// Whether the broker should dispatch asynchronously.
    pub dispatch_async: bool,
    /// JMS message selector.
    pub selector: Option<String>,
    /// The client id (version 10+).
    pub client_id: Option<String>,
    /// Durable subscription name.
    pub subscription_name: Option<String>,
    /// Whether the consumer does not want messages its own connection sent.
    pub no_local: bool,
    /// Exclusive queue consumer.
    pub exclusive: bool,
    /// Retroactive topic consumer.
    pub retroactive: bool,
    /// Consumer priority.
    pub priority: i8,
    /// Brokers the consumer was forwarded through.
    pub broker_path: Option<Vec<BrokerId>>,
    /// A broker-side filter (networks of brokers only; any nested structure).
    pub additional_predicate: Option<Box<Command>>,
    /// Whether it is a network subscription.
    pub network_subscription: bool,
    /// Whether the client acknowledges in batches.
    pub optimized_acknowledge: bool,
    /// Whether the client never sends ranged acks.
    pub no_range_acks: bool,
    /// Network consumer path (version 4+).
    pub network_consumer_path: Option<Vec<ConsumerId>>,
}

/// `ProducerInfo`: opens a producer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The producer's id.
    pub producer_id: Option<ProducerId>,
    /// Its fixed destination, if any.
    pub destination: Option<Destination>,
    /// Brokers it passed through.
    pub broker_path: Option<Vec<BrokerId>>,
    /// Dispatch asynchronously (version 2+).
    pub dispatch_async: bool,
    /// Producer window in bytes: the broker answers sends with `ProducerAck`
    /// (version 3+; 0 means no window).
    pub window_size: i32,
}

/// `TransactionInfo`: begin, prepare, commit, rollback, recover, forget or
/// end a transaction (see [`transaction_type`](super::transaction_type)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The connection.
    pub connection_id: Option<ConnectionId>,
    /// The transaction.
    pub transaction_id: Option<TransactionId>,
    /// What to do.
    pub transaction_type: i8,
}

/// `DestinationInfo`: create or remove a (temporary) destination.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DestinationInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The connection.
    pub connection_id: Option<ConnectionId>,
    /// The destination.
    pub destination: Option<Destination>,
    /// 0 add, 1 remove.
    pub operation_type: i8,
    /// Timeout in milliseconds.
    pub timeout: i64,
    /// Brokers it passed through.
    pub broker_path: Option<Vec<BrokerId>>,
}

/// `RemoveSubscriptionInfo`: delete a durable subscription (`unsubscribe`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveSubscriptionInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The connection.
    pub connection_id: Option<ConnectionId>,
    /// The subscription name.
    pub subscription_name: Option<String>,
    /// The client id.
    pub client_id: Option<String>,
}

/// `RemoveInfo`: closes a connection, session, producer or consumer, named
/// by its id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RemoveInfo {
    /// Command header.
    pub header: CommandHeader,
    /// The id of what is closed.
    pub object_id: Option<Box<Command>>,
    /// For a consumer: the last message it delivered to the application;
    /// later prefetched ones go back un-redelivered (version 5+).
    pub last_delivered_sequence_id: i64,
}

/// `ControlCommand`: a free-form text command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControlCommand {
    /// Command header.
    pub header: CommandHeader,
    /// The command text.
    pub command: Option<String>,
}

/// `ConnectionError`: the broker reports an error that closes the connection.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionError {
    /// Command header.
    pub header: CommandHeader,
    /// The error.
    pub exception: Option<JavaThrowable>,
    /// The connection.
    pub connection_id: Option<ConnectionId>,
}

/// `ConsumerControl`: the broker changes a consumer's prefetch or stops/starts it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConsumerControl {
    /// Command header.
    pub header: CommandHeader,
    /// The destination (version 6+).
    pub destination: Option<Destination>,
    /// Close the consumer.
    pub close: bool,
    /// The consumer.
    pub consumer_id: Option<ConsumerId>,
    /// New prefetch.
    pub prefetch: i32,
    /// Flush (version 2+).
    pub flush: bool,
    /// Start (version 2+).
    pub start: bool,
    /// Stop (version 2+).
    pub stop: bool,
}

/// `ConnectionControl`: broker-to-client connection control (rebalancing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConnectionControl {
    /// Command header.
    pub header: CommandHeader,
    /// Close.
    pub close: bool,
    /// Exit.
    pub exit: bool,
    /// Fault tolerant.
    pub fault_tolerant: bool,
    /// Resume.
    pub resume: bool,
    /// Suspend.
    pub suspend: bool,
    /// Connected brokers list (version 6+).
    pub connected_brokers: Option<String>,
    /// Reconnect to this URL (version 6+).
    pub reconnect_to: Option<String>,
    /// Rebalance (version 6+).
    pub rebalance_connection: bool,
    /// Token (version 8+).
    pub token: Option<Bytes>,
}

/// `ProducerAck`: the broker releases `size` bytes of a producer's window (version 3+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerAck {
    /// Command header.
    pub header: CommandHeader,
    /// The producer.
    pub producer_id: Option<ProducerId>,
    /// Bytes released.
    pub size: i32,
}

/// `MessagePull`: a prefetch-0 consumer asks for one message (version 2+).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessagePull {
    /// Command header.
    pub header: CommandHeader,
    /// The consumer.
    pub consumer_id: Option<ConsumerId>,
    /// Its destination.
    pub destination: Option<Destination>,
    /// How long to wait: 0 forever, -1 no wait, else milliseconds.
    pub timeout: i64,
    /// Correlation id (version 3+).
    pub correlation_id: Option<String>,
    /// Message id (version 3+).
    pub message_id: Option<MessageId>,
}

/// `MessageDispatch`: the broker delivers a message to a consumer; a null
/// message tells a pulling consumer there is none.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageDispatch {
    /// Command header.
    pub header: CommandHeader,
    /// The consumer.
    pub consumer_id: Option<ConsumerId>,
    /// The destination it came from.
    pub destination: Option<Destination>,
    /// The message.
    pub message: Option<Box<Message>>,
    /// How many times it was delivered before.
    pub redelivery_counter: i32,
}

/// `MessageAck`: the client acknowledges messages (see [`ack_type`](super::ack_type)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageAck {
    /// Command header.
    pub header: CommandHeader,
    /// The destination.
    pub destination: Option<Destination>,
    /// The transaction, when transacted.
    pub transaction_id: Option<TransactionId>,
    /// The consumer.
    pub consumer_id: Option<ConsumerId>,
    /// Delivered, standard, poison, redelivered, individual, unmatched or expired.
    pub ack_type: i8,
    /// First message of the acknowledged range.
    pub first_message_id: Option<MessageId>,
    /// Last message of the range.
    pub last_message_id: Option<MessageId>,
    /// How many messages the range covers.
    pub message_count: i32,
    /// Why a poison ack gave up on the message (version 7+).
    pub poison_cause: Option<JavaThrowable>,
}

/// Which JMS message class a [`Message`] is.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum MessageKind {
    /// `ActiveMQMessage` (headers and properties only).
    #[default]
    Message,
    /// `ActiveMQBytesMessage`.
    Bytes,
    /// `ActiveMQMapMessage`.
    Map,
    /// `ActiveMQObjectMessage` (a serialized Java object, opaque here).
    Object,
    /// `ActiveMQStreamMessage`.
    Stream,
    /// `ActiveMQTextMessage`.
    Text,
}

impl MessageKind {
    /// The data type byte.
    pub fn data_type(&self) -> u8 {
        match self {
            MessageKind::Message => data_type::ACTIVEMQ_MESSAGE,
            MessageKind::Bytes => data_type::ACTIVEMQ_BYTES_MESSAGE,
            MessageKind::Map => data_type::ACTIVEMQ_MAP_MESSAGE,
            MessageKind::Object => data_type::ACTIVEMQ_OBJECT_MESSAGE,
            MessageKind::Stream => data_type::ACTIVEMQ_STREAM_MESSAGE,
            MessageKind::Text => data_type::ACTIVEMQ_TEXT_MESSAGE,
        }
    }

    /// The kind a data type byte names.
    pub fn from_data_type(t: u8) -> Option<Self> {
        match t {
            data_type::ACTIVEMQ_MESSAGE => Some(MessageKind::Message),
            data_type::ACTIVEMQ_BYTES_MESSAGE => Some(MessageKind::Bytes),
            data_type::ACTIVEMQ_MAP_MESSAGE => Some(MessageKind::Map),
            data_type::ACTIVEMQ_OBJECT_MESSAGE => Some(MessageKind::Object),
            data_type::ACTIVEMQ_STREAM_MESSAGE => Some(MessageKind::Stream),
            data_type::ACTIVEMQ_TEXT_MESSAGE => Some(MessageKind::Text),
            _ => None,
        }
    }
}

/// A JMS message (`ActiveMQMessage` and its subclasses). The body
/// (`content`) and the properties (`marshalled_properties`) stay as the bytes
/// the client marshalled; see [`PrimitiveMap::decode`](super::PrimitiveMap::decode),
/// [`decode_text_body`](super::decode_text_body) and
/// [`decode_stream_body`](super::decode_stream_body). When `compressed` is
/// set the content is zlib-deflated.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Command header.
    pub header: CommandHeader,
    /// Which JMS message class.
    pub kind: MessageKind,
    /// The producer.
    pub producer_id: Option<ProducerId>,
    /// JMSDestination.
    pub destination: Option<Destination>,
    /// The transaction it was sent in.
    pub transaction_id: Option<TransactionId>,
    /// The destination before a broker moved it (e.g. to a DLQ).
    pub original_destination: Option<Destination>,
    /// JMSMessageID.
    pub message_id: Option<MessageId>,
    /// The original transaction.
    pub original_transaction_id: Option<TransactionId>,
    /// JMSXGroupID.
    pub group_id: Option<String>,
    /// JMSXGroupSeq.
    pub group_sequence: i32,
    /// JMSCorrelationID.
    pub correlation_id: Option<String>,
    /// JMSDeliveryMode: persistent or not.
    pub persistent: bool,
    /// JMSExpiration (epoch milliseconds, 0 never).
    pub expiration: i64,
    /// JMSPriority (0 to 9).
    pub priority: i8,
    /// JMSReplyTo.
    pub reply_to: Option<Destination>,
    /// JMSTimestamp (epoch milliseconds).
    pub timestamp: i64,
    /// JMSType.
    pub jms_type: Option<String>,
    /// The marshalled body.
    pub content: Option<Bytes>,
    /// The marshalled properties (a primitive map).
    pub marshalled_properties: Option<Bytes>,
    /// An embedded structure (advisory messages carry the advised command).
    pub data_structure: Option<Box<Command>>,
    /// The consumer the broker dispatches it to.
    pub target_consumer_id: Option<ConsumerId>,
    /// Whether `content` is deflated.
    pub compressed: bool,
    /// Times redelivered (JMSXDeliveryCount - 1).
    pub redelivery_counter: i32,
    /// Brokers it passed through.
    pub broker_path: Option<Vec<BrokerId>>,
    /// Broker arrival time.
    pub arrival: i64,
    /// JMSXUserID.
    pub user_id: Option<String>,
    /// Received by a durable-forwarding bridge.
    pub received_by_df_bridge: bool,
    /// Droppable (version 2+).
    pub droppable: bool,
    /// Cluster path (version 3+).
    pub cluster: Option<Vec<BrokerId>>,
    /// Broker in time (version 3+).
    pub broker_in_time: i64,
    /// Broker out time (version 3+).
    pub broker_out_time: i64,
    /// JMSXGroupFirstForConsumer (version 10+).
    pub jmsx_group_first_for_consumer: bool,
}

/// `Response`: the broker answers a command that required a response.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Response {
    /// Command header.
    pub header: CommandHeader,
    /// The `command_id` being answered.
    pub correlation_id: i32,
}

/// `ExceptionResponse`: a command failed; the client throws the exception.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionResponse {
    /// Command header.
    pub header: CommandHeader,
    /// The `command_id` being answered.
    pub correlation_id: i32,
    /// The error.
    pub exception: Option<JavaThrowable>,
}

/// `DataResponse`: a response carrying one structure.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataResponse {
    /// Command header.
    pub header: CommandHeader,
    /// The `command_id` being answered.
    pub correlation_id: i32,
    /// The data.
    pub data: Option<Box<Command>>,
}

/// `DataArrayResponse`: a response carrying structures (e.g. XA recover's ids).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DataArrayResponse {
    /// Command header.
    pub header: CommandHeader,
    /// The `command_id` being answered.
    pub correlation_id: i32,
    /// The data.
    pub data: Option<Vec<Command>>,
}

/// `IntegerResponse`: a response carrying an int (e.g. XA prepare's vote).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IntegerResponse {
    /// Command header.
    pub header: CommandHeader,
    /// The `command_id` being answered.
    pub correlation_id: i32,
    /// The result.
    pub result: i32,
}

/// `MessageDispatchNotification`: tells a slave which message was dispatched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MessageDispatchNotification {
    /// Command header.
    pub header: CommandHeader,
    /// The consumer.
    pub consumer_id: Option<ConsumerId>,
    /// The destination.
    pub destination: Option<Destination>,
    /// Delivery sequence.
    pub delivery_sequence_id: i64,
    /// The message.
    pub message_id: Option<MessageId>,
}

/// Any OpenWire command or nested structure: what a frame carries, and what a
/// field typed `DataStructure` in Java (e.g. [`RemoveInfo::object_id`]) holds.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Command {
    /// `WireFormatInfo` (1).
    WireFormatInfo(WireFormatInfo),
    /// `BrokerInfo` (2).
    BrokerInfo(BrokerInfo),
    /// `ConnectionInfo` (3).
    ConnectionInfo(ConnectionInfo),
    /// `SessionInfo` (4).
    SessionInfo(SessionInfo),
    /// `ConsumerInfo` (5).
    ConsumerInfo(ConsumerInfo),
    /// `ProducerInfo` (6).
    ProducerInfo(ProducerInfo),
    /// `TransactionInfo` (7).
    TransactionInfo(TransactionInfo),
    /// `DestinationInfo` (8).
    DestinationInfo(DestinationInfo),
    /// `RemoveSubscriptionInfo` (9).
    RemoveSubscriptionInfo(RemoveSubscriptionInfo),
    /// `KeepAliveInfo` (10).
    KeepAliveInfo(CommandHeader),
    /// `ShutdownInfo` (11).
    ShutdownInfo(CommandHeader),
    /// `RemoveInfo` (12).
    RemoveInfo(RemoveInfo),
    /// `ControlCommand` (14).
    ControlCommand(ControlCommand),
    /// `FlushCommand` (15).
    FlushCommand(CommandHeader),
    /// `ConnectionError` (16).
    ConnectionError(ConnectionError),
    /// `ConsumerControl` (17).
    ConsumerControl(ConsumerControl),
    /// `ConnectionControl` (18).
    ConnectionControl(ConnectionControl),
    /// `ProducerAck` (19, version 3+).
    ProducerAck(ProducerAck),
    /// `MessagePull` (20, version 2+).
    MessagePull(MessagePull),
    /// `MessageDispatch` (21).
    MessageDispatch(MessageDispatch),
    /// `MessageAck` (22).
    MessageAck(MessageAck),
    /// A message (23 to 28, by [`MessageKind`]).
    Message(Box<Message>),
    /// `Response` (30).
    Response(Response),
    /// `ExceptionResponse` (31).
    ExceptionResponse(ExceptionResponse),
    /// `DataResponse` (32).
    DataResponse(DataResponse),
    /// `DataArrayResponse` (33).
    DataArrayResponse(DataArrayResponse),
    /// `IntegerResponse` (34).
    IntegerResponse(IntegerResponse),
    /// `MessageDispatchNotification` (90).
    MessageDispatchNotification(MessageDispatchNotification),
    /// A destination (100 to 103).
    Destination(Destination),
    /// `MessageId` (110).
    MessageId(MessageId),
    /// A transaction id (111 local, 112 XA).
    TransactionId(TransactionId),
    /// `ConnectionId` (120).
    ConnectionId(ConnectionId),
    /// `SessionId` (121).
    SessionId(SessionId),
    /// `ConsumerId` (122).
    ConsumerId(ConsumerId),
    /// `ProducerId` (123).
    ProducerId(ProducerId),
    /// `BrokerId` (124).
    BrokerId(BrokerId),
}

impl Command {
    /// The command header, for the commands that have one (every
    /// `BaseCommand`; not `WireFormatInfo` nor the nested ids).
    pub fn header(&self) -> Option<&CommandHeader> {
        use Command::*;
        Some(match self {
            BrokerInfo(c) => &c.header,
            ConnectionInfo(c) => &c.header,
            SessionInfo(c) => &c.header,
            ConsumerInfo(c) => &c.header,
            ProducerInfo(c) => &c.header,
            TransactionInfo(c) => &c.header,
            DestinationInfo(c) => &c.header,
            RemoveSubscriptionInfo(c) => &c.header,
            KeepAliveInfo(h) | ShutdownInfo(h) | FlushCommand(h) => h,
            RemoveInfo(c) => &c.header,
            ControlCommand(c) => &c.header,
            ConnectionError(c) => &c.header,
            ConsumerControl(c) => &c.header,
            ConnectionControl(c) => &c.header,
            ProducerAck(c) => &c.header,
            MessagePull(c) => &c.header,
            MessageDispatch(c) => &c.header,
            MessageAck(c) => &c.header,
            Message(c) => &c.header,
            Response(c) => &c.header,
            ExceptionResponse(c) => &c.header,
            DataResponse(c) => &c.header,
            DataArrayResponse(c) => &c.header,
            IntegerResponse(c) => &c.header,
            MessageDispatchNotification(c) => &c.header,
            WireFormatInfo(_) | Destination(_) | MessageId(_) | TransactionId(_)
            | ConnectionId(_) | SessionId(_) | ConsumerId(_) | ProducerId(_) | BrokerId(_) => {
                return None
            }
        })
    }

    /// The Java class name of the command, for logs.
    pub fn name(&self) -> &'static str {
        use Command::*;
        match self {
            WireFormatInfo(_) => "WireFormatInfo",
            BrokerInfo(_) => "BrokerInfo",
            ConnectionInfo(_) => "ConnectionInfo",
            SessionInfo(_) => "SessionInfo",
            ConsumerInfo(_) => "ConsumerInfo",
            ProducerInfo(_) => "ProducerInfo",
            TransactionInfo(_) => "TransactionInfo",
            DestinationInfo(_) => "DestinationInfo",
            RemoveSubscriptionInfo(_) => "RemoveSubscriptionInfo",
            KeepAliveInfo(_) => "KeepAliveInfo",
            ShutdownInfo(_) => "ShutdownInfo",
            RemoveInfo(_) => "RemoveInfo",
            ControlCommand(_) => "ControlCommand",
            FlushCommand(_) => "FlushCommand",
            ConnectionError(_) => "ConnectionError",
            ConsumerControl(_) => "ConsumerControl",
            ConnectionControl(_) => "ConnectionControl",
            ProducerAck(_) => "ProducerAck",
            MessagePull(_) => "MessagePull",
            MessageDispatch(_) => "MessageDispatch",
            MessageAck(_) => "MessageAck",
            Message(_) => "ActiveMQMessage",
            Response(_) => "Response",
            ExceptionResponse(_) => "ExceptionResponse",
            DataResponse(_) => "DataResponse",
            DataArrayResponse(_) => "DataArrayResponse",
            IntegerResponse(_) => "IntegerResponse",
            MessageDispatchNotification(_) => "MessageDispatchNotification",
            Destination(_) => "ActiveMQDestination",
            MessageId(_) => "MessageId",
            TransactionId(_) => "TransactionId",
            ConnectionId(_) => "ConnectionId",
            SessionId(_) => "SessionId",
            ConsumerId(_) => "ConsumerId",
            ProducerId(_) => "ProducerId",
            BrokerId(_) => "BrokerId",
        }
    }

    /// Whether `t` is a data type this codec decodes at `version`.
    pub(crate) fn accepts_at(t: u8, version: u32) -> bool {
        match t {
            data_type::MESSAGE_PULL => version >= 2,
            data_type::PRODUCER_ACK => version >= 3,
            _ => Self::accepts(t),
        }
    }
}

fn since(r: &Reader, version: u32) -> bool {
    r.ctx.version >= version
}

fn since_w(w: &Writer, version: u32) -> bool {
    w.ctx.version >= version
}

impl Structure for BrokerInfo {
    const NAME: &'static str = "BrokerInfo";
    fn accepts(t: u8) -> bool {
        t == data_type::BROKER_INFO
    }
    fn decode_body(_: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        let header = CommandHeader::read(r)?;
        let broker_id = r.nested("BrokerInfo.brokerId")?;
        let broker_url = r.string()?;
        let peer_broker_infos = r.nested_array("BrokerInfo.peerBrokerInfos")?;
        let broker_name = r.string()?;
        let slave_broker = r.bool()?;
        let master_broker = r.bool()?;
        let fault_tolerant_configuration = r.bool()?;
        let (duplex_connection, network_connection, connection_id) = if since(r, 2) {
            (r.bool()?, r.bool()?, r.i64()?)
        } else {
            (false, false, 0)
        };
        let (broker_upload_url, network_properties) = if since(r, 3) {
            (r.string()?, r.string()?)
        } else {
            (None, None)
        };
        Ok(BrokerInfo {
            header,
            broker_id,
            broker_url,
            peer_broker_infos,
            broker_name,
            slave_broker,
            master_broker,
            fault_tolerant_configuration,
            duplex_connection,
            network_connection,
            connection_id,
            broker_upload_url,
            network_properties,
        })
    }
    fn data_type(&self) -> u8 {
        data_type::BROKER_INFO
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        self.header.write(w);
        w.nested(self.broker_id.as_ref())?;
        w.string(self.broker_url.as_deref())?;
        w.nested_array(self.peer_broker_infos.as_deref())?;
        w.string(self.broker_name.as_deref())?;
        w.bool(self.slave_broker);
        w.bool(self.master_broker);
        w.bool(self.fault_tolerant_configuration);
        if since_w(w, 2) {
            w.bool(self.duplex_connection);
            w.bool(self.network_connection);
            w.i64(self.connection_id);
        }
        if since_w(w, 3) {
            w.string(self.broker_upload_url.as_deref())?;
            w.string(self.network_properties.as_deref())?;
        }
        Ok(())
    }
}

impl Structure for Message {
    const NAME: &'static str = "Message";
    fn accepts(t: u8) -> bool {
        MessageKind::from_data_type(t).is_some()
    }
    fn decode_body(t: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        let kind = MessageKind::from_data_type(t).unwrap_or_default();
        let header = CommandHeader::read(r)?;
        let producer_id = r.nested("Message.producerId")?;
        let destination = r.nested("Message.destination")?;
        let transaction_id = r.nested("Message.transactionId")?;
        let original_destination = r.nested("Message.originalDestination")?;
        let message_id = r.nested("Message.messageId")?;
        let original_transaction_id = r.nested("Message.originalTransactionId")?;
        let group_id = r.string()?;
        let group_sequence = r.i32()?;
        let correlation_id = r.string()?;
        let persistent = r.bool()?;
        let expiration = r.i64()?;
        let priority = r.i8()?;
        let reply_to = r.nested("Message.replyTo")?;
        let timestamp = r.i64()?;
        let jms_type = r.string()?;
        let content = r.byte_sequence()?;
        let marshalled_properties = r.byte_sequence()?;
        let data_structure = r.nested::<Command>("Message.dataStructure")?.map(Box::new);
        let target_consumer_id = r.nested("Message.targetConsumerId")?;
        let compressed = r.bool()?;
        let redelivery_counter = r.i32()?;
        let broker_path = r.nested_array("Message.brokerPath")?;
        let arrival = r.i64()?;
        let user_id = r.string()?;
        let received_by_df_bridge = r.bool()?;
        let droppable = if since(r, 2) { r.bool()? } else { false };
        let (cluster, broker_in_time, broker_out_time) = if since(r, 3) {
            (r.nested_array("Message.cluster")?, r.i64()?, r.i64()?)
        } else {
            (None, 0, 0)
        };
        let jmsx_group_first_for_consumer = if since(r, 10) { r.bool()? } else { false };
        Ok(Message {
            header,
            kind,
            producer_id,
            destination,
            transaction_id,
            original_destination,
            message_id,
            original_transaction_id,
            group_id,
            group_sequence,
            correlation_id,
            persistent,
            expiration,
            priority,
            reply_to,
            timestamp,
            jms_type,
            content,
            marshalled_properties,
            data_structure,
            target_consumer_id,
            compressed,
            redelivery_counter,
            broker_path,
            arrival,
            user_id,
            received_by_df_bridge,
            droppable,
            cluster,
            broker_in_time,
            broker_out_time,
            jmsx_group_first_for_consumer,
        })
    }
    fn data_type(&self) -> u8 {
        self.kind.data_type()
    }
    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        self.header.write(w);
        w.nested(self.producer_id.as_ref())?;
        w.nested(self.destination.as_ref())?;
        w.nested(self.transaction_id.as_ref())?;
        w.nested(self.original_destination.as_ref())?;
        w.nested(self.message_id.as_ref())?;
        w.nested(self.original_transaction_id.as_ref())?;
        w.string(self.group_id.as_deref())?;
        w.i32(self.group_sequence);
        w.string(self.correlation_id.as_deref())?;
        w.bool(self.persistent);
        w.i64(self.expiration);
        w.i8(self.priority);
        w.nested(self.reply_to.as_ref())?;
        w.i64(self.timestamp);
        w.string(self.jms_type.as_deref())?;
        w.byte_sequence(self.content.as_deref())?;
        w.byte_sequence(self.marshalled_properties.as_deref())?;
        w.nested(self.data_structure.as_deref())?;
        w.nested(self.target_consumer_id.as_ref())?;
        w.bool(self.compressed);
        w.i32(self.redelivery_counter);
        w.nested_array(self.broker_path.as_deref())?;
        w.i64(self.arrival);
        w.string(self.user_id.as_deref())?;
        w.bool(self.received_by_df_bridge);
        if since_w(w, 2) {
            w.bool(self.droppable);
        }
        if since_w(w, 3) {
            w.nested_array(self.cluster.as_deref())?;
            w.i64(self.broker_in_time);
            w.i64(self.broker_out_time);
        }
        if since_w(w, 10) {
            w.bool(self.jmsx_group_first_for_consumer);
        }
        Ok(())
    }
}

impl Structure for Command {
    const NAME: &'static str = "DataStructure";

    fn accepts(t: u8) -> bool {
        matches!(
            t,
            1..=12 | 14..=28 | 30..=34 | data_type::MESSAGE_DISPATCH_NOTIFICATION | 100..=103 | 110..=112 | 120..=124
        )
    }

    fn decode_body(t: u8, r: &mut Reader) -> Result<Self, OpenWireDecodeError> {
        use data_type as d;
        Ok(match t {
            d::WIREFORMAT_INFO => {
                let magic_bytes = r.take(8)?;
                let mut magic = [0u8; 8];
                magic.copy_from_slice(&magic_bytes);
                Command::WireFormatInfo(WireFormatInfo {
                    magic,
                    version: r.i32()?,
                    marshalled_properties: r.byte_sequence()?,
                })
            }
            d::BROKER_INFO => Command::BrokerInfo(BrokerInfo::decode_body(t, r)?),
            d::CONNECTION_INFO => {
                let header = CommandHeader::read(r)?;
                let connection_id = r.nested("ConnectionInfo.connectionId")?;
                let client_id = r.string()?;
                let password = r.string()?;
                let user_name = r.string()?;
                let broker_path = r.nested_array("ConnectionInfo.brokerPath")?;
                let broker_master_connector = r.bool()?;
                let manageable = r.bool()?;
                let client_master = if since(r, 2) { r.bool()? } else { false };
                let (fault_tolerant, failover_reconnect) = if since(r, 6) {
                    (r.bool()?, r.bool()?)
                } else {
                    (false, false)
                };
                let client_ip = if since(r, 8) { r.string()? } else { None };
                Command::ConnectionInfo(ConnectionInfo {
                    header,
                    connection_id,
                    client_id,
                    password,
                    user_name,
                    broker_path,
                    broker_master_connector,
                    manageable,
                    client_master,
                    fault_tolerant,
                    failover_reconnect,
                    client_ip,
                })
            }
            d::SESSION_INFO => Command::SessionInfo(SessionInfo {
                header: CommandHeader::read(r)?,
                session_id: r.nested("SessionInfo.sessionId")?,
            }),
            d::CONSUMER_INFO => {
                let header = CommandHeader::read(r)?;
                let consumer_id = r.nested("ConsumerInfo.consumerId")?;
                let browser = r.bool()?;
                let destination = r.nested("ConsumerInfo.destination")?;
                let prefetch_size = r.i32()?;
                let maximum_pending_message_limit = r.i32()?;
                let dispatch_async = r.bool()?;
                let selector = r.string()?;
                let client_id = if since(r, 10) { r.string()? } else { None };
                let subscription_name = r.string()?;
                let no_local = r.bool()?;
                let exclusive = r.bool()?;
                let retroactive = r.bool()?;
                let priority = r.i8()?;
                let broker_path = r.nested_array("ConsumerInfo.brokerPath")?;
                let additional_predicate = r
                    .nested::<Command>("ConsumerInfo.additionalPredicate")?
                    .map(Box::new);
                let network_subscription = r.bool()?;
                let optimized_acknowledge = r.bool()?;
                let no_range_acks = r.bool()?;
                let network_consumer_path = if since(r, 4) {
                    r.nested_array("ConsumerInfo.networkConsumerPath")?
                } else {
                    None
                };
                Command::ConsumerInfo(ConsumerInfo {
                    header,
                    consumer_id,
                    browser,
                    destination,
                    prefetch_size,
                    maximum_pending_message_limit,
                    dispatch_async,
                    selector,
                    client_id,
                    subscription_name,
                    no_local,
                    exclusive,
                    retroactive,
                    priority,
                    broker_path,
                    additional_predicate,
                    network_subscription,
                    optimized_acknowledge,
                    no_range_acks,
                    network_consumer_path,
                })
            }
            d::PRODUCER_INFO => {
                let header = CommandHeader::read(r)?;
                let producer_id = r.nested("ProducerInfo.producerId")?;
                let destination = r.nested("ProducerInfo.destination")?;
                let broker_path = r.nested_array("ProducerInfo.brokerPath")?;
                let dispatch_async = if since(r, 2) { r.bool()? } else { false };
                let window_size = if since(r, 3) { r.i32()? } else { 0 };
                Command::ProducerInfo(ProducerInfo {
                    header,
                    producer_id,
                    destination,
                    broker_path,
                    dispatch_async,
                    window_size,
                })
            }
            d::TRANSACTION_INFO => Command::TransactionInfo(TransactionInfo {
                header: CommandHeader::read(r)?,
                connection_id: r.nested("TransactionInfo.connectionId")?,
                transaction_id: r.nested("TransactionInfo.transactionId")?,
                transaction_type: r.i8()?,
            }),
            d::DESTINATION_INFO => Command::DestinationInfo(DestinationInfo {
                header: CommandHeader::read(r)?,
                connection_id: r.nested("DestinationInfo.connectionId")?,
                destination: r.nested("DestinationInfo.destination")?,
                operation_type: r.i8()?,
                timeout: r.i64()?,
                broker_path: r.nested_array("DestinationInfo.brokerPath")?,
            }),
            d::REMOVE_SUBSCRIPTION_INFO => {
                Command::RemoveSubscriptionInfo(RemoveSubscriptionInfo {
                    header: CommandHeader::read(r)?,
                    connection_id: r.nested("RemoveSubscriptionInfo.connectionId")?,
                    subscription_name: r.string()?,
                    client_id: r.string()?,
                })
            }
            d::KEEP_ALIVE_INFO => Command::KeepAliveInfo(CommandHeader::read(r)?),
            d::SHUTDOWN_INFO => Command::ShutdownInfo(CommandHeader::read(r)?),
            d::FLUSH_COMMAND => Command::FlushCommand(CommandHeader::read(r)?),
            d::REMOVE_INFO => {
                let header = CommandHeader::read(r)?;
                let object_id = r.nested::<Command>("RemoveInfo.objectId")?.map(Box::new);
                let last_delivered_sequence_id = if since(r, 5) { r.i64()? } else { 0 };
                Command::RemoveInfo(RemoveInfo {
                    header,
                    object_id,
                    last_delivered_sequence_id,
                })
            }
            d::CONTROL_COMMAND => Command::ControlCommand(ControlCommand {
                header: CommandHeader::read(r)?,
                command: r.string()?,
            }),
            d::CONNECTION_ERROR => Command::ConnectionError(ConnectionError {
                header: CommandHeader::read(r)?,
                exception: JavaThrowable::read(r)?,
                connection_id: r.nested("ConnectionError.connectionId")?,
            }),
            d::CONSUMER_CONTROL => {
                let header = CommandHeader::read(r)?;
                let destination = if since(r, 6) {
                    r.nested("ConsumerControl.destination")?
                } else {
                    None
                };
                let close = r.bool()?;
                let consumer_id = r.nested("ConsumerControl.consumerId")?;
                let prefetch = r.i32()?;
                let (flush, start, stop) = if since(r, 2) {
                    (r.bool()?, r.bool()?, r.bool()?)
                } else {
                    (false, false, false)
                };
                Command::ConsumerControl(ConsumerControl {
                    header,
                    destination,
                    close,
                    consumer_id,
                    prefetch,
                    flush,
                    start,
                    stop,
                })
            }
            d::CONNECTION_CONTROL => {
                let header = CommandHeader::read(r)?;
                let close = r.bool()?;
                let exit = r.bool()?;
                let fault_tolerant = r.bool()?;
                let resume = r.bool()?;
                let suspend = r.bool()?;
                let (connected_brokers, reconnect_to, rebalance_connection) = if since(r, 6) {
                    (r.string()?, r.string()?, r.bool()?)
                } else {
                    (None, None, false)
                };
                let token = if since(r, 8) {
                    r.byte_sequence()?
                } else {
                    None
                };
                Command::ConnectionControl(ConnectionControl {
                    header,
                    close,
                    exit,
                    fault_tolerant,
                    resume,
                    suspend,
                    connected_brokers,
                    reconnect_to,
                    rebalance_connection,
                    token,
                })
            }
            d::PRODUCER_ACK => Command::ProducerAck(ProducerAck {
                header: CommandHeader::read(r)?,
                producer_id: r.nested("ProducerAck.producerId")?,
                size: r.i32()?,
            }),
            d::MESSAGE_PULL => {
                let header = CommandHeader::read(r)?;
                let consumer_id = r.nested("MessagePull.consumerId")?;
                let destination = r.nested("MessagePull.destination")?;
                let timeout = r.i64()?;
                let (correlation_id, message_id) = if since(r, 3) {
                    (r.string()?, r.nested("MessagePull.messageId")?)
                } else {
                    (None, None)
                };
                Command::MessagePull(MessagePull {
                    header,
                    consumer_id,
                    destination,
                    timeout,
                    correlation_id,
                    message_id,
                })
            }
            d::MESSAGE_DISPATCH => Command::MessageDispatch(MessageDispatch {
                header: CommandHeader::read(r)?,
                consumer_id: r.nested("MessageDispatch.consumerId")?,
                destination: r.nested("MessageDispatch.destination")?,
                message: r
                    .nested::<Message>("MessageDispatch.message")?
                    .map(Box::new),
                redelivery_counter: r.i32()?,
            }),
            d::MESSAGE_ACK => {
                let header = CommandHeader::read(r)?;
                let destination = r.nested("MessageAck.destination")?;
                let transaction_id = r.nested("MessageAck.transactionId")?;
                let consumer_id = r.nested("MessageAck.consumerId")?;
                let ack_type = r.i8()?;
                let first_message_id = r.nested("MessageAck.firstMessageId")?;
                let last_message_id = r.nested("MessageAck.lastMessageId")?;
                let message_count = r.i32()?;
                let poison_cause = if since(r, 7) {
                    JavaThrowable::read(r)?
                } else {
                    None
                };
                Command::MessageAck(MessageAck {
                    header,
                    destination,
                    transaction_id,
                    consumer_id,
                    ack_type,
                    first_message_id,
                    last_message_id,
                    message_count,
                    poison_cause,
                })
            }
            d::ACTIVEMQ_MESSAGE..=d::ACTIVEMQ_TEXT_MESSAGE => {
                Command::Message(Box::new(Message::decode_body(t, r)?))
            }
            d::RESPONSE => Command::Response(Response {
                header: CommandHeader::read(r)?,
                correlation_id: r.i32()?,
            }),
            d::EXCEPTION_RESPONSE => Command::ExceptionResponse(ExceptionResponse {
                header: CommandHeader::read(r)?,
                correlation_id: r.i32()?,
                exception: JavaThrowable::read(r)?,
            }),
            d::DATA_RESPONSE => Command::DataResponse(DataResponse {
                header: CommandHeader::read(r)?,
                correlation_id: r.i32()?,
                data: r.nested::<Command>("DataResponse.data")?.map(Box::new),
            }),
            d::DATA_ARRAY_RESPONSE => Command::DataArrayResponse(DataArrayResponse {
                header: CommandHeader::read(r)?,
                correlation_id: r.i32()?,
                data: r.nested_array("DataArrayResponse.data")?,
            }),
            d::INTEGER_RESPONSE => Command::IntegerResponse(IntegerResponse {
                header: CommandHeader::read(r)?,
                correlation_id: r.i32()?,
                result: r.i32()?,
            }),
            d::MESSAGE_DISPATCH_NOTIFICATION => {
                Command::MessageDispatchNotification(MessageDispatchNotification {
                    header: CommandHeader::read(r)?,
                    consumer_id: r.nested("MessageDispatchNotification.consumerId")?,
                    destination: r.nested("MessageDispatchNotification.destination")?,
                    delivery_sequence_id: r.i64()?,
                    message_id: r.nested("MessageDispatchNotification.messageId")?,
                })
            }
            d::ACTIVEMQ_QUEUE..=d::ACTIVEMQ_TEMP_TOPIC => {
                Command::Destination(Destination::decode_body(t, r)?)
            }
            d::MESSAGE_ID => Command::MessageId(MessageId::decode_body(t, r)?),
            d::ACTIVEMQ_LOCAL_TRANSACTION_ID | d::ACTIVEMQ_XA_TRANSACTION_ID => {
                Command::TransactionId(TransactionId::decode_body(t, r)?)
            }
            d::CONNECTION_ID => Command::ConnectionId(ConnectionId::decode_body(t, r)?),
            d::SESSION_ID => Command::SessionId(SessionId::decode_body(t, r)?),
            d::CONSUMER_ID => Command::ConsumerId(ConsumerId::decode_body(t, r)?),
            d::PRODUCER_ID => Command::ProducerId(ProducerId::decode_body(t, r)?),
            d::BROKER_ID => Command::BrokerId(BrokerId::decode_body(t, r)?),
            _ => {
                return Err(OpenWireDecodeError::UnknownDataType {
                    offset: r.offset().saturating_sub(1),
                    data_type: t,
                })
            }
        })
    }

    fn data_type(&self) -> u8 {
        use data_type as d;
        match self {
            Command::WireFormatInfo(_) => d::WIREFORMAT_INFO,
            Command::BrokerInfo(_) => d::BROKER_INFO,
            Command::ConnectionInfo(_) => d::CONNECTION_INFO,
            Command::SessionInfo(_) => d::SESSION_INFO,
            Command::ConsumerInfo(_) => d::CONSUMER_INFO,
            Command::ProducerInfo(_) => d::PRODUCER_INFO,
            Command::TransactionInfo(_) => d::TRANSACTION_INFO,
            Command::DestinationInfo(_) => d::DESTINATION_INFO,
            Command::RemoveSubscriptionInfo(_) => d::REMOVE_SUBSCRIPTION_INFO,
            Command::KeepAliveInfo(_) => d::KEEP_ALIVE_INFO,
            Command::ShutdownInfo(_) => d::SHUTDOWN_INFO,
            Command::RemoveInfo(_) => d::REMOVE_INFO,
            Command::ControlCommand(_) => d::CONTROL_COMMAND,
            Command::FlushCommand(_) => d::FLUSH_COMMAND,
            Command::ConnectionError(_) => d::CONNECTION_ERROR,
            Command::ConsumerControl(_) => d::CONSUMER_CONTROL,
            Command::ConnectionControl(_) => d::CONNECTION_CONTROL,
            Command::ProducerAck(_) => d::PRODUCER_ACK,
            Command::MessagePull(_) => d::MESSAGE_PULL,
            Command::MessageDispatch(_) => d::MESSAGE_DISPATCH,
            Command::MessageAck(_) => d::MESSAGE_ACK,
            Command::Message(m) => m.kind.data_type(),
            Command::Response(_) => d::RESPONSE,
            Command::ExceptionResponse(_) => d::EXCEPTION_RESPONSE,
            Command::DataResponse(_) => d::DATA_RESPONSE,
            Command::DataArrayResponse(_) => d::DATA_ARRAY_RESPONSE,
            Command::IntegerResponse(_) => d::INTEGER_RESPONSE,
            Command::MessageDispatchNotification(_) => d::MESSAGE_DISPATCH_NOTIFICATION,
            Command::Destination(x) => x.data_type(),
            Command::MessageId(_) => d::MESSAGE_ID,
            Command::TransactionId(x) => x.data_type(),
            Command::ConnectionId(_) => d::CONNECTION_ID,
            Command::SessionId(_) => d::SESSION_ID,
            Command::ConsumerId(_) => d::CONSUMER_ID,
            Command::ProducerId(_) => d::PRODUCER_ID,
            Command::BrokerId(_) => d::BROKER_ID,
        }
    }

    fn encode_body(&self, w: &mut Writer) -> Result<(), OpenWireEncodeError> {
        match self {
            Command::WireFormatInfo(c) => {
                w.dst.extend_from_slice(&c.magic);
                w.i32(c.version);
                w.byte_sequence(c.marshalled_properties.as_deref())?;
            }
            Command::BrokerInfo(c) => c.encode_body(w)?,
            Command::ConnectionInfo(c) => {
                c.header.write(w);
                w.nested(c.connection_id.as_ref())?;
                w.string(c.client_id.as_deref())?;
                w.string(c.password.as_deref())?;
                w.string(c.user_name.as_deref())?;
                w.nested_array(c.broker_path.as_deref())?;
                w.bool(c.broker_master_connector);
                w.bool(c.manageable);
                if since_w(w, 2) {
                    w.bool(c.client_master);
                }
                if since_w(w, 6) {
                    w.bool(c.fault_tolerant);
                    w.bool(c.failover_reconnect);
                }
                if since_w(w, 8) {
                    w.string(c.client_ip.as_deref())?;
                }
            }
            Command::SessionInfo(c) => {
                c.header.write(w);
                w.nested(c.session_id.as_ref())?;
            }
            Command::ConsumerInfo(c) => {
                c.header.write(w);
                w.nested(c.consumer_id.as_ref())?;
                w.bool(c.browser);
                w.nested(c.destination.as_ref())?;
                w.i32(c.prefetch_size);
                w.i32(c.maximum_pending_message_limit);
                w.bool(c.dispatch_async);
                w.string(c.selector.as_deref())?;
                if since_w(w, 10) {
                    w.string(c.client_id.as_deref())?;
                }
                w.string(c.subscription_name.as_deref())?;
                w.bool(c.no_local);
                w.bool(c.exclusive);
                w.bool(c.retroactive);
                w.i8(c.priority);
                w.nested_array(c.broker_path.as_deref())?;
                w.nested(c.additional_predicate.as_deref())?;
                w.bool(c.network_subscription);
                w.bool(c.optimized_acknowledge);
                w.bool(c.no_range_acks);
                if since_w(w, 4) {
                    w.nested_array(c.network_consumer_path.as_deref())?;
                }
            }
            Command::ProducerInfo(c) => {
                c.header.write(w);
                w.nested(c.producer_id.as_ref())?;
                w.nested(c.destination.as_ref())?;
                w.nested_array(c.broker_path.as_deref())?;
                if since_w(w, 2) {
                    w.bool(c.dispatch_async);
                }
                if since_w(w, 3) {
                    w.i32(c.window_size);
                }
            }
            Command::TransactionInfo(c) => {
                c.header.write(w);
                w.nested(c.connection_id.as_ref())?;
                w.nested(c.transaction_id.as_ref())?;
                w.i8(c.transaction_type);
            }
            Command::DestinationInfo(c) => {
                c.header.write(w);
                w.nested(c.connection_id.as_ref())?;
                w.nested(c.destination.as_ref())?;
                w.i8(c.operation_type);
                w.i64(c.timeout);
                w.nested_array(c.broker_path.as_deref())?;
            }
            Command::RemoveSubscriptionInfo(c) => {
                c.header.write(w);
                w.nested(c.connection_id.as_ref())?;
                w.string(c.subscription_name.as_deref())?;
                w.string(c.client_id.as_deref())?;
            }
            Command::KeepAliveInfo(h) | Command::ShutdownInfo(h) | Command::FlushCommand(h) => {
                h.write(w)
            }
            Command::RemoveInfo(c) => {
                c.header.write(w);
                w.nested(c.object_id.as_deref())?;
                if since_w(w, 5) {
                    w.i64(c.last_delivered_sequence_id);
                }
            }
            Command::ControlCommand(c) => {
                c.header.write(w);
                w.string(c.command.as_deref())?;
            }
            Command::ConnectionError(c) => {
                c.header.write(w);
                JavaThrowable::write(c.exception.as_ref(), w)?;
                w.nested(c.connection_id.as_ref())?;
            }
            Command::ConsumerControl(c) => {
                c.header.write(w);
                if since_w(w, 6) {
                    w.nested(c.destination.as_ref())?;
                }
                w.bool(c.close);
                w.nested(c.consumer_id.as_ref())?;
                w.i32(c.prefetch);
                if since_w(w, 2) {
                    w.bool(c.flush);
                    w.bool(c.start);
                    w.bool(c.stop);
                }
            }
            Command::ConnectionControl(c) => {
                c.header.write(w);
                w.bool(c.close);
                w.bool(c.exit);
                w.bool(c.fault_tolerant);
                w.bool(c.resume);
                w.bool(c.suspend);
                if since_w(w, 6) {
                    w.string(c.connected_brokers.as_deref())?;
                    w.string(c.reconnect_to.as_deref())?;
                    w.bool(c.rebalance_connection);
                }
                if since_w(w, 8) {
                    w.byte_sequence(c.token.as_deref())?;
                }
            }
            Command::ProducerAck(c) => {
                c.header.write(w);
                w.nested(c.producer_id.as_ref())?;
                w.i32(c.size);
            }
            Command::MessagePull(c) => {
                c.header.write(w);
                w.nested(c.consumer_id.as_ref())?;
                w.nested(c.destination.as_ref())?;
                w.i64(c.timeout);
                if since_w(w, 3) {
                    w.string(c.correlation_id.as_deref())?;
                    w.nested(c.message_id.as_ref())?;
                }
            }
            Command::MessageDispatch(c) => {
                c.header.write(w);
                w.nested(c.consumer_id.as_ref())?;
                w.nested(c.destination.as_ref())?;
                w.nested(c.message.as_deref())?;
                w.i32(c.redelivery_counter);
            }
            Command::MessageAck(c) => {
                c.header.write(w);
                w.nested(c.destination.as_ref())?;
                w.nested(c.transaction_id.as_ref())?;
                w.nested(c.consumer_id.as_ref())?;
                w.i8(c.ack_type);
                w.nested(c.first_message_id.as_ref())?;
                w.nested(c.last_message_id.as_ref())?;
                w.i32(c.message_count);
                if since_w(w, 7) {
                    JavaThrowable::write(c.poison_cause.as_ref(), w)?;
                }
            }
            Command::Message(m) => m.encode_body(w)?,
            Command::Response(c) => {
                c.header.write(w);
                w.i32(c.correlation_id);
            }
            Command::ExceptionResponse(c) => {
                c.header.write(w);
                w.i32(c.correlation_id);
                JavaThrowable::write(c.exception.as_ref(), w)?;
            }
            Command::DataResponse(c) => {
                c.header.write(w);
                w.i32(c.correlation_id);
                w.nested(c.data.as_deref())?;
            }
            Command::DataArrayResponse(c) => {
                c.header.write(w);
                w.i32(c.correlation_id);
                w.nested_array(c.data.as_deref())?;
            }
            Command::IntegerResponse(c) => {
                c.header.write(w);
                w.i32(c.correlation_id);
                w.i32(c.result);
            }
            Command::MessageDispatchNotification(c) => {
                c.header.write(w);
                w.nested(c.consumer_id.as_ref())?;
                w.nested(c.destination.as_ref())?;
                w.i64(c.delivery_sequence_id);
                w.nested(c.message_id.as_ref())?;
            }
            Command::Destination(x) => x.encode_body(w)?,
            Command::MessageId(x) => x.encode_body(w)?,
            Command::TransactionId(x) => x.encode_body(w)?,
            Command::ConnectionId(x) => x.encode_body(w)?,
            Command::SessionId(x) => x.encode_body(w)?,
            Command::ConsumerId(x) => x.encode_body(w)?,
            Command::ProducerId(x) => x.encode_body(w)?,
            Command::BrokerId(x) => x.encode_body(w)?,
        }
        Ok(())
    }
}
