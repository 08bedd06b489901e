//! The mirror's clock: when gitgate first saw each commit of the protected branch.
//!
//! A commit's own dates are whatever its author and committer typed (`GIT_COMMITTER_DATE`
//! takes any value), so the window's `maxAge` and a key's `valid-after`/`valid-before` are
//! judged at the time the mirror first saw a commit instead ([`super::approval`]).
//!
//! Two rules keep the times honest:
//! - a commit is first seen when a sync first reads it, and never later than the commit after
//!   it on the first-parent chain was (a parent existed before its child; history that a
//!   deeper fetch reveals later is not "new");
//! - a time, once recorded, never moves;
//! - the mirror's clock never runs backwards ([`FirstSeen::clock`]): a system clock set back
//!   leaves it at the latest time recorded until it catches up.
//!
//! Where the times live: for a fetched mirror, in the file [`FILE_NAME`] inside the mirror's
//! directory (one `<commit id> <seconds since the epoch>` line per commit, written atomically
//! after each sync that saw something new), so that a restart keeps them. For a local
//! repository (a path kept fresh by something else) they are kept in memory only: a restart
//! means every commit is first seen at the restart, which can only make the window longer by
//! age, never let a commit in that the count or the signatures keep out. At most
//! [`MAX_ENTRIES`] times are kept; the oldest go first.
//!
//! The same records keep **the newest approved commit the mirror accepted** (an `approved
//! <commit id>` line), so that the approved state never moves backwards, across restarts too
//! ([`super::approval::rewind`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use gix::ObjectId;

/// The file in a fetched mirror's directory that holds the first-seen times.
pub const FILE_NAME: &str = "gitgate-first-seen";

/// The line that names the newest approved commit accepted.
const APPROVED: &str = "approved ";
/// The line that names the commit an acknowledgement of a rewind was spent on.
const ACKNOWLEDGED: &str = "acknowledged ";

/// At most this many commits are remembered (about 5 MB of file).
pub const MAX_ENTRIES: usize = 100_000;

/// First-seen times by commit.
#[derive(Debug, Default)]
pub struct FirstSeen {
    times: HashMap<ObjectId, i64>,
    /// Where the times are persisted, if anywhere.
    file: Option<PathBuf>,
    /// The newest approved commit of the last window the mirror accepted.
    newest_approved: Option<ObjectId>,
    /// The commit an operator's acknowledgement of a rewind moved the window to: spent, it
    /// never accepts another rewind to that commit.
    acknowledged: Option<ObjectId>,
    /// Times recorded since the last save.
    changed: bool,
}

impl FirstSeen {
    /// Times kept in memory only (a restart forgets them).
    pub fn in_memory() -> FirstSeen {
        FirstSeen::default()
    }

    /// The times persisted in `file` (none yet when it does not exist). A line that cannot be
    /// read is skipped; a file that cannot be read is an error naming it.
    pub fn load(file: &Path) -> Result<FirstSeen, super::ProvenanceError> {
        let mut seen = FirstSeen {
            file: Some(file.to_path_buf()),
            ..FirstSeen::default()
        };
        let text = match std::fs::read_to_string(file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(seen),
            Err(source) => {
                return Err(super::ProvenanceError::File {
                    file: file.display().to_string(),
                    action: "read",
                    source,
                });
            }
        };
        let mut skipped = 0;
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            if let Some(id) = line.strip_prefix(APPROVED) {
                match ObjectId::from_hex(id.trim().as_bytes()) {
                    Ok(id) => seen.newest_approved = Some(id),
                    Err(_) => skipped += 1,
                }
                continue;
            }
            if let Some(id) = line.strip_prefix(ACKNOWLEDGED) {
                match ObjectId::from_hex(id.trim().as_bytes()) {
                    Ok(id) => seen.acknowledged = Some(id),
                    Err(_) => skipped += 1,
                }
                continue;
            }
            let parsed = line.split_once(' ').and_then(|(id, at)| {
                Some((ObjectId::from_hex(id.as_bytes()).ok()?, at.parse().ok()?))
            });
            match parsed {
                Some((id, at)) => {
                    seen.times
                        .entry(id)
                        .and_modify(|t: &mut i64| *t = (*t).min(at))
                        .or_insert(at);
                }
                None => skipped += 1,
            }
        }
        if skipped > 0 {
            tracing::warn!(file = %file.display(), skipped, "first-seen times: unreadable lines skipped");
        }
        Ok(seen)
    }

    /// When `id` was first seen, if it was.
    pub fn get(&self, id: &ObjectId) -> Option<i64> {
        self.times.get(id).copied()
    }

    /// Records that `id` was first seen at `at`, unless an earlier time is known (what a
    /// caller, or a test, knows from elsewhere).
    pub fn record(&mut self, id: ObjectId, at: i64) {
        let t = self.times.entry(id).or_insert(i64::MAX);
        if at < *t {
            *t = at;
            self.changed = true;
        }
    }

    /// The time `id` was first seen, recording `now` if it was not seen before, and never
    /// later than `not_after` (when the commit after it on the chain was first seen).
    pub fn observe(&mut self, id: ObjectId, now: i64, not_after: i64) -> i64 {
        let at = self.get(&id).unwrap_or(now).min(not_after);
        self.record(id, at);
        at
    }

    /// The mirror's clock at a sync, given the system's: never earlier than a time already
    /// recorded, so that it never runs backwards. When the system clock jumps back (a bad
    /// NTP step, a node restored from a snapshot), the commits pushed meanwhile would
    /// otherwise be first seen before their own committer dates and refused as "dated in the
    /// future", and every commit before them on the chain with them, for good (a time, once
    /// recorded, never moves later): the window would empty and the gate fail closed until
    /// new commits came. The mirror's clock holds at the latest recorded time instead until
    /// the system's catches up, and says so.
    pub fn clock(&self, system: i64) -> i64 {
        let latest = self.times.values().copied().max().unwrap_or(i64::MIN);
        if latest <= system {
            return system;
        }
        if latest - system > super::approval::MAX_SKEW {
            tracing::warn!(
                behind_seconds = latest - system,
                "the system clock is behind the times the mirror already recorded (it was set back): the mirror's clock holds at the latest recorded time until the system's catches up"
            );
        }
        latest
    }

    /// The newest approved commit of the last window accepted, if one was.
    pub fn newest_approved(&self) -> Option<ObjectId> {
        self.newest_approved
    }

    /// Remembers the newest approved commit of the window just accepted.
    pub fn set_newest_approved(&mut self, id: ObjectId) {
        if self.newest_approved != Some(id) {
            self.newest_approved = Some(id);
            self.changed = true;
        }
    }

    /// The commit an acknowledgement of a rewind already moved the window to, if one did.
    pub fn acknowledged(&self) -> Option<ObjectId> {
        self.acknowledged
    }

    /// Remembers that an acknowledgement moved the window to `id` (it is spent).
    pub fn set_acknowledged(&mut self, id: ObjectId) {
        if self.acknowledged != Some(id) {
            self.acknowledged = Some(id);
            self.changed = true;
        }
    }

    /// Number of commits remembered.
    pub fn len(&self) -> usize {
        self.times.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times.is_empty()
    }

    /// Writes the times to the file they were loaded from, if any and if something changed:
    /// to a temporary file first, then renamed over it, so that a crash leaves the old file or
    /// the new one, never half of one. Keeps the newest [`MAX_ENTRIES`].
    pub fn save(&mut self) -> Result<(), super::ProvenanceError> {
        let Some(file) = self.file.clone() else {
            return Ok(());
        };
        if !self.changed {
            return Ok(());
        }
        if self.times.len() > MAX_ENTRIES {
            let mut all: Vec<(ObjectId, i64)> = self.times.drain().collect();
            all.sort_by_key(|(_, t)| std::cmp::Reverse(*t));
            all.truncate(MAX_ENTRIES);
            self.times = all.into_iter().collect();
        }
        let mut lines: Vec<(i64, ObjectId)> = self.times.iter().map(|(id, t)| (*t, *id)).collect();
        lines.sort();
        let mut text = String::with_capacity(lines.len() * 52 + 50);
        if let Some(id) = self.newest_approved {
            text.push_str(&format!("{APPROVED}{id}\n"));
        }
        if let Some(id) = self.acknowledged {
            text.push_str(&format!("{ACKNOWLEDGED}{id}\n"));
        }
        for (t, id) in lines {
            text.push_str(&format!("{id} {t}\n"));
        }
        let tmp = file.with_extension("tmp");
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &file))
            .map_err(|source| super::ProvenanceError::File {
                file: file.display().to_string(),
                action: "write",
                source,
            })?;
        self.changed = false;
        Ok(())
    }
}

/// Seconds since the epoch by this machine's clock.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ObjectId {
        ObjectId::from_hex(format!("{n:02x}").repeat(20).as_bytes()).unwrap()
    }

    #[test]
    fn a_time_never_moves_later_and_parents_are_not_newer_than_children() {
        let mut seen = FirstSeen::in_memory();
        assert_eq!(seen.observe(id(1), 1000, 1000), 1000);
        assert_eq!(seen.observe(id(1), 2000, 2000), 1000, "recorded once");
        // A parent revealed later is no newer than its child.
        assert_eq!(seen.observe(id(2), 3000, 1000), 1000);
        seen.record(id(1), 500);
        assert_eq!(seen.get(&id(1)), Some(500), "an earlier time wins");
        seen.record(id(1), 900);
        assert_eq!(seen.get(&id(1)), Some(500));
    }

    #[test]
    fn times_survive_a_restart_through_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let mut seen = FirstSeen::load(&file).unwrap();
        assert!(seen.is_empty());
        seen.observe(id(1), 1000, 1000);
        seen.observe(id(2), 2000, 2000);
        seen.save().unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        assert_eq!(
            text,
            format!("{} 1000\n{} 2000\n", id(1), id(2)),
            "one line per commit, oldest first"
        );
        std::fs::write(&file, format!("{text}garbage\n")).unwrap();
        let again = FirstSeen::load(&file).unwrap();
        assert_eq!(
            (again.get(&id(1)), again.get(&id(2))),
            (Some(1000), Some(2000))
        );
        assert_eq!(again.len(), 2, "the unreadable line is skipped");
    }

    #[test]
    fn the_newest_approved_commit_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(FILE_NAME);
        let mut seen = FirstSeen::load(&file).unwrap();
        assert_eq!(seen.newest_approved(), None);
        seen.observe(id(1), 1000, 1000);
        seen.set_newest_approved(id(1));
        seen.save().unwrap();
        let again = FirstSeen::load(&file).unwrap();
        assert_eq!(again.newest_approved(), Some(id(1)));
        assert_eq!(again.get(&id(1)), Some(1000));
    }
}
