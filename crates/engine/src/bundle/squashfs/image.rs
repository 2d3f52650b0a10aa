//! One squashfs image, read without unsquashfs or root: backhand parses the superblock, inode,
//! directory and fragment tables; file contents are read here, block by block, so memory stays
//! bounded (backhand's own file reader keeps every fragment block it ever decompressed).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use backhand::traits::types::Compressor;
use backhand::{DataSize, FilesystemReader, InnerNode, SquashfsFileReader};

use super::Problem;

/// A file's `frag_index` when its tail is not stored in a fragment block.
const NO_FRAGMENT: u32 = u32::MAX;

/// Decompressed fragment blocks kept: files packed next to each other share one, and a layer
/// is read in its tar order, which is mostly the packing order. A few blocks (at most 1 MiB
/// each) are plenty.
const FRAGMENT_CACHE: usize = 4;

pub(crate) struct Image {
    filesystem: FilesystemReader<'static>,
    /// A second handle for file contents; backhand keeps its own behind a lock.
    data: File,
    data_len: u64,
    block_size: u32,
    fragments: RefCell<VecDeque<(u64, Vec<u8>)>>,
}

/// A regular file of the image.
#[derive(Clone, Copy)]
pub(crate) struct ImageFile<'a> {
    inner: &'a SquashfsFileReader,
}

impl ImageFile<'_> {
    pub(crate) fn len(&self) -> u64 {
        match self.inner {
            SquashfsFileReader::Basic(file) => u64::from(file.file_size),
            SquashfsFileReader::Extended(file) => file.file_size,
        }
    }

    fn blocks_start(&self) -> u64 {
        match self.inner {
            SquashfsFileReader::Basic(file) => u64::from(file.blocks_start),
            SquashfsFileReader::Extended(file) => file.blocks_start,
        }
    }

    fn block_sizes(&self) -> &[DataSize] {
        match self.inner {
            SquashfsFileReader::Basic(file) => &file.block_sizes,
            SquashfsFileReader::Extended(file) => &file.block_sizes,
        }
    }

    fn fragment(&self) -> (u32, u32) {
        match self.inner {
            SquashfsFileReader::Basic(file) => (file.frag_index, file.block_offset),
            SquashfsFileReader::Extended(file) => (file.frag_index, file.block_offset),
        }
    }
}

/// Checks the superblock's magic, version and compressor first, so that an image of another
/// kind is named as such rather than failing somewhere in its tables.
fn check_superblock(file: &mut File) -> Result<(), Problem> {
    let mut superblock = [0u8; 96];
    file.read_exact(&mut superblock)
        .map_err(|_| Problem::Image("shorter than a squashfs superblock".to_string()))?;
    file.seek(SeekFrom::Start(0)).map_err(Problem::Io)?;
    let u16_at = |at: usize| u16::from_le_bytes([superblock[at], superblock[at + 1]]);
    if &superblock[..4] != b"hsqs" {
        return Err(Problem::Image(
            "no squashfs magic (little-endian `hsqs`) at its start".to_string(),
        ));
    }
    let (major, minor) = (u16_at(28), u16_at(30));
    if major != 4 {
        return Err(Problem::Image(format!(
            "squashfs version {major}.{minor}; only 4.0 (mksquashfs's) is read"
        )));
    }
    let name = match u16_at(20) {
        1 => return Ok(()),
        2 => "lzma",
        3 => "lzo",
        4 => "xz",
        5 => "lz4",
        6 => "zstd",
        _ => "an unknown compressor",
    };
    Err(Problem::Compression(name.to_string()))
}

/// The path of the image's node for `parts` under the root: `/a/b`.
fn node_path<'p>(parts: impl IntoIterator<Item = &'p str>) -> PathBuf {
    let mut path = PathBuf::from("/");
    for part in parts {
        path.push(part);
    }
    path
}

impl Image {
    pub(crate) fn open(path: &Path) -> Result<Image, Problem> {
        let mut file = File::open(path).map_err(Problem::Io)?;
        check_superblock(&mut file)?;
        let data = file.try_clone().map_err(Problem::Io)?;
        let data_len = data.metadata().map_err(Problem::Io)?.len();
        let filesystem = FilesystemReader::from_reader(BufReader::new(file))
            .map_err(|e| Problem::Image(e.to_string()))?;
        if filesystem.compressor != Some(Compressor::Gzip) {
            return Err(Problem::Compression("another compressor".to_string()));
        }
        let block_size = filesystem.block_size;
        if !(4096..=1 << 20).contains(&block_size) || !block_size.is_power_of_two() {
            return Err(Problem::Image(format!(
                "block size {block_size} is invalid"
            )));
        }
        Ok(Image {
            filesystem,
            data,
            data_len,
            block_size,
            fragments: RefCell::new(VecDeque::new()),
        })
    }

    /// The regular file at `path` (`/`-separated, relative to the root), or `None` if there
    /// is none or it is something else. Symbolic links are never followed.
    pub(crate) fn file(&self, path: &str) -> Option<ImageFile<'_>> {
        self.file_at(&node_path(path.split('/')))
    }

    /// As [`Image::file`], for a path already made of checked components.
    pub(crate) fn file_at(&self, path: &Path) -> Option<ImageFile<'_>> {
        let nodes = &self.filesystem.root.nodes;
        let index = nodes
            .binary_search_by(|node| node.fullpath.as_path().cmp(path))
            .ok()?;
        match &nodes[index].inner {
            InnerNode::File(inner) => Some(ImageFile { inner }),
            _ => None,
        }
    }

    pub(crate) fn reader<'a>(&'a self, file: ImageFile<'a>) -> FileReader<'a> {
        FileReader {
            image: self,
            file,
            next_block: 0,
            next_offset: file.blocks_start(),
            remaining: file.len(),
            buffer: Vec::new(),
            consumed: 0,
        }
    }

    fn read_at(&self, offset: u64, length: usize) -> Result<Vec<u8>, Problem> {
        let inside = offset
            .checked_add(length as u64)
            .is_some_and(|end| end <= self.data_len);
        if !inside {
            return Err(Problem::Image(format!(
                "a data block at {offset} (+{length}) lies beyond the image's end ({} bytes)",
                self.data_len
            )));
        }
        let mut bytes = vec![0u8; length];
        let mut data = &self.data;
        data.seek(SeekFrom::Start(offset)).map_err(Problem::Io)?;
        data.read_exact(&mut bytes).map_err(Problem::Io)?;
        Ok(bytes)
    }

    /// A data or fragment block, decompressed: never more than one block size.
    fn block(&self, offset: u64, size: DataSize) -> Result<Vec<u8>, Problem> {
        if size.size() > self.block_size {
            return Err(Problem::Image(format!(
                "a data block at {offset} claims {} bytes, more than the block size",
                size.size()
            )));
        }
        let raw = self.read_at(offset, size.size() as usize)?;
        if size.uncompressed() {
            return Ok(raw);
        }
        let mut out = Vec::with_capacity(self.block_size as usize);
        let status = flate2::Decompress::new(true)
            .decompress_vec(&raw, &mut out, flate2::FlushDecompress::Finish)
            .map_err(|e| Problem::Image(format!("a data block at {offset} is damaged: {e}")))?;
        if status != flate2::Status::StreamEnd {
            return Err(Problem::Image(format!(
                "a data block at {offset} is damaged or larger than the block size"
            )));
        }
        Ok(out)
    }

    /// `length` bytes at `start` of fragment block `index`.
    fn fragment(&self, index: u32, start: u32, length: usize) -> Result<Vec<u8>, Problem> {
        let fragment = self
            .filesystem
            .fragments
            .as_ref()
            .and_then(|fragments| fragments.get(index as usize))
            .ok_or_else(|| Problem::Image(format!("fragment {index} is not in the table")))?;
        let mut cache = self.fragments.borrow_mut();
        let position = cache.iter().position(|(at, _)| *at == fragment.start);
        let block = match position {
            Some(position) => {
                let hit = cache.remove(position).expect("position is in the cache");
                cache.push_front(hit);
                &cache[0].1
            }
            None => {
                let block = self.block(fragment.start, fragment.size)?;
                if cache.len() == FRAGMENT_CACHE {
                    cache.pop_back();
                }
                cache.push_front((fragment.start, block));
                &cache[0].1
            }
        };
        let range = (start as usize)..(start as usize).saturating_add(length);
        block.get(range).map(<[u8]>::to_vec).ok_or_else(|| {
            Problem::Image(format!(
                "a file's tail ({length} bytes at {start}) lies beyond fragment {index}"
            ))
        })
    }
}

/// A regular file's contents, one block in memory at a time.
pub(crate) struct FileReader<'a> {
    image: &'a Image,
    file: ImageFile<'a>,
    next_block: usize,
    next_offset: u64,
    /// Bytes of the file not yet in `buffer`.
    remaining: u64,
    buffer: Vec<u8>,
    consumed: usize,
}

impl FileReader<'_> {
    fn fill(&mut self) -> Result<(), Problem> {
        let block_size = u64::from(self.image.block_size);
        let expected = self.remaining.min(block_size) as usize;
        let sizes = self.file.block_sizes();
        let block = if let Some(&size) = sizes.get(self.next_block) {
            self.next_block += 1;
            if size.size() == 0 {
                // A hole: a block of zeros with nothing stored.
                vec![0u8; expected]
            } else {
                let block = self.image.block(self.next_offset, size)?;
                self.next_offset += u64::from(size.size());
                block
            }
        } else {
            let (index, start) = self.file.fragment();
            if index == NO_FRAGMENT {
                return Err(Problem::Image(
                    "a file is longer than its data blocks".to_string(),
                ));
            }
            self.image.fragment(index, start, expected)?
        };
        if block.len() != expected {
            return Err(Problem::Image(format!(
                "a data block holds {} bytes where {expected} were due",
                block.len()
            )));
        }
        self.remaining -= expected as u64;
        self.buffer = block;
        self.consumed = 0;
        Ok(())
    }
}

impl Read for FileReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.consumed == self.buffer.len() {
            if self.remaining == 0 || out.is_empty() {
                return Ok(0);
            }
            self.fill().map_err(Problem::into_io)?;
        }
        let available = &self.buffer[self.consumed..];
        let count = available.len().min(out.len());
        out[..count].copy_from_slice(&available[..count]);
        self.consumed += count;
        Ok(count)
    }
}
