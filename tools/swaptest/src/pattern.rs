// SPDX-License-Identifier: GPL-2.0

//! The content of a test page: a header that says which page it is (magic,
//! page index, seed, process id and worker number, generation), a checksum,
//! and a body derived from the header. A page read back from swap is
//! checked against what *this* page of *this* process at *this* generation
//! must hold, so a lost write (stale generation), a misdirected one (wrong
//! index or process) and a corrupted one (checksum) are told apart.

use std::fmt;

/// "SWPTEST1", little-endian.
pub const MAGIC: u64 = u64::from_le_bytes(*b"SWPTEST1");

const W_MAGIC: usize = 0;
const W_INDEX: usize = 1;
const W_SEED: usize = 2;
const W_OWNER: usize = 3;
const W_GEN: usize = 4;
const W_SUM: usize = 5;
/// Words of header; the body follows.
pub const HEADER_WORDS: usize = 6;

/// Which page, of whom, at which generation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageId {
    /// The run's seed.
    pub seed: u64,
    /// The writing process.
    pub pid: u32,
    /// Its worker number.
    pub worker: u32,
    /// Page index in the worker's region.
    pub index: u64,
    /// How many times the page was rewritten.
    pub gen: u64,
}

impl PageId {
    fn owner(&self) -> u64 {
        (u64::from(self.pid) << 32) | u64::from(self.worker)
    }
}

/// SplitMix64's finaliser: a good 64-bit mixer.
pub fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn body_state(id: &PageId) -> u64 {
    mix(id.seed ^ mix(id.index ^ (id.gen << 40) ^ (id.owner().rotate_left(17)))) | 1
}

/// The next body word (xorshift64: cheap enough for an emulated CPU).
#[inline]
fn next(s: &mut u64) -> u64 {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    *s
}

/// Checksum of a page: every word but the checksum word.
pub fn checksum(page: &[u64]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for (i, &w) in page.iter().enumerate() {
        let w = if i == W_SUM { 0 } else { w };
        h = (h.rotate_left(5) ^ w).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix(h)
}

/// Fills `page` (a whole page, as words) for `id`.
pub fn fill(page: &mut [u64], id: &PageId) {
    let mut s = body_state(id);
    page[W_MAGIC] = MAGIC;
    page[W_INDEX] = id.index;
    page[W_SEED] = id.seed;
    page[W_OWNER] = id.owner();
    page[W_GEN] = id.gen;
    page[W_SUM] = 0;
    for w in page.iter_mut().skip(HEADER_WORDS) {
        *w = next(&mut s);
    }
    page[W_SUM] = checksum(page);
}

/// Why a page is not what it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Mismatch {
    /// Not a test page at all (zeroes, or foreign data).
    Magic { got: u64 },
    /// Another page's content (its header says which).
    Index { got: u64 },
    /// A page of another run.
    Seed { got: u64 },
    /// A page of another process or worker.
    Owner { got_pid: u32, got_worker: u32 },
    /// An older (or newer) version of this page: a lost or misordered write.
    Generation { got: u64 },
    /// The header is right but the content is not: corruption. `word` is
    /// the first word that differs from what was written.
    Checksum { word: usize, got: u64, want: u64 },
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mismatch::Magic { got } => write!(f, "no test header (first word {got:#018x})"),
            Mismatch::Index { got } => write!(f, "holds page {got} instead"),
            Mismatch::Seed { got } => write!(f, "holds a page of seed {got}"),
            Mismatch::Owner {
                got_pid,
                got_worker,
            } => write!(f, "holds a page of pid {got_pid} worker {got_worker}"),
            Mismatch::Generation { got } => {
                write!(f, "holds generation {got} (stale or lost write)")
            }
            Mismatch::Checksum { word, got, want } => write!(
                f,
                "checksum mismatch: first bad byte offset {} (got {got:#018x}, want {want:#018x})",
                word * 8
            ),
        }
    }
}

/// Checks `page` against `id`.
pub fn verify(page: &[u64], id: &PageId) -> Result<(), Mismatch> {
    if page[W_MAGIC] != MAGIC {
        return Err(Mismatch::Magic { got: page[W_MAGIC] });
    }
    if page[W_INDEX] != id.index {
        return Err(Mismatch::Index { got: page[W_INDEX] });
    }
    if page[W_SEED] != id.seed {
        return Err(Mismatch::Seed { got: page[W_SEED] });
    }
    if page[W_OWNER] != id.owner() {
        return Err(Mismatch::Owner {
            got_pid: (page[W_OWNER] >> 32) as u32,
            got_worker: page[W_OWNER] as u32,
        });
    }
    if page[W_GEN] != id.gen {
        return Err(Mismatch::Generation { got: page[W_GEN] });
    }
    if checksum(page) != page[W_SUM] {
        // Find the first word that differs from what was written.
        let mut s = body_state(id);
        for (i, &w) in page.iter().enumerate().skip(HEADER_WORDS) {
            let want = next(&mut s);
            if w != want {
                return Err(Mismatch::Checksum {
                    word: i,
                    got: w,
                    want,
                });
            }
        }
        return Err(Mismatch::Checksum {
            word: W_SUM,
            got: page[W_SUM],
            want: checksum(page),
        });
    }
    Ok(())
}

/// The one word the throughput mode writes into each page (enough to make
/// the page non-zero, so that mm really writes it to swap).
pub fn tag(seed: u64, worker: u32, index: u64) -> u64 {
    mix(seed ^ (u64::from(worker) << 48) ^ index) | 1
}

/// A small deterministic generator (xorshift64*), for random orders.
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed (any value).
    pub fn new(seed: u64) -> Rng {
        Rng(mix(seed) | 1)
    }

    /// The next value.
    pub fn next_u64(&mut self) -> u64 {
        let x = next(&mut self.0);
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.next_u64()) * u128::from(n)) >> 64) as u64
    }
}

/// A random permutation of `0..n`.
pub fn permutation(n: usize, seed: u64) -> Vec<u32> {
    let mut v: Vec<u32> = (0..n as u32).collect();
    let mut rng = Rng::new(seed);
    for i in (1..n).rev() {
        let j = rng.below(i as u64 + 1) as usize;
        v.swap(i, j);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id() -> PageId {
        PageId {
            seed: 42,
            pid: 1234,
            worker: 3,
            index: 77,
            gen: 2,
        }
    }

    #[test]
    fn fill_then_verify() {
        let mut p = vec![0u64; 512];
        fill(&mut p, &id());
        assert_eq!(verify(&p, &id()), Ok(()));
    }

    #[test]
    fn detects_each_kind() {
        let mut p = vec![0u64; 512];
        assert!(matches!(verify(&p, &id()), Err(Mismatch::Magic { got: 0 })));
        fill(&mut p, &id());
        let mut other = id();
        other.index = 78;
        assert_eq!(verify(&p, &other), Err(Mismatch::Index { got: 77 }));
        other = id();
        other.seed = 1;
        assert_eq!(verify(&p, &other), Err(Mismatch::Seed { got: 42 }));
        other = id();
        other.worker = 0;
        assert_eq!(
            verify(&p, &other),
            Err(Mismatch::Owner {
                got_pid: 1234,
                got_worker: 3
            })
        );
        other = id();
        other.gen = 3;
        assert_eq!(verify(&p, &other), Err(Mismatch::Generation { got: 2 }));
        p[300] ^= 1 << 9;
        assert!(matches!(
            verify(&p, &id()),
            Err(Mismatch::Checksum { word: 300, .. })
        ));
    }

    #[test]
    fn bodies_differ_between_pages_and_generations() {
        let mut a = vec![0u64; 512];
        let mut b = vec![0u64; 512];
        fill(&mut a, &id());
        let mut other = id();
        other.gen = 3;
        fill(&mut b, &other);
        assert_ne!(a[HEADER_WORDS..], b[HEADER_WORDS..]);
    }

    #[test]
    fn permutation_is_a_permutation() {
        let mut p = permutation(1000, 7);
        assert_ne!(p, (0..1000).collect::<Vec<u32>>());
        p.sort_unstable();
        assert_eq!(p, (0..1000).collect::<Vec<u32>>());
        assert!(permutation(0, 1).is_empty());
        assert_eq!(permutation(1, 1), vec![0]);
    }
}
