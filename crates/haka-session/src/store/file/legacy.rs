//! Logs of format version 1: one file, `queue.log`, appended to and compacted by renaming a
//! snapshot over it. Opening a store that has one replays it with the rules of that version
//! and moves the state into the files of this one.
//!
//! Version 1 differs in three places: its header is `MAGIC` and the version only (12
//! bytes), its frame header has no epoch (`[length][crc32 of the body][crc32 of the previous
//! 8 bytes]`, 12 bytes), and, since nothing in the file ever lay behind the log's end but a
//! torn write, whatever follows the last whole frame must look like one (a header that
//! checks out for a body the file does not hold, or zeros to the end of the file); anything
//! else is damage. The records are the same.

use std::{
    fs::{self, File, OpenOptions},
    io::{self, BufReader, Read, Seek, SeekFrom},
    path::Path,
};

use bytes::Bytes;

use super::{
    apply_frame, corrupt, new_epoch, sync_dir, write_log, zeros_from, Durability, LogHeader,
    LogWriteError, State, StoreError, LOG_FILES, MAGIC, MAX_FRAME_LEN,
};

/// The log file of version 1.
pub(super) const LOG_FILE: &str = "queue.log";
/// Where version 1 wrote a snapshot before renaming it over the log.
pub(super) const TMP_FILE: &str = "queue.log.tmp";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 12;
const FRAME_HEAD_LEN: usize = 12;

/// The header of a log of version 1.
pub(super) fn header() -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..].copy_from_slice(&VERSION.to_le_bytes());
    header
}

/// The header of a frame of version 1 with this `body`.
#[cfg(test)]
pub(super) fn frame_head(body: &[u8]) -> [u8; FRAME_HEAD_LEN] {
    let mut head = [0; FRAME_HEAD_LEN];
    head[0..4].copy_from_slice(&(body.len() as u32).to_le_bytes());
    head[4..8].copy_from_slice(&crc32fast::hash(body).to_le_bytes());
    let head_crc = crc32fast::hash(&head[..8]);
    head[8..12].copy_from_slice(&head_crc.to_le_bytes());
    head
}

/// If `dir` holds a log of version 1, moves its state into `queue.0.log` (written whole and
/// flushed to the disk first, with a sequence number above anything the other file may
/// hold) and removes it; returns the bytes of a torn last write it ended with.
///
/// The old log stays the truth until the new one is on the disk: a crash in between leaves
/// both, and the next open moves the old one again. A damaged old log is reported and left
/// as it is, and so is everything else in the directory.
pub(super) fn migrate(dir: &Path) -> Result<u64, StoreError> {
    // A compaction of version 1 that did not reach its rename left its snapshot behind: the
    // log is still the truth.
    match fs::remove_file(dir.join(TMP_FILE)) {
        Ok(()) => {}
        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
        Err(error) => return Err(error.into()),
    }
    let path = dir.join(LOG_FILE);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(error) => return Err(error.into()),
    };
    let (state, torn_bytes) = if file.metadata()?.len() == 0 {
        (State::default(), 0)
    } else {
        replay(&file)?
    };
    drop(file);

    let open = |name: &str| {
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(dir.join(name))
    };
    // Both files start empty: the log of the new format is `queue.0.log`, and
    // `queue.1.log` cannot hold anything a crash in an earlier migration left.
    let mut log = open(LOG_FILES[0])?;
    open(LOG_FILES[1])?.sync_all()?;
    let header = LogHeader {
        sequence: 1,
        epoch: new_epoch(),
    };
    match write_log(&mut log, &state, header, Durability::Fsync) {
        Ok(_) => {}
        Err(LogWriteError::BeforeHeader | LogWriteError::AfterHeader { .. }) => {
            return Err(
                io::Error::other("could not write the store's log in its new format").into(),
            );
        }
    }
    sync_dir(dir)?;
    fs::remove_file(&path)?;
    sync_dir(dir)?;
    Ok(torn_bytes)
}

/// Replays a log of version 1: its state and the bytes of a torn last write after it.
fn replay(file: &File) -> Result<(State, u64), StoreError> {
    let file_len = file.metadata()?.len();
    let mut reader = BufReader::with_capacity(64 << 10, file);
    reader.seek(SeekFrom::Start(0))?;

    let mut header_bytes = [0; HEADER_LEN];
    if file_len < HEADER_LEN as u64 {
        return Err(StoreError::UnsupportedFormat);
    }
    reader.read_exact(&mut header_bytes)?;
    if header_bytes != header() {
        return Err(StoreError::UnsupportedFormat);
    }

    let mut state = State::default();
    let mut offset = HEADER_LEN as u64;
    while offset < file_len {
        let remaining = file_len - offset;
        // Whatever goes wrong with this frame, it is a torn last write when it cannot be
        // followed by anything valid. Otherwise committed frames may follow, and nothing is
        // dropped.
        let torn = remaining;
        if remaining < FRAME_HEAD_LEN as u64 {
            return Ok((state, torn));
        }
        let mut head = [0; FRAME_HEAD_LEN];
        reader.read_exact(&mut head)?;
        let [len, body_crc, head_crc] = [0, 4, 8].map(|at| {
            u32::from_le_bytes(
                head[at..at + 4]
                    .try_into()
                    .expect("a frame header holds three u32"),
            )
        });
        if crc32fast::hash(&head[..8]) != head_crc {
            // A header written only in part, the rest of the file zero (space the file
            // system allocated but whose data never reached the disk)?
            if zeros_from(file, offset + FRAME_HEAD_LEN as u64, file_len)? {
                return Ok((state, torn));
            }
            return Err(corrupt(offset, "frame header checksum mismatch"));
        }
        let end = offset + (FRAME_HEAD_LEN as u64) + u64::from(len);
        if end > file_len {
            // A header that checks out, for a body the file does not hold in full.
            return Ok((state, torn));
        }
        if len == 0 {
            return Err(corrupt(offset, "empty frame"));
        }
        if len > MAX_FRAME_LEN {
            return Err(corrupt(offset, "frame longer than the maximum"));
        }
        // Bounded by the bytes the file holds (checked above), not by what the header says.
        let mut body = vec![0; len as usize];
        reader.read_exact(&mut body)?;
        if crc32fast::hash(&body) != body_crc {
            if end == file_len || body.iter().all(|&b| b == 0) && zeros_from(file, end, file_len)? {
                return Ok((state, torn));
            }
            return Err(corrupt(offset, "frame checksum mismatch"));
        }
        apply_frame(
            &mut state,
            Bytes::from(body),
            offset + FRAME_HEAD_LEN as u64,
        )?;
        offset = end;
    }
    Ok((state, 0))
}
