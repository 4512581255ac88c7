// SPDX-License-Identifier: GPL-2.0

//! The swapfs module's core-only logic (`rust/common/`), compiled for the
//! host. There is no copy: this crate includes the module's own source files,
//! so the host tools and the kernel module share one source of truth.

#![no_std]
// `x.is_multiple_of(n)` needs Rust 1.87; the module must build with the
// kernel's minimum (1.85), so the shared core keeps `x % n == 0`.
#![allow(clippy::manual_is_multiple_of)]

#[cfg(test)]
extern crate std;

#[path = "../../../rust/common/mod.rs"]
mod common;

pub use common::*;
