//! How `haka sub` prints a message: its payload as it is (optionally after its topic), or one
//! JSON object per line.

use base64::Engine;
use haka::{Message, QoS};
use serde::Serialize;

/// The output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// The payload's bytes as they are.
    Text {
        /// `topic payload`, as `mosquitto_sub -v`.
        topic: bool,
        /// A newline after each message.
        newline: bool,
    },
    /// One JSON object per line.
    Json,
}

/// What is printed of a received message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Received<'a> {
    pub(crate) topic: &'a str,
    pub(crate) payload: &'a [u8],
    pub(crate) qos: QoS,
    pub(crate) retain: bool,
    pub(crate) dup: bool,
}

impl<'a> From<&'a Message> for Received<'a> {
    fn from(message: &'a Message) -> Self {
        Self {
            topic: message.topic.as_str(),
            payload: &message.payload,
            qos: message.qos,
            retain: message.retain,
            dup: message.dup,
        }
    }
}

/// A message as a JSON line: the payload as a string when it is UTF-8, else in base64
/// under its own key, so that a reader knows which it got.
#[derive(Serialize)]
struct JsonMessage<'a> {
    topic: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payload_base64: Option<String>,
    qos: u8,
    retain: bool,
    dup: bool,
}

impl Format {
    /// Appends `message` to `out` in this format.
    pub(crate) fn render(self, message: Received<'_>, out: &mut Vec<u8>) {
        match self {
            Self::Text { topic, newline } => {
                if topic {
                    out.extend_from_slice(message.topic.as_bytes());
                    out.push(b' ');
                }
                out.extend_from_slice(message.payload);
                if newline {
                    out.push(b'\n');
                }
            }
            Self::Json => {
                let (payload, payload_base64) = match std::str::from_utf8(message.payload) {
                    Ok(text) => (Some(text), None),
                    Err(_) => (
                        None,
                        Some(base64::engine::general_purpose::STANDARD.encode(message.payload)),
                    ),
                };
                let json = JsonMessage {
                    topic: message.topic,
                    payload,
                    payload_base64,
                    qos: message.qos.into(),
                    retain: message.retain,
                    dup: message.dup,
                };
                // Writing plain strings, numbers and booleans into memory cannot fail.
                serde_json::to_writer(&mut *out, &json)
                    .expect("a JSON message serializes into memory");
                out.push(b'\n');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received<'a>(topic: &'a str, payload: &'a [u8]) -> Received<'a> {
        Received {
            topic,
            payload,
            qos: QoS::AtLeastOnce,
            retain: true,
            dup: false,
        }
    }

    fn render(format: Format, message: Received<'_>) -> Vec<u8> {
        let mut out = Vec::new();
        format.render(message, &mut out);
        out
    }

    #[test]
    fn text_is_the_payload_optionally_after_the_topic() {
        let plain = Format::Text {
            topic: false,
            newline: true,
        };
        assert_eq!(render(plain, received("a/b", b"hi")), b"hi\n");
        let verbose = Format::Text {
            topic: true,
            newline: false,
        };
        assert_eq!(render(verbose, received("a/b", b"hi")), b"a/b hi");
    }

    #[test]
    fn json_escapes_and_says_how_the_payload_is_encoded() {
        let line = render(Format::Json, received("a/\"b\"", b"line\nbreak"));
        let value: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
        assert_eq!(value["topic"], "a/\"b\"");
        assert_eq!(value["payload"], "line\nbreak");
        assert_eq!(value["qos"], 1);
        assert_eq!(value["retain"], true);
        assert_eq!(value["dup"], false);
        assert!(value.get("payload_base64").is_none());
        assert_eq!(line.last(), Some(&b'\n'));
        assert_eq!(line.iter().filter(|b| **b == b'\n').count(), 1);

        let binary = render(Format::Json, received("bin", &[0xff, 0x00, 0x10]));
        let value: serde_json::Value = serde_json::from_slice(&binary).expect("valid JSON");
        assert_eq!(value["payload_base64"], "/wAQ");
        assert!(value.get("payload").is_none());
    }
}
