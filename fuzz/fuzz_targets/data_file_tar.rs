//! A bundle's data file: the tar of blobs the original tool and ours write, indexed as upload
//! indexes one (from the file, and as a stream for compressed parts), and as the fork's OCI
//! archive reader reads its headers.
#![no_main]

use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use engine::bundle::parts::{self, EntryLocation};
use libfuzzer_sys::fuzz_target;

const FILE_NAME: &str = "img_full_202611230708_0.tar";

/// The indexers take a path. One anonymous temporary file, reached through /proc/self/fd,
/// is rewritten for every input: nothing is left behind when libFuzzer exits the process. It
/// lives in memory (/dev/shm) where there is one: truncating a file on a disk's file system
/// took milliseconds, which made this target 30 times slower.
fn scratch() -> &'static Mutex<(File, PathBuf)> {
    static SCRATCH: OnceLock<Mutex<(File, PathBuf)>> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let memory = Path::new("/dev/shm");
        let file = if memory.is_dir() {
            tempfile::tempfile_in(memory)
        } else {
            tempfile::tempfile()
        }
        .expect("a temporary file");
        let path = PathBuf::from(format!(
            "/proc/self/fd/{}",
            std::os::fd::AsRawFd::as_raw_fd(&file)
        ));
        Mutex::new((file, path))
    })
}

fn assert_inside(entries: &[(String, EntryLocation)], len: usize) {
    for (name, location) in entries {
        assert!(
            location
                .offset
                .checked_add(location.size)
                .is_some_and(|end| end <= len as u64),
            "entry {name:?} at {location:?} runs past the end of a {len}-byte file"
        );
    }
}

fuzz_target!(|bytes: &[u8]| {
    let from_stream = parts::index_reader(bytes, FILE_NAME);

    let mut scratch = scratch().lock().unwrap();
    let (file, path) = &mut *scratch;
    file.set_len(0).unwrap();
    file.seek(SeekFrom::Start(0)).unwrap();
    file.write_all(bytes).unwrap();

    let from_file = parts::index_part(path, FILE_NAME);
    match &from_file {
        Ok(entries) => assert_inside(entries, bytes.len()),
        // The message names the entry and why it is refused: shown to the user as is.
        Err(error) => {
            let _ = error.to_string();
        }
    }
    // Upload indexes an uncompressed part from the file and a decompressed one as a stream:
    // the same tar must give the same entries either way.
    if let (Ok(from_file), Ok(from_stream)) = (&from_file, &from_stream) {
        assert_eq!(from_file, from_stream);
    }
    match parts::index_archive_part(path, FILE_NAME) {
        Ok(entries) => assert_inside(&entries, bytes.len()),
        Err(error) => {
            let _ = error.to_string();
        }
    }
});
