//! `haka sub`: subscribe to topic filters and print what arrives.

use std::{
    io::{self, Write},
    time::Duration,
};

use haka::SubscribeReturnCode;
use haka_codec::{Subscription, TopicFilter};
use tokio::time::Instant;

use crate::{
    args::SubArgs,
    connect::{client_id, with_session, Broker},
    output::{Format, Received},
    CliError,
};

/// Why the loop over messages ended.
enum End {
    /// `-C` messages arrived, or Ctrl-C.
    Done,
    /// Standard output is closed (`haka sub | head -1`): a quiet end.
    OutputClosed,
    /// `-W` ran out.
    TimedOut,
}

/// Runs `haka sub`.
pub(crate) async fn run(args: SubArgs) -> Result<(), CliError> {
    let broker = Broker::new(&args.broker)?;
    let subscriptions = args
        .topics
        .iter()
        .map(|filter| match TopicFilter::new(filter.as_str()) {
            Ok(valid) => Ok(Subscription::new(valid, args.qos)),
            Err(error) => Err(CliError::Topic {
                topic: filter.clone(),
                error,
            }),
        })
        .collect::<Result<Vec<_>, _>>()?;
    let id = client_id(args.session.id.as_deref(), "sub");
    let options = with_session(broker.options(&id)?, &args.session)?;
    let format = if args.json {
        Format::Json
    } else {
        Format::Text {
            topic: args.verbose,
            newline: !args.no_newline,
        }
    };

    let (client, mut messages) = broker.connect(options).await?;
    let codes = client.subscribe_many(subscriptions).await?;
    let refused: Vec<String> = args
        .topics
        .iter()
        .zip(&codes)
        .filter(|(_, code)| matches!(code, SubscribeReturnCode::Failure))
        .map(|(filter, _)| filter.clone())
        .collect();
    if refused.len() == args.topics.len() {
        return Err(CliError::SubscriptionRefused { filters: refused });
    }
    for (filter, code) in args.topics.iter().zip(&codes) {
        match code {
            SubscribeReturnCode::Success(qos) => broker.note(format_args!(
                "subscribed to {filter} (granted QoS {})",
                u8::from(*qos)
            )),
            _ => eprintln!("haka: warning: the broker refused the subscription to {filter}"),
        }
    }

    let deadline = args
        .timeout
        .map(|seconds| Instant::now() + Duration::from_secs(seconds));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut received = 0u64;
    let mut line = Vec::new();
    let end = loop {
        tokio::select! {
            message = messages.recv() => {
                let Some(message) = message else {
                    return Err(CliError::Stopped);
                };
                if args.no_retained && message.retain {
                    continue;
                }
                line.clear();
                format.render(Received::from(&message), &mut line);
                match write(&line) {
                    Ok(()) => {}
                    Err(error) if error.kind() == io::ErrorKind::BrokenPipe => {
                        break End::OutputClosed;
                    }
                    Err(error) => return Err(CliError::Stdout(error)),
                }
                received += 1;
                if args.count == Some(received) {
                    break End::Done;
                }
            }
            () = sleep_until(deadline), if deadline.is_some() => break End::TimedOut,
            _ = &mut ctrl_c => break End::Done,
        }
    };
    client.disconnect().await?;
    match end {
        End::Done | End::OutputClosed => Ok(()),
        End::TimedOut => Err(CliError::TimedOut {
            seconds: args.timeout.unwrap_or_default(),
            received,
        }),
    }
}

/// Writes one message to stdout and flushes it, so that a reader of a pipe sees each
/// message as it arrives.
fn write(bytes: &[u8]) -> io::Result<()> {
    let mut stdout = io::stdout().lock();
    stdout.write_all(bytes)?;
    stdout.flush()
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}
