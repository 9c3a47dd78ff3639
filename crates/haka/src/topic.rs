//! What [`Client::publish`](crate::Client::publish) accepts as a topic.

use haka_codec::{TopicName, ValueError};

/// A topic to publish to: text, checked at every call, or a [`TopicName`], checked once when
/// it was made.
///
/// Text (`&str`, `String`, or a reference to either) is checked against the topic name rules
/// at each [`Client::publish`](crate::Client::publish) and copied into a buffer of its own (a
/// `String` is taken without copying). A [`TopicName`] was checked when it was made and is
/// shared, not copied, so a client that publishes to the same topics again and again makes
/// each one once:
///
/// ```no_run
/// # async fn run(client: haka::Client) -> Result<(), Box<dyn std::error::Error>> {
/// use haka::{QoS, TopicName};
///
/// let topic = TopicName::new("sensors/room1/temperature")?;
/// for reading in ["21.5", "21.6", "21.4"] {
///     client.publish(&topic, QoS::AtLeastOnce, false, reading).await?;
/// }
/// # Ok(())
/// # }
/// ```
///
/// Sealed: implemented for the types above, and references to them, only.
pub trait IntoTopicName: sealed::Sealed {}

impl IntoTopicName for &str {}
impl IntoTopicName for String {}
impl IntoTopicName for TopicName {}
impl<T: IntoTopicName + Clone> IntoTopicName for &T {}

pub(crate) mod sealed {
    use super::{TopicName, ValueError};

    /// The conversion, out of reach of other crates so that the set of topic types stays
    /// ours to change.
    pub trait Sealed {
        /// The topic name, or why the text is not one.
        fn into_topic_name(self) -> Result<TopicName, ValueError>;
    }

    impl Sealed for &str {
        fn into_topic_name(self) -> Result<TopicName, ValueError> {
            TopicName::new(self)
        }
    }

    impl Sealed for String {
        fn into_topic_name(self) -> Result<TopicName, ValueError> {
            TopicName::new(self)
        }
    }

    impl Sealed for TopicName {
        fn into_topic_name(self) -> Result<TopicName, ValueError> {
            Ok(self)
        }
    }

    /// A reference converts a copy: a shared [`TopicName`] is cheap to copy (its bytes are
    /// reference-counted), text is copied as it would be anyway.
    impl<T: Sealed + Clone> Sealed for &T {
        fn into_topic_name(self) -> Result<TopicName, ValueError> {
            self.clone().into_topic_name()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{sealed::Sealed, *};

    /// Text is checked at each conversion; a name made once is passed on as it is, sharing
    /// its bytes.
    #[test]
    fn text_is_checked_and_names_are_shared() {
        assert_eq!(
            "a/b".into_topic_name().map(|t| t.as_str().to_owned()),
            Ok("a/b".to_owned())
        );
        assert_eq!(
            String::from("a/+").into_topic_name(),
            Err(ValueError::WildcardInTopicName)
        );
        assert_eq!(
            (&String::new()).into_topic_name(),
            Err(ValueError::EmptyTopic)
        );
        assert!((&"a/b").into_topic_name().is_ok());

        let name = TopicName::new("sensors/1").expect("valid");
        let shared = (&name).into_topic_name().expect("valid");
        assert_eq!(shared.as_str().as_ptr(), name.as_str().as_ptr());
        assert_eq!(name.clone().into_topic_name(), Ok(name));
    }
}
