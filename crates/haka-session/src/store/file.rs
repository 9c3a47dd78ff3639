//! [`FileStore`]: the queue in a checksummed log on disk, which survives restarts, `SIGKILL`
//! and (with [`Durability::Fsync`]) power loss.
//!
//! The design, with the byte layout and the recovery rules, is in `docs/persistence.md`. In
//! short: every [`Store`] method checks its change against the in-memory [`State`] and
//! encodes it as a record into a pending buffer, without I/O; [`Store::commit`] appends all
//! pending records as one checksummed frame with one `write`, then flushes it to the disk if
//! asked to. The log lives in one of two files, which take turns: when the log has grown to
//! more than twice what is live in it, a snapshot of the live state is written over the other
//! file, which then becomes the log. Both files are overwritten in place rather than created
//! anew, so that an append lands in pages the operating system already holds. Every frame
//! carries the random epoch of its file's current use, so that what an earlier use left
//! behind the log's end is never read as part of it. Opening replays the log; a frame cut
//! short by a crash ends it, and anything that is wrong before the last frame of the log is
//! [`StoreError::Corrupt`].

mod legacy;

use std::{
    borrow::Cow,
    collections::hash_map::RandomState,
    fmt,
    fs::{self, File, OpenOptions, TryLockError},
    hash::{BuildHasher, Hasher},
    io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write},
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use bytes::Bytes;
use haka_codec::{PacketId, QoS, TopicName};

use super::{state::State, Recovered, Stage, Store, StoreError, StoredMessage};
use crate::MessageId;

/// How far [`Store::commit`] pushes a frame before it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum Durability {
    /// Hand the frame to the operating system (one `write`): a committed change survives the
    /// end of the process, even by `SIGKILL`, but not a power loss or a kernel crash. Those
    /// may take with them what the kernel had not yet written back (Linux writes back within
    /// about 30 seconds): recent commits, and, since a compaction writes the live messages
    /// again, older messages that a recent compaction moved. They may also leave the log in
    /// a state that [`FileStore::open`] reports as [`StoreError::Corrupt`]. The fast choice:
    /// a commit costs one system call.
    Flush,
    /// Also wait until the disk has the frame (`fdatasync` after each commit): a committed
    /// change survives power loss. The safe choice and the default: a commit costs a disk
    /// flush, from tens of microseconds on an NVMe drive to many milliseconds on an SD card,
    /// shared by every change made since the previous commit.
    #[default]
    Fsync,
}

/// How a [`FileStore`] is opened: built from [`FileStoreOptions::new`] by chaining setters.
///
/// ```
/// use haka_session::store::{Durability, FileStoreOptions};
///
/// let options = FileStoreOptions::new()
///     .durability(Durability::Flush)
///     .compact_min_bytes(16 << 20);
/// # let _ = options;
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FileStoreOptions {
    durability: Durability,
    compact_min_bytes: u64,
}

impl FileStoreOptions {
    /// The default of [`FileStoreOptions::compact_min_bytes`]: 4 MiB.
    ///
    /// The two log files take turns and are overwritten in place, so each grows to about this
    /// size (more while more is live) and stays there. Small enough that the pages of the
    /// log stay in the processor's caches between one use of a file and the next, which is
    /// what makes an append cheap: measured on the benchmark machine, writing 100 KiB at a
    /// time over a file of 1 MiB cost 32 ns per KiB, of 4 MiB 60 ns, of 64 MiB 140 to 150 ns,
    /// and appending to a new file 214 to 256 ns. Large enough that a compaction, which
    /// writes the live state again, stays rare next to the commits. With
    /// [`Durability::Fsync`] each compaction also costs two flushes to the disk.
    pub const DEFAULT_COMPACT_MIN_BYTES: u64 = 4 << 20;

    /// The defaults: [`Durability::Fsync`], compaction from
    /// [`FileStoreOptions::DEFAULT_COMPACT_MIN_BYTES`].
    pub const fn new() -> Self {
        Self {
            durability: Durability::Fsync,
            compact_min_bytes: Self::DEFAULT_COMPACT_MIN_BYTES,
        }
    }

    /// How far each commit goes; [`Durability::Fsync`] unless set.
    #[must_use]
    pub const fn durability(mut self, durability: Durability) -> Self {
        self.durability = durability;
        self
    }

    /// The log is compacted when it is longer than both `bytes` and twice the size of the
    /// live state. Smaller values keep the files smaller at the cost of more frequent
    /// compactions; the amortized cost per byte written stays constant either way.
    #[must_use]
    pub const fn compact_min_bytes(mut self, bytes: u64) -> Self {
        self.compact_min_bytes = bytes;
        self
    }
}

impl Default for FileStoreOptions {
    fn default() -> Self {
        Self::new()
    }
}

/// A store in a directory on disk: a log of checksummed records that survives restarts and
/// crashes.
///
/// Changes are buffered in memory as they are made, and [`Store::commit`] appends all of them
/// as one frame with one `write` (group commit), flushed to the disk per the
/// [`Durability`] of its [`FileStoreOptions`]. A change that was not committed is lost
/// when the store is dropped. Payloads are copied once, into the frame; the store's own
/// index shares them with the session. On Linux, when the log grows past its file's end,
/// the blocks are reserved 4 MiB ahead (`fallocate` without changing the file's length),
/// which spares every append the file system's block allocation.
///
/// The directory holds `queue.0.log` and `queue.1.log`, the two files the log takes turns
/// in, and `lock`, held with an exclusive lock for as long as the store is open, so that two
/// stores never write to one log ([`StoreError::Locked`]). A directory written by an earlier
/// version, with its log in `queue.log`, is moved to this layout when it is opened.
///
/// [`FileStore::open`] replays the log. A frame cut short by a crash in the middle of a
/// commit (which therefore never confirmed it) ends the log, and
/// [`FileStore::recovered_tail_bytes`] tells how much of it was found; the next commit
/// writes over it. Any other damage is [`StoreError::Corrupt`], and the files are left as
/// they are.
///
/// When a commit leaves the log longer than both
/// [`compact_min_bytes`](FileStoreOptions::compact_min_bytes) and twice the size of the live
/// state, that commit also writes a snapshot of the live state over the other file, which
/// then holds the log. It then takes as long as writing the live state once; the amortized
/// cost of compaction is a constant per byte committed. A compaction that fails leaves the
/// log where it was, is not reported (the commit itself succeeded), and is tried again later.
///
/// ```
/// use bytes::Bytes;
/// use haka_codec::{QoS, TopicName};
/// use haka_session::store::{FileStore, FileStoreOptions, Stage, Store, StoredMessage};
/// use haka_session::MessageId;
///
/// let dir = tempfile::tempdir()?;
/// let mut store = FileStore::open(dir.path(), FileStoreOptions::new())?;
/// let recovered = store.recover()?;
/// assert!(recovered.messages.is_empty());
///
/// store.insert(StoredMessage {
///     id: recovered.next_message_id,
///     qos: QoS::AtLeastOnce,
///     retain: false,
///     topic: TopicName::new("sensors/room1/temperature")?,
///     payload: Bytes::from_static(b"21.5"),
///     stage: Stage::Queued,
/// })?;
/// store.commit()?; // On the disk from here on.
/// drop(store);
///
/// // After a restart (or a crash), the message is still there.
/// let mut store = FileStore::open(dir.path(), FileStoreOptions::new())?;
/// let recovered = store.recover()?;
/// assert_eq!(&recovered.messages[0].payload[..], b"21.5");
/// assert_eq!(recovered.next_message_id, MessageId::new(2));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileStore {
    dir: PathBuf,
    options: FileStoreOptions,
    /// `queue.0.log` and `queue.1.log`. `files[current]` holds the log and is positioned at
    /// its end, `file_len`; the other is the spare, which the next compaction overwrites.
    files: [File; 2],
    current: usize,
    /// The header of `files[current]`.
    header: LogHeader,
    /// The `lock` file, locked for the store's lifetime. Never read; dropping it unlocks.
    _lock: File,
    /// Length of the log up to the last committed frame.
    file_len: u64,
    /// How far the current file's blocks are known to be allocated: its length, or further
    /// once reserved (see [`FileStore::reserve`]).
    reserved_to: u64,
    /// The live state: what was committed plus what is pending.
    state: State,
    /// The encoded size of every live message's insert record.
    message_bytes: u64,
    /// Frames of the changes made since the last commit.
    pending: Frames,
    /// Bytes of a frame cut short found at the log's end when it was opened.
    recovered_tail_bytes: u64,
    compactions: u64,
    /// No compaction is tried again before the log reaches this length, after one failed.
    compact_retry_at: u64,
    /// A write failed and what it left behind the log's end could not be wiped.
    poisoned: bool,
    /// Tests: the next commit writes only this many bytes, then fails.
    #[cfg(test)]
    fail_next_write_after: Option<usize>,
    /// Tests: the next wipe after a failed write fails.
    #[cfg(test)]
    fail_next_wipe: bool,
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory and an empty store if there is
    /// none, and replays its log.
    ///
    /// # Errors
    ///
    /// [`StoreError::Locked`] when another store has the directory open,
    /// [`StoreError::UnsupportedFormat`] when a log file is not a Haka store log of a version
    /// this build reads, [`StoreError::Corrupt`] when the log is damaged other than by a torn
    /// last write, and [`StoreError::Io`] when the file system fails.
    pub fn open(dir: impl AsRef<Path>, options: FileStoreOptions) -> Result<Self, StoreError> {
        let dir = dir.as_ref().to_path_buf();
        create_dir_durably(&dir)?;

        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(dir.join(LOCK_FILE))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(StoreError::Locked),
            Err(TryLockError::Error(error)) => return Err(StoreError::Io(error)),
        }

        let legacy_tail_bytes = legacy::migrate(&dir)?;

        let mut created = false;
        let mut open_log = |name: &str| -> io::Result<File> {
            let path = dir.join(name);
            created |= !path.exists();
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(path)
        };
        let mut files = [open_log(LOG_FILES[0])?, open_log(LOG_FILES[1])?];
        if created {
            sync_dir(&dir)?;
        }

        let (current, header) = match [read_header(&files[0])?, read_header(&files[1])?] {
            [None, None] => {
                // A new store: the header alone is an empty log.
                let header = LogHeader {
                    sequence: 1,
                    epoch: new_epoch(),
                };
                write_at(&mut files[0], 0, &header.encode())?;
                files[0].sync_data()?;
                (0, header)
            }
            // Alone, a log can only be the first: once a compaction has moved the log, the
            // other file keeps a header (its older log, or a placeholder). A log of a later
            // sequence beside a file without one is a log whose newer file was lost, and
            // taking it would bring back an older state.
            [Some(header), None] if header.sequence == 1 => (0, header),
            [None, Some(header)] if header.sequence == 1 => (1, header),
            [Some(_), None] | [None, Some(_)] => {
                return Err(corrupt(0, "a log file is missing its header"));
            }
            [Some(first), Some(second)] => match first.sequence.cmp(&second.sequence) {
                std::cmp::Ordering::Greater => (0, first),
                std::cmp::Ordering::Less => (1, second),
                std::cmp::Ordering::Equal => {
                    return Err(corrupt(0, "both log files have the same sequence number"));
                }
            },
        };
        if header.sequence == 0 {
            // Only placeholders: the log itself is gone.
            return Err(corrupt(0, "no log file, only one a compaction had begun"));
        }

        let Replayed {
            state,
            valid_len,
            torn_bytes,
        } = replay(&files[current], header.epoch)?;
        if torn_bytes > 0 {
            // The header of the frame cut short goes, so that it is reported once: the rest
            // of it is what any earlier use of the file leaves behind the log's end.
            write_at(&mut files[current], valid_len, &[0; FRAME_HEAD_LEN])?;
            files[current].sync_data()?;
        }
        files[current].seek(SeekFrom::Start(valid_len))?;
        let reserved_to = files[current].metadata()?.len();

        let message_bytes = state
            .messages
            .values()
            .map(|message| record_len_of_insert(message) as u64)
            .sum();
        Ok(Self {
            dir,
            options,
            files,
            current,
            header,
            _lock: lock,
            file_len: valid_len,
            reserved_to,
            state,
            message_bytes,
            pending: Frames::default(),
            recovered_tail_bytes: torn_bytes + legacy_tail_bytes,
            compactions: 0,
            compact_retry_at: 0,
            poisoned: false,
            #[cfg(test)]
            fail_next_write_after: None,
            #[cfg(test)]
            fail_next_wipe: false,
        })
    }

    /// The directory of the store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The length of the log in bytes, up to the last committed frame. The file that holds
    /// it may be longer: what an earlier use of the file left behind the log's end stays
    /// until it is written over.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// How many bytes of a frame cut short were found at the log's end when it was opened:
    /// changes that a crash interrupted during their commit, which had therefore not been
    /// confirmed. 0 after a clean shutdown, and when the crash left less than a frame's
    /// header.
    pub fn recovered_tail_bytes(&self) -> u64 {
        self.recovered_tail_bytes
    }

    /// How many times this store compacted its log since it was opened.
    pub fn compactions(&self) -> u64 {
        self.compactions
    }

    /// How many outgoing messages it holds, committed or not.
    pub fn len(&self) -> usize {
        self.state.messages.len()
    }

    /// Whether it holds no outgoing message.
    pub fn is_empty(&self) -> bool {
        self.state.messages.is_empty()
    }

    /// What a snapshot of the live state takes on disk, near enough to decide when to
    /// compact.
    fn live_bytes(&self) -> u64 {
        let inbound = self.state.inbound.len() as u64 * PACKET_ID_RECORD_LEN as u64;
        (HEADER_LEN + FRAME_HEAD_LEN + NEXT_ID_RECORD_LEN) as u64 + self.message_bytes + inbound
    }

    /// Checks `record` against the state, applies it and buffers it for the next commit.
    fn change(&mut self, record: Record<'_>) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        let noop = match record {
            Record::InsertInbound(packet_id) => self.state.inbound.contains(&packet_id),
            Record::RemoveInbound(packet_id) => !self.state.inbound.contains(&packet_id),
            Record::ClearInbound => self.state.inbound.is_empty(),
            _ => false,
        };
        if noop {
            return Ok(());
        }
        if record.encoded_len() > MAX_FRAME_LEN as usize {
            return Err(StoreError::Invalid("message too large for the file store"));
        }
        if let Record::Insert(message) = record {
            // Checked, written to the pending frame, then moved into the state: the store
            // keeps the message it was given rather than a copy.
            let message = message.into_owned();
            self.state.check_insert(&message)?;
            self.pending.push(
                &Record::Insert(Cow::Borrowed(&message)),
                MAX_FRAME_LEN as usize,
                self.header.epoch,
            );
            self.message_bytes += record_len_of_insert(&message) as u64;
            self.state.insert_checked(message);
            return Ok(());
        }
        if let Record::Remove(id) = record {
            let removed = self.state.take(id)?;
            self.message_bytes -= record_len_of_insert(&removed) as u64;
            self.pending
                .push(&record, MAX_FRAME_LEN as usize, self.header.epoch);
            return Ok(());
        }
        // Any other record is a few numbers: a copy of it is written once it applied.
        let written = record.clone();
        apply(&mut self.state, record)?;
        self.pending
            .push(&written, MAX_FRAME_LEN as usize, self.header.epoch);
        Ok(())
    }

    /// Appends the pending frames to the log, as far as `durability` asks. On failure, how
    /// many bytes were written before it.
    fn write_pending(&mut self) -> Result<(), (io::Error, usize)> {
        self.reserve(self.pending.buf.len() as u64);
        let file = &mut self.files[self.current];
        let mut buf = &self.pending.buf[..];
        #[cfg(test)]
        if let Some(limit) = self.fail_next_write_after.take() {
            let n = limit.min(buf.len());
            file.write_all(&buf[..n]).map_err(|error| (error, 0))?;
            return Err((io::Error::other("injected write failure"), n));
        }
        let mut written = 0;
        while !buf.is_empty() {
            match file.write(buf) {
                Ok(0) => return Err((io::ErrorKind::WriteZero.into(), written)),
                Ok(n) => {
                    written += n;
                    buf = &buf[n..];
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => return Err((error, written)),
            }
        }
        if self.options.durability == Durability::Fsync {
            file.sync_data().map_err(|error| (error, written))?;
        }
        Ok(())
    }

    /// Wipes the `written` bytes a failed commit left behind the log's end, so that a
    /// reopened store never reads them as committed, and puts the file back at the end.
    fn wipe_after_failure(&mut self, written: usize) -> io::Result<()> {
        const ZEROS: [u8; 4096] = [0; 4096];
        #[cfg(test)]
        if std::mem::take(&mut self.fail_next_wipe) {
            return Err(io::Error::other("injected wipe failure"));
        }
        let file = &mut self.files[self.current];
        file.seek(SeekFrom::Start(self.file_len))?;
        let mut left = written;
        while left > 0 {
            let n = left.min(ZEROS.len());
            file.write_all(&ZEROS[..n])?;
            left -= n;
        }
        if written > 0 && self.options.durability == Durability::Fsync {
            file.sync_data()?;
        }
        file.seek(SeekFrom::Start(self.file_len))?;
        Ok(())
    }

    /// Makes sure the file system has blocks for the next `len` bytes of the log, reserving
    /// [`RESERVE_AHEAD`] more at a time past the file's end (`fallocate` with
    /// `FALLOC_FL_KEEP_SIZE`: the file's length does not change).
    ///
    /// An append into blocks reserved this way skips the file system's per-block allocation
    /// work: with ext4's delayed allocation, each new page of a growing file otherwise takes a
    /// reservation in `ext4_da_get_block_prep`, 6 % of a durable client's time at 1 KiB per
    /// message. Within the file's length, where a file used before is written over, the
    /// blocks are there already. A failure (a file system without `fallocate`, a full disk)
    /// is ignored, and not tried again for another [`RESERVE_AHEAD`] bytes: the write that
    /// follows reports anything that matters.
    fn reserve(&mut self, len: u64) {
        let end = self.file_len + len;
        if end <= self.reserved_to {
            return;
        }
        let to = end + RESERVE_AHEAD;
        #[cfg(target_os = "linux")]
        {
            use rustix::fs::{fallocate, FallocateFlags};
            let _ = fallocate(
                &self.files[self.current],
                FallocateFlags::KEEP_SIZE,
                self.file_len,
                to - self.file_len,
            );
        }
        self.reserved_to = to;
    }

    /// How long the log may grow before it is compacted.
    fn compaction_threshold(&self) -> u64 {
        self.options
            .compact_min_bytes
            .max(self.live_bytes().saturating_mul(2))
    }

    /// Whether the log has grown enough beyond the live state to be compacted.
    fn wants_compaction(&self) -> bool {
        self.file_len > self.compaction_threshold() && self.file_len >= self.compact_retry_at
    }

    /// Writes a snapshot of the live state, which has no pending change, over the spare file
    /// and continues there. On failure, the store continues on the current file, which still
    /// holds everything.
    fn compact(&mut self) {
        let spare = 1 - self.current;
        let header = LogHeader {
            sequence: self.header.sequence + 1,
            epoch: new_epoch(),
        };
        if !matches!(read_header(&self.files[spare]), Ok(Some(_))) {
            // A file without a header (new, or emptied after a burst) gets one of sequence 0
            // before anything else: a crash in the middle of the compaction then leaves a
            // file that is plainly not the log, rather than data without a header.
            let placeholder = LogHeader {
                sequence: 0,
                epoch: new_epoch(),
            };
            let written = write_at(&mut self.files[spare], 0, &placeholder.encode())
                .and_then(|()| self.files[spare].sync_data());
            if written.is_err() {
                self.retry_compaction_later();
                return;
            }
        }
        match write_log(
            &mut self.files[spare],
            &self.state,
            header,
            self.options.durability,
        ) {
            Ok(len) => self.continue_on(spare, header, len),
            Err(LogWriteError::BeforeHeader) => self.retry_compaction_later(),
            Err(LogWriteError::AfterHeader { len }) => {
                // The new log is in place (a reopened store reads it), but the flush after
                // its header failed: the next commit's flush covers it.
                self.continue_on(spare, header, len);
            }
        }
    }

    /// After a compaction that failed before the spare's header was written: try again only
    /// once as much as is live has been appended, so that a full disk does not turn every
    /// commit into a rewrite.
    fn retry_compaction_later(&mut self) {
        self.compact_retry_at =
            self.file_len + self.options.compact_min_bytes.max(self.live_bytes());
    }

    /// Continues on `files[spare]`, which now holds the log, `len` bytes long.
    fn continue_on(&mut self, spare: usize, header: LogHeader, len: u64) {
        let old = self.current;
        self.current = spare;
        self.header = header;
        self.file_len = len;
        self.reserved_to = self.files[spare].metadata().map_or(0, |m| m.len());
        self.compactions += 1;
        self.compact_retry_at = 0;
        if self.files[spare].seek(SeekFrom::Start(len)).is_err() {
            // Where the next commit would write is unknown.
            self.poisoned = true;
        }
        // The old log's file is the spare now: the next compaction writes over it, in pages
        // the operating system still holds. Only when a burst left it far longer than the
        // log needs is it cut to a placeholder header, once the new log is on the disk
        // (whatever the durability: cutting the old file must never reach the disk before
        // the new log). A placeholder rather than nothing: a log of a sequence above 1 never
        // stands alone (see `open`).
        let spare_len = self.files[old].metadata().map_or(0, |m| m.len());
        if spare_len > SHRINK_FACTOR * self.compaction_threshold()
            && self.files[spare].sync_data().is_ok()
        {
            let placeholder = LogHeader {
                sequence: 0,
                epoch: new_epoch(),
            };
            let _ = write_at(&mut self.files[old], 0, &placeholder.encode())
                .and_then(|()| self.files[old].set_len(HEADER_LEN as u64));
        }
    }
}

impl Store for FileStore {
    fn recover(&mut self) -> Result<Recovered, StoreError> {
        Ok(self.state.recovered())
    }

    fn insert(&mut self, message: StoredMessage) -> Result<(), StoreError> {
        self.change(Record::Insert(Cow::Owned(message)))
    }

    fn assign(&mut self, id: MessageId, packet_id: PacketId) -> Result<(), StoreError> {
        self.change(Record::Assign(id, packet_id))
    }

    fn release(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.change(Record::Release(id))
    }

    fn remove(&mut self, id: MessageId) -> Result<(), StoreError> {
        self.change(Record::Remove(id))
    }

    fn insert_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.change(Record::InsertInbound(packet_id))
    }

    fn remove_inbound(&mut self, packet_id: PacketId) -> Result<(), StoreError> {
        self.change(Record::RemoveInbound(packet_id))
    }

    fn clear_inbound(&mut self) -> Result<(), StoreError> {
        self.change(Record::ClearInbound)
    }

    fn commit(&mut self) -> Result<(), StoreError> {
        if self.poisoned {
            return Err(StoreError::Poisoned);
        }
        if self.pending.is_empty() {
            return Ok(());
        }
        self.pending.close(self.header.epoch);
        if let Err((error, written)) = self.write_pending() {
            // The log ends where it did; the pending frames stay for a retry, which writes
            // them there again. Whatever this write left behind that end is wiped first: a
            // frame of it that reached the file whole must not be read as committed.
            if self.wipe_after_failure(written).is_err() {
                self.poisoned = true;
            }
            return Err(error.into());
        }
        self.file_len += self.pending.buf.len() as u64;
        self.pending.clear();

        if self.wants_compaction() {
            self.compact();
        }
        Ok(())
    }
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore")
            .field("dir", &self.dir)
            .field("options", &self.options)
            .field("current", &LOG_FILES[self.current])
            .field("file_len", &self.file_len)
            .field("pending_bytes", &self.pending.buf.len())
            .field("messages", &self.state.messages.len())
            .field("inbound", &self.state.inbound.len())
            .field("next_message_id", &self.state.next_message_id)
            .field("compactions", &self.compactions)
            .field("poisoned", &self.poisoned)
            .finish_non_exhaustive()
    }
}

/// How far ahead of the log's end its blocks are reserved when it grows past its file's
/// length: one `fallocate` per this many bytes appended there.
const RESERVE_AHEAD: u64 = 4 << 20;

/// The spare file is emptied when it is longer than this many times the compaction
/// threshold: after a burst, not in the steady state.
const SHRINK_FACTOR: u64 = 4;

// The files in the store's directory.
const LOG_FILES: [&str; 2] = ["queue.0.log", "queue.1.log"];
const LOCK_FILE: &str = "lock";

// A log file starts with a header: `MAGIC`, the format version (`u32`), the sequence number
// of the file's use (`u64`: of two files, the higher one holds the log), the epoch of that use
// (`u64`, random) and the CRC-32 of the preceding 28 bytes (`u32`). All integers are little
// endian.
const MAGIC: [u8; 8] = *b"HAKAQLOG";
const VERSION: u32 = 2;
const HEADER_LEN: usize = 32;

// A frame: `[body length u32][crc32 of the body u32][epoch u64][crc32 of the previous 16 bytes
// u32]`, then the body: one or more records. The header's own checksum makes its length
// trustworthy; the epoch, that of the file's header, tells a frame of the log from one an
// earlier use of the file left behind.
const FRAME_HEAD_LEN: usize = 20;
/// The longest frame body written or read. A record (so a message) must fit in one frame.
/// MQTT's largest PUBLISH is 256 MiB.
const MAX_FRAME_LEN: u32 = 512 << 20;
/// A snapshot is written in frames of about this size, so that a compaction needs no more
/// memory than that beyond the state, and a message recovered from a snapshot pins no more
/// than that of its frame's buffer.
const SNAPSHOT_FRAME_LEN: usize = 1 << 20;

/// What a log file's header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LogHeader {
    /// Which use of the two files this is: each compaction takes the next number.
    sequence: u64,
    /// Random, carried by every frame of this use.
    epoch: u64,
}

impl LogHeader {
    fn encode(&self) -> [u8; HEADER_LEN] {
        let mut header = [0; HEADER_LEN];
        header[..8].copy_from_slice(&MAGIC);
        header[8..12].copy_from_slice(&VERSION.to_le_bytes());
        header[12..20].copy_from_slice(&self.sequence.to_le_bytes());
        header[20..28].copy_from_slice(&self.epoch.to_le_bytes());
        let crc = crc32fast::hash(&header[..28]);
        header[28..].copy_from_slice(&crc.to_le_bytes());
        header
    }
}

/// The header of a log file; `None` for a file never used: empty, or zeros only (a new
/// store's first file, if a power loss took the header it was writing).
///
/// A file with data but zeros where the header goes is damage: no write of the store leaves
/// one (a compaction into a file without a header first writes one of sequence 0, which no
/// log has), and taking it for unused could bring back the other file's older log.
fn read_header(file: &File) -> Result<Option<LogHeader>, StoreError> {
    let len = file.metadata()?.len();
    let mut bytes = [0; HEADER_LEN];
    let have = len.min(HEADER_LEN as u64) as usize;
    read_exact_at(file, &mut bytes[..have], 0)?;
    if bytes.iter().all(|&b| b == 0) {
        if zeros_from(file, have as u64, len)? {
            return Ok(None);
        }
        return Err(corrupt(0, "log file without a header"));
    }
    if have < HEADER_LEN
        || bytes[..8] != MAGIC
        || u32::from_le_bytes(bytes[8..12].try_into().expect("4 bytes")) != VERSION
    {
        return Err(StoreError::UnsupportedFormat);
    }
    let crc = u32::from_le_bytes(bytes[28..].try_into().expect("4 bytes"));
    if crc32fast::hash(&bytes[..28]) != crc {
        return Err(corrupt(0, "log header checksum mismatch"));
    }
    Ok(Some(LogHeader {
        sequence: u64::from_le_bytes(bytes[12..20].try_into().expect("8 bytes")),
        epoch: u64::from_le_bytes(bytes[20..28].try_into().expect("8 bytes")),
    }))
}

/// Whether the bytes of `file` from `from` to `len` are all zero. Reads them once, 64 KiB at
/// a time.
fn zeros_from(file: &File, from: u64, len: u64) -> io::Result<bool> {
    let mut chunk = vec![0; 64 << 10];
    let mut at = from;
    while at < len {
        let n = (len - at).min(chunk.len() as u64) as usize;
        read_exact_at(file, &mut chunk[..n], at)?;
        if chunk[..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n as u64;
    }
    Ok(true)
}

/// A new epoch: 64 random bits (from the standard library's per-process random keys, mixed
/// with the time), so that no frame an earlier use of a file left behind carries it.
fn new_epoch() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    hasher.write_u128(nanos);
    hasher.write_u32(std::process::id());
    hasher.finish()
}

/// Reads `buf.len()` bytes at `offset` of `file`, without moving its position.
fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(not(unix))]
    {
        let mut file = file;
        file.seek(SeekFrom::Start(offset))?;
        file.read_exact(buf)
    }
}

/// Writes `bytes` at `offset` of `file`, leaving it positioned after them.
fn write_at(file: &mut File, offset: u64, bytes: &[u8]) -> io::Result<()> {
    file.seek(SeekFrom::Start(offset))?;
    file.write_all(bytes)
}

/// Encoded frames: closed ones, then possibly one still open to more records.
#[derive(Debug, Default)]
struct Frames {
    buf: Vec<u8>,
    /// Where the open frame's header starts in `buf`.
    open: Option<usize>,
}

impl Frames {
    /// Appends `record` to the open frame, first closing it (for a log of `epoch`) if the
    /// record would take its body past `max_body` bytes, and opening a new one if needed.
    fn push(&mut self, record: &Record<'_>, max_body: usize, epoch: u64) {
        let len = record.encoded_len();
        if let Some(start) = self.open {
            let body = self.buf.len() - start - FRAME_HEAD_LEN;
            if body + len > max_body {
                self.close(epoch);
            }
        }
        if self.open.is_none() {
            self.open = Some(self.buf.len());
            self.buf.extend_from_slice(&[0; FRAME_HEAD_LEN]);
        }
        record.encode(&mut self.buf);
    }

    /// The length of the open frame's body.
    fn open_body_len(&self) -> usize {
        self.open
            .map_or(0, |start| self.buf.len() - start - FRAME_HEAD_LEN)
    }

    /// Writes the open frame's header, for a log of `epoch`: it is complete.
    fn close(&mut self, epoch: u64) {
        let Some(start) = self.open.take() else {
            return;
        };
        let (head, body) = self.buf[start..].split_at_mut(FRAME_HEAD_LEN);
        let len = u32::try_from(body.len()).expect("a frame body is at most MAX_FRAME_LEN");
        head[0..4].copy_from_slice(&len.to_le_bytes());
        head[4..8].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
        head[8..16].copy_from_slice(&epoch.to_le_bytes());
        let head_crc = crc32fast::hash(&head[0..16]);
        head[16..20].copy_from_slice(&head_crc.to_le_bytes());
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.open = None;
    }
}

/// Why [`write_log`] failed.
enum LogWriteError {
    /// The file's header was not written: it is still what it was.
    BeforeHeader,
    /// The header is in place, so the file holds the new log, `len` bytes long; only the
    /// flush after it failed.
    AfterHeader { len: u64 },
}

/// Writes a snapshot of `state` over `file` as a log with `header`: the frames first, then
/// the header, which makes the file the newer log. With [`Durability::Fsync`], the frames
/// are on the disk before the header is written, and the header before this returns.
/// Returns the log's length.
fn write_log(
    file: &mut File,
    state: &State,
    header: LogHeader,
    durability: Durability,
) -> Result<u64, LogWriteError> {
    let frames = (|| {
        file.seek(SeekFrom::Start(HEADER_LEN as u64))?;
        let mut out = BufWriter::with_capacity(256 << 10, &mut *file);
        let len = write_snapshot(&mut out, state, header.epoch)?;
        out.flush()?;
        drop(out);
        if durability == Durability::Fsync {
            file.sync_data()?;
        }
        Ok::<_, io::Error>(len)
    })();
    let len = frames.map_err(|_| LogWriteError::BeforeHeader)?;
    // The header last: a crash before it leaves the file what it was (the older log, or
    // unused), whatever the frames above overwrote.
    write_at(file, 0, &header.encode()).map_err(|_| LogWriteError::BeforeHeader)?;
    if durability == Durability::Fsync && file.sync_data().is_err() {
        return Err(LogWriteError::AfterHeader { len });
    }
    Ok(len)
}

/// Writes the frames of a snapshot of `state`, for a log of `epoch`: every message with its
/// stage, every inbound packet identifier and the next message identity, in frames of about
/// [`SNAPSHOT_FRAME_LEN`]. Returns the length of the log they make, header included.
fn write_snapshot(out: &mut impl Write, state: &State, epoch: u64) -> io::Result<u64> {
    let mut written = HEADER_LEN as u64;
    if state.messages.is_empty()
        && state.inbound.is_empty()
        && state.next_message_id == MessageId::FIRST
    {
        // A new store: the header says it all.
        return Ok(written);
    }
    let records = state
        .messages
        .values()
        .map(|message| Record::Insert(Cow::Borrowed(message)))
        .chain(state.inbound.iter().map(|&id| Record::InsertInbound(id)))
        .chain([Record::NextId(state.next_message_id)]);
    let mut frames = Frames::default();
    for record in records {
        frames.push(&record, SNAPSHOT_FRAME_LEN, epoch);
        if frames.open_body_len() >= SNAPSHOT_FRAME_LEN {
            frames.close(epoch);
        }
        if frames.open.is_none() {
            out.write_all(&frames.buf)?;
            written += frames.buf.len() as u64;
            frames.clear();
        }
    }
    frames.close(epoch);
    out.write_all(&frames.buf)?;
    written += frames.buf.len() as u64;
    Ok(written)
}

/// The outcome of replaying a log.
struct Replayed {
    state: State,
    /// Where the log ends: the next commit writes there.
    valid_len: u64,
    /// The bytes of a frame cut short found there.
    torn_bytes: u64,
}

/// Replays the log of `epoch` in `file`, from the end of its header.
///
/// The log ends at the first place that holds no whole frame of `epoch`: the end of the
/// file, a frame a crash cut short, or what an earlier use of the file left there. Only if a
/// frame of `epoch` follows further on is that place damage ([`StoreError::Corrupt`]): a
/// frame is written after the previous one, so nothing of the log lies beyond its end.
///
/// Allocates no more than the file holds: a frame's length is checked against the rest of
/// the file and [`MAX_FRAME_LEN`] before its body is read.
fn replay(file: &File, epoch: u64) -> Result<Replayed, StoreError> {
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    reader.seek(SeekFrom::Start(HEADER_LEN as u64))?;

    let mut state = State::default();
    let mut offset = HEADER_LEN as u64;
    // Where the log ends; why, when something is there; the bytes of a torn frame there.
    let (end, reason, torn_bytes) = loop {
        if file_len - offset < FRAME_HEAD_LEN as u64 {
            break (offset, None, 0);
        }
        let mut head = [0; FRAME_HEAD_LEN];
        reader.read_exact(&mut head)?;
        let frame = FrameHead::parse(&head);
        if !frame.checks_out(&head) || frame.epoch != epoch {
            break (offset, Some("frame header checksum mismatch"), 0);
        }
        let end = offset + (FRAME_HEAD_LEN as u64) + u64::from(frame.len);
        if end > file_len {
            // A header that checks out, for a body the file does not hold in full.
            break (offset, Some("frame cut short"), file_len - offset);
        }
        if frame.len == 0 {
            return Err(corrupt(offset, "empty frame"));
        }
        if frame.len > MAX_FRAME_LEN {
            return Err(corrupt(offset, "frame longer than the maximum"));
        }
        // Bounded by the bytes the file holds (checked above), not by what the header says.
        let mut body = vec![0; frame.len as usize];
        reader.read_exact(&mut body)?;
        if crc32fast::hash(&body) != frame.body_crc {
            break (offset, Some("frame checksum mismatch"), end - offset);
        }
        // The frame was written whole: if its records are wrong, it is not a torn write.
        apply_frame(
            &mut state,
            Bytes::from(body),
            offset + FRAME_HEAD_LEN as u64,
        )?;
        offset = end;
    };
    if let Some(reason) = reason {
        if frame_of_epoch_after(file, epoch, end + 1, file_len)? {
            return Err(corrupt(end, reason));
        }
    }
    Ok(Replayed {
        state,
        valid_len: end,
        torn_bytes,
    })
}

/// Applies the records of a frame `body` that starts at `body_offset` of its file.
fn apply_frame(state: &mut State, body: Bytes, body_offset: u64) -> Result<(), StoreError> {
    let mut cursor = Cursor { body, pos: 0 };
    while !cursor.is_empty() {
        let record_offset = body_offset + cursor.pos as u64;
        let record =
            Record::decode(&mut cursor).map_err(|reason| corrupt(record_offset, reason))?;
        apply(state, record).map_err(|error| match error {
            StoreError::Invalid(reason) => corrupt(record_offset, reason),
            other => other,
        })?;
    }
    Ok(())
}

/// A frame header's fields.
struct FrameHead {
    len: u32,
    body_crc: u32,
    epoch: u64,
    head_crc: u32,
}

impl FrameHead {
    fn parse(head: &[u8]) -> Self {
        let u32_at = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().expect("4 bytes"));
        Self {
            len: u32_at(0),
            body_crc: u32_at(4),
            epoch: u64::from_le_bytes(head[8..16].try_into().expect("8 bytes")),
            head_crc: u32_at(16),
        }
    }

    /// Whether the header's checksum matches the bytes it was parsed from.
    fn checks_out(&self, head: &[u8]) -> bool {
        crc32fast::hash(&head[..16]) == self.head_crc
    }
}

/// Whether a frame header of `epoch` that checks out starts anywhere in `file` from `from`
/// on. Reads the rest of the file once, a MiB at a time.
fn frame_of_epoch_after(file: &File, epoch: u64, from: u64, file_len: u64) -> io::Result<bool> {
    const CHUNK: usize = 1 << 20;
    let epoch_bytes = epoch.to_le_bytes();
    let mut buf = vec![0; CHUNK + FRAME_HEAD_LEN - 1];
    let mut at = from;
    while at + FRAME_HEAD_LEN as u64 <= file_len {
        let len = (file_len - at).min(buf.len() as u64) as usize;
        let window = &mut buf[..len];
        read_exact_at(file, window, at)?;
        let found = window
            .windows(FRAME_HEAD_LEN)
            .any(|head| head[8..16] == epoch_bytes && FrameHead::parse(head).checks_out(head));
        if found {
            return Ok(true);
        }
        at += (len - FRAME_HEAD_LEN + 1) as u64;
    }
    Ok(false)
}

fn corrupt(offset: u64, reason: &'static str) -> StoreError {
    StoreError::Corrupt { offset, reason }
}

// Record types: the first byte of a record.
const INSERT: u8 = 1;
const ASSIGN: u8 = 2;
const RELEASE: u8 = 3;
const REMOVE: u8 = 4;
const INSERT_INBOUND: u8 = 5;
const REMOVE_INBOUND: u8 = 6;
const CLEAR_INBOUND: u8 = 7;
const NEXT_ID: u8 = 8;

// Stages in an insert record.
const QUEUED: u8 = 0;
const PUBLISHED: u8 = 1;
const RELEASED: u8 = 2;

/// Type, id, QoS, retain, stage, packet id, topic length, payload length.
const INSERT_FIXED_LEN: usize = 1 + 8 + 1 + 1 + 1 + 2 + 2 + 4;
const ID_RECORD_LEN: usize = 1 + 8;
const ASSIGN_RECORD_LEN: usize = 1 + 8 + 2;
const PACKET_ID_RECORD_LEN: usize = 1 + 2;
const NEXT_ID_RECORD_LEN: usize = ID_RECORD_LEN;

/// One change of the state, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Record<'a> {
    /// A new message, with its stage (not [`Stage::Queued`] in a snapshot).
    Insert(Cow<'a, StoredMessage>),
    Assign(MessageId, PacketId),
    Release(MessageId),
    Remove(MessageId),
    InsertInbound(PacketId),
    RemoveInbound(PacketId),
    ClearInbound,
    /// The next message identity, at the end of a snapshot: identities never go back, even
    /// when a snapshot holds no message.
    NextId(MessageId),
}

fn record_len_of_insert(message: &StoredMessage) -> usize {
    INSERT_FIXED_LEN + message.topic.as_mqtt_string().len() + message.payload.len()
}

impl Record<'_> {
    fn encoded_len(&self) -> usize {
        match self {
            Self::Insert(message) => record_len_of_insert(message),
            Self::Assign(..) => ASSIGN_RECORD_LEN,
            Self::Release(_) | Self::Remove(_) | Self::NextId(_) => ID_RECORD_LEN,
            Self::InsertInbound(_) | Self::RemoveInbound(_) => PACKET_ID_RECORD_LEN,
            Self::ClearInbound => 1,
        }
    }

    /// Appends the record to `buf`. The caller has checked that it fits in a frame.
    fn encode(&self, buf: &mut Vec<u8>) {
        match self {
            Self::Insert(message) => {
                let (stage, packet_id) = match message.stage {
                    Stage::Queued => (QUEUED, 0),
                    Stage::Published(packet_id) => (PUBLISHED, packet_id.get()),
                    Stage::Released(packet_id) => (RELEASED, packet_id.get()),
                };
                let topic = message.topic.as_mqtt_string().as_bytes();
                let topic_len =
                    u16::try_from(topic.len()).expect("a topic name is at most 65,535 bytes");
                let payload_len = u32::try_from(message.payload.len())
                    .expect("Store::insert refused payloads longer than a frame");
                buf.push(INSERT);
                buf.extend_from_slice(&message.id.get().to_le_bytes());
                buf.push(message.qos as u8);
                buf.push(u8::from(message.retain));
                buf.push(stage);
                buf.extend_from_slice(&packet_id.to_le_bytes());
                buf.extend_from_slice(&topic_len.to_le_bytes());
                buf.extend_from_slice(topic);
                buf.extend_from_slice(&payload_len.to_le_bytes());
                buf.extend_from_slice(&message.payload);
            }
            Self::Assign(id, packet_id) => {
                buf.push(ASSIGN);
                buf.extend_from_slice(&id.get().to_le_bytes());
                buf.extend_from_slice(&packet_id.get().to_le_bytes());
            }
            Self::Release(id) => encode_id(buf, RELEASE, *id),
            Self::Remove(id) => encode_id(buf, REMOVE, *id),
            Self::NextId(id) => encode_id(buf, NEXT_ID, *id),
            Self::InsertInbound(packet_id) => {
                buf.push(INSERT_INBOUND);
                buf.extend_from_slice(&packet_id.get().to_le_bytes());
            }
            Self::RemoveInbound(packet_id) => {
                buf.push(REMOVE_INBOUND);
                buf.extend_from_slice(&packet_id.get().to_le_bytes());
            }
            Self::ClearInbound => buf.push(CLEAR_INBOUND),
        }
    }

    /// Decodes the record at the start of `body`. Topics and payloads are slices of `body`.
    fn decode(body: &mut Cursor) -> Result<Record<'static>, &'static str> {
        match body.u8()? {
            INSERT => {
                let id = MessageId::new(body.u64()?);
                let qos = QoS::from_u8(body.u8()?).map_err(|_| "invalid QoS")?;
                let retain = match body.u8()? {
                    0 => false,
                    1 => true,
                    _ => return Err("invalid retain flag"),
                };
                let stage = body.u8()?;
                let packet_id = body.u16()?;
                let stage = match (stage, PacketId::new(packet_id)) {
                    (QUEUED, Err(_)) => Stage::Queued,
                    (PUBLISHED, Ok(packet_id)) => Stage::Published(packet_id),
                    (RELEASED, Ok(packet_id)) => Stage::Released(packet_id),
                    _ => return Err("invalid stage"),
                };
                let topic_len = usize::from(body.u16()?);
                let topic = TopicName::from_bytes(body.take(topic_len)?)
                    .map_err(|_| "invalid topic name")?;
                let payload_len = usize::try_from(body.u32()?).map_err(|_| "record ends early")?;
                let payload = body.take(payload_len)?;
                Ok(Record::Insert(Cow::Owned(StoredMessage {
                    id,
                    qos,
                    retain,
                    topic,
                    payload,
                    stage,
                })))
            }
            ASSIGN => Ok(Record::Assign(
                MessageId::new(body.u64()?),
                body.packet_id()?,
            )),
            RELEASE => Ok(Record::Release(MessageId::new(body.u64()?))),
            REMOVE => Ok(Record::Remove(MessageId::new(body.u64()?))),
            INSERT_INBOUND => Ok(Record::InsertInbound(body.packet_id()?)),
            REMOVE_INBOUND => Ok(Record::RemoveInbound(body.packet_id()?)),
            CLEAR_INBOUND => Ok(Record::ClearInbound),
            NEXT_ID => Ok(Record::NextId(MessageId::new(body.u64()?))),
            _ => Err("unknown record type"),
        }
    }
}

fn encode_id(buf: &mut Vec<u8>, kind: u8, id: MessageId) {
    buf.push(kind);
    buf.extend_from_slice(&id.get().to_le_bytes());
}

/// Applies `record` to `state`, or says why it does not fit.
fn apply(state: &mut State, record: Record<'_>) -> Result<(), StoreError> {
    match record {
        Record::Insert(message) => state.insert(message.into_owned()),
        Record::Assign(id, packet_id) => state.assign(id, packet_id),
        Record::Release(id) => state.release(id),
        Record::Remove(id) => state.remove(id),
        Record::InsertInbound(packet_id) => {
            state.insert_inbound(packet_id);
            Ok(())
        }
        Record::RemoveInbound(packet_id) => {
            state.remove_inbound(packet_id);
            Ok(())
        }
        Record::ClearInbound => {
            state.clear_inbound();
            Ok(())
        }
        Record::NextId(id) => {
            if id < state.next_message_id {
                return Err(StoreError::Invalid("message identities must increase"));
            }
            state.next_message_id = id;
            Ok(())
        }
    }
}

/// A reader over a frame body that never reads past its end.
struct Cursor {
    body: Bytes,
    pos: usize,
}

impl Cursor {
    fn take(&mut self, len: usize) -> Result<Bytes, &'static str> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.body.len())
            .ok_or("record ends early")?;
        let bytes = self.body.slice(self.pos..end);
        self.pos = end;
        Ok(bytes)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        let bytes = self.take(N)?;
        Ok(bytes[..]
            .try_into()
            .expect("take returns exactly the length asked for"))
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, &'static str> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        self.array().map(u64::from_le_bytes)
    }

    fn packet_id(&mut self) -> Result<PacketId, &'static str> {
        PacketId::new(self.u16()?).map_err(|_| "packet identifier 0")
    }

    fn is_empty(&self) -> bool {
        self.pos == self.body.len()
    }
}

/// Creates `dir` and the directories above it that are missing, and flushes each new entry
/// to the disk, so that a power loss cannot take the store's directory away.
fn create_dir_durably(dir: &Path) -> io::Result<()> {
    let parent = |path: &Path| match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut missing = Vec::new();
    let mut at = dir.to_path_buf();
    while !at.is_dir() {
        let up = parent(&at);
        if up == at {
            break;
        }
        missing.push(at);
        at = up;
    }
    if missing.is_empty() {
        return Ok(());
    }
    fs::create_dir_all(dir)?;
    for created in missing.iter().rev() {
        sync_dir(&parent(created))?;
    }
    Ok(())
}

/// Flushes `dir`'s entries (a created, renamed or removed file) to the disk.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Directories cannot be opened as files here; renames are flushed by the file system.
#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::{fs, ops::Range};

    use proptest::prelude::*;

    use super::*;
    use crate::store::MemoryStore;

    fn options() -> FileStoreOptions {
        FileStoreOptions::new().durability(Durability::Flush)
    }

    fn open(dir: &Path) -> FileStore {
        FileStore::open(dir, options()).expect("the store opens")
    }

    fn recovered(dir: &Path) -> Recovered {
        open(dir).recover().expect("recover")
    }

    /// The payload of message `id`: its length and content follow from `id`, so that a
    /// recovered payload can be checked against it.
    fn payload(id: u64, len: usize) -> Bytes {
        let mut x = id.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    fn message(id: u64, qos: QoS, len: usize) -> StoredMessage {
        StoredMessage {
            id: MessageId::new(id),
            qos,
            retain: id.is_multiple_of(3),
            topic: TopicName::new(format!("sensors/{}", id % 5)).expect("valid topic"),
            payload: payload(id, len),
            stage: Stage::Queued,
        }
    }

    fn pid(id: u16) -> PacketId {
        PacketId::new(id).expect("non-zero")
    }

    /// Applies the same changes to a file store and a memory store.
    fn every_kind_of_change(store: &mut impl Store) {
        for id in 1..=6u64 {
            let qos = if id.is_multiple_of(2) {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            store
                .insert(message(id, qos, 10 * id as usize))
                .expect("insert");
        }
        store.assign(MessageId::new(1), pid(11)).expect("assign");
        store.assign(MessageId::new(2), pid(12)).expect("assign");
        store.assign(MessageId::new(4), pid(14)).expect("assign");
        store.release(MessageId::new(2)).expect("release");
        store.remove(MessageId::new(3)).expect("remove");
        store.remove(MessageId::new(6)).expect("remove");
        store.insert_inbound(pid(100)).expect("insert inbound");
        store.insert_inbound(pid(200)).expect("insert inbound");
        store.insert_inbound(pid(300)).expect("insert inbound");
        store.remove_inbound(pid(200)).expect("remove inbound");
    }

    /// The header of each log file, if it has one.
    fn headers(dir: &Path) -> [Option<LogHeader>; 2] {
        LOG_FILES.map(|name| {
            let file = File::open(dir.join(name)).expect("open a log file");
            read_header(&file).expect("a valid header or none")
        })
    }

    /// The file that holds the log: of the two, the one whose header has the higher
    /// sequence number.
    fn current_log(dir: &Path) -> PathBuf {
        let [first, second] = headers(dir);
        let sequence = |header: Option<LogHeader>| header.map_or(0, |h| h.sequence);
        let current = usize::from(sequence(second) > sequence(first));
        dir.join(LOG_FILES[current])
    }

    /// The epoch of the log's current file.
    fn epoch(dir: &Path) -> u64 {
        let [first, second] = headers(dir);
        let current = [first, second]
            .into_iter()
            .flatten()
            .max_by_key(|h| h.sequence)
            .expect("a log");
        current.epoch
    }

    /// A frame header for a body of `len` bytes with checksum `body_crc`, in a log of
    /// `epoch`.
    fn frame_head(len: u32, body_crc: u32, epoch: u64) -> [u8; FRAME_HEAD_LEN] {
        let mut head = [0; FRAME_HEAD_LEN];
        head[..4].copy_from_slice(&len.to_le_bytes());
        head[4..8].copy_from_slice(&body_crc.to_le_bytes());
        head[8..16].copy_from_slice(&epoch.to_le_bytes());
        let head_crc = crc32fast::hash(&head[..16]);
        head[16..].copy_from_slice(&head_crc.to_le_bytes());
        head
    }

    fn file_bytes(dir: &Path) -> Vec<u8> {
        fs::read(current_log(dir)).expect("read the log")
    }

    fn write_current(dir: &Path, bytes: &[u8]) {
        fs::write(current_log(dir), bytes).expect("write the log");
    }

    /// A log of three committed frames. Returns the state after each commit and where each
    /// frame starts and ends.
    fn three_commits(dir: &Path) -> (Vec<Recovered>, Vec<Range<usize>>) {
        let mut store = open(dir);
        let mut states = vec![store.recover().expect("recover")];
        let mut frames = Vec::new();
        let mut commit = |store: &mut FileStore| {
            let start = store.file_len() as usize;
            store.commit().expect("commit");
            frames.push(start..store.file_len() as usize);
            states.push(store.recover().expect("recover"));
        };
        store
            .insert(message(1, QoS::AtLeastOnce, 40))
            .expect("insert");
        store
            .insert(message(2, QoS::ExactlyOnce, 50))
            .expect("insert");
        commit(&mut store);
        store.assign(MessageId::new(2), pid(7)).expect("assign");
        store
            .insert(message(3, QoS::ExactlyOnce, 60))
            .expect("insert");
        store.insert_inbound(pid(9)).expect("insert inbound");
        commit(&mut store);
        store.release(MessageId::new(2)).expect("release");
        store.remove(MessageId::new(1)).expect("remove");
        store
            .insert(message(4, QoS::AtLeastOnce, 70))
            .expect("insert");
        store.remove_inbound(pid(9)).expect("remove inbound");
        commit(&mut store);
        (states, frames)
    }

    #[test]
    fn every_kind_of_change_survives_a_reopen() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = FileStore::open(dir.path(), FileStoreOptions::new()).expect("open");
        assert_eq!(store.recover().expect("recover"), Recovered::default());
        let mut model = MemoryStore::new();
        every_kind_of_change(&mut store);
        every_kind_of_change(&mut model);
        store.commit().expect("commit");
        drop(store);

        let mut store = open(dir.path());
        let expected = model.recover().expect("recover");
        assert_eq!(store.recover().expect("recover"), expected);
        assert_eq!(store.recovered_tail_bytes(), 0);
        let stages: Vec<Stage> = expected.messages.iter().map(|m| m.stage).collect();
        assert_eq!(
            stages,
            [
                Stage::Published(pid(11)),
                Stage::Released(pid(12)),
                Stage::Published(pid(14)),
                Stage::Queued
            ]
        );
        assert_eq!(expected.inbound, [pid(100), pid(300)]);
        assert_eq!(expected.next_message_id, MessageId::new(7));

        store.clear_inbound().expect("clear inbound");
        store.remove(MessageId::new(1)).expect("remove");
        store.commit().expect("commit");
        drop(store);
        let recovered = recovered(dir.path());
        assert!(recovered.inbound.is_empty());
        assert_eq!(recovered.messages.len(), 3);
    }

    #[test]
    fn uncommitted_changes_are_lost_on_drop() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(dir.path());
        store
            .insert(message(1, QoS::AtLeastOnce, 5))
            .expect("insert");
        store.commit().expect("commit");
        store
            .insert(message(2, QoS::AtLeastOnce, 5))
            .expect("insert");
        store.insert_inbound(pid(3)).expect("insert inbound");
        drop(store);
        let recovered = recovered(dir.path());
        assert_eq!(recovered.messages, [message(1, QoS::AtLeastOnce, 5)]);
        assert!(recovered.inbound.is_empty());
        assert_eq!(recovered.next_message_id, MessageId::new(2));
    }

    #[test]
    fn a_commit_writes_one_frame_for_many_changes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(dir.path());
        let start = store.file_len();
        assert_eq!(start, HEADER_LEN as u64);
        let messages: Vec<_> = (1..=200)
            .map(|id| message(id, QoS::AtLeastOnce, 30))
            .collect();
        let mut records = 0;
        for message in &messages {
            store.insert(message.clone()).expect("insert");
            records += record_len_of_insert(message);
        }
        store.commit().expect("commit");
        assert_eq!(store.file_len(), start + (FRAME_HEAD_LEN + records) as u64);

        // One header for all of them: its length covers every record.
        let bytes = file_bytes(dir.path());
        let head = &bytes[HEADER_LEN..HEADER_LEN + FRAME_HEAD_LEN];
        assert_eq!(head[..4], (records as u32).to_le_bytes());

        // Nothing to commit writes nothing.
        store.commit().expect("commit");
        assert_eq!(store.file_len(), start + (FRAME_HEAD_LEN + records) as u64);
        drop(store);
        assert_eq!(recovered(dir.path()).messages, messages);
    }

    #[test]
    fn no_op_inbound_changes_are_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(dir.path());
        store.clear_inbound().expect("clear inbound");
        store.remove_inbound(pid(4)).expect("remove inbound");
        store.commit().expect("commit");
        assert_eq!(store.file_len(), HEADER_LEN as u64);
        store.insert_inbound(pid(4)).expect("insert inbound");
        store.insert_inbound(pid(4)).expect("insert inbound");
        store.commit().expect("commit");
        let one_record = (HEADER_LEN + FRAME_HEAD_LEN + PACKET_ID_RECORD_LEN) as u64;
        assert_eq!(store.file_len(), one_record);
    }

    #[test]
    fn invalid_changes_are_refused_and_not_written() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(dir.path());
        store
            .insert(message(5, QoS::AtLeastOnce, 5))
            .expect("insert");
        let refused = [
            store.insert(message(5, QoS::AtLeastOnce, 5)),
            store.insert(message(9, QoS::AtMostOnce, 5)),
            store.assign(MessageId::new(4), pid(1)),
            store.release(MessageId::new(5)),
            store.remove(MessageId::new(6)),
        ];
        for result in refused {
            assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
        }
        store.assign(MessageId::new(5), pid(1)).expect("assign");
        assert!(matches!(
            store.assign(MessageId::new(5), pid(2)),
            Err(StoreError::Invalid(_))
        ));
        // QoS 1 is never released.
        assert!(matches!(
            store.release(MessageId::new(5)),
            Err(StoreError::Invalid(_))
        ));
        store.commit().expect("commit");
        drop(store);
        let recovered = recovered(dir.path());
        assert_eq!(recovered.messages.len(), 1);
        assert_eq!(recovered.messages[0].stage, Stage::Published(pid(1)));
    }

    #[test]
    fn compaction_keeps_the_live_state_and_shrinks_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = options().compact_min_bytes(8 << 10);
        let mut store = FileStore::open(dir.path(), options).expect("open");
        let mut model = MemoryStore::new();
        let mut shrunk = false;
        for id in 1..=400u64 {
            let qos = if id.is_multiple_of(2) {
                QoS::ExactlyOnce
            } else {
                QoS::AtLeastOnce
            };
            let changes = |store: &mut dyn Store| {
                store.insert(message(id, qos, 200)).expect("insert");
                if id % 4 != 1 {
                    store
                        .assign(MessageId::new(id), pid(id as u16))
                        .expect("assign");
                }
                if id % 4 == 2 {
                    store.release(MessageId::new(id)).expect("release");
                }
                // Keep one message in 8 and every one of the last 10.
                if id > 10 && (id - 10) % 8 != 0 {
                    store.remove(MessageId::new(id - 10)).expect("remove");
                }
                store
                    .insert_inbound(pid(id as u16 % 50 + 1))
                    .expect("insert inbound");
                if id.is_multiple_of(3) {
                    store
                        .remove_inbound(pid(id as u16 % 40 + 1))
                        .expect("remove inbound");
                }
            };
            changes(&mut store);
            changes(&mut model);
            let before = store.file_len();
            store.commit().expect("commit");
            shrunk |= store.file_len() < before;
            // After a commit, never beyond twice the live state, or the minimum.
            assert!(
                store.file_len() <= (8 << 10).max(2 * store.live_bytes()),
                "{store:?}"
            );
        }
        assert!(store.compactions() > 3, "{store:?}");
        assert!(shrunk);
        drop(store);
        assert_eq!(recovered(dir.path()), model.recover().expect("recover"));

        // Once everything is removed, a snapshot still remembers the next identity.
        let mut store = FileStore::open(dir.path(), options).expect("open");
        let compactions = store.compactions();
        for message in model.recover().expect("recover").messages {
            store.remove(message.id).expect("remove");
        }
        store.clear_inbound().expect("clear inbound");
        store.commit().expect("commit");
        while store.compactions() == compactions {
            store.insert_inbound(pid(1)).expect("insert inbound");
            store.remove_inbound(pid(1)).expect("remove inbound");
            store.commit().expect("commit");
        }
        assert_eq!(
            store.file_len(),
            (HEADER_LEN + FRAME_HEAD_LEN + NEXT_ID_RECORD_LEN) as u64
        );
        drop(store);
        let recovered = recovered(dir.path());
        assert!(recovered.messages.is_empty() && recovered.inbound.is_empty());
        assert_eq!(recovered.next_message_id, MessageId::new(401));
    }

    #[test]
    fn a_large_snapshot_is_written_in_several_frames() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = FileStore::open(dir.path(), options().compact_min_bytes(0)).expect("open");
        let mut expected = Vec::new();
        for id in 1..=40 {
            let message = message(id, QoS::AtLeastOnce, 100 << 10);
            store.insert(message.clone()).expect("insert");
            expected.push(message);
        }
        store.commit().expect("commit");
        // A little garbage makes the log longer than twice the live state.
        for id in 41..=600 {
            store
                .insert(message(id, QoS::AtLeastOnce, 10 << 10))
                .expect("insert");
            store.remove(MessageId::new(id)).expect("remove");
            store.commit().expect("commit");
        }
        assert!(store.compactions() > 0);
        drop(store);
        let bytes = file_bytes(dir.path());
        let first_frame = u32::from_le_bytes(
            bytes[HEADER_LEN..HEADER_LEN + 4]
                .try_into()
                .expect("4 bytes"),
        );
        assert!((first_frame as usize) < bytes.len() / 3, "{first_frame}");
        assert_eq!(recovered(dir.path()).messages, expected);
    }

    #[test]
    fn a_torn_last_frame_is_cut_off_at_every_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, frames) = three_commits(dir.path());
        let whole = file_bytes(dir.path());
        let last = frames[2].clone();
        assert_eq!(last.end, whole.len());
        for cut in last.start..last.end {
            write_current(dir.path(), &whole[..cut]);
            let mut store = open(dir.path());
            assert_eq!(store.recover().expect("recover"), states[2], "cut at {cut}");
            // Less than a header is not told from what an earlier use of the file left.
            let torn = if cut - last.start < FRAME_HEAD_LEN {
                0
            } else {
                cut - last.start
            };
            assert_eq!(store.recovered_tail_bytes(), torn as u64);
            assert_eq!(store.file_len(), last.start as u64);
            drop(store);
            // The frame's header is wiped, the rest left for the next commit to write over.
            let mut left = whole[..cut].to_vec();
            if torn > 0 {
                left[last.start..last.start + FRAME_HEAD_LEN].fill(0);
            }
            assert_eq!(file_bytes(dir.path()), left);
        }
        write_current(dir.path(), &whole);
        assert_eq!(recovered(dir.path()), states[3]);
    }

    #[test]
    fn a_zero_filled_tail_is_torn() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, frames) = three_commits(dir.path());
        let whole = file_bytes(dir.path());
        let last = frames[2].clone();
        // The file system extended the file, but only part of the frame reached the disk.
        for written in last.start..last.end {
            let mut bytes = whole.clone();
            bytes[written..].fill(0);
            if bytes == whole {
                continue;
            }
            write_current(dir.path(), &bytes);
            let mut store = open(dir.path());
            assert_eq!(store.recover().expect("recover"), states[2], "{written}");
            // A header that checks out, for a body that does not: a torn frame. Zeros in the
            // header: the log's end, as it would be if the frame had never been written.
            let head = last.start..last.start + FRAME_HEAD_LEN;
            let torn = if bytes[head.clone()] == whole[head] {
                last.len()
            } else {
                0
            };
            assert_eq!(store.recovered_tail_bytes(), torn as u64, "{written}");
        }
        // Zeros after the last frame.
        for zeros in [1, FRAME_HEAD_LEN - 1, FRAME_HEAD_LEN, 100, 20_000] {
            let mut bytes = whole.clone();
            bytes.resize(whole.len() + zeros, 0);
            write_current(dir.path(), &bytes);
            let mut store = open(dir.path());
            assert_eq!(store.recover().expect("recover"), states[3], "{zeros}");
            assert_eq!(store.recovered_tail_bytes(), 0);
            assert_eq!(store.file_len(), whole.len() as u64);
        }
    }

    #[test]
    fn a_damaged_middle_frame_is_corrupt_and_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (_, frames) = three_commits(dir.path());
        let whole = file_bytes(dir.path());
        for frame in &frames[..2] {
            for at in frame.clone() {
                let mut bytes = whole.clone();
                bytes[at] ^= 0x10;
                write_current(dir.path(), &bytes);
                match FileStore::open(dir.path(), options()) {
                    Err(StoreError::Corrupt { offset, .. }) => {
                        assert_eq!(offset, frame.start as u64, "flip at {at}");
                    }
                    other => panic!("flip at {at}: {other:?}"),
                }
                assert_eq!(file_bytes(dir.path()), bytes, "the file is left as it was");
            }
        }
    }

    #[test]
    fn a_forged_frame_length() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, frames) = three_commits(dir.path());
        let whole = file_bytes(dir.path());

        // In the middle: the header no longer checks out, and committed frames follow.
        for len in [u32::MAX, MAX_FRAME_LEN + 1, whole.len() as u32] {
            let mut bytes = whole.clone();
            bytes[frames[1].start..frames[1].start + 4].copy_from_slice(&len.to_le_bytes());
            write_current(dir.path(), &bytes);
            assert!(matches!(
                FileStore::open(dir.path(), options()),
                Err(StoreError::Corrupt { offset, .. }) if offset == frames[1].start as u64
            ));
        }

        // At the end, as a torn write of a huge frame leaves it: a whole header, part of
        // the body. Nothing the length asks for is allocated.
        let epoch = epoch(dir.path());
        for len in [u32::MAX, MAX_FRAME_LEN + 1, 1 << 20] {
            let head = frame_head(len, 0xdead_beef, epoch);
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&head);
            bytes.extend_from_slice(&[INSERT, 1, 2, 3]);
            write_current(dir.path(), &bytes);
            let mut store = open(dir.path());
            assert_eq!(store.recover().expect("recover"), states[3]);
            assert_eq!(store.recovered_tail_bytes(), FRAME_HEAD_LEN as u64 + 4);
        }

        // At the end, a header cut short.
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&u32::MAX.to_le_bytes());
        bytes.extend_from_slice(&[0xff; 4]);
        write_current(dir.path(), &bytes);
        assert_eq!(recovered(dir.path()), states[3]);

        // At the end, a header that does not check out followed by data: what an earlier
        // use of the file may leave behind the log's end.
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&[0xff; FRAME_HEAD_LEN + 8]);
        write_current(dir.path(), &bytes);
        assert_eq!(recovered(dir.path()), states[3]);

        // But if a frame of the log follows, what lies before it is damage.
        let mut frame = Frames::default();
        frame.push(
            &Record::InsertInbound(pid(40)),
            MAX_FRAME_LEN as usize,
            epoch,
        );
        frame.close(epoch);
        bytes.extend_from_slice(&frame.buf);
        write_current(dir.path(), &bytes);
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset, .. }) if offset == whole.len() as u64
        ));
    }

    #[test]
    fn a_whole_frame_with_a_bad_record_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        three_commits(dir.path());
        let whole = file_bytes(dir.path());
        let insert = |at: usize, byte: u8| {
            let mut body = Vec::new();
            Record::Insert(Cow::Owned(message(10, QoS::AtLeastOnce, 4))).encode(&mut body);
            body[at] = byte;
            body
        };
        let cases: [(Vec<u8>, usize, &str); 8] = [
            (vec![99], 0, "unknown record type"),
            (vec![ASSIGN, 1, 0, 0], 0, "record ends early"),
            (vec![INSERT_INBOUND, 0, 0], 0, "packet identifier 0"),
            (insert(9, 3), 0, "invalid QoS"),
            (insert(10, 2), 0, "invalid retain flag"),
            (insert(11, PUBLISHED), 0, "invalid stage"),
            (insert(16, b'#'), 0, "invalid topic name"),
            (
                [INSERT_INBOUND, 5, 0, ASSIGN, 77, 0, 0, 0, 0, 0, 0, 0, 1, 0].to_vec(),
                PACKET_ID_RECORD_LEN,
                "assign: no such message",
            ),
        ];
        for (body, at, reason) in cases {
            let mut frames = Frames {
                buf: vec![0; FRAME_HEAD_LEN],
                open: Some(0),
            };
            frames.buf.extend_from_slice(&body);
            frames.close(epoch(dir.path()));
            let mut bytes = whole.clone();
            bytes.extend_from_slice(&frames.buf);
            write_current(dir.path(), &bytes);
            match FileStore::open(dir.path(), options()) {
                Err(StoreError::Corrupt { offset, reason: r }) => {
                    assert_eq!(r, reason);
                    assert_eq!(offset, (whole.len() + FRAME_HEAD_LEN + at) as u64);
                }
                other => panic!("{reason}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_foreign_file_is_unsupported() {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(LOG_FILES[0]);
        let mut other_version = LogHeader {
            sequence: 1,
            epoch: 5,
        }
        .encode();
        other_version[8] = 3;
        for bytes in [
            &b"this is not a store log, it is a text file"[..],
            &b"HAKA"[..],
            &other_version[..],
            // A log of version 1 has its own name.
            &legacy::header()[..],
        ] {
            fs::write(&log, bytes).expect("write");
            assert!(matches!(
                FileStore::open(dir.path(), options()),
                Err(StoreError::UnsupportedFormat)
            ));
            assert_eq!(fs::read(&log).expect("read"), bytes);
        }
        // An empty file is a new store.
        fs::write(&log, b"").expect("write");
        assert_eq!(recovered(dir.path()), Recovered::default());
        assert_eq!(file_bytes(dir.path()).len(), HEADER_LEN);
        assert_eq!(current_log(dir.path()), log);
    }

    #[test]
    fn a_damaged_log_header_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        three_commits(dir.path());
        let whole = file_bytes(dir.path());
        for at in 12..HEADER_LEN {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x01;
            fs::write(dir.path().join(LOG_FILES[0]), &bytes).expect("write");
            assert!(matches!(
                FileStore::open(dir.path(), options()),
                Err(StoreError::Corrupt { offset: 0, .. })
            ));
        }
    }

    #[test]
    fn two_logs_of_one_sequence_are_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        three_commits(dir.path());
        let header = LogHeader {
            sequence: 1,
            epoch: 99,
        };
        fs::write(dir.path().join(LOG_FILES[1]), header.encode()).expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
    }

    /// A log in the layout of version 1: its header, then each of `bodies` as a frame.
    fn legacy_log(bodies: &[Vec<u8>]) -> Vec<u8> {
        let mut bytes = legacy::header().to_vec();
        for body in bodies {
            bytes.extend_from_slice(&legacy::frame_head(body));
            bytes.extend_from_slice(body);
        }
        bytes
    }

    #[test]
    fn a_log_of_version_1_is_moved_to_this_format() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut model = MemoryStore::new();
        every_kind_of_change(&mut model);
        let expected = model.recover().expect("recover");
        // The state as version 1 wrote it in a snapshot, in two frames, then a torn frame.
        let mut records: Vec<Record<'_>> = expected
            .messages
            .iter()
            .map(|message| Record::Insert(Cow::Borrowed(message)))
            .collect();
        records.extend(expected.inbound.iter().map(|&id| Record::InsertInbound(id)));
        records.push(Record::NextId(expected.next_message_id));
        let (first, second) = records.split_at(2);
        let encode = |records: &[Record<'_>]| {
            let mut body = Vec::new();
            for record in records {
                record.encode(&mut body);
            }
            body
        };
        let mut bytes = legacy_log(&[encode(first), encode(second)]);
        let mut torn = legacy::frame_head(&[1; 100]).to_vec();
        torn.extend_from_slice(&[1; 3]);
        bytes.extend_from_slice(&torn);
        let legacy_path = dir.path().join(legacy::LOG_FILE);
        fs::write(&legacy_path, &bytes).expect("write");

        let mut store = open(dir.path());
        assert_eq!(store.recover().expect("recover"), expected);
        assert_eq!(store.recovered_tail_bytes(), torn.len() as u64);
        assert!(!legacy_path.exists());
        assert_eq!(current_log(dir.path()), dir.path().join(LOG_FILES[0]));
        // It goes on in the new format.
        store.remove(MessageId::new(1)).expect("remove");
        store.commit().expect("commit");
        let expected = store.recover().expect("recover");
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(store.recover().expect("recover"), expected);
        assert_eq!(store.recovered_tail_bytes(), 0);
    }

    #[test]
    fn a_damaged_log_of_version_1_is_left_alone() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut body = Vec::new();
        Record::InsertInbound(pid(3)).encode(&mut body);
        let whole = legacy_log(&[body.clone(), body]);
        let mut bytes = whole.clone();
        bytes[legacy::header().len() + 13] ^= 0x40;
        let legacy_path = dir.path().join(legacy::LOG_FILE);
        fs::write(&legacy_path, &bytes).expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(fs::read(&legacy_path).expect("read"), bytes);
        assert!(!dir.path().join(LOG_FILES[0]).exists());

        // An empty one is a new store.
        fs::write(&legacy_path, b"").expect("write");
        assert_eq!(recovered(dir.path()), Recovered::default());
        assert!(!legacy_path.exists());
    }

    /// Many compactions take turns in the two files; what each use leaves behind the end of
    /// a log shorter than the file is never read.
    #[test]
    fn stale_frames_behind_the_end_are_never_read() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = options().compact_min_bytes(4 << 10);
        let mut store = FileStore::open(dir.path(), options).expect("open");
        let mut model = MemoryStore::new();
        let mut stale = 0;
        for id in 1..=300u64 {
            let len = (id * 37 % 400) as usize;
            let changes = |store: &mut dyn Store| {
                store
                    .insert(message(id, QoS::AtLeastOnce, len))
                    .expect("insert");
                if id > 3 && id % 7 != 0 {
                    store.remove(MessageId::new(id - 3)).expect("remove");
                }
            };
            changes(&mut store);
            changes(&mut model);
            store.commit().expect("commit");
            if fs::metadata(current_log(dir.path()))
                .expect("metadata")
                .len()
                > store.file_len()
            {
                stale += 1;
            }
            if id % 10 == 0 {
                drop(store);
                store = FileStore::open(dir.path(), options).expect("open");
                assert_eq!(
                    store.recover().expect("recover"),
                    model.recover().expect("recover"),
                    "after {id}"
                );
            }
        }
        assert!(stale > 100, "{stale}");
    }

    /// A whole frame of an earlier use of the file right at the log's end: not part of it.
    #[test]
    fn a_frame_of_another_epoch_ends_the_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, _) = three_commits(dir.path());
        let whole = file_bytes(dir.path());
        let other_epoch = epoch(dir.path()) ^ 1;
        let mut frame = Frames::default();
        frame.push(
            &Record::InsertInbound(pid(40)),
            MAX_FRAME_LEN as usize,
            other_epoch,
        );
        frame.close(other_epoch);
        let mut bytes = whole.clone();
        bytes.extend_from_slice(&frame.buf);
        write_current(dir.path(), &bytes);
        let mut store = open(dir.path());
        assert_eq!(store.recover().expect("recover"), states[3]);
        assert_eq!(store.file_len(), whole.len() as u64);
        assert_eq!(store.recovered_tail_bytes(), 0);
    }

    /// A crash during a compaction leaves the spare file with frames of a new epoch under a
    /// header of a lower sequence: its old log's, or the placeholder a compaction writes
    /// first into a file without a header. The log stays where it was.
    #[test]
    fn a_compaction_cut_short_leaves_the_log_where_it_was() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, _) = three_commits(dir.path());
        let mut other = State::default();
        other.inbound.insert(pid(77));
        other.next_message_id = MessageId::new(50);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(dir.path().join(LOG_FILES[1]))
            .expect("open");
        let header = LogHeader {
            sequence: 2,
            epoch: 9,
        };
        assert!(write_log(&mut file, &other, header, Durability::Flush).is_ok());
        let placeholder = LogHeader {
            sequence: 0,
            epoch: 8,
        };
        write_at(&mut file, 0, &placeholder.encode()).expect("write");
        drop(file);
        assert_eq!(recovered(dir.path()), states[3]);
    }

    /// Data under zeros where the header goes is damage, never taken for an unused file:
    /// that could bring back the other file's older log. Zeros only are an unused file.
    #[test]
    fn a_log_file_without_a_header_is_corrupt() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, _) = three_commits(dir.path());
        let current = dir.path().join(LOG_FILES[0]);
        let spare = dir.path().join(LOG_FILES[1]);
        let whole = fs::read(&current).expect("read");

        fs::write(&spare, [0; 100]).expect("write");
        assert_eq!(recovered(dir.path()), states[3]);

        let mut headless = vec![0; HEADER_LEN];
        headless.extend_from_slice(&whole[HEADER_LEN..]);
        fs::write(&spare, &headless).expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));

        fs::write(&spare, b"").expect("write");
        fs::write(&current, &headless).expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
        assert_eq!(fs::read(&current).expect("read"), headless);
    }

    /// Once a compaction has moved the log, both files keep a header: a log of a later
    /// sequence alone is a log whose newer file was lost, and a placeholder alone is no log.
    #[test]
    fn a_lost_log_file_is_corrupt_not_a_return_to_an_older_log() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = FileStore::open(dir.path(), options().compact_min_bytes(0)).expect("open");
        for id in 1..=100 {
            store
                .insert(message(id, QoS::AtLeastOnce, 100))
                .expect("insert");
            if id > 1 {
                store.remove(MessageId::new(id - 1)).expect("remove");
            }
            store.commit().expect("commit");
            if store.compactions() >= 3 {
                break;
            }
        }
        assert!(store.compactions() >= 3, "{store:?}");
        drop(store);
        let current = current_log(dir.path());
        let older = LOG_FILES
            .map(|name| dir.path().join(name))
            .into_iter()
            .find(|path| *path != current)
            .expect("two files");
        let older_bytes = fs::read(&older).expect("read");

        // The newer file lost: the older log must not come back.
        fs::write(&current, b"").expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));

        // Nothing but a placeholder.
        let placeholder = LogHeader {
            sequence: 0,
            epoch: 3,
        };
        fs::write(&older, placeholder.encode()).expect("write");
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Corrupt { offset: 0, .. })
        ));
        fs::write(&older, &older_bytes).expect("write");
    }

    /// After a burst the old log's file is far longer than the log needs: it is cut to a
    /// placeholder header.
    #[test]
    fn the_spare_file_is_cut_after_a_burst() {
        let dir = tempfile::tempdir().expect("temp dir");
        let options = options().compact_min_bytes(16 << 10);
        let mut store = FileStore::open(dir.path(), options).expect("open");
        for id in 1..=200 {
            store
                .insert(message(id, QoS::AtLeastOnce, 1000))
                .expect("insert");
        }
        store.commit().expect("commit");
        assert_eq!(store.compactions(), 0);
        for id in 1..=200 {
            store.remove(MessageId::new(id)).expect("remove");
        }
        store.commit().expect("commit");
        assert_eq!(store.compactions(), 1);
        let lens =
            LOG_FILES.map(|name| fs::metadata(dir.path().join(name)).expect("metadata").len());
        assert!(lens.contains(&(HEADER_LEN as u64)), "{lens:?}");
        let spare = LOG_FILES[lens
            .iter()
            .position(|&len| len == HEADER_LEN as u64)
            .expect("cut")];
        let placeholder = read_header(&File::open(dir.path().join(spare)).expect("open"));
        assert!(matches!(
            placeholder,
            Ok(Some(LogHeader { sequence: 0, .. }))
        ));
        let expected = store.recover().expect("recover");
        drop(store);
        assert_eq!(recovered(dir.path()), expected);
    }

    #[test]
    fn a_second_store_on_one_directory_is_locked_out() {
        let dir = tempfile::tempdir().expect("temp dir");
        let nested = dir.path().join("a").join("b");
        let store = open(&nested);
        assert!(matches!(
            FileStore::open(&nested, options()),
            Err(StoreError::Locked)
        ));
        drop(store);
        let _store = open(&nested);
    }

    #[test]
    fn the_lock_outlives_a_compaction() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = FileStore::open(dir.path(), options().compact_min_bytes(0)).expect("open");
        for id in 1..=10 {
            store
                .insert(message(id, QoS::AtLeastOnce, 100))
                .expect("insert");
            store.remove(MessageId::new(id)).expect("remove");
            store.commit().expect("commit");
        }
        assert!(store.compactions() > 0);
        assert!(matches!(
            FileStore::open(dir.path(), options()),
            Err(StoreError::Locked)
        ));
    }

    #[test]
    fn a_leftover_snapshot_is_ignored() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (states, _) = three_commits(dir.path());
        // As a compaction of version 1 left it.
        fs::write(dir.path().join(legacy::TMP_FILE), b"half a snapshot").expect("write");
        assert_eq!(recovered(dir.path()), states[3]);
        assert!(!dir.path().join(legacy::TMP_FILE).exists());
    }

    #[test]
    fn a_failed_write_is_rolled_back_and_retried() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut store, _) = one_committed_one_pending(dir.path());
        let committed = store.file_len();
        store.fail_next_write_after = Some(7);
        assert!(matches!(store.commit(), Err(StoreError::Io(_))));
        // What the failed write left behind the log's end is wiped.
        let bytes = file_bytes(dir.path());
        assert!(bytes[committed as usize..].iter().all(|&b| b == 0));
        assert_eq!(store.file_len(), committed);
        // More changes join the retry.
        store.insert_inbound(pid(3)).expect("insert inbound");
        store.commit().expect("commit");
        let expected = store.recover().expect("recover");
        assert_eq!(expected.messages.len(), 2);
        drop(store);
        assert_eq!(recovered(dir.path()), expected);
    }

    /// A store with message 1 committed and message 2 pending, and the committed state.
    fn one_committed_one_pending(dir: &Path) -> (FileStore, Recovered) {
        let mut store = open(dir);
        store
            .insert(message(1, QoS::AtLeastOnce, 10))
            .expect("insert");
        store.commit().expect("commit");
        let committed = store.recover().expect("recover");
        store
            .insert(message(2, QoS::AtLeastOnce, 10))
            .expect("insert");
        (store, committed)
    }

    /// A failed commit whose frame reached the file whole (its flush failed, say) is not
    /// read back as committed.
    #[test]
    fn a_whole_frame_of_a_failed_commit_is_not_recovered() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut store, expected) = one_committed_one_pending(dir.path());
        store.fail_next_write_after = Some(usize::MAX);
        assert!(matches!(store.commit(), Err(StoreError::Io(_))));
        drop(store);
        let mut store = open(dir.path());
        assert_eq!(store.recover().expect("recover"), expected);
        assert_eq!(store.recovered_tail_bytes(), 0);
    }

    /// The blocks of the next [`RESERVE_AHEAD`] bytes are reserved past the log's end, which
    /// neither the file's length nor what a reopened store reads shows.
    #[cfg(target_os = "linux")]
    #[test]
    fn commits_reserve_the_blocks_ahead_of_the_log() {
        use std::os::unix::fs::MetadataExt as _;

        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join(LOG_FILES[0]);
        let allocated = || fs::metadata(&log).expect("metadata").blocks() * 512;
        let mut store = open(dir.path());
        store
            .insert(message(1, QoS::AtLeastOnce, 1000))
            .expect("insert");
        store.commit().expect("commit");
        let len = store.file_len();
        assert_eq!(fs::metadata(&log).expect("metadata").len(), len);
        assert!(
            allocated() >= len + RESERVE_AHEAD,
            "{} bytes allocated",
            allocated()
        );

        store
            .insert(message(2, QoS::AtLeastOnce, 1000))
            .expect("insert");
        store.fail_next_write_after = Some(7);
        assert!(store.commit().is_err());
        store.commit().expect("commit");
        assert!(allocated() >= store.file_len() + RESERVE_AHEAD);

        let expected = store.recover().expect("recover");
        drop(store);
        assert_eq!(recovered(dir.path()), expected);
        assert_eq!(expected.messages.len(), 2);
    }

    #[test]
    fn a_failed_rollback_poisons_the_store() {
        let dir = tempfile::tempdir().expect("temp dir");
        let (mut store, expected) = one_committed_one_pending(dir.path());
        store.fail_next_write_after = Some(7);
        store.fail_next_wipe = true;
        assert!(matches!(store.commit(), Err(StoreError::Io(_))));
        assert!(matches!(store.commit(), Err(StoreError::Poisoned)));
        assert!(matches!(
            store.insert_inbound(pid(1)),
            Err(StoreError::Poisoned)
        ));
        drop(store);
        assert_eq!(recovered(dir.path()), expected);
    }

    #[test]
    fn debug_shows_counts_not_payloads() {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut store = open(dir.path());
        store
            .insert(message(1, QoS::AtLeastOnce, 10))
            .expect("insert");
        let debug = format!("{store:?}");
        assert!(debug.contains("messages: 1"), "{debug}");
        assert!(!debug.contains("payload"), "{debug}");
    }

    #[derive(Debug, Clone)]
    enum Op {
        Insert {
            gap: u64,
            qos2: bool,
            len: usize,
        },
        Assign {
            pick: usize,
            packet_id: u16,
        },
        Release {
            pick: usize,
        },
        Remove {
            pick: usize,
        },
        InsertInbound(u16),
        RemoveInbound(u16),
        ClearInbound,
        Commit,
        /// Drop the store (losing what is not committed) and open it again.
        Reopen,
        /// Commit, then cut the file inside the frame just written, as a crash during the
        /// write would, and open it again.
        TornCommit {
            cut: u16,
        },
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            6 => (0..3u64, any::<bool>(), 0..300usize)
                .prop_map(|(gap, qos2, len)| Op::Insert { gap, qos2, len }),
            4 => (any::<usize>(), 1..20u16)
                .prop_map(|(pick, packet_id)| Op::Assign { pick, packet_id }),
            2 => any::<usize>().prop_map(|pick| Op::Release { pick }),
            3 => any::<usize>().prop_map(|pick| Op::Remove { pick }),
            2 => (1..8u16).prop_map(Op::InsertInbound),
            2 => (1..8u16).prop_map(Op::RemoveInbound),
            1 => Just(Op::ClearInbound),
            4 => Just(Op::Commit),
            1 => Just(Op::Reopen),
            2 => any::<u16>().prop_map(|cut| Op::TornCommit { cut }),
        ]
    }

    /// The identity `pick` chooses: one of the model's messages, or none when it is empty.
    fn pick(model: &MemoryStore, pick: usize) -> MessageId {
        let messages = model.clone().recover().expect("recover").messages;
        if messages.is_empty() {
            MessageId::new(pick as u64 % 4)
        } else {
            messages[pick % messages.len()].id
        }
    }

    proptest! {
        /// Whatever follows a valid header, opening never panics, and it either succeeds
        /// or reports corruption.
        #[test]
        fn any_bytes_after_the_header_open_or_are_corrupt(
            tail in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let dir = tempfile::tempdir().expect("temp dir");
            let mut bytes = LogHeader { sequence: 1, epoch: 5 }.encode().to_vec();
            bytes.extend_from_slice(&tail);
            fs::write(dir.path().join(LOG_FILES[0]), &bytes).expect("write");
            match FileStore::open(dir.path(), options()) {
                Ok(store) => prop_assert!(store.file_len() <= bytes.len() as u64),
                Err(StoreError::Corrupt { offset, .. }) => {
                    prop_assert!(offset < bytes.len() as u64);
                    prop_assert_eq!(file_bytes(dir.path()), bytes);
                }
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }

        /// A damaged byte anywhere in a valid log: never a panic, and never a state that
        /// was not committed.
        #[test]
        fn a_damaged_byte_is_never_mistaken_for_data(at in any::<prop::sample::Index>(), bits in 1..=255u8) {
            let dir = tempfile::tempdir().expect("temp dir");
            let (states, _) = three_commits(dir.path());
            let mut bytes = file_bytes(dir.path());
            let at = at.index(bytes.len());
            bytes[at] ^= bits;
            write_current(dir.path(), &bytes);
            match FileStore::open(dir.path(), options()) {
                Ok(mut store) => {
                    let recovered = store.recover().expect("recover");
                    prop_assert!(states.contains(&recovered), "{:?}", recovered);
                }
                Err(StoreError::Corrupt { .. } | StoreError::UnsupportedFormat) => {}
                Err(other) => prop_assert!(false, "{other:?}"),
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Random valid and invalid changes, commits, reopens and torn commits, against the
        /// memory store: the file store accepts and refuses the same changes, and reopening
        /// it gives back exactly what was committed.
        #[test]
        fn behaves_like_the_memory_store_across_reopens(
            ops in prop::collection::vec(op(), 1..80),
            compact_min_bytes in 0..4096u64,
        ) {
            let dir = tempfile::tempdir().expect("temp dir");
            let options = options().compact_min_bytes(compact_min_bytes);
            let reopen = || FileStore::open(dir.path(), options).expect("open");
            let mut store = reopen();
            let mut model = MemoryStore::new();
            let mut committed = model.clone();
            for op in ops {
                let (file, memory) = match op {
                    Op::Insert { gap, qos2, len } => {
                        let next = model.clone().recover().expect("recover").next_message_id;
                        let qos = if qos2 { QoS::ExactlyOnce } else { QoS::AtLeastOnce };
                        let message = message(next.get() + gap, qos, len);
                        (store.insert(message.clone()), model.insert(message))
                    }
                    Op::Assign { pick: p, packet_id } => {
                        let id = pick(&model, p);
                        (store.assign(id, pid(packet_id)), model.assign(id, pid(packet_id)))
                    }
                    Op::Release { pick: p } => {
                        let id = pick(&model, p);
                        (store.release(id), model.release(id))
                    }
                    Op::Remove { pick: p } => {
                        let id = pick(&model, p);
                        (store.remove(id), model.remove(id))
                    }
                    Op::InsertInbound(id) => {
                        (store.insert_inbound(pid(id)), model.insert_inbound(pid(id)))
                    }
                    Op::RemoveInbound(id) => {
                        (store.remove_inbound(pid(id)), model.remove_inbound(pid(id)))
                    }
                    Op::ClearInbound => (store.clear_inbound(), model.clear_inbound()),
                    Op::Commit => {
                        store.commit().expect("commit");
                        committed = model.clone();
                        continue;
                    }
                    Op::Reopen => {
                        drop(store);
                        store = reopen();
                        prop_assert_eq!(store.recover().expect("recover"), committed.recover().expect("recover"));
                        prop_assert_eq!(store.recovered_tail_bytes(), 0);
                        model = committed.clone();
                        continue;
                    }
                    Op::TornCommit { cut } => {
                        let before = store.file_len();
                        let compactions = store.compactions();
                        store.commit().expect("commit");
                        let after = store.file_len();
                        let compacted = store.compactions() != compactions;
                        drop(store);
                        if after > before && !compacted {
                            let len = before + (after - before - 1) * u64::from(cut) / 65535;
                            let file = OpenOptions::new()
                                .write(true)
                                .open(current_log(dir.path()))
                                .expect("open");
                            file.set_len(len).expect("truncate");
                            store = reopen();
                            prop_assert_eq!(store.recover().expect("recover"), committed.recover().expect("recover"));
                            let torn = if len - before < FRAME_HEAD_LEN as u64 { 0 } else { len - before };
                            prop_assert_eq!(store.recovered_tail_bytes(), torn);
                            model = committed.clone();
                        } else {
                            committed = model.clone();
                            store = reopen();
                            prop_assert_eq!(store.recover().expect("recover"), committed.recover().expect("recover"));
                        }
                        continue;
                    }
                };
                prop_assert_eq!(file.is_ok(), memory.is_ok(), "{:?} / {:?}", file, memory);
            }
            drop(store);
            let mut store = reopen();
            prop_assert_eq!(store.recover().expect("recover"), committed.recover().expect("recover"));
        }
    }
}
