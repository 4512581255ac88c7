// SPDX-License-Identifier: GPL-2.0

//! Access to a filesystem image: a regular file, a block device, or a
//! buffer in memory (for tests).

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, FileTypeExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::Path;

/// `BLKGETSIZE64`, `_IOR(0x12, 114, size_t)`: the size of a block device in
/// bytes. The `libc` crate does not define it; the encoding of `_IOR`
/// differs between architectures.
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
const BLKGETSIZE64: u64 = 0x4008_1272;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const BLKGETSIZE64: u64 = 0x8008_1272;

/// `BLKZEROOUT`, `_IO(0x12, 127)`: zeroes a byte range of a block device.
#[cfg(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
))]
const BLKZEROOUT: u64 = 0x2000_127f;
#[cfg(not(any(
    target_arch = "powerpc",
    target_arch = "powerpc64",
    target_arch = "mips",
    target_arch = "mips64",
    target_arch = "sparc",
    target_arch = "sparc64"
)))]
const BLKZEROOUT: u64 = 0x127f;

/// How to open an image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only: every write fails.
    ReadOnly,
    /// Read and write.
    ReadWrite,
    /// Read and write; a block device is opened with `O_EXCL`, which fails
    /// with `EBUSY` while it is mounted or otherwise in use (for mkfs).
    Exclusive,
}

enum Backend {
    File(File),
    Memory(Vec<u8>),
}

/// An open image. Reads and writes are positioned and exact: a short read
/// or write is an error.
pub struct Image {
    backend: Backend,
    size: u64,
    writable: bool,
    block_device: bool,
}

fn read_only_error() -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, "image is open read-only")
}

fn range_error(offset: u64, len: u64, size: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("access to bytes {offset}+{len} past the end of the device ({size} bytes)"),
    )
}

/// The size of the block device open as `file`, in bytes.
fn block_device_size(file: &File) -> io::Result<u64> {
    let mut size: u64 = 0;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points
    // to a live u64 for the duration of the call; the fd is open.
    let ret = unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) };
    if ret < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(size)
}

impl Image {
    /// Opens a regular file or a block device. The size of a file comes
    /// from its metadata, that of a block device from `BLKGETSIZE64`.
    /// Anything else is refused.
    pub fn open(path: &Path, access: Access) -> io::Result<Image> {
        let kind = std::fs::metadata(path)?.file_type();
        let block_device = kind.is_block_device();
        if !block_device && !kind.is_file() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "not a regular file or block device",
            ));
        }
        let writable = access != Access::ReadOnly;
        let mut opts = OpenOptions::new();
        opts.read(true).write(writable);
        if block_device && access == Access::Exclusive {
            opts.custom_flags(libc::O_EXCL);
        }
        let file = opts.open(path)?;
        let size = if block_device {
            block_device_size(&file)?
        } else {
            file.metadata()?.len()
        };
        Ok(Image {
            backend: Backend::File(file),
            size,
            writable,
            block_device,
        })
    }

    /// An image held in memory; it is writable and never changes size.
    pub fn from_vec(data: Vec<u8>) -> Image {
        Image {
            size: data.len() as u64,
            backend: Backend::Memory(data),
            writable: true,
            block_device: false,
        }
    }

    /// A zero-filled in-memory image of `size` bytes.
    pub fn zeroed(size: usize) -> Image {
        Image::from_vec(vec![0; size])
    }

    /// The contents of an in-memory image (`None` for a file or device).
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.backend {
            Backend::Memory(v) => Some(v),
            Backend::File(_) => None,
        }
    }

    /// The contents of an in-memory image (`None` for a file or device).
    pub fn into_vec(self) -> Option<Vec<u8>> {
        match self.backend {
            Backend::Memory(v) => Some(v),
            Backend::File(_) => None,
        }
    }

    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whole blocks of `block_size` bytes the image holds.
    pub fn blocks(&self, block_size: usize) -> u64 {
        self.size / block_size as u64
    }

    /// Whether the image is a block device.
    pub fn is_block_device(&self) -> bool {
        self.block_device
    }

    /// Whether writes are allowed.
    pub fn is_writable(&self) -> bool {
        self.writable
    }

    fn check_range(&self, offset: u64, len: u64) -> io::Result<()> {
        match offset.checked_add(len) {
            Some(end) if end <= self.size => Ok(()),
            _ => Err(range_error(offset, len, self.size)),
        }
    }

    /// Reads exactly `buf.len()` bytes at byte `offset`.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<()> {
        self.check_range(offset, buf.len() as u64)?;
        match &self.backend {
            Backend::File(f) => f.read_exact_at(buf, offset),
            Backend::Memory(v) => {
                let start = usize::try_from(offset).map_err(|_| range_error(offset, 0, 0))?;
                let src = v
                    .get(start..start + buf.len())
                    .ok_or_else(|| range_error(offset, buf.len() as u64, self.size))?;
                buf.copy_from_slice(src);
                Ok(())
            }
        }
    }

    /// Writes all of `buf` at byte `offset`, inside the image.
    pub fn write_at(&mut self, offset: u64, buf: &[u8]) -> io::Result<()> {
        if !self.writable {
            return Err(read_only_error());
        }
        self.check_range(offset, buf.len() as u64)?;
        let size = self.size;
        match &mut self.backend {
            Backend::File(f) => f.write_all_at(buf, offset),
            Backend::Memory(v) => {
                let start = usize::try_from(offset).map_err(|_| range_error(offset, 0, 0))?;
                let dst = v
                    .get_mut(start..start + buf.len())
                    .ok_or_else(|| range_error(offset, buf.len() as u64, size))?;
                dst.copy_from_slice(buf);
                Ok(())
            }
        }
    }

    /// Reads block `blk` of `buf.len()` bytes (the block size).
    pub fn read_block(&self, blk: u64, buf: &mut [u8]) -> io::Result<()> {
        let offset = block_offset(blk, buf.len())?;
        self.read_at(offset, buf)
    }

    /// Writes block `blk` of `buf.len()` bytes (the block size).
    pub fn write_block(&mut self, blk: u64, buf: &[u8]) -> io::Result<()> {
        let offset = block_offset(blk, buf.len())?;
        self.write_at(offset, buf)
    }

    /// Zeroes `len` bytes at `offset` without writing them, if the
    /// backend can: a hole punched in a file (which keeps images sparse), or
    /// `BLKZEROOUT` on a block device. False if that is not possible.
    fn zero_range_fast(&self, offset: u64, len: u64) -> bool {
        let Backend::File(f) = &self.backend else {
            return false;
        };
        let (Ok(off), Ok(l)) = (i64::try_from(offset), i64::try_from(len)) else {
            return false;
        };
        let fd = f.as_raw_fd();
        if self.block_device {
            let range = [offset, len];
            // SAFETY: BLKZEROOUT reads two u64 (start, length) through the
            // pointer, which points to a live array; the fd is open.
            unsafe { libc::ioctl(fd, BLKZEROOUT as _, range.as_ptr()) == 0 }
        } else {
            let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
            // SAFETY: a system call on an open fd; no memory is passed.
            unsafe { libc::fallocate(fd, mode, off, l) == 0 }
        }
    }

    /// Zeroes `count` blocks of `block_size` bytes from block `start`.
    pub fn zero_blocks(&mut self, start: u64, count: u64, block_size: usize) -> io::Result<()> {
        const CHUNK: usize = 1 << 20;
        let mut offset = block_offset(start, block_size)?;
        let mut left = count
            .checked_mul(block_size as u64)
            .ok_or_else(|| range_error(offset, 0, self.size))?;
        if !self.writable {
            return Err(read_only_error());
        }
        self.check_range(offset, left)?;
        if left > 0 && self.zero_range_fast(offset, left) {
            return Ok(());
        }
        let zeroes = vec![0u8; CHUNK.min(left as usize)];
        while left > 0 {
            let n = (CHUNK as u64).min(left) as usize;
            self.write_at(offset, &zeroes[..n])?;
            offset += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Flushes writes to stable storage (a no-op in memory).
    pub fn sync(&mut self) -> io::Result<()> {
        match &self.backend {
            Backend::File(f) if self.writable => f.sync_all(),
            _ => Ok(()),
        }
    }
}

/// Something filesystem blocks can be read from: an [`Image`], or an image
/// seen through a journal replay ([`crate::jlog::Replayed`]).
pub trait ReadBlocks {
    /// Reads block `blk` of `buf.len()` bytes (the block size).
    fn read_block(&self, blk: u64, buf: &mut [u8]) -> io::Result<()>;

    /// Reads `buf.len() / block_size` consecutive blocks from `start` into
    /// `buf` (a whole number of blocks). The default reads them one by one.
    fn read_blocks(&self, start: u64, block_size: usize, buf: &mut [u8]) -> io::Result<()> {
        for (i, b) in buf.chunks_exact_mut(block_size).enumerate() {
            self.read_block(start + i as u64, b)?;
        }
        Ok(())
    }
}

impl ReadBlocks for Image {
    fn read_block(&self, blk: u64, buf: &mut [u8]) -> io::Result<()> {
        Image::read_block(self, blk, buf)
    }

    /// One positioned read for the whole range.
    fn read_blocks(&self, start: u64, block_size: usize, buf: &mut [u8]) -> io::Result<()> {
        self.read_at(block_offset(start, block_size)?, buf)
    }
}

/// The byte offset of block `blk`.
fn block_offset(blk: u64, block_size: usize) -> io::Result<u64> {
    blk.checked_mul(block_size as u64).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("block number {blk} overflows"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_blocks_roundtrip_and_bounds() {
        let mut img = Image::zeroed(4096);
        assert_eq!(img.blocks(1024), 4);
        img.write_block(3, &[7u8; 1024]).unwrap();
        let mut b = [0u8; 1024];
        img.read_block(3, &mut b).unwrap();
        assert_eq!(b, [7u8; 1024]);
        assert!(img.read_block(4, &mut b).is_err());
        assert!(img.write_block(u64::MAX, &b).is_err());
        img.zero_blocks(3, 1, 1024).unwrap();
        img.read_block(3, &mut b).unwrap();
        assert_eq!(b, [0u8; 1024]);
        assert!(img.zero_blocks(3, 2, 1024).is_err());
    }

    #[test]
    fn files_open_read_only_and_refuse_writes() {
        let dir = std::env::temp_dir().join(format!("swapfs-image-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("img");
        std::fs::write(&path, vec![1u8; 8192]).unwrap();
        let mut img = Image::open(&path, Access::ReadOnly).unwrap();
        assert_eq!(img.size(), 8192);
        assert!(!img.is_block_device());
        let mut b = [0u8; 2048];
        img.read_block(3, &mut b).unwrap();
        assert_eq!(b, [1u8; 2048]);
        assert!(img.write_block(0, &b).is_err());
        let mut img = Image::open(&path, Access::ReadWrite).unwrap();
        img.write_block(1, &[2u8; 4096]).unwrap();
        img.zero_blocks(0, 1, 4096).unwrap();
        assert!(img.zero_blocks(1, 2, 4096).is_err());
        img.sync().unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 8192);
        assert!(bytes[..4096].iter().all(|&b| b == 0));
        assert!(bytes[4096..].iter().all(|&b| b == 2));
        let mut ro = Image::open(&path, Access::ReadOnly).unwrap();
        assert!(ro.zero_blocks(0, 1, 4096).is_err());
        assert!(Image::open(&dir, Access::ReadOnly).is_err());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
