// SPDX-License-Identifier: GPL-2.0

//! swapfs: a small journaling extent filesystem whose files can safely back
//! swap.
//!
//! Layout of the crate (see `Documentation/design.md`):
//!
//! - [`common`]: `core`-only logic shared with the host tools in `tools/`.
//! - `sys`: the only module that touches C (the kernel crate's bindings and
//!   the C helper in `c/`); it turns raw pointers into safe types.
//! - `fs`: the filesystem, safe Rust on top of `sys`.
//! - `swap`: swap activation and swap IO, safe Rust on top of `sys`.
//! - `entry`: the functions C calls (`swapfs_rs_*`), on top of all of them:
//!   raw pointers in, `sys` types and a call into `fs` or `swap`, an errno
//!   out.

use kernel::prelude::*;

// Only `sys` (safe wrappers of C) and `entry` (the C boundary) may hold
// `unsafe` code; the compiler holds the rest to that.
#[forbid(unsafe_code)]
pub mod common;
mod entry;
#[forbid(unsafe_code)]
mod fs;
#[forbid(unsafe_code)]
mod swap;
mod sys;

module! {
    type: SwapFs,
    name: "swapfs",
    authors: ["swapfs developers"],
    description: "Journaling extent filesystem whose files can safely back swap",
    license: "GPL",
    params: {
        bio_reserve: u32 {
            default: 64,
            description: "Bios kept in reserve for swap IO under memory pressure (>= 1)",
        },
    },
}

struct SwapFs {
    _c: sys::CState,
}

impl kernel::Module for SwapFs {
    fn init(_module: &'static ThisModule) -> Result<Self> {
        let reserve = sys::param(module_parameters::bio_reserve.value());
        // Swap IO under memory pressure waits for a reserved bio: with none
        // it could wait forever.
        if reserve == 0 {
            pr_err!("bio_reserve=0: at least one bio must be kept for swap IO\n");
            return Err(EINVAL);
        }
        let c = sys::CState::new(reserve)?;
        pr_info!(
            "loaded (swap hook: {}, bio reserve: {})\n",
            c.swap_hook().name(),
            reserve
        );
        Ok(SwapFs { _c: c })
    }
}
