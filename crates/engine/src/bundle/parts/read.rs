//! Reading one entry of an uncompressed part: a seek and a bounded read, never outside the
//! file or the bundle's directory. Separate because it is all that reading needs, once a part
//! is indexed.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::path::Path;

use super::EntryLocation;
use crate::bundle::meta::is_plain_file_name;

/// Opens an entry of an uncompressed part for reading: the file, seeked to the data, limited
/// to its size. Fails if the location is not inside the file (the caller must not stream a
/// short blob) or names anything but a plain file in `dir`.
pub fn open_entry(dir: &Path, location: &EntryLocation) -> io::Result<io::Take<File>> {
    if !is_plain_file_name(&location.file) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{:?} is not a data file name", location.file),
        ));
    }
    let mut file = File::open(dir.join(&location.file))?;
    let len = file.metadata()?.len();
    let inside = location
        .offset
        .checked_add(location.size)
        .is_some_and(|end| end <= len);
    if !inside {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "data file {} has {len} bytes; the entry at {} needs {} more",
                location.file, location.offset, location.size
            ),
        ));
    }
    file.seek(SeekFrom::Start(location.offset))?;
    Ok(file.take(location.size))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bundle::parts::tests::write;

    #[test]
    fn open_entry_stays_inside_the_file_and_the_directory() {
        let temp = tempfile::tempdir().unwrap();
        write(temp.path(), "e.tar", &[1u8; 1024]);
        let at = |file: &str, offset, size| EntryLocation {
            file: file.into(),
            offset,
            size,
        };
        let mut content = Vec::new();
        open_entry(temp.path(), &at("e.tar", 1000, 24))
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content.len(), 24);
        let short = open_entry(temp.path(), &at("e.tar", 1000, 25)).unwrap_err();
        assert_eq!(short.kind(), io::ErrorKind::UnexpectedEof);
        assert!(open_entry(temp.path(), &at("e.tar", u64::MAX, 2)).is_err());
        let escape = open_entry(temp.path(), &at("../e.tar", 0, 1)).unwrap_err();
        assert_eq!(escape.kind(), io::ErrorKind::InvalidInput);
    }
}
