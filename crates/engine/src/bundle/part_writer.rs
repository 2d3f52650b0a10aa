//! One data file ("part") of a bundle being saved: written on the caller's thread, hashed and
//! synced by threads of its own.
//!
//! The runtime's thread already hashes every blob to verify its digest. The part's own sha256
//! (`datafile_sha256`) costs as much again, so a thread per part computes it instead, reading
//! back from the file (the page cache) what the caller has written. Nothing waits in memory
//! between the two: the caller writes each chunk at once and drops it, as a single thread
//! would, so the HTTP client reuses its read buffer and memory stays flat. (Handing the chunks
//! themselves to a writer thread was tried: queued chunks keep the client's read buffers alive,
//! it allocates new ones, and peak RSS grew by 2-3 MiB.) A hasher that falls behind catches up
//! later, at the latest when the part is closed.
//!
//! A second thread per part syncs the file every [`WRITE_BACK_EVERY`] bytes, so the disk writes
//! while the download goes on instead of all at once when the part is closed.
//!
//! An entry that does not finish is cut back out of the file ([`Part::roll_back`]) and out of
//! the sha256: the hasher keeps its state at the offset where the entry began.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use registry::{Digest, DigestHasher};

use crate::error::{Error, Result};

/// The caller's write buffer: large enough for few system calls, small for a flat memory
/// profile with several parts.
const BUFFER: usize = 128 << 10;
/// What the hasher reads at a time.
const READ: usize = 32 << 10;
/// Every this many bytes the part's data so far is synced.
const WRITE_BACK_EVERY: u64 = 8 << 20;

/// What the hasher thread is told, in the order things happened to the file.
enum Hashing {
    /// An entry begins at this offset: keep the sha256 state there.
    Begin(u64),
    /// The file holds this many bytes: hash them.
    Written(u64),
    /// The entry is complete.
    End,
    /// The file was cut back to where the entry began.
    RollBack(u64),
    /// The file is complete at this many bytes: answer with its sha256.
    Close(u64, mpsc::SyncSender<std::io::Result<Digest>>),
}

/// A data file being written.
pub(crate) struct Part {
    name: String,
    path: PathBuf,
    file: BufWriter<File>,
    /// Bytes appended so far, buffer included.
    written: u64,
    /// Bytes the hasher has been told the file holds.
    published: u64,
    /// The hasher thread; `None` in fast mode.
    hashing: Option<mpsc::Sender<Hashing>>,
    /// Where the unfinished entry began.
    entry_start: Option<u64>,
}

impl Part {
    /// Creates the file `name` in `directory`, never overwriting one, and starts its threads.
    /// When `fast`, there are none: nothing waits for the disk and no sha256 is computed for
    /// the file (its blobs' digests are still checked as they stream in).
    pub(crate) fn create(directory: &Path, name: String, fast: bool) -> Result<Part> {
        let path = directory.join(&name);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::io(&path, e))?;
        if fast {
            return Ok(Part {
                name,
                path,
                file: BufWriter::with_capacity(BUFFER, file),
                written: 0,
                published: 0,
                hashing: None,
                entry_start: None,
            });
        }
        // The hasher reads through a handle of its own, with its own position.
        let reader = File::open(&path).map_err(|e| Error::io(&path, e))?;
        let syncing = file.try_clone().map_err(|e| Error::io(&path, e))?;
        let (write_back, requests) = mpsc::sync_channel::<()>(1);
        std::thread::Builder::new()
            .name(format!("sync {name}"))
            .spawn(move || {
                // Ends with the hasher, which holds the other end. Errors are not lost: the
                // sync when the part is closed reports them.
                while requests.recv().is_ok() {
                    let _ = syncing.sync_data();
                }
            })
            .map_err(|e| Error::io(&path, e))?;
        let (hashing, told) = mpsc::channel();
        let hasher = Hasher {
            file: reader,
            position: 0,
            buffer: vec![0; READ],
            hasher: DigestHasher::new(),
            hashed: 0,
            written: 0,
            mark: Mark::None,
            error: None,
            write_back,
            write_back_at: WRITE_BACK_EVERY,
        };
        std::thread::Builder::new()
            .name(format!("hash {name}"))
            .spawn(move || hasher.run(told))
            .map_err(|e| Error::io(&path, e))?;
        Ok(Part {
            name,
            path,
            file: BufWriter::with_capacity(BUFFER, file),
            written: 0,
            published: 0,
            hashing: Some(hashing),
            entry_start: None,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn written(&self) -> u64 {
        self.written
    }

    fn tell(&self, news: Hashing) -> std::io::Result<()> {
        match &self.hashing {
            Some(hashing) => hashing
                .send(news)
                .map_err(|_| std::io::Error::other("the data file's hasher thread ended")),
            None => Ok(()),
        }
    }

    pub(crate) fn begin_entry(&mut self) -> Result<()> {
        self.entry_start = Some(self.written);
        self.tell(Hashing::Begin(self.written))
            .map_err(|e| Error::io(&self.path, e))
    }

    pub(crate) fn append(&mut self, bytes: &[u8]) -> Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| Error::io(&self.path, e))?;
        self.written += bytes.len() as u64;
        self.publish().map_err(|e| Error::io(&self.path, e))
    }

    /// Tells the hasher about bytes that reached the file since it was last told.
    fn publish(&mut self) -> std::io::Result<()> {
        let in_file = self.written - self.file.buffer().len() as u64;
        if in_file > self.published {
            self.published = in_file;
            self.tell(Hashing::Written(in_file))?;
        }
        Ok(())
    }

    pub(crate) fn end_entry(&mut self) -> Result<()> {
        self.entry_start = None;
        self.tell(Hashing::End)
            .map_err(|e| Error::io(&self.path, e))
    }

    /// Cuts an unfinished entry, if there is one, back out of the file and the sha256, as if
    /// nothing had been written since it began.
    pub(crate) fn roll_back(&mut self) -> std::io::Result<()> {
        let Some(start) = self.entry_start.take() else {
            return Ok(());
        };
        self.file.flush()?;
        let file = self.file.get_mut();
        file.set_len(start)?;
        file.seek(SeekFrom::Start(start))?;
        self.written = start;
        self.published = start;
        self.tell(Hashing::RollBack(start))
    }

    /// Appends `end` (the end of the tar stream), syncs the file and returns its size and
    /// sha256; in fast mode, without syncing and without a sha256.
    pub(crate) fn close(mut self, end: &[u8]) -> Result<(u64, Option<Digest>)> {
        let path = self.path.clone();
        let io = |e| Error::io(&path, e);
        self.file.write_all(end).map_err(io)?;
        self.written += end.len() as u64;
        self.file.flush().map_err(io)?;
        if self.hashing.is_none() {
            return Ok((self.written, None));
        }
        let (answer, answered) = mpsc::sync_channel(1);
        self.tell(Hashing::Close(self.written, answer))
            .map_err(io)?;
        self.file.get_ref().sync_all().map_err(io)?;
        let digest = answered
            .recv()
            .map_err(|_| io(std::io::Error::other("the data file's hasher thread ended")))?
            .map_err(io)?;
        Ok((self.written, Some(digest)))
    }
}

/// The sha256 state where the unfinished entry began.
enum Mark {
    None,
    /// The hasher has not reached the entry's start yet.
    At(u64),
    Kept(u64, DigestHasher),
}

/// The hasher thread's side of a part.
struct Hasher {
    file: File,
    /// Where `file` is positioned.
    position: u64,
    buffer: Vec<u8>,
    hasher: DigestHasher,
    /// Bytes hashed so far.
    hashed: u64,
    /// Bytes the file holds, as last told.
    written: u64,
    mark: Mark,
    /// The first read error; the sha256 is lost then.
    error: Option<std::io::Error>,
    write_back: mpsc::SyncSender<()>,
    /// The size at which the next sync is asked for.
    write_back_at: u64,
}

impl Hasher {
    fn run(mut self, told: mpsc::Receiver<Hashing>) {
        // The channel ends without a close only when the part is abandoned: nothing to answer.
        while let Ok(news) = told.recv() {
            match news {
                Hashing::Begin(at) => {
                    self.mark = Mark::At(at);
                    self.keep_mark();
                }
                Hashing::Written(written) => {
                    self.written = written;
                    if written >= self.write_back_at {
                        self.write_back_at = written + WRITE_BACK_EVERY;
                        // A sync already waiting covers these bytes too.
                        let _ = self.write_back.try_send(());
                    }
                    self.catch_up();
                }
                Hashing::End => self.mark = Mark::None,
                Hashing::RollBack(start) => {
                    // Not kept yet: the hasher is still before `start`, nothing to undo.
                    if let Mark::Kept(at, hasher) = std::mem::replace(&mut self.mark, Mark::None) {
                        self.hasher = hasher;
                        self.hashed = at;
                    }
                    self.written = start;
                }
                Hashing::Close(written, answer) => {
                    self.written = written;
                    self.catch_up();
                    let outcome = match self.error.take() {
                        Some(error) => Err(error),
                        None if self.hashed != written => Err(std::io::Error::other(format!(
                            "the data file ends at {} bytes, not {written}",
                            self.hashed
                        ))),
                        None => Ok(self.hasher.finish()),
                    };
                    let _ = answer.send(outcome);
                    return;
                }
            }
        }
    }

    fn keep_mark(&mut self) {
        if let Mark::At(at) = self.mark
            && at == self.hashed
        {
            self.mark = Mark::Kept(at, self.hasher.clone());
        }
    }

    /// Hashes what the file holds past what is hashed, keeping the sha256 state at the mark on
    /// the way.
    fn catch_up(&mut self) {
        while self.error.is_none() && self.hashed < self.written {
            let until = match self.mark {
                Mark::At(at) if at > self.hashed => at.min(self.written),
                _ => self.written,
            };
            let want = (until - self.hashed).min(READ as u64) as usize;
            match self.read(want) {
                // The file is shorter than told: it was cut back, and news of that follows.
                Ok(0) => return,
                Ok(read) => {
                    self.hasher.update(&self.buffer[..read]);
                    self.hashed += read as u64;
                    self.keep_mark();
                }
                Err(error) => self.error = Some(error),
            }
        }
    }

    fn read(&mut self, want: usize) -> std::io::Result<usize> {
        if self.position != self.hashed {
            self.file.seek(SeekFrom::Start(self.hashed))?;
            self.position = self.hashed;
        }
        let read = self.file.read(&mut self.buffer[..want])?;
        self.position += read as u64;
        Ok(read)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(seed: u8, len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| seed.wrapping_add((i % 251) as u8))
            .collect()
    }

    /// A fast part writes and cuts back the same bytes, with no checksum to give.
    #[test]
    fn a_fast_part_rolls_back_and_has_no_checksum() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = Part::create(dir.path(), "p.tar".to_string(), true).unwrap();
        part.begin_entry().unwrap();
        part.append(&bytes(1, BUFFER + 3)).unwrap();
        part.end_entry().unwrap();
        part.begin_entry().unwrap();
        part.append(&bytes(2, 2 * BUFFER)).unwrap();
        part.roll_back().unwrap();
        let (size, digest) = part.close(&[0; 4]).unwrap();
        let mut expected = bytes(1, BUFFER + 3);
        expected.extend([0; 4]);
        assert_eq!(digest, None);
        assert_eq!(size, expected.len() as u64);
        assert_eq!(std::fs::read(dir.path().join("p.tar")).unwrap(), expected);
    }

    /// Entries larger than the write buffer, one cut back out halfway, one cut back out before
    /// anything reached the file: the size and sha256 are those of the file that is left.
    #[test]
    fn size_and_sha256_match_the_file_after_roll_backs() {
        let dir = tempfile::tempdir().unwrap();
        let mut part = Part::create(dir.path(), "p.tar".to_string(), false).unwrap();
        let mut expected = Vec::new();
        for (seed, len, keep) in [
            (1, 3 * BUFFER + 7, true),
            (2, 2 * BUFFER + 11, false),
            (3, 100, true),
            (4, 10, false),
            (5, BUFFER, true),
        ] {
            part.begin_entry().unwrap();
            let content = bytes(seed, len);
            for chunk in content.chunks(5000) {
                part.append(chunk).unwrap();
            }
            if keep {
                part.end_entry().unwrap();
                expected.extend_from_slice(&content);
            } else {
                part.roll_back().unwrap();
            }
        }
        let end = [0u8; 1024];
        expected.extend_from_slice(&end);
        let (size, digest) = part.close(&end).unwrap();
        let on_disk = std::fs::read(dir.path().join("p.tar")).unwrap();
        assert_eq!(on_disk, expected);
        assert_eq!(size, expected.len() as u64);
        assert_eq!(digest, Some(Digest::of(&expected)));
    }

    #[test]
    fn never_overwrites_a_file() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("p.tar"), b"earlier").unwrap();
        assert!(Part::create(dir.path(), "p.tar".to_string(), false).is_err());
        assert_eq!(std::fs::read(dir.path().join("p.tar")).unwrap(), b"earlier");
    }
}
