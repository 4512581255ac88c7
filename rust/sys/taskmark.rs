// SPDX-License-Identifier: GPL-2.0

//! Marks on tasks: while a [`Mark`] lives, [`bump`] called from its task
//! counts on the counter the mark carries. The swap IO path marks its task so
//! that a transaction start from it (which could deadlock the filesystem
//! against reclaim) is refused and counted on the swapfile.
//!
//! The marks live in a small lock-free table, keyed by the task: a mark
//! claims a free slot with a compare-exchange, its drop clears it, and the
//! lookup scans the table only while some mark exists. A mark that finds
//! the table full is a lapse: [`Mark::enter`] returns `None`, so that the
//! caller counts it and says so; nothing fails open silently.

use core::ptr;
use core::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use kernel::prelude::*;
use kernel::task::Task;

/// Tasks that can be marked at once; more concurrent marks are lapses.
const SLOTS: usize = 64;

struct Slot {
    task: AtomicPtr<kernel::bindings::task_struct>,
    counter: AtomicPtr<AtomicU64>,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Slot = Slot {
    task: AtomicPtr::new(ptr::null_mut()),
    counter: AtomicPtr::new(ptr::null_mut()),
};
static MARKS: [Slot; SLOTS] = [FREE; SLOTS];
/// Marks alive: the lookup costs one load while there are none.
static LIVE: AtomicUsize = AtomicUsize::new(0);

/// The mark of the current task, cleared when dropped (by that task).
pub(crate) struct Mark<'a> {
    slot: &'a Slot,
}

impl<'a> Mark<'a> {
    /// Marks the current task with `counter`; `None` if the table is full.
    pub(crate) fn enter(counter: &'a AtomicU64) -> Option<Mark<'a>> {
        let me = Task::current_raw();
        let c = ptr::from_ref(counter).cast_mut();
        for slot in MARKS.iter() {
            if slot
                .task
                .compare_exchange(ptr::null_mut(), me, Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
            {
                // Only this task reads this slot's counter (by its task).
                slot.counter.store(c, Ordering::Relaxed);
                LIVE.fetch_add(1, Ordering::AcqRel);
                // The slot outlives `'a`: the caller's counter is the only
                // borrow; the table is static.
                return Some(Mark { slot });
            }
        }
        None
    }
}

impl Drop for Mark<'_> {
    fn drop(&mut self) {
        self.slot.counter.store(ptr::null_mut(), Ordering::Relaxed);
        self.slot.task.store(ptr::null_mut(), Ordering::Release);
        LIVE.fetch_sub(1, Ordering::AcqRel);
    }
}

/// If the current task is marked, adds one to its mark's counter and
/// returns true.
pub(crate) fn bump() -> bool {
    if LIVE.load(Ordering::Acquire) == 0 {
        return false;
    }
    let me = Task::current_raw();
    let Some(slot) = MARKS.iter().find(|s| s.task.load(Ordering::Acquire) == me) else {
        return false;
    };
    let c = slot.counter.load(Ordering::Relaxed);
    // Only the marked task sets and clears its slot, and it is this task:
    // its mark is alive (its drop has not run).
    // SAFETY: so is the counter the mark borrows.
    let counter = unsafe { c.as_ref() };
    if let Some(c) = counter {
        c.fetch_add(1, Ordering::Relaxed);
    }
    true
}

#[cfg(CONFIG_KUNIT)]
#[kunit_tests(swapfs_taskmark)]
mod tests {
    use core::sync::atomic::{AtomicU64, Ordering};
    use kernel::prelude::*;

    #[test]
    fn counts_on_the_mark_while_it_lives() {
        let c = AtomicU64::new(0);
        assert!(!super::bump());
        {
            let m = super::Mark::enter(&c);
            assert!(m.is_some());
            assert!(super::bump());
            assert!(super::bump());
        }
        assert!(!super::bump());
        assert_eq!(c.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_table_is_a_lapse_and_frees_again() -> Result {
        let c = AtomicU64::new(0);
        let mut marks = KVec::with_capacity(super::SLOTS, GFP_KERNEL)?;
        for _ in 0..super::SLOTS {
            marks.push(super::Mark::enter(&c), GFP_KERNEL)?;
        }
        assert!(marks.iter().all(|m| m.is_some()));
        assert!(super::Mark::enter(&c).is_none());
        // The task is still marked (every slot is its own).
        assert!(super::bump());
        marks.clear();
        assert!(!super::bump());
        assert!(super::Mark::enter(&c).is_some());
        assert_eq!(c.load(Ordering::Relaxed), 1);
        Ok(())
    }
}
