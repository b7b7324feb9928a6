//! The size of an LMDB database as its statistics give it (no record is read).

/// The size of one LMDB database (or of several counted as one): its entries and the
/// pages it occupies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DbSize {
    /// The database's name (`state`, `shares`, ...; `client` for the client store).
    pub name: &'static str,
    /// Records in it.
    pub entries: u64,
    /// Bytes of the pages it occupies (branch, leaf and overflow pages).
    pub bytes: u64,
}

impl DbSize {
    /// The size of one database under `name`, from its statistics.
    pub(super) fn of(name: &'static str, s: heed::DatabaseStat) -> Self {
        let pages = s.branch_pages + s.leaf_pages + s.overflow_pages;
        DbSize {
            name,
            entries: s.entries as u64,
            bytes: pages as u64 * u64::from(s.page_size),
        }
    }

    /// The databases of `stats` counted as one, under `name`.
    pub(super) fn total(
        name: &'static str,
        stats: impl IntoIterator<Item = heed::DatabaseStat>,
    ) -> Self {
        let mut t = DbSize {
            name,
            entries: 0,
            bytes: 0,
        };
        for s in stats {
            let d = DbSize::of(name, s);
            t.entries += d.entries;
            t.bytes += d.bytes;
        }
        t
    }
}
