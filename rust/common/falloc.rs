// SPDX-License-Identifier: GPL-2.0

//! `fallocate(2)`: which mode a call asks for, and whether swapfs takes it,
//! answering exactly as ext4 and xfs do (the VFS has already refused what
//! it refuses for every filesystem; the checks are repeated so the logic
//! stands on its own).

/// `FALLOC_FL_*` bits (`include/uapi/linux/falloc.h`).
pub mod mode {
    /// Do not change the file size.
    pub const KEEP_SIZE: u32 = 0x01;
    /// Deallocate the range (requires `KEEP_SIZE`).
    pub const PUNCH_HOLE: u32 = 0x02;
    /// Reserved code point, never supported.
    pub const NO_HIDE_STALE: u32 = 0x04;
    /// Remove the range, shifting the rest of the file down.
    pub const COLLAPSE_RANGE: u32 = 0x08;
    /// Make the range read as zeroes, preallocated.
    pub const ZERO_RANGE: u32 = 0x10;
    /// Insert a hole, shifting the rest of the file up.
    pub const INSERT_RANGE: u32 = 0x20;
    /// Give the range private blocks (copy shared ones).
    pub const UNSHARE_RANGE: u32 = 0x40;
    /// Write zeroes to the device (not supported by swapfs).
    pub const WRITE_ZEROES: u32 = 0x80;
    /// The mutually exclusive modes (allocate is no bit at all).
    pub const MODE_MASK: u32 =
        PUNCH_HOLE | COLLAPSE_RANGE | ZERO_RANGE | INSERT_RANGE | UNSHARE_RANGE | WRITE_ZEROES;
}

/// What a `fallocate` call does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// Preallocate unwritten extents over the holes of the range.
    Allocate,
    /// Deallocate the whole blocks of the range, zero the partial ones.
    Punch,
    /// Punch, then preallocate: the range reads as zeroes.
    Zero,
    /// Remove the (block-aligned) range; the file shrinks.
    Collapse,
    /// Insert a (block-aligned) hole; the file grows.
    Insert,
    /// Copy the shared blocks of the range to private ones, preallocate
    /// its holes.
    Unshare,
}

/// A checked `fallocate` request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The operation.
    pub op: Op,
    /// First byte.
    pub offset: u64,
    /// Bytes (at least 1).
    pub len: u64,
    /// The file size to set afterwards, if it changes.
    pub new_size: Option<u64>,
}

/// Why a request is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FallocError {
    /// `EOPNOTSUPP`: a mode or combination swapfs does not implement.
    NotSupported,
    /// `EINVAL`: a misaligned or out-of-file range.
    Invalid,
    /// `EFBIG`: the file would exceed the largest size.
    TooBig,
}

/// Checks a request against the file's size `i_size`, the largest file
/// size `max_bytes` and the block size, and says what to do.
pub fn plan(
    flags: u32,
    offset: i64,
    len: i64,
    i_size: u64,
    max_bytes: u64,
    block_size: u64,
) -> Result<Plan, FallocError> {
    use mode::*;
    let (Ok(offset), Ok(len)) = (u64::try_from(offset), u64::try_from(len)) else {
        return Err(FallocError::Invalid);
    };
    if len == 0 {
        return Err(FallocError::Invalid);
    }
    if flags & !(KEEP_SIZE | MODE_MASK) != 0 {
        return Err(FallocError::NotSupported);
    }
    let keep = flags & KEEP_SIZE != 0;
    let op = match flags & MODE_MASK {
        0 => Op::Allocate,
        PUNCH_HOLE if keep => Op::Punch,
        ZERO_RANGE => Op::Zero,
        COLLAPSE_RANGE if !keep => Op::Collapse,
        INSERT_RANGE if !keep => Op::Insert,
        UNSHARE_RANGE => Op::Unshare,
        // PUNCH_HOLE without KEEP_SIZE, a size flag on a shifting mode,
        // WRITE_ZEROES, or several modes at once.
        _ => return Err(FallocError::NotSupported),
    };
    let end = offset.checked_add(len).ok_or(FallocError::TooBig)?;
    if end > max_bytes {
        return Err(FallocError::TooBig);
    }
    let aligned = block_size != 0 && offset % block_size == 0 && len % block_size == 0;
    let grow = |keep: bool| (!keep && end > i_size).then_some(end);
    let new_size = match op {
        Op::Allocate | Op::Zero | Op::Unshare => grow(keep),
        Op::Punch => None,
        Op::Collapse => {
            if !aligned {
                return Err(FallocError::Invalid);
            }
            // Collapsing up to or over EOF is a truncate: refused.
            if end >= i_size {
                return Err(FallocError::Invalid);
            }
            Some(i_size - len)
        }
        Op::Insert => {
            if !aligned {
                return Err(FallocError::Invalid);
            }
            if max_bytes.saturating_sub(i_size) < len {
                return Err(FallocError::TooBig);
            }
            if offset >= i_size {
                return Err(FallocError::Invalid);
            }
            Some(i_size + len)
        }
    };
    Ok(Plan {
        op,
        offset,
        len,
        new_size,
    })
}

#[cfg(test)]
mod tests {
    use super::mode::*;
    use super::*;

    const MAX: u64 = 1 << 40;

    fn p(flags: u32, off: i64, len: i64, size: u64) -> Result<Plan, FallocError> {
        plan(flags, off, len, size, MAX, 4096)
    }

    /// The planned operation and new size.
    fn q(flags: u32, off: i64, len: i64, size: u64) -> Result<(Op, Option<u64>), FallocError> {
        p(flags, off, len, size).map(|x| (x.op, x.new_size))
    }

    #[test]
    fn modes() {
        assert_eq!(q(0, 0, 10, 0), Ok((Op::Allocate, Some(10))));
        assert_eq!(q(KEEP_SIZE, 0, 10, 0), Ok((Op::Allocate, None)));
        assert_eq!(q(0, 0, 10, 100), Ok((Op::Allocate, None)));
        assert_eq!(q(PUNCH_HOLE | KEEP_SIZE, 5, 10, 0), Ok((Op::Punch, None)));
        assert_eq!(q(ZERO_RANGE, 0, 10, 5).map(|x| x.1), Ok(Some(10)));
        assert_eq!(q(ZERO_RANGE | KEEP_SIZE, 0, 10, 5).map(|x| x.1), Ok(None));
        assert_eq!(q(UNSHARE_RANGE, 0, 10, 5).map(|x| x.0), Ok(Op::Unshare));
        assert_eq!(
            q(COLLAPSE_RANGE, 4096, 4096, 16384),
            Ok((Op::Collapse, Some(12288)))
        );
        assert_eq!(
            q(INSERT_RANGE, 4096, 8192, 5000),
            Ok((Op::Insert, Some(13192)))
        );
    }

    #[test]
    fn refusals_match_ext4_and_xfs() {
        use FallocError::*;
        // Unsupported flags and combinations: EOPNOTSUPP.
        assert_eq!(p(PUNCH_HOLE, 0, 10, 100), Err(NotSupported));
        assert_eq!(p(NO_HIDE_STALE, 0, 10, 100), Err(NotSupported));
        assert_eq!(
            p(NO_HIDE_STALE | PUNCH_HOLE | KEEP_SIZE, 0, 10, 100),
            Err(NotSupported)
        );
        assert_eq!(p(WRITE_ZEROES, 0, 10, 100), Err(NotSupported));
        assert_eq!(
            p(PUNCH_HOLE | ZERO_RANGE | KEEP_SIZE, 0, 10, 100),
            Err(NotSupported)
        );
        assert_eq!(
            p(COLLAPSE_RANGE | KEEP_SIZE, 0, 4096, 1 << 20),
            Err(NotSupported)
        );
        assert_eq!(
            p(INSERT_RANGE | KEEP_SIZE, 0, 4096, 1 << 20),
            Err(NotSupported)
        );
        assert_eq!(
            p(COLLAPSE_RANGE | INSERT_RANGE, 0, 4096, 1 << 20),
            Err(NotSupported)
        );
        assert_eq!(p(0x100, 0, 10, 100), Err(NotSupported));
        // Bad ranges: EINVAL.
        assert_eq!(p(0, -1, 10, 100), Err(Invalid));
        assert_eq!(p(0, 0, 0, 100), Err(Invalid));
        assert_eq!(p(0, 0, -5, 100), Err(Invalid));
        assert_eq!(p(COLLAPSE_RANGE, 100, 4096, 1 << 20), Err(Invalid));
        assert_eq!(p(COLLAPSE_RANGE, 4096, 100, 1 << 20), Err(Invalid));
        assert_eq!(p(COLLAPSE_RANGE, 4096, 4096, 8192), Err(Invalid));
        assert_eq!(p(COLLAPSE_RANGE, 4096, 4096, 8000), Err(Invalid));
        assert_eq!(p(INSERT_RANGE, 4096, 1000, 1 << 20), Err(Invalid));
        assert_eq!(p(INSERT_RANGE, 8192, 4096, 8192), Err(Invalid));
        // Too big: EFBIG.
        assert_eq!(p(0, i64::MAX, 10, 0), Err(TooBig));
        assert_eq!(plan(0, 0, 11, 0, 10, 1024), Err(TooBig));
        assert_eq!(plan(INSERT_RANGE, 0, 4096, 8192, 10240, 4096), Err(TooBig));
        // Misalignment is checked before the size limit for insert, as xfs.
        assert_eq!(plan(INSERT_RANGE, 0, 100, 8192, 8200, 4096), Err(Invalid));
    }

    #[test]
    fn alignment_follows_the_block_size() {
        assert!(plan(COLLAPSE_RANGE, 1024, 1024, 4096, MAX, 1024).is_ok());
        assert_eq!(
            plan(COLLAPSE_RANGE, 1024, 1024, 4096, MAX, 2048),
            Err(FallocError::Invalid)
        );
        assert!(plan(INSERT_RANGE, 2048, 2048, 4096, MAX, 2048).is_ok());
    }
}
