// SPDX-License-Identifier: GPL-2.0

//! Host-side access to swapfs images, shared by `mkfs.swapfs`,
//! `fsck.swapfs` and the tests:
//!
//! - [`device`]: opening an image file or block device, block I/O;
//! - [`mkfs`]: creating a filesystem (the core of `mkfs.swapfs`);
//! - [`jbd2`]: the journal superblock;
//! - [`jlog`]: the jbd2 log: recovery as the kernel does it, and a log
//!   writer for the tests;
//! - [`store`]: extent-tree access over an image;
//! - [`builder`]: a test image builder and an editor for planting
//!   corruptions;
//! - [`cli`]: the command-line parsing the tools share.

pub mod builder;
pub mod cli;
pub mod device;
pub mod jbd2;
pub mod jlog;
pub mod mkfs;
pub mod store;

pub use device::{Access, Image, ReadBlocks};
