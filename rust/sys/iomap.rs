// SPDX-License-Identifier: GPL-2.0

//! iomap's questions and the filesystem's answers, as Rust types: what an
//! `iomap_begin` is asked for ([`IomapOp`]) and where a range of a file is
//! ([`IoMap`]). They are converted from and to the C helper's structs once,
//! at the boundary (`crate::entry`).

use super::ffi;

/// What `iomap_begin` is asked for (iomap's `IOMAP_*` flags).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IomapOp(u32);

impl IomapOp {
    /// From the helper's `SWAPFS_IOMAP_*` bits.
    pub(crate) fn from_c(flags: u32) -> Self {
        IomapOp(flags)
    }

    fn has(self, bit: u32) -> bool {
        self.0 & bit != 0
    }

    /// A write (buffered, direct or page fault).
    pub(crate) fn write(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_WRITE)
    }

    /// Zeroing (`iomap_zero_range`).
    pub(crate) fn zero(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_ZERO)
    }

    /// A report (FIEMAP, `SEEK_DATA`/`SEEK_HOLE`).
    pub(crate) fn report(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_REPORT)
    }

    /// Direct IO.
    pub(crate) fn direct(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_DIRECT)
    }

    /// The caller may not wait (`RWF_NOWAIT`).
    pub(crate) fn nowait(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_NOWAIT)
    }

    /// Unsharing (`iomap_file_unshare`).
    pub(crate) fn unshare(self) -> bool {
        self.has(ffi::SWAPFS_IOMAP_UNSHARE)
    }
}

/// What a range of a file is on the device.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum MapKind {
    /// No blocks: reads as zeroes.
    #[default]
    Hole,
    /// Blocks at device byte `addr`, holding data.
    Mapped {
        /// Device offset in bytes.
        addr: u64,
    },
    /// Blocks at device byte `addr`, allocated but reading as zeroes.
    Unwritten {
        /// Device offset in bytes.
        addr: u64,
    },
}

/// One mapping of a file range (iomap's `struct iomap`).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct IoMap {
    /// File offset in bytes.
    pub(crate) offset: u64,
    /// Bytes (0: no mapping).
    pub(crate) length: u64,
    /// What the range is.
    pub(crate) kind: MapKind,
    /// Allocated by this call (`IOMAP_F_NEW`).
    pub(crate) new: bool,
    /// Shared with another file, or copy-on-write (`IOMAP_F_SHARED`).
    pub(crate) shared: bool,
    /// Copy-on-write blocks staged by this call, which `iomap_end` cancels
    /// past what was written.
    pub(crate) staged: bool,
    /// The inode's last change is not committed (`IOMAP_F_DIRTY`).
    pub(crate) dirty: bool,
}

impl IoMap {
    /// The helper's struct.
    pub(crate) fn to_c(self) -> ffi::swapfs_map {
        let (type_, addr) = match self.kind {
            MapKind::Hole => (ffi::swapfs_map_type_SWAPFS_MAP_HOLE, u64::MAX),
            MapKind::Mapped { addr } => (ffi::swapfs_map_type_SWAPFS_MAP_MAPPED, addr),
            MapKind::Unwritten { addr } => (ffi::swapfs_map_type_SWAPFS_MAP_UNWRITTEN, addr),
        };
        let flag = |on: bool, bit: u32| if on { bit } else { 0 };
        ffi::swapfs_map {
            offset: i64::try_from(self.offset).unwrap_or(i64::MAX),
            length: self.length,
            addr,
            type_,
            flags: flag(self.new, ffi::SWAPFS_MAP_F_NEW)
                | flag(self.shared, ffi::SWAPFS_MAP_F_SHARED)
                | flag(self.staged, ffi::SWAPFS_MAP_F_STAGED)
                | flag(self.dirty, ffi::SWAPFS_MAP_F_DIRTY),
        }
    }
}
