// SPDX-License-Identifier: GPL-2.0

//! Property tests of the jbd2 log reader: valid logs replay exactly as a
//! model of jbd2 says, and damaged or random logs never panic it.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use swapfs_image::jbd2::{self, features, JournalSuperblock};
use swapfs_image::jlog::write::LogWriter;
use swapfs_image::jlog::{tid_geq, Journal, Recovery};
use swapfs_image::Image;

const BS: usize = 1024;
const JSTART: u64 = 1;
const JLEN: u64 = 1024;
const DEV_BLOCKS: u64 = JSTART + JLEN + 64;
/// Replayed blocks are chosen among a few, so that copies collide.
const TARGETS: u64 = 24;

/// The tag formats: none, 64-bit, checksum v2 (32- and 64-bit), v3, and
/// the swapfs module's set.
const FEATURES: [u32; 6] = [
    0,
    features::INCOMPAT_64BIT,
    features::INCOMPAT_CSUM_V2,
    features::INCOMPAT_CSUM_V2 | features::INCOMPAT_64BIT,
    features::INCOMPAT_CSUM_V3,
    features::INCOMPAT_REVOKE | features::INCOMPAT_64BIT | features::INCOMPAT_CSUM_V3,
];

fn journal_sb(incompat: u32, sequence: u32) -> JournalSuperblock {
    let mut sb = JournalSuperblock::new(BS as u32, JLEN as u32, *b"jlog-props-uuid!");
    sb.feature_incompat = incompat;
    if incompat & (features::INCOMPAT_CSUM_V2 | features::INCOMPAT_CSUM_V3) != 0 {
        sb.checksum_type = jbd2::CRC32C_CHKSUM;
    }
    sb.sequence = sequence;
    sb
}

/// One transaction: copies (target index, fill byte, escaped) and revoked
/// target indexes.
type Txn = (Vec<(u64, u8, bool)>, Vec<u64>);

fn txn() -> impl Strategy<Value = Txn> {
    (
        prop::collection::vec((0..TARGETS, any::<u8>(), any::<bool>()), 0..40),
        prop::collection::vec(0..TARGETS, 0..6),
    )
}

fn contents(fill: u8, escaped: bool) -> Vec<u8> {
    let mut b = vec![fill; BS];
    if escaped {
        b[..4].copy_from_slice(&jbd2::MAGIC.to_be_bytes());
    }
    b
}

/// Target index to filesystem block: after the journal, and some with
/// the high 32 bits set (64-bit journals only).
fn target(i: u64, bit64: bool) -> u64 {
    let b = JSTART + JLEN + i;
    if bit64 && i.is_multiple_of(5) {
        b | 7 << 32
    } else {
        b
    }
}

/// Writes the transactions (the last one without its commit block if
/// `torn`) from journal block `start` and returns the image and what the
/// writer laid out.
fn build(incompat: u32, seq: u32, start: u64, txns: &[Txn], torn: bool) -> Image {
    let sb = journal_sb(incompat, seq);
    let bit64 = incompat & features::INCOMPAT_64BIT != 0;
    let mut w = LogWriter::new(&sb, start);
    for (i, (copies, revokes)) in txns.iter().enumerate() {
        let revokes: Vec<u64> = revokes.iter().map(|&t| target(t, bit64)).collect();
        if !revokes.is_empty() {
            w.revoke(&revokes);
        }
        let data: Vec<(u64, Vec<u8>)> = copies
            .iter()
            .map(|&(t, fill, esc)| (target(t, bit64), contents(fill, esc)))
            .collect();
        let refs: Vec<(u64, &[u8])> = data.iter().map(|(b, d)| (*b, d.as_slice())).collect();
        if !refs.is_empty() {
            w.blocks(&refs);
        }
        if !(torn && i + 1 == txns.len()) {
            w.commit();
        }
    }
    let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
    w.apply(&mut img, JSTART, &sb).unwrap();
    img
}

/// What jbd2 replays: revoke records of every committed transaction
/// first, then each copy unless a revoke of its transaction or a later one
/// covers it; the last copy wins.
fn model(incompat: u32, seq: u32, txns: &[Txn]) -> BTreeMap<u64, Vec<u8>> {
    let bit64 = incompat & features::INCOMPAT_64BIT != 0;
    let mut revoked: HashMap<u64, u32> = HashMap::new();
    for (i, (_, revokes)) in txns.iter().enumerate() {
        let tid = seq.wrapping_add(i as u32);
        for &t in revokes {
            revoked.insert(target(t, bit64), tid);
        }
    }
    let mut out = BTreeMap::new();
    for (i, (copies, _)) in txns.iter().enumerate() {
        let tid = seq.wrapping_add(i as u32);
        for &(t, fill, esc) in copies {
            let b = target(t, bit64);
            if revoked.get(&b).is_some_and(|&r| tid_geq(r, tid)) {
                continue;
            }
            out.insert(b, contents(fill, esc));
        }
    }
    out
}

fn recover(img: &Image) -> Option<Recovery> {
    let mut b = vec![0u8; BS];
    img.read_block(JSTART, &mut b).unwrap();
    let j = Journal::load(&b, BS, JSTART, JLEN).ok()?;
    Some(
        j.recover(img)
            .expect("an in-memory image never fails to read"),
    )
}

/// What holds for any recovery.
fn sane(r: &Recovery) {
    assert!(r.replays >= r.blocks.len() as u64);
    assert!(r.blocks.values().all(|b| b.len() == BS));
    if r.ok() {
        // Every transaction has at least its commit block in the journal.
        assert!(r.transactions() < JLEN as u32, "{r:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn valid_logs_replay_as_modelled(
        f in 0..FEATURES.len(),
        seq in prop_oneof![Just(u32::MAX - 2), 1..u32::MAX],
        start in 1..JLEN,
        txns in prop::collection::vec(txn(), 1..8),
        torn in any::<bool>(),
    ) {
        let incompat = FEATURES[f];
        let img = build(incompat, seq, start, &txns, torn);
        let r = recover(&img).expect("the journal loads");
        sane(&r);
        prop_assert_eq!(&r.failure, &None);
        let committed = txns.len() - usize::from(torn);
        prop_assert_eq!(r.transactions() as usize, committed);
        prop_assert_eq!(r.start_tid, seq);
        let want = model(incompat, seq, &txns[..committed]);
        prop_assert_eq!(r.blocks.keys().collect::<Vec<_>>(), want.keys().collect::<Vec<_>>());
        prop_assert!(r.blocks == want, "replayed contents differ");
    }

    #[test]
    fn damaged_logs_never_panic(
        f in 0..FEATURES.len(),
        start in 1..JLEN,
        txns in prop::collection::vec(txn(), 1..5),
        writes in prop::collection::vec((0..JLEN, 0..BS, any::<u8>()), 1..24),
        sb_writes in prop::collection::vec((0usize..0x100, any::<u8>()), 0..3),
    ) {
        let incompat = FEATURES[f];
        let mut img = build(incompat, 7, start, &txns, false);
        for &(j, off, v) in &writes {
            let mut b = vec![0u8; BS];
            img.read_block(JSTART + j, &mut b).unwrap();
            b[off] = v;
            img.write_block(JSTART + j, &b).unwrap();
        }
        let mut b = vec![0u8; BS];
        img.read_block(JSTART, &mut b).unwrap();
        for &(off, v) in &sb_writes {
            b[off] = v;
        }
        img.write_block(JSTART, &b).unwrap();
        if let Some(r) = recover(&img) {
            sane(&r);
        }
    }

    #[test]
    fn random_journal_blocks_never_panic(
        f in 0..FEATURES.len(),
        start in 1..JLEN,
        seq in 0..4u32,
        blocks in prop::collection::vec(
            (1..JLEN, 0u32..7, 0..4u32, any::<u32>(), prop::collection::vec(any::<u8>(), 0..64)),
            1..64,
        ),
    ) {
        // Blocks with the jbd2 magic, any type, sequences near the
        // expected one, any count field and random tags.
        let sb = JournalSuperblock { start: start as u32, ..journal_sb(FEATURES[f], seq) };
        let mut img = Image::zeroed(DEV_BLOCKS as usize * BS);
        let mut b = vec![0u8; BS];
        sb.encode(&mut b);
        img.write_block(JSTART, &b).unwrap();
        for (j, kind, s, count, tags) in &blocks {
            let mut b = vec![0u8; BS];
            b[..4].copy_from_slice(&jbd2::MAGIC.to_be_bytes());
            b[4..8].copy_from_slice(&kind.to_be_bytes());
            b[8..12].copy_from_slice(&s.to_be_bytes());
            b[12..16].copy_from_slice(&count.to_be_bytes());
            b[16..16 + tags.len()].copy_from_slice(tags);
            img.write_block(JSTART + j, &b).unwrap();
        }
        if let Some(r) = recover(&img) {
            sane(&r);
        }
    }
}
