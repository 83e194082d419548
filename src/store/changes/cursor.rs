//! How far the change feed has been read, and which of its ids are still
//! owed (SPEC §9: the memory check never misses a change).
//!
//! Pure bookkeeping, no I/O: [`super::feed`] reads the database and tells
//! the cursor what it found, and the cursor says what to forget.
//!
//! On PostgreSQL an id is handed out when a transaction writes its feed row
//! and becomes visible when that transaction commits, possibly long after a
//! later id did. So an id missing below the highest one read (a *gap*) is
//! owed until it is known never to come: it is re-read on every poll, and it
//! is passed only when every transaction that was in progress when it was
//! first missed has ended, and a read that began after that still did not
//! find it (its transaction rolled back). No timer ever gives an id up.
//! On SQLite one writer commits at a time, so nothing below the highest id
//! read can still arrive: gaps are never owed.

use std::collections::{BTreeMap, BTreeSet};

/// Owed ids (and transactions watched) past which the cursor forgets
/// everything kept and starts over instead of tracking more.
pub(super) const MAX_OWED: usize = 10_000;

/// What a feed row held, to notice the feed being replaced under the cursor
/// (a restore): the same id with other contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Mark {
    pub user_id: i64,
    pub session_id: Option<String>,
    pub changed_at: i64,
}

/// What the caller must do after [`Cursor::settle`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Settled {
    /// Nothing more: what is kept stays valid.
    Keep,
    /// Forget everything kept: a change may have been committed where the
    /// feed cannot show it.
    ForgetAll,
}

/// The follower's position in the feed.
#[derive(Debug, Default)]
pub(super) struct Cursor {
    /// Whether the cursor has been placed at the feed's end yet.
    pub placed: bool,
    /// Whether ids can arrive out of order (PostgreSQL).
    pub out_of_order: bool,
    /// The highest id read; the next read asks for the ids above it.
    pub high: i64,
    /// What the row at `high` held.
    pub mark: Option<Mark>,
    /// Ids below `high` not read yet, each with the transactions that were
    /// in progress when it was first missed (`None`: not noted yet).
    owed: BTreeMap<i64, Option<Vec<i64>>>,
    /// Transactions in progress when the cursor was placed: one of them may
    /// commit a row below `high` that no read will ask for, so when any of
    /// them has ended, everything kept is forgotten.
    placement: Vec<i64>,
}

impl Cursor {
    /// Places the cursor at `high`, the feed's last id, with `in_progress`
    /// the transactions running just after it was read. Whatever was owed
    /// before is dropped: the caller forgets everything kept.
    pub fn place(&mut self, high: i64, mark: Option<Mark>, in_progress: Vec<i64>) {
        let out_of_order = self.out_of_order;
        *self = Self {
            placed: true,
            out_of_order,
            high,
            mark,
            owed: BTreeMap::new(),
            placement: if out_of_order {
                in_progress
            } else {
                Vec::new()
            },
        };
    }

    /// The ids owed, to read again.
    pub fn owed(&self) -> impl Iterator<Item = i64> + '_ {
        self.owed.keys().copied()
    }

    /// Whether any id is owed.
    pub fn owes(&self) -> bool {
        !self.owed.is_empty()
    }

    /// Every transaction whose end is awaited, to ask which still run.
    pub fn watched(&self) -> BTreeSet<i64> {
        let mut all: BTreeSet<i64> = self.placement.iter().copied().collect();
        for noted in self.owed.values().flatten() {
            all.extend(noted.iter().copied());
        }
        all
    }

    /// Records a row read with id `id`; whether it is news (not read
    /// before). Ids between the old `high` and `id` become owed.
    pub fn read(&mut self, id: i64, mark: Mark) -> bool {
        if id <= self.high {
            return self.owed.remove(&id).is_some();
        }
        if self.out_of_order {
            for missing in self.high + 1..id {
                self.owed.insert(missing, None);
                if self.owed.len() > MAX_OWED {
                    break;
                }
            }
        }
        self.high = id;
        self.mark = Some(mark);
        true
    }

    /// Whether the cursor tracks more than it should; the caller then
    /// places it afresh and forgets everything kept.
    pub fn overloaded(&self) -> bool {
        self.owed.len() > MAX_OWED || self.placement.len() > MAX_OWED
    }

    /// After a poll: `running` are the watched transactions that were still
    /// in progress when asked, asked *before* the owed ids were read again.
    /// Passes every owed id all of whose noted transactions had ended by
    /// then (the read after that did not find it: it was rolled back), and
    /// stops watching placement transactions that ended, saying to forget
    /// everything if one did.
    pub fn settle(&mut self, running: &BTreeSet<i64>) -> Settled {
        self.owed.retain(|_, noted| match noted {
            None => true,
            Some(noted) => noted.iter().any(|xid| running.contains(xid)),
        });
        let before = self.placement.len();
        self.placement.retain(|xid| running.contains(xid));
        if self.placement.len() < before {
            Settled::ForgetAll
        } else {
            Settled::Keep
        }
    }

    /// Whether some owed id has no transactions noted yet.
    pub fn unnoted(&self) -> bool {
        self.owed.values().any(Option::is_none)
    }

    /// Notes `in_progress`, the transactions running just after the read
    /// that found the ids owed without a note.
    pub fn note(&mut self, in_progress: &[i64]) {
        for noted in self.owed.values_mut() {
            if noted.is_none() {
                *noted = Some(in_progress.to_vec());
            }
        }
    }

    /// Whether the feed now shows a last id (`top`) below the highest one
    /// read, or other contents at that id (`at_high`): it was restored,
    /// failed over or reset, and ids read before say nothing any more.
    pub fn went_back(&self, top: i64, at_high: Option<&Mark>) -> bool {
        if !self.placed {
            return false;
        }
        top < self.high
            || match (at_high, &self.mark) {
                (Some(now), Some(then)) => now != then,
                _ => false,
            }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl Cursor {
        fn new(out_of_order: bool) -> Self {
            Self {
                out_of_order,
                ..Self::default()
            }
        }
    }

    fn mark(n: i64) -> Mark {
        Mark {
            user_id: n,
            session_id: None,
            changed_at: n,
        }
    }

    fn running(xids: &[i64]) -> BTreeSet<i64> {
        xids.iter().copied().collect()
    }

    #[test]
    fn an_id_missed_is_owed_until_its_transactions_end_however_long_that_takes() {
        let mut cursor = Cursor::new(true);
        cursor.place(10, Some(mark(10)), vec![]);
        assert!(cursor.read(12, mark(12)));
        assert_eq!(cursor.owed().collect::<Vec<_>>(), [11]);
        // Transactions 500 and 501 were running just after that read.
        cursor.note(&[500, 501]);
        // Poll after poll while 501 runs (a transaction held open for as
        // long as it likes): 11 stays owed.
        for _ in 0..1000 {
            assert_eq!(cursor.settle(&running(&[501])), Settled::Keep);
            assert_eq!(cursor.owed().collect::<Vec<_>>(), [11]);
        }
        // It commits: the next read of the owed ids finds it.
        assert!(cursor.read(11, mark(11)));
        assert!(!cursor.owes());
        assert_eq!(cursor.high, 12);
    }

    #[test]
    fn an_id_whose_transactions_all_ended_unseen_is_passed() {
        let mut cursor = Cursor::new(true);
        cursor.place(0, None, vec![]);
        cursor.read(3, mark(3));
        assert_eq!(cursor.owed().collect::<Vec<_>>(), [1, 2]);
        // Not noted yet: nothing passes, whatever runs.
        cursor.settle(&running(&[]));
        assert_eq!(cursor.owed().count(), 2);
        cursor.note(&[7]);
        cursor.settle(&running(&[7]));
        assert_eq!(cursor.owed().count(), 2);
        cursor.settle(&running(&[]));
        assert!(!cursor.owes());
    }

    #[test]
    fn sqlite_never_owes_an_id() {
        let mut cursor = Cursor::new(false);
        cursor.place(0, None, vec![1, 2]);
        cursor.read(5, mark(5));
        assert!(!cursor.owes());
        assert!(cursor.watched().is_empty());
    }

    #[test]
    fn a_placement_transaction_that_ends_forgets_everything() {
        let mut cursor = Cursor::new(true);
        cursor.place(100, Some(mark(100)), vec![40, 41]);
        assert_eq!(cursor.watched(), running(&[40, 41]));
        assert_eq!(cursor.settle(&running(&[40, 41])), Settled::Keep);
        assert_eq!(cursor.settle(&running(&[41])), Settled::ForgetAll);
        assert_eq!(cursor.settle(&running(&[41])), Settled::Keep);
        assert_eq!(cursor.settle(&running(&[])), Settled::ForgetAll);
        assert!(cursor.watched().is_empty());
    }

    #[test]
    fn a_feed_that_went_back_is_noticed() {
        let mut cursor = Cursor::new(true);
        assert!(!cursor.went_back(0, None));
        cursor.place(50, Some(mark(50)), vec![]);
        assert!(!cursor.went_back(50, Some(&mark(50))));
        assert!(!cursor.went_back(80, None), "purged, then grown: not back");
        assert!(cursor.went_back(3, None), "a sequence reset");
        assert!(
            cursor.went_back(90, Some(&mark(7))),
            "restored, then grown past"
        );
    }

    #[test]
    fn too_many_owed_ids_overload_the_cursor() {
        let mut cursor = Cursor::new(true);
        cursor.place(0, None, vec![]);
        cursor.read(1_000_000, mark(1));
        assert!(cursor.overloaded());
    }
}
