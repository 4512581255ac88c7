// SPDX-License-Identifier: GPL-2.0

//! Pure logic shared by the kernel module and the host tools.
//!
//! Everything under this directory uses only `core`: no `kernel` crate, no
//! `std`, no allocation. The module compiles it as `crate::common`; the host
//! workspace in `tools/` compiles the very same files as the `swapfs-common`
//! crate, so the on-disk format and the swap table logic have one source of
//! truth. Siblings are reached through `super::`, never `crate::`, so the tree
//! can be mounted anywhere.
//!
//! The exception is the KUnit suites (`mod kunit`, compiled only with
//! `CONFIG_KUNIT`, never on the host), each in the file it tests: they run in
//! the kernel and use the `kernel` crate, and the CRC-32C suite compares with
//! the kernel's `crc32c()` through `crate::sys`. The cases they share with
//! the host tests (e.g. `swapmap::cases`) are written once, in these files.

pub mod busy;
pub mod cow;
pub mod crc32c;
pub mod extent;
pub mod falloc;
pub mod format;
pub mod journal;
pub mod swapmap;
