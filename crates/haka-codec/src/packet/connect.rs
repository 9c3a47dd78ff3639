//! CONNECT (section 3.1): the first packet a client sends.

use std::fmt;

use bytes::{BufMut, Bytes};

use crate::{
    primitive::{
        invalid, length_prefixed, mqtt_str, parse_body, put_length_prefixed, topic_name, u16, u8,
    },
    scan::Scanned,
    BinaryData, BinaryDataRef, DecodeError, MqttStrRef, MqttString, PacketType, Password,
    PasswordRef, QoS, TopicName, TopicNameRef,
};

/// The protocol name of every MQTT 3.1.1 CONNECT [MQTT-3.1.2-1].
const PROTOCOL_NAME: &[u8] = b"MQTT";
/// The protocol level of MQTT 3.1.1 [MQTT-3.1.2-2].
const PROTOCOL_LEVEL: u8 = 4;

const FLAG_RESERVED: u8 = 0b0000_0001;
const FLAG_CLEAN_SESSION: u8 = 0b0000_0010;
const FLAG_WILL: u8 = 0b0000_0100;
const FLAG_WILL_QOS_SHIFT: u8 = 3;
const FLAG_WILL_QOS: u8 = 0b0001_1000;
const FLAG_WILL_RETAIN: u8 = 0b0010_0000;
const FLAG_PASSWORD: u8 = 0b0100_0000;
const FLAG_USERNAME: u8 = 0b1000_0000;

/// CONNECT: the client's request to open a session.
///
/// A zero-length client identifier is allowed only with clean session set [MQTT-3.1.3-7]; the
/// decoder refuses the other case and the encoder will not write it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Connect {
    /// The client identifier (section 3.1.3.1); may be empty with `clean_session`.
    pub client_id: MqttString,
    /// Whether the server discards any earlier session and starts a new one (section
    /// 3.1.2.4).
    pub clean_session: bool,
    /// Keep alive in seconds: the longest time between two packets the client sends; 0 turns
    /// the mechanism off (section 3.1.2.10).
    pub keep_alive: u16,
    /// The message the server publishes if the connection is lost without DISCONNECT.
    pub will: Option<LastWill>,
    /// User name and password.
    pub login: Option<Login>,
}

impl Connect {
    /// A CONNECT for `client_id` with clean session, a 60-second keep alive, no will and no
    /// login; set the public fields for the rest.
    pub fn new(client_id: MqttString) -> Self {
        Self {
            client_id,
            clean_session: true,
            keep_alive: 60,
            will: None,
            login: None,
        }
    }

    pub(crate) fn body_len(&self) -> usize {
        let mut len = 2 + PROTOCOL_NAME.len() + 1 + 1 + 2 + self.client_id.encoded_len();
        if let Some(will) = &self.will {
            len += will.topic.as_mqtt_string().encoded_len() + will.message.encoded_len();
        }
        if let Some(login) = &self.login {
            len += login.username.encoded_len();
            if let Some(password) = &login.password {
                len += password.data().encoded_len();
            }
        }
        len
    }

    pub(crate) const fn first_byte(&self) -> u8 {
        (PacketType::Connect as u8) << 4
    }

    pub(crate) fn flags(&self) -> u8 {
        let mut flags = 0;
        if self.clean_session {
            flags |= FLAG_CLEAN_SESSION;
        }
        if let Some(will) = &self.will {
            flags |= FLAG_WILL | ((will.qos as u8) << FLAG_WILL_QOS_SHIFT);
            if will.retain {
                flags |= FLAG_WILL_RETAIN;
            }
        }
        if let Some(login) = &self.login {
            flags |= FLAG_USERNAME;
            if login.password.is_some() {
                flags |= FLAG_PASSWORD;
            }
        }
        flags
    }

    pub(crate) fn write_body(&self, dst: &mut impl BufMut) {
        put_length_prefixed(dst, PROTOCOL_NAME);
        dst.put_u8(PROTOCOL_LEVEL);
        dst.put_u8(self.flags());
        dst.put_u16(self.keep_alive);
        put_length_prefixed(dst, self.client_id.as_bytes());
        if let Some(will) = &self.will {
            put_length_prefixed(dst, will.topic.as_bytes());
            put_length_prefixed(dst, will.message.as_bytes());
        }
        if let Some(login) = &self.login {
            put_length_prefixed(dst, login.username.as_bytes());
            if let Some(password) = &login.password {
                put_length_prefixed(dst, password.expose());
            }
        }
    }
}

/// The will: a message the server publishes on the client's behalf when the connection ends
/// without DISCONNECT (section 3.1.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct LastWill {
    /// Topic the will is published to.
    pub topic: TopicName,
    /// The will message.
    pub message: BinaryData,
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
}

impl LastWill {
    /// A will publishing `message` to `topic` at `qos`, not retained.
    pub fn new(topic: TopicName, message: BinaryData, qos: QoS) -> Self {
        Self {
            topic,
            message,
            qos,
            retain: false,
        }
    }
}

/// User name and optional password (sections 3.1.3.4, 3.1.3.5). A password without a user
/// name cannot be expressed [MQTT-3.1.2-22].
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
#[non_exhaustive]
pub struct Login {
    /// The user name.
    pub username: MqttString,
    /// The password; its `Debug` output is redacted.
    pub password: Option<Password>,
}

impl Login {
    /// A login with `username` and an optional `password`.
    pub fn new(username: MqttString, password: Option<Password>) -> Self {
        Self { username, password }
    }
}

/// CONNECT borrowed from the bytes it was decoded from, by
/// [`Codec::decode_ref`](crate::Codec::decode_ref): the counterpart of [`Connect`], checked by
/// the same rules.
///
/// Every field was checked when the packet was parsed; the strings are then read from the
/// packet's bytes when they are asked for, so that the value stays small (a borrowed packet
/// is as large as its largest kind, and CONNECT would otherwise be the largest by far).
///
/// ```
/// # use haka_codec::{Codec, Connect, Login, MqttString, PacketRef};
/// let mut connect = Connect::new(MqttString::new("sensor-17")?);
/// connect.login = Some(Login::new(MqttString::new("user")?, None));
/// let mut wire = bytes::BytesMut::new();
/// Codec::new().encode(&connect.into(), &mut wire)?;
///
/// let Some((PacketRef::Connect(c), _)) = Codec::new().decode_ref(&wire)? else {
///     panic!("a whole CONNECT")
/// };
/// assert_eq!(c.client_id(), "sensor-17");
/// assert_eq!((c.clean_session(), c.keep_alive()), (true, 60));
/// assert!(c.will().is_none());
/// assert_eq!(c.login().map(|l| l.username.as_str()), Some("user"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct ConnectRef<'a> {
    /// The connect flags (checked) and the keep alive, as the last three bytes of the variable
    /// header read big-endian: `flags << 16 | keep_alive`.
    ///
    /// One full word rather than two small fields: with a `u8` and a `u16` (or a `u32`), the
    /// compiler assembled the word the value is returned in on the stack, with stores
    /// narrower than the load that read it back, and a load that cannot be forwarded from
    /// the stores before it waits for them to reach the cache. A profile on Zen 5 showed
    /// that wait taking as long as the rest of the parse of a 42-byte CONNECT.
    flags_keep_alive: u64,
    /// The payload, from the client identifier on: the length-prefixed fields that `flags`
    /// announces, each checked, and nothing else.
    payload: &'a [u8],
}

/// The fields of a CONNECT's payload, as they lie in it.
struct Fields<'a> {
    client_id: &'a [u8],
    will: Option<(&'a [u8], &'a [u8])>,
    username: Option<&'a [u8]>,
    password: Option<&'a [u8]>,
}

impl<'a> ConnectRef<'a> {
    /// The client identifier (section 3.1.3.1); may be empty with clean session.
    pub fn client_id(&self) -> MqttStrRef<'a> {
        MqttStrRef::from_wire(self.fields().client_id).unwrap_or_default()
    }

    /// Whether the server discards any earlier session and starts a new one (section
    /// 3.1.2.4).
    pub const fn clean_session(&self) -> bool {
        self.flags() & FLAG_CLEAN_SESSION != 0
    }

    /// Keep alive in seconds; 0 turns the mechanism off (section 3.1.2.10).
    pub const fn keep_alive(&self) -> u16 {
        self.flags_keep_alive as u16
    }

    /// The connect flags.
    const fn flags(&self) -> u8 {
        (self.flags_keep_alive >> 16) as u8
    }

    /// The message the server publishes if the connection is lost without DISCONNECT.
    pub fn will(&self) -> Option<LastWillRef<'a>> {
        let (topic, message) = self.fields().will?;
        Some(LastWillRef {
            topic: TopicNameRef::from_wire(topic).ok()?,
            message: BinaryDataRef::from_valid(message),
            qos: QoS::from_u8((self.flags() & FLAG_WILL_QOS) >> FLAG_WILL_QOS_SHIFT).ok()?,
            retain: self.flags() & FLAG_WILL_RETAIN != 0,
        })
    }

    /// User name and password.
    pub fn login(&self) -> Option<LoginRef<'a>> {
        let fields = self.fields();
        Some(LoginRef {
            username: MqttStrRef::from_wire(fields.username?).ok()?,
            password: fields
                .password
                .map(|password| BinaryDataRef::from_valid(password).into()),
        })
    }

    /// The owned CONNECT, whose strings share `frame` when they lie inside it (as they do in
    /// a packet decoded from `frame`) and are copied otherwise.
    pub fn to_owned_in(&self, frame: &Bytes) -> Connect {
        Connect {
            client_id: self.client_id().to_owned_in(frame),
            clean_session: self.clean_session(),
            keep_alive: self.keep_alive(),
            will: self.will().map(|will| LastWill {
                topic: will.topic.to_owned_in(frame),
                message: will.message.to_owned_in(frame),
                qos: will.qos,
                retain: will.retain,
            }),
            login: self.login().map(|login| Login {
                username: login.username.to_owned_in(frame),
                password: login.password.map(|p| p.to_owned_in(frame)),
            }),
        }
    }

    /// The payload's fields, found again from their length prefixes (they were checked when
    /// the packet was parsed, so each is there).
    fn fields(&self) -> Fields<'a> {
        let mut rest = self.payload;
        let mut next = || match length_prefixed(rest) {
            Ok((tail, field)) => {
                rest = tail;
                field
            }
            Err(_) => &[],
        };
        let client_id = next();
        let will = (self.flags() & FLAG_WILL != 0).then(|| (next(), next()));
        let username = (self.flags() & FLAG_USERNAME != 0).then(&mut next);
        let password = (self.flags() & FLAG_PASSWORD != 0).then(&mut next);
        Fields {
            client_id,
            will,
            username,
            password,
        }
    }
}

impl fmt::Debug for ConnectRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConnectRef")
            .field("client_id", &self.client_id())
            .field("clean_session", &self.clean_session())
            .field("keep_alive", &self.keep_alive())
            .field("will", &self.will())
            .field("login", &self.login())
            .finish()
    }
}

/// The will of a borrowed CONNECT: the counterpart of [`LastWill`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LastWillRef<'a> {
    /// Topic the will is published to.
    pub topic: TopicNameRef<'a>,
    /// The will message.
    pub message: BinaryDataRef<'a>,
    /// QoS of the will.
    pub qos: QoS,
    /// Whether the will is retained.
    pub retain: bool,
}

/// User name and optional password of a borrowed CONNECT: the counterpart of [`Login`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoginRef<'a> {
    /// The user name.
    pub username: MqttStrRef<'a>,
    /// The password; its `Debug` output is redacted.
    pub password: Option<PasswordRef<'a>>,
}

impl<'a> ConnectRef<'a> {
    /// Parses the whole `body` of a CONNECT.
    #[inline(always)]
    pub(crate) fn parse(body: &'a [u8]) -> Result<Self, DecodeError> {
        match Self::parse_valid(body) {
            Some(connect) => Ok(connect),
            None => Self::parse_general(body),
        }
    }

    /// The CONNECT in `body` when it is valid, found in one straight pass; `None` for any
    /// other body, which [`ConnectRef::parse_general`] then looks at to say what is wrong
    /// with it.
    ///
    /// Every rule is the general parser's (a test compares the two over valid, changed and
    /// rule-breaking bodies); what
    /// differs is the shape. Failing needs no reason here, so each check is one branch to
    /// the same exit, the protocol name and level are compared as one word, and nothing
    /// threads parser state through `Result`s: measured on a 42-byte CONNECT, the general
    /// parser spends as long keeping its input slice on the stack as on the checks.
    #[inline(always)]
    pub(crate) fn parse_valid(body: &'a [u8]) -> Option<Self> {
        /// The protocol name and level of every MQTT 3.1.1 CONNECT [MQTT-3.1.2-1],
        /// [MQTT-3.1.2-2], as the first seven bytes of a little-endian word.
        const NAME_AND_LEVEL: u64 = u64::from_le_bytes([0, 4, b'M', b'Q', b'T', b'T', 4, 0]);
        let (head, payload) = body.split_first_chunk::<10>()?;
        let (&word, _) = head.split_first_chunk::<8>()?;
        let name_and_level = u64::from_le_bytes(word) & 0x00ff_ffff_ffff_ffff;
        let flags = head[7];
        let has_will = flags & FLAG_WILL != 0;
        let invalid_flags =
            // [MQTT-3.1.2-3] The reserved flag is zero.
            flags & FLAG_RESERVED != 0
            // [MQTT-3.1.2-11] Without a will, will QoS and will retain are zero.
            || (!has_will && flags & (FLAG_WILL_QOS | FLAG_WILL_RETAIN) != 0)
            // [MQTT-3.1.2-14] The will QoS is not 3.
            || flags & FLAG_WILL_QOS == FLAG_WILL_QOS
            // [MQTT-3.1.2-22] No password without a user name.
            || (flags & FLAG_PASSWORD != 0 && flags & FLAG_USERNAME == 0);
        if name_and_level != NAME_AND_LEVEL || invalid_flags {
            return None;
        }
        let flags_keep_alive = u64::from(u32::from_be_bytes([0, flags, head[8], head[9]]));
        let mut rest = payload;
        let mut field = || {
            let (len, tail) = rest.split_first_chunk::<2>()?;
            let (field, tail) = tail.split_at_checked(usize::from(u16::from_be_bytes(*len)))?;
            rest = tail;
            Some(field)
        };
        // Strings of plain ASCII without U+0000 are valid [MQTT-1.5.3-1], [MQTT-1.5.3-2];
        // any other is left to the general parser, so that nothing here calls out to search
        // or validate (a call makes the whole function save and restore registers).
        let plain = |s: &[u8]| Scanned::new(s).is_ok_and(|scan| scan.plain());
        // [MQTT-3.1.3-1] Client identifier, will topic, will message, user name, password.
        let client_id = field()?;
        // [MQTT-3.1.3-7] An empty client identifier only with clean session.
        if !plain(client_id) || (client_id.is_empty() && flags & FLAG_CLEAN_SESSION == 0) {
            return None;
        }
        if has_will {
            // [MQTT-3.3.2-2] No wildcards in a topic name; [MQTT-4.7.3-1] never empty.
            let topic = field()?;
            let scan = Scanned::new(topic).ok()?;
            if topic.is_empty() || !scan.plain() || scan.wildcard() {
                return None;
            }
            field()?;
        }
        if flags & FLAG_USERNAME != 0 {
            if !plain(field()?) {
                return None;
            }
            if flags & FLAG_PASSWORD != 0 {
                field()?;
            }
        }
        // Nothing may follow the fields the flags announce.
        rest.is_empty().then_some(Self {
            flags_keep_alive,
            payload,
        })
    }

    /// Parses the whole `body` of a CONNECT, saying what is wrong with it when something is.
    #[cold]
    #[inline(never)]
    pub(crate) fn parse_general(body: &'a [u8]) -> Result<Self, DecodeError> {
        parse_body(PacketType::Connect, body, |i| {
            let (i, name) = length_prefixed(i)?;
            // [MQTT-3.1.2-1] If the protocol name is incorrect the Server MAY disconnect the
            // Client.
            if name != PROTOCOL_NAME {
                return invalid(DecodeError::InvalidProtocolName);
            }
            let (i, level) = u8(i)?;
            // [MQTT-3.1.2-2] The Server MUST respond to the CONNECT Packet with a CONNACK
            // return code 0x01 (unacceptable protocol level) and then disconnect the Client if
            // the Protocol Level is not supported by the Server.
            if level != PROTOCOL_LEVEL {
                return invalid(DecodeError::UnsupportedProtocolLevel(level));
            }
            let (i, flags) = u8(i)?;
            // [MQTT-3.1.2-3] The Server MUST validate that the reserved flag in the CONNECT
            // Control Packet is set to zero and disconnect the Client if it is not zero.
            if flags & FLAG_RESERVED != 0 {
                return invalid(DecodeError::ConnectReservedFlag);
            }
            let will_qos = (flags & FLAG_WILL_QOS) >> FLAG_WILL_QOS_SHIFT;
            let has_will = flags & FLAG_WILL != 0;
            // [MQTT-3.1.2-11] If the Will Flag is set to 0 the Will QoS and Will Retain fields
            // in the Connect Flags MUST be set to zero [MQTT-3.1.2-13], [MQTT-3.1.2-15].
            if !has_will && flags & (FLAG_WILL_QOS | FLAG_WILL_RETAIN) != 0 {
                return invalid(DecodeError::WillFlagsWithoutWill);
            }
            // [MQTT-3.1.2-14] If the Will Flag is set to 1, the value of Will QoS can be 0, 1
            // or 2. It MUST NOT be 3.
            if QoS::from_u8(will_qos).is_err() {
                return invalid(DecodeError::InvalidWillQoS);
            }
            let has_username = flags & FLAG_USERNAME != 0;
            let has_password = flags & FLAG_PASSWORD != 0;
            // [MQTT-3.1.2-22] If the User Name Flag is set to 0, the Password Flag MUST be set
            // to 0.
            if has_password && !has_username {
                return invalid(DecodeError::PasswordWithoutUsername);
            }
            let clean_session = flags & FLAG_CLEAN_SESSION != 0;
            let (i, keep_alive) = u16(i)?;
            let payload = i;

            // [MQTT-3.1.3-1] These fields, if present, MUST appear in the order Client
            // Identifier, Will Topic, Will Message, User Name, Password.
            let (i, client_id) = mqtt_str(i)?;
            // [MQTT-3.1.3-7] If the Client supplies a zero-byte ClientId, the Client MUST also
            // set CleanSession to 1; [MQTT-3.1.3-8] otherwise the Server responds 0x02.
            if client_id.is_empty() && !clean_session {
                return invalid(DecodeError::EmptyClientIdWithoutCleanSession);
            }
            let i = if has_will {
                let (i, _topic) = topic_name(i)?;
                let (i, _message) = length_prefixed(i)?;
                i
            } else {
                i
            };
            let i = if has_username {
                let (i, _username) = mqtt_str(i)?;
                if has_password {
                    length_prefixed(i)?.0
                } else {
                    i
                }
            } else {
                i
            };
            // Whatever is left over is refused by `parse_body`: the payload is exactly the
            // fields just checked.
            Ok((
                i,
                Self {
                    flags_keep_alive: u64::from(flags) << 16 | u64::from(keep_alive),
                    payload,
                },
            ))
        })
    }
}

#[cfg(feature = "arbitrary")]
impl<'a> arbitrary::Arbitrary<'a> for Connect {
    fn arbitrary(u: &mut arbitrary::Unstructured<'a>) -> arbitrary::Result<Self> {
        let client_id: MqttString = u.arbitrary()?;
        let clean_session = client_id.is_empty() || u.arbitrary()?;
        Ok(Self {
            client_id,
            clean_session,
            keep_alive: u.arbitrary()?,
            will: u.arbitrary()?,
            login: u.arbitrary()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use bytes::BytesMut;

    use super::*;
    use crate::{Codec, Packet};

    /// The body of `connect` as encoded.
    fn body(connect: Connect) -> Vec<u8> {
        let mut wire = BytesMut::new();
        Codec::new()
            .encode(&Packet::Connect(Box::new(connect)), &mut wire)
            .expect("encodable");
        let header = crate::FixedHeader::parse(&wire, usize::MAX)
            .expect("valid")
            .expect("whole");
        wire[header.header_len..].to_vec()
    }

    /// CONNECTs with every optional field present or not, and strings of every length class
    /// of the scan (empty, under 4, under 8, under 16, under 32, longer), plain or not.
    fn connects() -> Vec<Connect> {
        let strings = [
            "",
            "a",
            "abcde",
            "sensor-17",
            "haka-bench-00001",
            "a/b/c/d/e/f/g/h/i/j/k",
            "a client identifier far longer than thirty-two bytes",
            "caf\u{e9}",
            "\u{1f600} emoji",
        ];
        let mut connects = Vec::new();
        for (i, id) in strings.iter().enumerate() {
            let other = strings[(i + 3) % strings.len()];
            let topic = if other.is_empty() { "t" } else { other };
            for shape in 0..8 {
                let mut c = Connect::new(MqttString::new(*id).unwrap());
                c.clean_session = id.is_empty() || shape & 1 != 0;
                c.keep_alive = 0x1234;
                if shape & 2 != 0 {
                    let mut will = LastWill::new(
                        TopicName::new(topic).unwrap(),
                        BinaryData::new(other.as_bytes().to_vec()).unwrap(),
                        QoS::AtLeastOnce,
                    );
                    will.retain = shape & 1 != 0;
                    c.will = Some(will);
                }
                if shape & 4 != 0 {
                    let password =
                        (shape & 1 != 0).then(|| Password::new(b"\0\xff pass".to_vec()).unwrap());
                    c.login = Some(Login::new(MqttString::new(other).unwrap(), password));
                }
                connects.push(c);
            }
        }
        connects
    }

    /// Whether the general parser accepts `body` with every string plain ASCII without
    /// U+0000: exactly the CONNECTs that the straight pass must accept.
    fn plain_and_valid(body: &[u8]) -> bool {
        let Ok(c) = ConnectRef::parse_general(body) else {
            return false;
        };
        let plain = |s: &str| s.is_ascii() && !s.contains('\0');
        plain(c.client_id().as_str())
            && c.will().is_none_or(|w| plain(w.topic.as_str()))
            && c.login().is_none_or(|l| plain(l.username.as_str()))
    }

    /// The straight pass accepts exactly the valid CONNECTs whose strings are plain ASCII,
    /// and reads each as the general parser does; everything else it leaves to the general
    /// parser. Checked on CONNECTs of every shape, on single-byte changes of each (every
    /// position set to, and xored with, each of fifteen values: every single bit, and bytes
    /// that end a string early, make it non-ASCII or put a wildcard in it), on every
    /// truncation and some extensions, and on bodies made to break one rule each.
    #[test]
    fn the_straight_pass_agrees_with_the_general_parser() {
        let check = |body: &[u8]| {
            let fast = ConnectRef::parse_valid(body);
            match fast {
                Some(fast) => assert_eq!(Ok(fast), ConnectRef::parse_general(body), "{body:?}"),
                None => assert!(!plain_and_valid(body), "{body:?} refused by the pass"),
            }
        };
        let mut accepted = 0;
        for connect in connects() {
            let body = body(connect);
            accepted += usize::from(ConnectRef::parse_valid(&body).is_some());
            check(&body);
            for at in 0..body.len() {
                for byte in [
                    0x00, 0x01, 0x02, 0x04, 0x08, 0x10, 0x20, 0x40, 0x80, b'#', b'+', b'M', 0x7f,
                    0xc0, 0xff,
                ] {
                    let mut changed = body.clone();
                    changed[at] = byte;
                    check(&changed);
                    changed[at] = body[at] ^ byte;
                    check(&changed);
                }
            }
            for len in 0..body.len() {
                check(&body[..len]);
            }
            for extra in [&[0][..], &[0, 0], &[0, 1, b'a']] {
                check(&[&body[..], extra].concat());
            }
        }
        // Bodies that break one rule each, which single-byte changes of valid ones do not
        // reach: the flags are the only change, or a field is empty.
        let head = |flags: u8| [0, 4, b'M', b'Q', b'T', b'T', 4, flags, 0, 60];
        for (flags, payload) in [
            // [MQTT-3.1.2-22] A password without a user name, with and without its field.
            (0x42, &[0, 1, b'c'][..]),
            (0x42, &[0, 1, b'c', 0, 1, b'p'][..]),
            // [MQTT-3.1.2-11] Will retain or will QoS without a will.
            (0x22, &[0, 1, b'c'][..]),
            (0x0a, &[0, 1, b'c'][..]),
            (0x12, &[0, 1, b'c'][..]),
            // [MQTT-3.1.2-14] Will QoS 3.
            (0x1e, &[0, 1, b'c', 0, 1, b't', 0, 0][..]),
            // [MQTT-4.7.3-1] An empty will topic.
            (0x06, &[0, 1, b'c', 0, 0, 0, 0][..]),
            // [MQTT-3.1.3-7] An empty client identifier without clean session.
            (0x00, &[0, 0][..]),
            // Valid, for contrast: an empty will message, an empty password.
            (0x06, &[0, 1, b'c', 0, 1, b't', 0, 0][..]),
            (0xc2, &[0, 1, b'c', 0, 1, b'u', 0, 0][..]),
        ] {
            let body = [&head(flags)[..], payload].concat();
            check(&body);
        }
        // The pass is taken by the plain CONNECTs: the first seven strings, in every shape but
        // those with a non-plain user name or will topic.
        assert!(accepted >= 40, "only {accepted} taken the straight pass");
    }
}
