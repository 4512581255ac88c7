// SPDX-License-Identifier: GPL-2.0

//! What a check found.

use std::fmt;
use std::io;

/// Where a problem is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The superblock (block 0).
    Superblock,
    /// The jbd2 superblock at the start of the journal.
    Journal,
    /// The jbd2 log (the transactions in the journal).
    Log,
    /// A block of the inode bitmap.
    InodeBitmap(u64),
    /// A block of the block bitmap.
    BlockBitmap(u64),
    /// A block of the reference-count table.
    Refcounts(u64),
    /// A block of the inode table.
    InodeTable(u64),
    /// An inode.
    Inode(u64),
    /// Data blocks `first..=last`.
    Blocks {
        /// First block.
        first: u64,
        /// Last block.
        last: u64,
    },
    /// A directory entry.
    Entry {
        /// The directory's inode.
        dir: u64,
        /// The entry's name (lossily decoded).
        name: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Superblock => write!(f, "superblock"),
            Location::Journal => write!(f, "journal superblock"),
            Location::Log => write!(f, "journal log"),
            Location::InodeBitmap(b) => write!(f, "inode bitmap block {b}"),
            Location::BlockBitmap(b) => write!(f, "block bitmap block {b}"),
            Location::Refcounts(b) => write!(f, "reference-count block {b}"),
            Location::InodeTable(b) => write!(f, "inode table block {b}"),
            Location::Inode(i) => write!(f, "inode {i}"),
            Location::Blocks { first, last } if first == last => write!(f, "block {first}"),
            Location::Blocks { first, last } => write!(f, "blocks {first}-{last}"),
            Location::Entry { dir, name } => write!(f, "directory {dir}, entry {name:?}"),
        }
    }
}

/// One inconsistency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// Where.
    pub at: Location,
    /// What, with the expected and found values where there are some.
    pub msg: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.msg)
    }
}

/// Usage figures of a filesystem whose superblock could be read.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Block size in bytes.
    pub block_size: usize,
    /// Inodes in use.
    pub inodes_used: u64,
    /// Inodes in the filesystem.
    pub inode_count: u64,
    /// Blocks in use, metadata regions included.
    pub blocks_used: u64,
    /// Blocks in the filesystem.
    pub block_count: u64,
}

/// The result of a check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// What is printed whatever the verbosity, before the problems: the
    /// state of the journal (whether it needs recovery, and how the check
    /// read the filesystem), warnings.
    pub info: Vec<String>,
    /// Every problem found, in the order found.
    pub problems: Vec<Problem>,
    /// Informational notes (printed with `-v`).
    pub notes: Vec<String>,
    /// Usage figures (`None` if the superblock is unusable).
    pub summary: Option<Summary>,
}

impl Report {
    /// Whether no problem was found.
    pub fn is_clean(&self) -> bool {
        self.problems.is_empty()
    }

    /// The fsck(8) exit status of this report: 0 or 4 (a check never
    /// writes; see [`crate::run`] for what a replay adds).
    pub fn exit_code(&self) -> u8 {
        if self.is_clean() {
            exit::OK
        } else {
            exit::UNCORRECTED
        }
    }

    /// Whether some problem at `at` mentions `text`.
    pub fn has(&self, at: &Location, text: &str) -> bool {
        self.problems
            .iter()
            .any(|p| &p.at == at && p.msg.contains(text))
    }

    pub(crate) fn problem(&mut self, at: Location, msg: impl Into<String>) {
        self.problems.push(Problem {
            at,
            msg: msg.into(),
        });
    }
}

/// fsck(8) exit statuses.
pub mod exit {
    /// No errors.
    pub const OK: u8 = 0;
    /// Errors corrected (here: the journal was replayed), added to the
    /// others.
    pub const CORRECTED: u8 = 1;
    /// Errors left uncorrected.
    pub const UNCORRECTED: u8 = 4;
    /// Operational error.
    pub const OPERATIONAL: u8 = 8;
    /// Usage or syntax error.
    pub const USAGE: u8 = 16;
}

/// Why a check could not be done at all.
#[derive(Debug)]
pub enum Error {
    /// The device holds no swapfs filesystem.
    NotSwapfs(String),
    /// Reading (or, replaying the journal, writing) the device failed.
    Io(io::Error),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NotSwapfs(s) => write!(f, "not a swapfs filesystem: {s}"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
        }
    }
}

impl std::error::Error for Error {}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        Error::Io(e)
    }
}
