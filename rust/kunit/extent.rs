// SPDX-License-Identifier: GPL-2.0

//! KUnit: the extent-tree code of [`crate::common::extent`], compiled for
//! the kernel, driven by a few hundred deterministic operations against a
//! per-block model over a small in-memory node store (the host runs the
//! property tests and the worst cases).

use kernel::prelude::*;

#[kunit_tests(swapfs_extent)]
mod tests {
    use crate::common::crc32c;
    use crate::common::extent::{
        lookup, max_touched_blocks, set_range, shift, walk, Item, Mapping, NodeStore, NodeStoreMut,
        Shift, TreeError,
    };
    use crate::common::format::{
        extent_flags, FormatError, Geometry, LayoutParams, RootHeader, Superblock, INODE_ROOT_SIZE,
    };
    use kernel::alloc::AllocError;
    use kernel::prelude::*;

    const OWNER: u64 = 7;
    /// Logical blocks the operations use.
    const SPACE: u64 = 480;
    /// Logical blocks the model holds (room for inserts).
    const MODEL: usize = 512;

    enum TestError {
        Format(FormatError),
        Tree(TreeError),
        NoMemory,
        /// The store was asked for a block that is not a live node.
        Store(u64),
        /// The tree disagrees with the model at this logical block.
        Mismatch(u64),
    }

    // Written out (not derived) so that the fields count as read; the
    // kernel's `pr_*` format `{:?}` through `core::fmt::Debug`.
    impl core::fmt::Debug for TestError {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            match self {
                TestError::Format(e) => write!(f, "{e:?}"),
                TestError::Tree(e) => write!(f, "{e:?}"),
                TestError::NoMemory => write!(f, "out of memory"),
                TestError::Store(b) => write!(f, "block {b} is not a live node"),
                TestError::Mismatch(l) => {
                    write!(f, "tree and model disagree at logical block {l}")
                }
            }
        }
    }

    impl From<FormatError> for TestError {
        fn from(e: FormatError) -> Self {
            TestError::Format(e)
        }
    }

    impl From<TreeError> for TestError {
        fn from(e: TreeError) -> Self {
            TestError::Tree(e)
        }
    }

    impl From<AllocError> for TestError {
        fn from(_: AllocError) -> Self {
            TestError::NoMemory
        }
    }

    type TestResult<T = ()> = core::result::Result<T, TestError>;

    /// Node blocks in one `KVec`, block `first + i` in slot `i`.
    struct MemStore {
        geo: Geometry,
        first: u64,
        data: KVec<u8>,
        live: KVec<bool>,
        /// Distinct blocks modified or allocated since the last `reset`.
        touched: KVec<u64>,
        allocated: u64,
        freed: u64,
    }

    impl MemStore {
        fn new() -> TestResult<MemStore> {
            let sb = Superblock::layout(LayoutParams {
                block_size_log2: 10,
                block_count: 1 << 20,
                inode_count: 64,
                journal_blocks: 1024,
            })?;
            let geo = sb.geometry(1 << 20, crc32c::update)?;
            Ok(MemStore {
                first: geo.data_start + 10,
                geo,
                data: KVec::with_capacity(16 * 1024, GFP_KERNEL)?,
                live: KVec::with_capacity(64, GFP_KERNEL)?,
                touched: KVec::with_capacity(16, GFP_KERNEL)?,
                allocated: 0,
                freed: 0,
            })
        }

        fn bs(&self) -> usize {
            self.geo.block_size()
        }

        fn slot(&self, blk: u64) -> TestResult<usize> {
            let i = blk
                .checked_sub(self.first)
                .and_then(|i| usize::try_from(i).ok())
                .ok_or(TestError::Store(blk))?;
            if self.live.get(i).copied() == Some(true) {
                Ok(i)
            } else {
                Err(TestError::Store(blk))
            }
        }

        fn touch(&mut self, blk: u64) -> TestResult {
            if !self.touched.contains(&blk) {
                self.touched.push(blk, GFP_KERNEL)?;
            }
            Ok(())
        }

        fn reset(&mut self) {
            self.touched.clear();
        }

        fn live_blocks(&self) -> u64 {
            self.allocated - self.freed
        }
    }

    impl NodeStore for MemStore {
        type Error = TestError;

        fn geometry(&self) -> &Geometry {
            &self.geo
        }

        fn read<R>(&mut self, blk: u64, f: impl FnOnce(&[u8]) -> R) -> TestResult<R> {
            let i = self.slot(blk)?;
            let bs = self.bs();
            let b = self
                .data
                .get(i * bs..(i + 1) * bs)
                .ok_or(TestError::Store(blk))?;
            Ok(f(b))
        }
    }

    impl NodeStoreMut for MemStore {
        fn modify<R>(&mut self, blk: u64, f: impl FnOnce(&mut [u8]) -> R) -> TestResult<R> {
            let i = self.slot(blk)?;
            self.touch(blk)?;
            let bs = self.bs();
            let b = self
                .data
                .get_mut(i * bs..(i + 1) * bs)
                .ok_or(TestError::Store(blk))?;
            Ok(f(b))
        }

        fn alloc(&mut self, _goal: u64) -> TestResult<u64> {
            let bs = self.bs();
            let i = match self.live.iter().position(|&l| !l) {
                Some(i) => i,
                None => {
                    self.data.extend_with(bs, 0, GFP_KERNEL)?;
                    self.live.push(false, GFP_KERNEL)?;
                    self.live.len() - 1
                }
            };
            let off = u64::try_from(i).map_err(|_| TestError::NoMemory)?;
            let blk = self.first + off;
            if let Some(b) = self.data.get_mut(i * bs..(i + 1) * bs) {
                b.fill(0);
            }
            if let Some(l) = self.live.get_mut(i) {
                *l = true;
            }
            self.allocated += 1;
            self.touch(blk)?;
            Ok(blk)
        }

        fn free(&mut self, blk: u64) -> TestResult {
            let i = self.slot(blk)?;
            if let Some(l) = self.live.get_mut(i) {
                *l = false;
            }
            self.freed += 1;
            Ok(())
        }
    }

    /// The model: `0` for a hole, else `pblk << 1 | unwritten`.
    struct Model {
        map: KVec<u64>,
    }

    impl Model {
        fn new() -> TestResult<Model> {
            let mut map = KVec::with_capacity(MODEL, GFP_KERNEL)?;
            map.extend_with(MODEL, 0, GFP_KERNEL)?;
            Ok(Model { map })
        }

        fn get(&self, l: u64) -> u64 {
            usize::try_from(l)
                .ok()
                .and_then(|i| self.map.get(i).copied())
                .unwrap_or(0)
        }

        fn set(&mut self, l: u64, v: u64) {
            if let Some(x) = usize::try_from(l).ok().and_then(|i| self.map.get_mut(i)) {
                *x = v;
            }
        }

        fn set_range(&mut self, lblk: u64, len: u64, map: Option<(u64, u32)>) {
            for i in 0..len {
                let v = match map {
                    Some((p, f)) => ((p + i) << 1) | u64::from(f & extent_flags::UNWRITTEN),
                    None => 0,
                };
                self.set(lblk + i, v);
            }
        }

        /// Moves every block at or after `from` by `delta`, down or up.
        fn shift(&mut self, from: u64, delta: u64, up: bool) {
            let n = MODEL as u64;
            if up {
                for l in (from..n).rev() {
                    let v = self.get(l);
                    self.set(l, 0);
                    self.set(l + delta, v);
                }
            } else {
                for l in from..n {
                    let v = self.get(l);
                    self.set(l, 0);
                    self.set(l - delta, v);
                }
            }
        }
    }

    /// A small deterministic generator (xorshift).
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn empty_root() -> [u8; INODE_ROOT_SIZE] {
        let mut r = [0u8; INODE_ROOT_SIZE];
        RootHeader::empty().encode(&mut r);
        r
    }

    /// `walk` succeeds, every block the extents map agrees with the model,
    /// the model maps nothing else, and the store holds exactly the node
    /// blocks of the tree.
    fn check_tree(st: &mut MemStore, root: &[u8; INODE_ROOT_SIZE], m: &Model) -> TestResult {
        let mut mapped = 0u64;
        let mut nodes = 0u64;
        let mut bad = None;
        walk(st, root, OWNER, |item| {
            match item {
                Item::Node(n) => {
                    if n.blk.is_some() {
                        nodes += 1;
                    }
                }
                Item::Extent(e) => {
                    for i in 0..u64::from(e.len) {
                        let want =
                            ((e.pblk + i) << 1) | u64::from(e.flags & extent_flags::UNWRITTEN);
                        if m.get(e.lblk + i) != want {
                            bad.get_or_insert(e.lblk + i);
                        }
                    }
                    mapped += u64::from(e.len);
                }
            }
            Ok(())
        })?;
        if let Some(l) = bad {
            return Err(TestError::Mismatch(l));
        }
        let model_mapped = m.map.iter().filter(|&&v| v != 0).count();
        if usize::try_from(mapped).ok() != Some(model_mapped) {
            return Err(TestError::Mismatch(u64::MAX));
        }
        if nodes != st.live_blocks() {
            return Err(TestError::Store(nodes));
        }
        Ok(())
    }

    /// `lookup` at `l` agrees with the model (hole ends included).
    fn check_lookup(
        st: &mut MemStore,
        root: &[u8; INODE_ROOT_SIZE],
        m: &Model,
        l: u64,
    ) -> TestResult {
        let ok = match lookup(st, root, OWNER, l)? {
            Mapping::Mapped(e) => {
                let want = m.get(l);
                e.lblk <= l
                    && l < e.lend()
                    && want == ((e.pblk + (l - e.lblk)) << 1) | u64::from(e.flags & 1)
            }
            Mapping::Hole { end } => {
                let next = (l..MODEL as u64)
                    .find(|&k| m.get(k) != 0)
                    .unwrap_or(u64::MAX);
                m.get(l) == 0 && end == next
            }
        };
        if ok {
            Ok(())
        } else {
            Err(TestError::Mismatch(l))
        }
    }

    /// `set_range` until done, checking the credits of every call.
    fn set(
        st: &mut MemStore,
        root: &mut [u8; INODE_ROOT_SIZE],
        m: &mut Model,
        lblk: u64,
        len: u64,
        map: Option<(u64, u32)>,
    ) -> TestResult {
        let mut done = 0;
        while done < len {
            let depth = RootHeader::decode(root)?.depth;
            st.reset();
            let mm = map.map(|(p, f)| (p + done, f));
            let mut replaced = 0u64;
            let n = set_range(st, root, OWNER, lblk + done, len - done, mm, |p| {
                replaced += u64::from(p.len);
                Ok(())
            })?;
            // The pieces cover exactly what the model had mapped.
            let had = (lblk + done..lblk + done + n)
                .filter(|&l| m.get(l) != 0)
                .count();
            let too_many = st.touched.len() > max_touched_blocks(depth) as usize;
            if n == 0 || too_many || usize::try_from(replaced).ok() != Some(had) {
                return Err(TestError::Mismatch(lblk + done));
            }
            m.set_range(lblk + done, n, mm);
            done += n;
        }
        Ok(())
    }

    fn run_shift(st: &mut MemStore, root: &mut [u8; INODE_ROOT_SIZE], sh: Shift) -> TestResult {
        let mut sh = sh;
        while !shift(st, root, OWNER, &mut sh)? {}
        Ok(())
    }

    fn random_ops(seed: u64) -> TestResult {
        let mut st = MemStore::new()?;
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let mut m = Model::new()?;
        let mut rng = Rng(seed);
        for step in 0..400u64 {
            let l = rng.below(SPACE);
            let len = 1 + rng.below(12).min(SPACE - 1 - l);
            match rng.below(10) {
                0..=4 => {
                    // Contiguous with the identity map (merges), or not.
                    let p = if rng.below(2) == 0 {
                        base + l
                    } else {
                        base + 10_000 + 64 * rng.below(1000)
                    };
                    let f = if rng.below(4) == 0 {
                        extent_flags::UNWRITTEN
                    } else {
                        0
                    };
                    set(&mut st, &mut root, &mut m, l, len, Some((p, f)))?;
                }
                5..=7 => set(&mut st, &mut root, &mut m, l, len, None)?,
                8 => {
                    // Collapse: punch [l - d, l), then shift down.
                    let d = len.min(l);
                    if d > 0 {
                        set(&mut st, &mut root, &mut m, l - d, d, None)?;
                        run_shift(&mut st, &mut root, Shift::left(l, d))?;
                        m.shift(l, d, false);
                    }
                }
                _ => {
                    // Insert: keep everything inside the model.
                    set(&mut st, &mut root, &mut m, SPACE - len, MODEL as u64, None)?;
                    run_shift(&mut st, &mut root, Shift::right(l, len))?;
                    m.shift(l, len, true);
                }
            }
            check_tree(&mut st, &root, &m)?;
            for _ in 0..8 {
                check_lookup(&mut st, &root, &m, rng.below(MODEL as u64))?;
            }
            if step % 50 == 0 {
                for k in 0..MODEL as u64 {
                    check_lookup(&mut st, &root, &m, k)?;
                }
            }
        }
        // Punching everything leaves an empty root and no node.
        set(&mut st, &mut root, &mut m, 0, MODEL as u64, None)?;
        check_tree(&mut st, &root, &m)?;
        if root != empty_root() || st.live_blocks() != 0 {
            return Err(TestError::Mismatch(0));
        }
        Ok(())
    }

    fn many_extents() -> TestResult {
        let mut st = MemStore::new()?;
        let base = st.geo.data_start + 100_000;
        let mut root = empty_root();
        let n = 1000u64;
        // One-block extents, not physically contiguous: a tree of depth 2
        // with 1 KiB blocks.
        for i in 0..n {
            set_range(
                &mut st,
                &mut root,
                OWNER,
                i,
                1,
                Some((base + 2 * i, 0)),
                |_| Ok(()),
            )?;
        }
        if RootHeader::decode(&root)?.depth != 2 {
            return Err(TestError::Mismatch(n));
        }
        for i in (0..n).step_by(7) {
            match lookup(&mut st, &root, OWNER, i)? {
                Mapping::Mapped(e) if e.lblk == i && e.pblk == base + 2 * i && e.len == 1 => {}
                _ => return Err(TestError::Mismatch(i)),
            }
        }
        if lookup(&mut st, &root, OWNER, n)? != (Mapping::Hole { end: u64::MAX }) {
            return Err(TestError::Mismatch(n));
        }
        let mut done = 0;
        while done < n {
            done += set_range(&mut st, &mut root, OWNER, done, n - done, None, |_| Ok(()))?;
        }
        if root != empty_root() || st.live_blocks() != 0 {
            return Err(TestError::Mismatch(0));
        }
        Ok(())
    }

    fn report(r: TestResult) -> TestResult {
        if let Err(e) = &r {
            pr_err!("swapfs_extent: {:?}\n", e);
        }
        r
    }

    #[test]
    fn operations_against_model() -> TestResult {
        report(random_ops(0x9e37_79b9_7f4a_7c15))?;
        report(random_ops(0x0123_4567_89ab_cdef))
    }

    #[test]
    fn deep_tree() -> TestResult {
        report(many_extents())
    }
}
