// SPDX-License-Identifier: GPL-2.0

//! Mount options: their defaults, their limits, and how `/proc/mounts`
//! shows them. C parses the text (`fs_parser`, which knows the names and
//! the words of each option); every value goes through [`set`].

use core::ffi::CStr;
use core::fmt::{self, Write};

use super::FsInfo;
use crate::sys::vfs::SuperBlock;
use crate::sys::{ffi, MountOpts};

/// The longest `commit=` interval, in seconds (ext4 takes any; a journal
/// left uncommitted for more than an hour is a mistake, not a setting).
pub(crate) const MAX_COMMIT_SECS: u32 = 3600;

/// One parsed option.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Opt {
    /// `commit=N`: seconds between journal commits (0: jbd2's default).
    Commit(u32),
    /// `errors=continue` (false) or `errors=remount-ro` (true).
    ErrorsRemountRo(bool),
    /// `swap_unshare` / `noswap_unshare`.
    SwapUnshare(bool),
    /// `swap_unwritten=refuse` (true) or `=allow` (false).
    SwapRefuseUnwritten(bool),
}

/// The options of a new mount.
pub(crate) fn defaults() -> MountOpts {
    MountOpts {
        commit_secs: 0,
        errors: ffi::swapfs_errors_mode_SWAPFS_ERRORS_REMOUNT_RO,
        swap_unshare: false,
        swap_refuse_unwritten: false,
    }
}

/// The options a remount starts from: the mount's own.
pub(crate) fn current(sb: &SuperBlock) -> MountOpts {
    FsInfo::get(sb).map_or_else(defaults, |fs| *fs.opts.lock())
}

/// Sets one option; a value out of its range is refused with the limit.
pub(crate) fn set(o: &mut MountOpts, opt: Opt) -> Result<(), &'static CStr> {
    match opt {
        Opt::Commit(secs) if secs > MAX_COMMIT_SECS => return Err(c"at most 3600 seconds"),
        Opt::Commit(secs) => o.commit_secs = secs,
        Opt::ErrorsRemountRo(ro) => {
            o.errors = if ro {
                ffi::swapfs_errors_mode_SWAPFS_ERRORS_REMOUNT_RO
            } else {
                ffi::swapfs_errors_mode_SWAPFS_ERRORS_CONTINUE
            }
        }
        Opt::SwapUnshare(on) => o.swap_unshare = on,
        Opt::SwapRefuseUnwritten(on) => o.swap_refuse_unwritten = on,
    }
    Ok(())
}

/// Writes the options that differ from [`defaults`], each as ",name[=value]".
pub(crate) fn show(o: &MountOpts, out: &mut impl Write) -> fmt::Result {
    if o.commit_secs != 0 {
        write!(out, ",commit={}", o.commit_secs)?;
    }
    if o.errors == ffi::swapfs_errors_mode_SWAPFS_ERRORS_CONTINUE {
        out.write_str(",errors=continue")?;
    }
    if o.swap_unshare {
        out.write_str(",swap_unshare")?;
    }
    if o.swap_refuse_unwritten {
        out.write_str(",swap_unwritten=refuse")?;
    }
    Ok(())
}
