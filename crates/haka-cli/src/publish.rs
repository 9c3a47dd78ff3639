//! `haka pub`: publish a message, a file, or stdin line by line, and wait until the broker
//! has every message.

use bytes::Bytes;
use haka::{Client, PublishHandle};
use haka_codec::TopicName;
use tokio::{
    io::{AsyncBufReadExt, AsyncReadExt, BufReader},
    sync::mpsc,
};

use crate::{
    args::PubArgs,
    connect::{client_id, with_session, Broker},
    CliError,
};

/// How many published messages may await their completion before the next publish waits.
const PENDING: usize = 1024;

/// What to publish.
enum Source {
    /// This payload, `repeat` times.
    Fixed { payload: Bytes, repeat: u64 },
    /// Each line of stdin.
    Lines,
}

/// Runs `haka pub`.
pub(crate) async fn run(args: PubArgs) -> Result<(), CliError> {
    let broker = Broker::new(&args.broker)?;
    TopicName::new(args.topic.as_str()).map_err(|error| CliError::Topic {
        topic: args.topic.clone(),
        error,
    })?;
    let id = client_id(args.session.id.as_deref(), "pub");
    let options = with_session(broker.options(&id)?, &args.session)?;
    // The message is read before connecting: a missing file fails before the network.
    let source = source(&args).await?;
    let (client, _messages) = broker.connect(options).await?;

    let (pending, handles) = mpsc::channel(PENDING);
    let completions = tokio::spawn(complete(handles));
    let published = publish(&client, &args, source, &pending).await;
    drop(pending);
    let completed = completions.await.map_err(|_| CliError::Stopped)?;
    // A failed completion stops the publishing; it is the error to report.
    completed?;
    let count = published?;
    broker.note(format_args!("{count} message(s) published and completed"));
    client.disconnect().await?;
    Ok(())
}

async fn source(args: &PubArgs) -> Result<Source, CliError> {
    let payload = if let Some(message) = &args.message {
        Bytes::from(message.clone())
    } else if let Some(path) = &args.file {
        // Read before any connection exists: nothing else waits on this thread.
        let contents = std::fs::read(path).map_err(|source| CliError::ReadFile {
            path: path.clone(),
            source,
        })?;
        Bytes::from(contents)
    } else if args.stdin_file {
        let mut contents = Vec::new();
        tokio::io::stdin()
            .read_to_end(&mut contents)
            .await
            .map_err(CliError::Stdin)?;
        Bytes::from(contents)
    } else if args.stdin_line {
        return Ok(Source::Lines);
    } else {
        Bytes::new()
    };
    Ok(Source::Fixed {
        payload,
        repeat: args.repeat,
    })
}

/// Publishes every message of `source`, handing each handle to `pending`; stops early when
/// the completions stopped (a message failed). Returns how many were published.
async fn publish(
    client: &Client,
    args: &PubArgs,
    source: Source,
    pending: &mpsc::Sender<PublishHandle>,
) -> Result<u64, CliError> {
    let mut count = 0;
    match source {
        Source::Fixed { payload, repeat } => {
            for _ in 0..repeat {
                if !publish_one(client, args, payload.clone(), pending).await? {
                    break;
                }
                count += 1;
            }
        }
        Source::Lines => {
            let mut stdin = BufReader::new(tokio::io::stdin());
            let mut line = Vec::new();
            loop {
                line.clear();
                let read = stdin
                    .read_until(b'\n', &mut line)
                    .await
                    .map_err(CliError::Stdin)?;
                if read == 0 {
                    break;
                }
                let payload = Bytes::copy_from_slice(strip_newline(&line));
                if !publish_one(client, args, payload, pending).await? {
                    break;
                }
                count += 1;
            }
        }
    }
    Ok(count)
}

/// Publishes one message; `false` when the completions stopped (a message failed, and that
/// error is reported).
async fn publish_one(
    client: &Client,
    args: &PubArgs,
    payload: Bytes,
    pending: &mpsc::Sender<PublishHandle>,
) -> Result<bool, CliError> {
    let handle = client
        .publish(&args.topic, args.qos, args.retain, payload)
        .await?;
    Ok(pending.send(handle).await.is_ok())
}

/// Waits for each handle in turn; the first failure ends the wait.
async fn complete(mut handles: mpsc::Receiver<PublishHandle>) -> Result<(), CliError> {
    while let Some(handle) = handles.recv().await {
        handle.await?;
    }
    Ok(())
}

/// `line` without its line ending (`\n` or `\r\n`).
fn strip_newline(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_endings_are_stripped() {
        assert_eq!(strip_newline(b"a\n"), b"a");
        assert_eq!(strip_newline(b"a\r\n"), b"a");
        assert_eq!(strip_newline(b"last"), b"last");
        assert_eq!(strip_newline(b"\n"), b"");
    }
}
