// SPDX-License-Identifier: GPL-2.0

//! `swapfs-fuzz`: hostile images for swapfs.
//!
//! - [`corpus`]: one valid, populated image per block size (built with the
//!   shared format code and the test image builder), with a catalogue of
//!   its metadata;
//! - [`mutate`]: the image of a seed: the base image of the seed's block
//!   size with deterministic bit flips and field-aware mutations of every
//!   metadata structure;
//! - [`fsck`]: runs the checker on a case (in-process, catching panics, or
//!   the `fsck.swapfs` binary);
//! - [`guest`]: the loop that runs in a test VM: write the case to a disk,
//!   mount it, exercise it (list, read, write, swapon), unmount, and watch
//!   the kernel log.

pub mod corpus;
pub mod fsck;
pub mod guest;
pub mod mutate;
pub mod rng;

pub use mutate::{generate, Case};
