//! Bayeux 1.0 on the wire: request bodies parsed into [`Message`]s, and the replies built
//! from them.
//!
//! A body is one message object or an array of them (a batch). Parsing checks the shape of
//! each field the server reads and names the first one that is wrong; a body that is not
//! Bayeux at all is a [`BayeuxError`] (HTTP 400), while a well-formed message the server will
//! not honour gets an ordinary `successful:false` reply built here. Nothing in this module
//! knows about clients or time.

use serde_json::{json, Map, Value};

use super::{BayeuxSettings, Push};

/// `/meta/handshake`.
pub const HANDSHAKE: &str = "/meta/handshake";
/// `/meta/connect`.
pub const CONNECT: &str = "/meta/connect";
/// `/meta/subscribe`.
pub const SUBSCRIBE: &str = "/meta/subscribe";
/// `/meta/unsubscribe`.
pub const UNSUBSCRIBE: &str = "/meta/unsubscribe";
/// `/meta/disconnect`.
pub const DISCONNECT: &str = "/meta/disconnect";
/// The one channel GMS pushes on, and the only one a client may subscribe to.
pub const GENESYS_CHANNEL: &str = "/_genesys";

/// The transports this server speaks, as the handshake reply lists them.
pub const CONNECTION_TYPES: [&str; 3] = ["websocket", "long-polling", "callback-polling"];

/// A body that is not Bayeux. The HTTP layer answers it with 400 and this message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BayeuxError {
    /// Empty body.
    #[error("the body is empty: send a Bayeux message object, or an array of them, as JSON")]
    Empty,
    /// Not JSON.
    #[error("the body is not valid JSON ({0}): send a Bayeux message object, or an array of them")]
    NotJson(String),
    /// JSON, but neither an object nor an array.
    #[error("the body is a JSON {0}: send a Bayeux message object, or an array of them")]
    NotMessages(&'static str),
    /// An empty array.
    #[error("the body is an empty array: send at least one Bayeux message")]
    EmptyBatch,
    /// One message of the body is malformed.
    #[error("message {index} of the body: {problem}")]
    InvalidMessage {
        /// 1-based position in the body.
        index: usize,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

/// One incoming Bayeux message, with the fields the server reads.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    /// `channel`, e.g. `/meta/connect`; always starts with `/`.
    pub channel: String,
    /// `id`, echoed in the reply as sent (a string, or a number from lenient clients).
    pub id: Option<Value>,
    /// `clientId`, as the handshake reply gave it.
    pub client_id: Option<String>,
    /// `subscription` of (un)subscribe: a channel name or an array of them, echoed as sent.
    pub subscription: Option<Value>,
    /// `advice.timeout` of a connect, in milliseconds (`0`: answer at once).
    pub advice_timeout: Option<u64>,
    /// Whether the message carried an `advice` object at all.
    pub has_advice: bool,
    /// `supportedConnectionTypes` of a handshake.
    pub supported_connection_types: Option<Vec<String>>,
    /// `ext.ack`, CometD's acknowledgement extension, when it has a meaning here.
    pub ack: Option<Ack>,
    /// `data` of a publish (a request on a service channel).
    pub data: Option<Value>,
}

/// What `ext.ack` says (CometD's `AckExtension`). Any other value, or an `ext` that is not an
/// object, is ignored, as it was before the extension existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ack {
    /// `true`, in a handshake: the client asks for acknowledged delivery.
    Requested,
    /// A whole number, in a connect: the client received every batch up to this one.
    Batch(u64),
}

impl Message {
    /// A message on `channel` with no other field (for tests and internal use).
    pub fn on(channel: &str) -> Message {
        Message {
            channel: channel.to_string(),
            id: None,
            client_id: None,
            subscription: None,
            advice_timeout: None,
            has_advice: false,
            supported_connection_types: None,
            ack: None,
            data: None,
        }
    }

    /// Whether this handshake asks for the acknowledgement extension (`ext.ack` true).
    pub fn requests_acks(&self) -> bool {
        self.ack == Some(Ack::Requested)
    }

    /// The batch this connect acknowledges (`ext.ack` a whole number).
    pub fn acknowledged_batch(&self) -> Option<u64> {
        match self.ack {
            Some(Ack::Batch(batch)) => Some(batch),
            _ => None,
        }
    }

    /// Whether this is on a `/meta/` channel.
    pub fn is_meta(&self) -> bool {
        self.channel.starts_with("/meta/")
    }

    /// The channels named by `subscription`, or why they cannot be read.
    ///
    /// # Errors
    /// `subscription` is missing or not a channel name (or an array of them).
    pub fn subscriptions(&self) -> Result<Vec<&str>, String> {
        match &self.subscription {
            None => Err("`subscription` is missing: name the channel, e.g. \"/_genesys\"".into()),
            Some(Value::String(channel)) => Ok(vec![channel.as_str()]),
            Some(Value::Array(items)) if !items.is_empty() => items
                .iter()
                .map(|item| {
                    item.as_str()
                        .ok_or_else(|| "`subscription` must hold channel names (strings)".into())
                })
                .collect(),
            Some(_) => Err(
                "`subscription` must be a channel name such as \"/_genesys\", or an array of them"
                    .into(),
            ),
        }
    }
}

/// Parses a request body: one message object or an array of them.
///
/// # Errors
/// A [`BayeuxError`] naming what is wrong (and, in a batch, which message).
pub fn parse(body: &[u8]) -> Result<Vec<Message>, BayeuxError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Err(BayeuxError::Empty);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|err| BayeuxError::NotJson(err.to_string()))?;
    let items = match value {
        Value::Array(items) if items.is_empty() => return Err(BayeuxError::EmptyBatch),
        Value::Array(items) => items,
        object @ Value::Object(_) => vec![object],
        other => return Err(BayeuxError::NotMessages(json_kind(&other))),
    };
    // Exactly as many as given: the messages live as long as the request, a held connect's
    // for its whole long-poll, and collecting through `Result` would reserve room for four.
    let mut messages = Vec::with_capacity(items.len());
    for (i, item) in items.into_iter().enumerate() {
        let message = parse_message(item).map_err(|problem| BayeuxError::InvalidMessage {
            index: i + 1,
            problem,
        })?;
        messages.push(message);
    }
    Ok(messages)
}

fn parse_message(item: Value) -> Result<Message, String> {
    let Value::Object(mut fields) = item else {
        return Err(format!(
            "it is a JSON {}, not a message object with a `channel`",
            json_kind(&item)
        ));
    };
    let channel = match fields.remove("channel") {
        None => {
            return Err(
                "`channel` is missing: every Bayeux message names one, e.g. \"/meta/connect\""
                    .into(),
            )
        }
        Some(Value::String(channel)) if channel.starts_with('/') && channel.len() > 1 => channel,
        Some(_) => {
            return Err(
                "`channel` must be a channel name starting with `/`, e.g. \"/meta/connect\"".into(),
            )
        }
    };
    let id = match fields.remove("id") {
        None | Some(Value::Null) => None,
        Some(id @ (Value::String(_) | Value::Number(_))) => Some(id),
        Some(_) => return Err("`id` must be a string, e.g. \"1\"".into()),
    };
    let client_id = match fields.remove("clientId") {
        None | Some(Value::Null) => None,
        Some(Value::String(id)) => Some(id),
        Some(_) => {
            return Err("`clientId` must be the string the handshake reply gave".into());
        }
    };
    let subscription = fields.remove("subscription").filter(|s| !s.is_null());
    let (has_advice, advice_timeout) = match fields.remove("advice") {
        None | Some(Value::Null) => (false, None),
        Some(Value::Object(advice)) => match advice.get("timeout") {
            None | Some(Value::Null) => (true, None),
            Some(timeout) => match timeout.as_u64() {
                Some(ms) => (true, Some(ms)),
                None => {
                    return Err(
                        "`advice.timeout` must be a whole number of milliseconds, e.g. 60000"
                            .into(),
                    )
                }
            },
        },
        Some(_) => return Err("`advice` must be an object, e.g. {\"timeout\":60000}".into()),
    };
    let supported_connection_types = match fields.remove("supportedConnectionTypes") {
        None | Some(Value::Null) => None,
        Some(Value::Array(types)) => Some(
            types
                .into_iter()
                .map(|t| match t {
                    Value::String(t) => Ok(t),
                    _ => Err(
                        "`supportedConnectionTypes` must hold strings such as \"long-polling\""
                            .to_string(),
                    ),
                })
                .collect::<Result<Vec<_>, _>>()?,
        ),
        Some(_) => {
            return Err(
                "`supportedConnectionTypes` must be an array such as [\"long-polling\"]".into(),
            )
        }
    };
    let ack = match fields.get("ext").and_then(|ext| ext.get("ack")) {
        Some(Value::Bool(true)) => Some(Ack::Requested),
        Some(batch) => batch.as_u64().map(Ack::Batch),
        None => None,
    };
    Ok(Message {
        channel,
        id,
        client_id,
        subscription,
        advice_timeout,
        has_advice,
        supported_connection_types,
        ack,
        data: fields.remove("data").filter(|d| !d.is_null()),
    })
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// The start of every reply: `channel`, and `id` when the request had one.
fn base(message: &Message) -> Map<String, Value> {
    let mut reply = Map::new();
    if let Some(id) = &message.id {
        reply.insert("id".into(), id.clone());
    }
    reply.insert("channel".into(), Value::String(message.channel.clone()));
    reply
}

/// `{"id","channel","successful":true}`.
pub fn success(message: &Message) -> Map<String, Value> {
    let mut reply = base(message);
    reply.insert("successful".into(), Value::Bool(true));
    reply
}

/// `{"id","channel","successful":false,"error"}` plus `advice` when given.
pub fn failure(message: &Message, error: &str, advice: Option<Value>) -> Value {
    let mut reply = base(message);
    reply.insert("successful".into(), Value::Bool(false));
    reply.insert("error".into(), Value::String(error.to_string()));
    if let Some(advice) = advice {
        reply.insert("advice".into(), advice);
    }
    if let Some(subscription) = &message.subscription {
        reply.insert("subscription".into(), subscription.clone());
    }
    Value::Object(reply)
}

/// The reply to an unknown, expired or foreign `clientId`: handshake again.
pub fn unknown_client(message: &Message) -> Value {
    failure(
        message,
        "402::Unknown client",
        Some(json!({"reconnect": "handshake", "interval": 0})),
    )
}

/// The successful handshake reply giving `client_id`; with `ext: {ack: true}` when the
/// client gets the acknowledgement extension it asked for (CometD's reply when no message is
/// delivered with the handshake, which the `AckExtension` of every CometD client reads).
pub fn handshake_reply(
    message: &Message,
    client_id: &str,
    settings: &BayeuxSettings,
    acknowledged: bool,
) -> Value {
    let mut reply = success(message);
    reply.insert("version".into(), json!("1.0"));
    reply.insert("minimumVersion".into(), json!("1.0"));
    reply.insert("supportedConnectionTypes".into(), json!(CONNECTION_TYPES));
    reply.insert("clientId".into(), json!(client_id));
    reply.insert("advice".into(), connect_advice(settings));
    if acknowledged {
        reply.insert("ext".into(), json!({"ack": true}));
    }
    Value::Object(reply)
}

/// The server's advice: reconnect at once (`interval`) and expect a held connect for
/// `timeout` milliseconds.
pub fn connect_advice(settings: &BayeuxSettings) -> Value {
    json!({
        "reconnect": "retry",
        "interval": settings.interval_ms,
        "timeout": settings.timeout_ms,
    })
}

/// The successful connect reply, with the advice when asked for, and `ext: {ack: batch}`
/// naming the batch of pushes it comes with, for a client with the acknowledgement extension.
pub fn connect_reply(message: &Message, advice: Option<Value>, batch: Option<u64>) -> Value {
    let mut reply = success(message);
    if let Some(advice) = advice {
        reply.insert("advice".into(), advice);
    }
    if let Some(batch) = batch {
        reply.insert("ext".into(), json!({"ack": batch}));
    }
    Value::Object(reply)
}

/// A successful (un)subscribe reply, echoing `subscription`.
pub fn subscription_reply(message: &Message) -> Value {
    let mut reply = success(message);
    if let Some(subscription) = &message.subscription {
        reply.insert("subscription".into(), subscription.clone());
    }
    Value::Object(reply)
}

/// A push as delivered: `{"channel":"/_genesys","data":{"id","message","tag"}}`, or, for a
/// push on a service channel, `{"channel","data"}` with the message as the data.
pub fn delivery(push: &Push) -> Value {
    if let Some(channel) = &push.channel {
        return json!({"channel": channel, "data": push.message});
    }
    json!({
        "channel": GENESYS_CHANNEL,
        "data": {"id": push.id, "message": push.message, "tag": push.tag},
    })
}

/// The reply to a second (third, ...) handshake in one request: only the first is served.
/// No CometD client sends two, so it is told not to retry.
pub fn extra_handshake(message: &Message) -> Value {
    failure(
        message,
        "400:handshake:only one /meta/handshake per request is served; send each handshake in a request of its own",
        Some(json!({"reconnect": "none"})),
    )
}

/// The reply to a handshake of a user that has `max_clients_per_user` clients already. The
/// advice makes the official client handshake again after `max_interval`, by when a client
/// it left behind (a reloaded page) has expired.
pub fn too_many_clients_of_user(message: &Message, settings: &BayeuxSettings) -> Value {
    failure(
        message,
        &format!(
            "403:max_clients_per_user,{}:this gms_user has as many CometD clients as allowed; disconnect one, or handshake again once an unused one has expired",
            settings.max_clients_per_user
        ),
        Some(retry_later(settings)),
    )
}

/// The reply to a handshake when the server holds `max_clients` clients.
pub fn too_many_clients(message: &Message, settings: &BayeuxSettings) -> Value {
    failure(
        message,
        &format!(
            "503:max_clients,{}:the server holds as many CometD clients as it allows; handshake again later",
            settings.max_clients
        ),
        Some(retry_later(settings)),
    )
}

/// Handshake again, after `max_interval` (when unused clients have been swept).
fn retry_later(settings: &BayeuxSettings) -> Value {
    json!({"reconnect": "handshake", "interval": settings.max_interval_ms})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_object_body_is_one_message_and_an_array_a_batch() {
        let one = parse(br#"{"version":"1.0","channel":"/meta/handshake","id":"0"}"#).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].channel, HANDSHAKE);
        assert_eq!(one[0].id, Some(json!("0")));

        let batch = parse(
            br#"[{"channel":"/meta/subscribe","subscription":"/_genesys","id":"2","clientId":"abc"},
                 {"channel":"/meta/connect","connectionType":"long-polling","advice":{"timeout":0},"id":"3","clientId":"abc"}]"#,
        )
        .unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[0].subscriptions().unwrap(), vec![GENESYS_CHANNEL]);
        assert_eq!(batch[1].client_id.as_deref(), Some("abc"));
        assert_eq!(batch[1].advice_timeout, Some(0));
        assert!(batch[1].has_advice);
    }

    #[test]
    fn bodies_that_are_not_bayeux_say_what_is_wrong() {
        let cases: &[(&[u8], &str)] = &[
            (b"", "empty"),
            (b"  \n", "empty"),
            (b"{", "not valid JSON"),
            (b"\"/meta/connect\"", "JSON string"),
            (b"42", "JSON number"),
            (b"[]", "empty array"),
            (b"[1]", "message 1 of the body: it is a JSON number"),
            (
                b"{\"id\":\"1\"}",
                "message 1 of the body: `channel` is missing",
            ),
            (
                br#"[{"channel":"/meta/handshake"},{"id":"2"}]"#,
                "message 2 of the body: `channel` is missing",
            ),
            (br#"{"channel":"meta"}"#, "`channel` must be a channel name"),
            (br#"{"channel":7}"#, "`channel` must be a channel name"),
            (
                br#"{"channel":"/meta/connect","id":{}}"#,
                "`id` must be a string",
            ),
            (
                br#"{"channel":"/meta/connect","clientId":5}"#,
                "`clientId` must be",
            ),
            (
                br#"{"channel":"/meta/connect","advice":3}"#,
                "`advice` must be an object",
            ),
            (
                br#"{"channel":"/meta/connect","advice":{"timeout":-1}}"#,
                "`advice.timeout` must be a whole number",
            ),
            (
                br#"{"channel":"/meta/handshake","supportedConnectionTypes":"long-polling"}"#,
                "`supportedConnectionTypes` must be an array",
            ),
        ];
        for (body, expected) in cases {
            let err = parse(body).expect_err(&String::from_utf8_lossy(body));
            assert!(
                err.to_string().contains(expected),
                "body {:?}: got `{err}`, expected it to contain `{expected}`",
                String::from_utf8_lossy(body)
            );
        }
    }

    #[test]
    fn numeric_ids_are_echoed_as_sent() {
        let message = &parse(br#"{"channel":"/meta/connect","id":7}"#).unwrap()[0];
        assert_eq!(connect_reply(message, None, None)["id"], json!(7));
    }

    #[test]
    fn subscriptions_take_a_name_or_an_array_of_names() {
        let mut message = Message::on(SUBSCRIBE);
        assert!(message.subscriptions().is_err(), "missing");
        message.subscription = Some(json!(["/_genesys", "/other"]));
        assert_eq!(
            message.subscriptions().unwrap(),
            vec!["/_genesys", "/other"]
        );
        message.subscription = Some(json!([]));
        assert!(message.subscriptions().is_err(), "empty array");
        message.subscription = Some(json!([1]));
        assert!(message.subscriptions().is_err(), "not strings");
    }

    #[test]
    fn the_handshake_reply_has_what_clients_read() {
        let mut message = Message::on(HANDSHAKE);
        message.id = Some(json!("1"));
        let reply = handshake_reply(&message, "abc", &BayeuxSettings::default(), false);
        assert_eq!(
            reply,
            json!({
                "id": "1",
                "channel": "/meta/handshake",
                "successful": true,
                "version": "1.0",
                "minimumVersion": "1.0",
                "supportedConnectionTypes": ["websocket", "long-polling", "callback-polling"],
                "clientId": "abc",
                "advice": {"reconnect": "retry", "interval": 0, "timeout": 60000},
            })
        );
        assert!(reply.get("ext").is_none(), "no ext unless the client asked");
        let acknowledged = handshake_reply(&message, "abc", &BayeuxSettings::default(), true);
        assert_eq!(acknowledged["ext"], json!({"ack": true}));
    }

    #[test]
    fn ext_ack_is_read_as_a_request_or_a_batch_and_anything_else_is_ignored() {
        let cases = [
            (
                r#"{"channel":"/meta/handshake","ext":{"ack":true}}"#,
                Some(Ack::Requested),
            ),
            (r#"{"channel":"/meta/handshake","ext":{"ack":false}}"#, None),
            (
                r#"{"channel":"/meta/connect","ext":{"ack":0}}"#,
                Some(Ack::Batch(0)),
            ),
            (
                r#"{"channel":"/meta/connect","ext":{"ack":42}}"#,
                Some(Ack::Batch(42)),
            ),
            (r#"{"channel":"/meta/connect","ext":{"ack":-1}}"#, None),
            (r#"{"channel":"/meta/connect","ext":{"ack":1.5}}"#, None),
            (r#"{"channel":"/meta/connect","ext":{"ack":"3"}}"#, None),
            (r#"{"channel":"/meta/connect","ext":{}}"#, None),
            (r#"{"channel":"/meta/connect","ext":"ack"}"#, None),
            (r#"{"channel":"/meta/connect"}"#, None),
        ];
        for (body, expected) in cases {
            let message = &parse(body.as_bytes()).expect(body)[0];
            assert_eq!(message.ack, expected, "{body}");
        }
    }

    #[test]
    fn a_connect_reply_names_its_batch_only_for_acknowledging_clients() {
        let message = Message::on(CONNECT);
        assert!(connect_reply(&message, None, None).get("ext").is_none());
        assert_eq!(
            connect_reply(&message, None, Some(3))["ext"],
            json!({"ack": 3})
        );
    }

    #[test]
    fn refused_handshakes_say_why_in_bayeux_form_and_when_to_retry() {
        let mut message = Message::on(HANDSHAKE);
        message.id = Some(json!("1"));
        let settings = BayeuxSettings::default();
        let user = too_many_clients_of_user(&message, &settings);
        assert_eq!(user["successful"], json!(false));
        let error = user["error"].as_str().unwrap();
        assert!(error.starts_with("403:max_clients_per_user,16:"), "{error}");
        assert_eq!(
            user["advice"],
            json!({"reconnect": "handshake", "interval": 30000})
        );
        let server = too_many_clients(&message, &settings);
        assert!(server["error"]
            .as_str()
            .unwrap()
            .starts_with("503:max_clients,100000:"));
        let extra = extra_handshake(&message);
        assert!(extra["error"]
            .as_str()
            .unwrap()
            .starts_with("400:handshake:"));
        assert_eq!(extra["advice"], json!({"reconnect": "none"}));
        assert_eq!(extra["id"], json!("1"), "the id is echoed");
    }

    #[test]
    fn unknown_clients_are_told_to_handshake() {
        let mut message = Message::on(CONNECT);
        message.id = Some(json!("4"));
        assert_eq!(
            unknown_client(&message),
            json!({
                "id": "4",
                "channel": "/meta/connect",
                "successful": false,
                "error": "402::Unknown client",
                "advice": {"reconnect": "handshake", "interval": 0},
            })
        );
    }

    #[test]
    fn a_delivery_wraps_the_push_on_the_genesys_channel() {
        let push = Push {
            id: "7b239ff0455011e4b31cbb293fafe316".into(),
            message: json!({"chatIxnState": "TRANSCRIPT"}),
            tag: "service.chat.refresh.x".into(),
            receipt: None,
            channel: None,
        };
        assert_eq!(
            delivery(&push),
            json!({
                "channel": "/_genesys",
                "data": {
                    "id": "7b239ff0455011e4b31cbb293fafe316",
                    "message": {"chatIxnState": "TRANSCRIPT"},
                    "tag": "service.chat.refresh.x",
                },
            })
        );
    }
}
