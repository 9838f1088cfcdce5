//! JSON-RPC 1.0 messages as Open vSwitch speaks them.
//!
//! OVS does not follow JSON-RPC 2.0: messages carry no `"jsonrpc"` member,
//! replies carry `"error": null` beside `"result"`, error replies carry
//! `"result": null`, and notifications carry `"id": null`. Like OVS's own
//! parser, a `null` member counts as absent and any other member is an error.

use serde_json::{Map, Value};
use thiserror::Error;

/// One JSON-RPC message.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// A call that expects a reply with the same `id`.
    Request {
        /// The method name.
        method: String,
        /// Positional parameters.
        params: Vec<Value>,
        /// Any non-null JSON value; echoed back in the reply.
        id: Value,
    },
    /// A call that expects no reply.
    Notification {
        /// The method name.
        method: String,
        /// Positional parameters.
        params: Vec<Value>,
    },
    /// A successful reply.
    Reply {
        /// The method's result.
        result: Value,
        /// The `id` of the request answered.
        id: Value,
    },
    /// A failed reply.
    Error {
        /// The error, for OVSDB usually an object with `error` and `details`.
        error: Value,
        /// The `id` of the request answered.
        id: Value,
    },
}

/// A JSON text that is not a valid JSON-RPC message.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum MessageError {
    /// The bytes are not JSON.
    #[error("invalid JSON: {0}")]
    Json(String),
    /// The JSON is not a JSON-RPC message.
    #[error("invalid JSON-RPC message: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> MessageError {
    MessageError::Invalid(msg.into())
}

fn take_non_null(object: &mut Map<String, Value>, key: &str) -> Option<Value> {
    match object.remove(key) {
        None | Some(Value::Null) => None,
        Some(v) => Some(v),
    }
}

impl Message {
    /// Parses one JSON text.
    pub fn decode(bytes: &[u8]) -> Result<Self, MessageError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| MessageError::Json(e.to_string()))?;
        Self::from_json(value)
    }

    /// Interprets a JSON value with the same rules as OVS's `jsonrpc_msg_from_json`.
    pub fn from_json(value: Value) -> Result<Self, MessageError> {
        let Value::Object(mut object) = value else {
            return Err(invalid("message is not a JSON object"));
        };
        let method = match object.remove("method") {
            None => None,
            Some(Value::String(s)) => Some(s),
            Some(_) => return Err(invalid("method is not a JSON string")),
        };
        let params = take_non_null(&mut object, "params");
        let result = take_non_null(&mut object, "result");
        let error = take_non_null(&mut object, "error");
        let id = take_non_null(&mut object, "id");
        if let Some(name) = object.keys().next() {
            return Err(invalid(format!("message has unexpected member \"{name}\"")));
        }
        let params = match params {
            None => None,
            Some(Value::Array(a)) => Some(a),
            Some(_) => return Err(invalid("\"params\" must be JSON array")),
        };
        match (method, params, result, error, id) {
            (Some(method), Some(params), None, None, Some(id)) => {
                Ok(Message::Request { method, params, id })
            }
            (Some(method), Some(params), None, None, None) => {
                Ok(Message::Notification { method, params })
            }
            (Some(_), None, ..) => Err(invalid("request or notification lacks \"params\"")),
            (Some(_), Some(_), ..) => Err(invalid("request has \"result\" or \"error\"")),
            (None, Some(_), ..) => Err(invalid("\"params\" without \"method\"")),
            (None, None, Some(_), Some(_), _) => {
                Err(invalid("reply has both \"result\" and \"error\""))
            }
            (None, None, Some(result), None, Some(id)) => Ok(Message::Reply { result, id }),
            (None, None, None, Some(error), Some(id)) => Ok(Message::Error { error, id }),
            (None, None, Some(_), None, None) | (None, None, None, Some(_), None) => {
                Err(invalid("reply lacks \"id\""))
            }
            (None, None, None, None, _) => Err(invalid(
                "message is neither request, notification nor reply",
            )),
        }
    }

    /// The JSON value, in the member layout `ovsdb-server` itself produces.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        match self {
            Message::Request { method, params, id } => {
                o.insert("method".into(), Value::String(method.clone()));
                o.insert("params".into(), Value::Array(params.clone()));
                o.insert("id".into(), id.clone());
            }
            Message::Notification { method, params } => {
                o.insert("method".into(), Value::String(method.clone()));
                o.insert("params".into(), Value::Array(params.clone()));
                o.insert("id".into(), Value::Null);
            }
            Message::Reply { result, id } => {
                o.insert("result".into(), result.clone());
                o.insert("error".into(), Value::Null);
                o.insert("id".into(), id.clone());
            }
            Message::Error { error, id } => {
                o.insert("result".into(), Value::Null);
                o.insert("error".into(), error.clone());
                o.insert("id".into(), id.clone());
            }
        }
        Value::Object(o)
    }

    /// Appends the encoded message to `out`.
    pub fn encode(&self, out: &mut Vec<u8>) {
        // Writing a `Value` to a Vec cannot fail: every map key is a string
        // and the writer never returns an error.
        if serde_json::to_writer(&mut *out, &self.to_json()).is_err() {
            tracing::error!("serde_json failed to write a JSON value to memory");
        }
    }

    /// Encodes a request without cloning its parameters.
    pub fn encode_request(method: &str, params: &[Value], id: &Value, out: &mut Vec<u8>) {
        // Writes to a Vec cannot fail and every key written is a string, so
        // the results carry no information.
        out.extend_from_slice(b"{\"method\":");
        let _ = serde_json::to_writer(&mut *out, method);
        out.extend_from_slice(b",\"params\":");
        let _ = serde_json::to_writer(&mut *out, params);
        out.extend_from_slice(b",\"id\":");
        let _ = serde_json::to_writer(&mut *out, id);
        out.push(b'}');
    }

    /// Encodes a reply without cloning its result.
    pub fn encode_reply(result: &Value, id: &Value, out: &mut Vec<u8>) {
        out.extend_from_slice(b"{\"id\":");
        let _ = serde_json::to_writer(&mut *out, id);
        out.extend_from_slice(b",\"result\":");
        let _ = serde_json::to_writer(&mut *out, result);
        out.extend_from_slice(b",\"error\":null}");
    }
}

/// An error reply decoded the way OVSDB structures them.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{error}{}", .details.as_deref().map(|d| format!(": {d}")).unwrap_or_default())]
pub struct RpcError {
    /// The short error tag, such as `"unknown database"` or `"not owner"`.
    pub error: String,
    /// A human-readable explanation, when the server gave one.
    pub details: Option<String>,
    /// The error value as received.
    pub raw: Value,
}

impl RpcError {
    /// Interprets the `error` member of an error reply.
    pub fn from_json(raw: Value) -> Self {
        let (error, details) = match &raw {
            Value::String(s) => (s.clone(), None),
            Value::Object(o) => (
                o.get("error")
                    .and_then(Value::as_str)
                    .unwrap_or("unrecognised error")
                    .to_owned(),
                o.get("details").and_then(Value::as_str).map(str::to_owned),
            ),
            other => (other.to_string(), None),
        };
        Self {
            error,
            details,
            raw,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_what_ovsdb_server_sends() {
        let cases: &[(&str, Message)] = &[
            (
                r#"{"id":0,"result":["Open_vSwitch","_Server"],"error":null}"#,
                Message::Reply {
                    result: json!(["Open_vSwitch", "_Server"]),
                    id: json!(0),
                },
            ),
            (
                r#"{"id":3,"result":null,"error":{"error":"unknown database","details":"get_schema request specifies unknown database x"}}"#,
                Message::Error {
                    error: json!({"error":"unknown database","details":"get_schema request specifies unknown database x"}),
                    id: json!(3),
                },
            ),
            (
                r#"{"id":null,"method":"update2","params":["m",{}]}"#,
                Message::Notification {
                    method: "update2".into(),
                    params: vec![json!("m"), json!({})],
                },
            ),
            (
                r#"{"id":"echo","method":"echo","params":[]}"#,
                Message::Request {
                    method: "echo".into(),
                    params: vec![],
                    id: json!("echo"),
                },
            ),
            (
                r#"{"method":"locked","params":["l"]}"#,
                Message::Notification {
                    method: "locked".into(),
                    params: vec![json!("l")],
                },
            ),
        ];
        for (text, expected) in cases {
            let got = Message::decode(text.as_bytes()).unwrap();
            assert_eq!(&got, expected, "{text}");
            // Re-encoding and decoding again gives the same message.
            let mut out = Vec::new();
            got.encode(&mut out);
            assert_eq!(&Message::decode(&out).unwrap(), expected);
        }
    }

    #[test]
    fn rejects_malformed_messages() {
        let cases = [
            "[]",
            "1",
            r#"{"jsonrpc":"2.0","id":1,"result":1}"#,
            r#"{"method":1,"params":[],"id":1}"#,
            r#"{"method":"echo","params":{},"id":1}"#,
            r#"{"method":"echo","id":1}"#,
            r#"{"result":1}"#,
            r#"{"result":1,"error":"x","id":1}"#,
            r#"{"method":"echo","params":[],"result":1,"id":1}"#,
            r#"{}"#,
            r#"{"id":1}"#,
            "{\"id\":1,",
            "not json",
        ];
        for text in cases {
            assert!(Message::decode(text.as_bytes()).is_err(), "{text} accepted");
        }
    }

    #[test]
    fn request_encoding_matches_ovs_layout() {
        let mut out = Vec::new();
        Message::encode_request("list_dbs", &[], &json!(7), &mut out);
        assert_eq!(
            std::str::from_utf8(&out).unwrap(),
            r#"{"method":"list_dbs","params":[],"id":7}"#
        );
    }

    #[test]
    fn rpc_error_from_object_and_string() {
        let e = RpcError::from_json(json!({"error":"not owner","details":"x"}));
        assert_eq!(e.error, "not owner");
        assert_eq!(e.to_string(), "not owner: x");
        let e = RpcError::from_json(json!("unknown method"));
        assert_eq!(e.to_string(), "unknown method");
    }
}
