// SPDX-License-Identifier: GPL-2.0

//! The swapfs module's core-only logic (`rust/common/`), compiled for the
//! host. There is no copy: this crate includes the module's own source files,
//! so the host tools and the kernel module share one source of truth.

#![no_std]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/common/mod.rs"]
mod common;

pub use common::*;
