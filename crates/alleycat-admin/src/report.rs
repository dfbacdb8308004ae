//! What a rebuild changed (or, in a dry run, would change), per view.

use std::collections::BTreeMap;
use std::fmt;

use alleycat_domain::RaceKey;
use alleycat_ports::{BestsKey, TraceKey};

use crate::aggregate::Counts;

/// One stored item a rebuild may write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Item {
    /// A race's standings.
    Standings(RaceKey),
    /// A racer's final of a race.
    Final(RaceKey, u32),
    /// A racer's leaderboard row of a class.
    Record(u8, u32),
    /// A racer's bests in a class.
    Bests(BestsKey),
    /// A racer's trace of a race.
    Trace(TraceKey),
    /// A class history object.
    History(u8),
}

impl Item {
    /// The view the item belongs to.
    pub fn view(&self) -> View {
        match self {
            Self::Standings(_) => View::Standings,
            Self::Final(..) => View::Finals,
            Self::Record(..) => View::Leaderboard,
            Self::Bests(_) => View::Bests,
            Self::Trace(_) => View::Traces,
            Self::History(_) => View::Histories,
        }
    }
}

/// The views, in report order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum View {
    /// Race standings.
    Standings,
    /// Racer finals.
    Finals,
    /// Class leaderboard rows.
    Leaderboard,
    /// Racer bests.
    Bests,
    /// Racer traces.
    Traces,
    /// Class history objects.
    Histories,
}

impl View {
    /// Every view.
    pub const ALL: [Self; 6] = [
        Self::Standings,
        Self::Finals,
        Self::Leaderboard,
        Self::Bests,
        Self::Traces,
        Self::Histories,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Standings => "race standings",
            Self::Finals => "racer finals",
            Self::Leaderboard => "leaderboard rows",
            Self::Bests => "racer bests",
            Self::Traces => "racer traces",
            Self::Histories => "class histories",
        }
    }
}

/// What a rebuild did to one item.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Change {
    /// Created: the archive holds it, the store did not.
    Added,
    /// Replaced by the rebuilt document.
    Changed,
    /// Deleted (a history: emptied), since only excluded or rejected records made it.
    Removed,
    /// Already what the archive says.
    Unchanged,
    /// Neither stored nor rebuilt (a document only rejected lines name): not counted.
    Absent,
}

impl Change {
    /// What turning the `stored` document into the rebuilt `target` is (`None`: none there).
    pub fn between<T: PartialEq>(stored: Option<&T>, target: Option<&T>) -> Self {
        match (stored, target) {
            (None, None) => Self::Absent,
            (None, Some(_)) => Self::Added,
            (Some(_), None) => Self::Removed,
            (Some(old), Some(new)) if old == new => Self::Unchanged,
            (Some(_), Some(_)) => Self::Changed,
        }
    }
}

/// Per-view counts of a rebuild.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Items created.
    pub added: u64,
    /// Items replaced.
    pub changed: u64,
    /// Items deleted (histories: emptied).
    pub removed: u64,
    /// Items left as they were.
    pub unchanged: u64,
}

/// What a rebuild read and what it changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Whether nothing was written.
    pub dry_run: bool,
    /// What the archive held.
    pub counts: Counts,
    /// Every item's outcome.
    pub items: BTreeMap<Item, Change>,
    /// Rounds of writes (more than one when functions wrote meanwhile).
    pub rounds: u32,
}

impl Report {
    /// Counts of one view.
    pub fn tally(&self, view: View) -> Tally {
        let mut tally = Tally::default();
        for (item, change) in &self.items {
            if item.view() != view {
                continue;
            }
            match change {
                Change::Added => tally.added += 1,
                Change::Changed => tally.changed += 1,
                Change::Removed => tally.removed += 1,
                Change::Unchanged => tally.unchanged += 1,
                Change::Absent => {}
            }
        }
        tally
    }

    /// Whether the rebuild changed (or would change) anything.
    pub fn changed_anything(&self) -> bool {
        self.items
            .values()
            .any(|c| matches!(c, Change::Added | Change::Changed | Change::Removed))
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.counts;
        writeln!(
            f,
            "archive: {} objects ({} bytes, {} missing, {} corrupt), {} records, {} bad lines",
            c.objects, c.bytes, c.missing, c.unreadable, c.records, c.bad_lines
        )?;
        let rejected: u64 = c.rejected.values().sum();
        write!(
            f,
            "records: {} admitted, {} of excluded racers, {} of other classes, {} rejected",
            c.admitted, c.excluded, c.out_of_scope, rejected
        )?;
        for (rule, n) in &c.rejected {
            write!(f, ", {rule} {n}")?;
        }
        writeln!(f)?;
        let verb = if self.dry_run { "would be " } else { "" };
        writeln!(
            f,
            "{:<18} {verb}added / changed / removed / unchanged",
            "view"
        )?;
        for view in View::ALL {
            let t = self.tally(view);
            writeln!(
                f,
                "{:<18} {} / {} / {} / {}",
                view.name(),
                t.added,
                t.changed,
                t.removed,
                t.unchanged
            )?;
        }
        if self.dry_run {
            write!(f, "dry run: nothing was written")
        } else {
            write!(f, "written in {} round(s)", self.rounds)
        }
    }
}
