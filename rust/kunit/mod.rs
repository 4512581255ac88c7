// SPDX-License-Identifier: GPL-2.0

//! In-kernel KUnit suites, one file per suite, for the pure logic in
//! [`crate::common`].
//!
//! The host runs the same logic under `cargo test`; these suites prove it
//! behaves identically when compiled into the module (kernel target, kernel
//! lints, no `std`), and cross-check it against the kernel's own
//! implementations where one exists. They run when the module is loaded on a
//! kernel with `CONFIG_KUNIT`; `make check` reads their results from debugfs.

mod crc32c;
mod extent;
mod swapmap;
