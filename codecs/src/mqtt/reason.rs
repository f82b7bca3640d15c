//! Reason codes: MQTT 5.0 reason codes, and the 3.1/3.1.1 CONNACK return
//! codes and SUBACK failure code (prefixed `V3_`).
//!
//! Reason codes are carried as plain `u8`s so that a peer's unknown code
//! survives decoding; these constants name the ones the specifications define.

/// Success; also Normal Disconnection and Granted QoS 0.
pub const SUCCESS: u8 = 0x00;
/// DISCONNECT: close the connection normally, do not send the will.
pub const NORMAL_DISCONNECTION: u8 = 0x00;
/// SUBACK: subscription accepted with maximum QoS 0.
pub const GRANTED_QOS_0: u8 = 0x00;
/// SUBACK: subscription accepted with maximum QoS 1.
pub const GRANTED_QOS_1: u8 = 0x01;
/// SUBACK: subscription accepted with maximum QoS 2.
pub const GRANTED_QOS_2: u8 = 0x02;
/// DISCONNECT: close, but send the will message.
pub const DISCONNECT_WITH_WILL_MESSAGE: u8 = 0x04;
/// PUBACK/PUBREC: accepted, but nobody is subscribed.
pub const NO_MATCHING_SUBSCRIBERS: u8 = 0x10;
/// UNSUBACK: there was no such subscription.
pub const NO_SUBSCRIPTION_EXISTED: u8 = 0x11;
/// AUTH: continue the authentication exchange.
pub const CONTINUE_AUTHENTICATION: u8 = 0x18;
/// AUTH: start re-authentication.
pub const RE_AUTHENTICATE: u8 = 0x19;
/// Unspecified error (also the 3.1.1 SUBACK failure code).
pub const UNSPECIFIED_ERROR: u8 = 0x80;
/// The packet could not be parsed as the specification requires.
pub const MALFORMED_PACKET: u8 = 0x81;
/// The packet breaks a protocol rule, or arrived when it should not.
pub const PROTOCOL_ERROR: u8 = 0x82;
/// Valid, but not accepted by this implementation.
pub const IMPLEMENTATION_SPECIFIC_ERROR: u8 = 0x83;
/// CONNACK: the protocol version is not supported.
pub const UNSUPPORTED_PROTOCOL_VERSION: u8 = 0x84;
/// CONNACK: the client identifier is not accepted.
pub const CLIENT_IDENTIFIER_NOT_VALID: u8 = 0x85;
/// CONNACK: wrong user name or password.
pub const BAD_USER_NAME_OR_PASSWORD: u8 = 0x86;
/// Not authorized.
pub const NOT_AUTHORIZED: u8 = 0x87;
/// CONNACK: the server is unavailable.
pub const SERVER_UNAVAILABLE: u8 = 0x88;
/// The server is busy.
pub const SERVER_BUSY: u8 = 0x89;
/// CONNACK: the client is banned.
pub const BANNED: u8 = 0x8a;
/// DISCONNECT: the server is shutting down.
pub const SERVER_SHUTTING_DOWN: u8 = 0x8b;
/// The authentication method is not supported.
pub const BAD_AUTHENTICATION_METHOD: u8 = 0x8c;
/// DISCONNECT: nothing received within 1.5 times the keep-alive.
pub const KEEP_ALIVE_TIMEOUT: u8 = 0x8d;
/// DISCONNECT: another connection took over the session.
pub const SESSION_TAKEN_OVER: u8 = 0x8e;
/// The topic filter is well formed but not accepted.
pub const TOPIC_FILTER_INVALID: u8 = 0x8f;
/// The topic name is malformed or not accepted.
pub const TOPIC_NAME_INVALID: u8 = 0x90;
/// The packet identifier is already in use.
pub const PACKET_IDENTIFIER_IN_USE: u8 = 0x91;
/// The packet identifier is not known.
pub const PACKET_IDENTIFIER_NOT_FOUND: u8 = 0x92;
/// DISCONNECT: more unacknowledged QoS>0 PUBLISHes than Receive Maximum.
pub const RECEIVE_MAXIMUM_EXCEEDED: u8 = 0x93;
/// DISCONNECT: a topic alias of 0 or above the maximum.
pub const TOPIC_ALIAS_INVALID: u8 = 0x94;
/// The packet exceeds the maximum packet size.
pub const PACKET_TOO_LARGE: u8 = 0x95;
/// DISCONNECT: the message rate is too high.
pub const MESSAGE_RATE_TOO_HIGH: u8 = 0x96;
/// An implementation or administrative quota is exceeded.
pub const QUOTA_EXCEEDED: u8 = 0x97;
/// DISCONNECT: closed by administrative action.
pub const ADMINISTRATIVE_ACTION: u8 = 0x98;
/// The payload does not match its Payload Format Indicator.
pub const PAYLOAD_FORMAT_INVALID: u8 = 0x99;
/// Retained messages are not supported.
pub const RETAIN_NOT_SUPPORTED: u8 = 0x9a;
/// The QoS is above the server's Maximum QoS.
pub const QOS_NOT_SUPPORTED: u8 = 0x9b;
/// Use another server (temporarily).
pub const USE_ANOTHER_SERVER: u8 = 0x9c;
/// Use another server (permanently).
pub const SERVER_MOVED: u8 = 0x9d;
/// Shared subscriptions are not supported.
pub const SHARED_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0x9e;
/// The connection rate limit is exceeded.
pub const CONNECTION_RATE_EXCEEDED: u8 = 0x9f;
/// DISCONNECT: the connection's maximum time is up.
pub const MAXIMUM_CONNECT_TIME: u8 = 0xa0;
/// Subscription identifiers are not supported.
pub const SUBSCRIPTION_IDENTIFIERS_NOT_SUPPORTED: u8 = 0xa1;
/// Wildcard subscriptions are not supported.
pub const WILDCARD_SUBSCRIPTIONS_NOT_SUPPORTED: u8 = 0xa2;
/// 3.1/3.1.1 CONNACK: connection accepted.
pub const V3_CONNECTION_ACCEPTED: u8 = 0x00;
/// 3.1/3.1.1 CONNACK: unacceptable protocol version.
pub const V3_UNACCEPTABLE_PROTOCOL_VERSION: u8 = 0x01;
/// 3.1/3.1.1 CONNACK: client identifier rejected.
pub const V3_IDENTIFIER_REJECTED: u8 = 0x02;
/// 3.1/3.1.1 CONNACK: server unavailable.
pub const V3_SERVER_UNAVAILABLE: u8 = 0x03;
/// 3.1/3.1.1 CONNACK: bad user name or password.
pub const V3_BAD_USER_NAME_OR_PASSWORD: u8 = 0x04;
/// 3.1/3.1.1 CONNACK: not authorized.
pub const V3_NOT_AUTHORIZED: u8 = 0x05;
/// 3.1.1 SUBACK: the subscription failed.
pub const V3_SUBACK_FAILURE: u8 = 0x80;
