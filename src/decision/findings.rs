//! The findings of every door, in one type that `report/` formats for all of them: each
//! [`Item`] a finding at a file (or API path) and line with its [`Level`], the objects
//! decided ([`Checked`]), and the [`Report`] that says the [`Verdict`] and its exit code in one
//! place. `check` fills it from a Git range, `audit` from the cluster; a [`Decision`]'s findings
//! become items through [`Item::of_decision`], with the enforcement → level mapping of
//! [`Level::of`].

use serde::Serialize;

use super::Decision;
use crate::policy::Enforcement;

/// How serious a report item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Rejects the pull request (a `deny` finding, an unapproved commit), or, with
    /// [`Item::unchecked`], something that could not be checked.
    Error,
    /// Reported, does not reject (unless `--fail-on-warn`).
    Warning,
    /// `dryrun` findings and skipped documents.
    Note,
}

/// One line of the report: a finding at a file and line.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    pub path: String,
    pub line: usize,
    pub level: Level,
    /// The policy (or `gitgate` for problems of the input itself).
    pub policy: String,
    pub message: String,
    /// CREATE, UPDATE or DELETE, when the item is about an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub operation: Option<String>,
    /// `Kind namespace/name`, when the item is about an object.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub object: Option<String>,
    /// The input could not be checked: a file that could not be read (invalid YAML, binary,
    /// over the limits, not an object) or a policy that failed on the object. A gate that
    /// cannot decide must not pass nor pretend to reject: see [`Report::verdict`].
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub unchecked: bool,
}

/// What a report amounts to, and the exit code every command and format shares (as conftest's
/// `output/result.go` keeps it beside the results).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing rejects (exit 0).
    Passed,
    /// Nothing rejects, but warnings fail the check under `--fail-on-warn` (exit 1).
    Failed,
    /// A `deny` finding or an unapproved commit rejects the change (exit 1).
    Rejected,
    /// Something could not be checked (exit 2): a change that cannot be judged is neither
    /// passed nor merely rejected, so CI can tell "fix the manifest" from "fix the gate".
    Error,
}

impl Verdict {
    /// The process exit code: 0 passed, 1 rejected or failed, 2 could not be checked.
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Passed => 0,
            Verdict::Failed | Verdict::Rejected => 1,
            Verdict::Error => 2,
        }
    }

    /// The word the summaries start with.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Passed => "passed",
            Verdict::Failed => "failed",
            Verdict::Rejected => "rejected",
            Verdict::Error => "error",
        }
    }
}

/// The range checked.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Range {
    pub base: String,
    pub head: String,
}

/// An object that was decided.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checked {
    pub path: String,
    pub line: usize,
    pub operation: String,
    pub object: String,
}

/// The result of a check, fed to every report format.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<Range>,
    /// Files read: the changed files of the range (added, modified or deleted), or the files given.
    pub files: usize,
    /// Every object decided (creates, updates, deletes), in order.
    pub checked: Vec<Checked>,
    pub items: Vec<Item>,
    /// Warnings fail the check (`--fail-on-warn`).
    #[serde(skip)]
    pub fail_on_warn: bool,
    /// What `gitgate audit` read of the cluster (an audit's report only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit: Option<Audited>,
}

/// What an audit read: the API server, the kinds listed, the objects by provenance status,
/// and how many objects the newest approved commit holds that the cluster lacks.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Audited {
    pub server: String,
    /// `apps/v1 Deployment`, each kind listed.
    pub kinds: Vec<String>,
    /// Objects by provenance status (`traceable`, `untraceable`, `modified`, `exempt`; `none`
    /// without a repository).
    pub provenance: std::collections::BTreeMap<String, usize>,
    pub missing: usize,
}

/// How many items of each kind a report holds (the JSON report's `counts`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Items of level `error`, the unchecked ones included.
    pub errors: usize,
    pub warnings: usize,
    pub notes: usize,
    /// Items that could not be checked (unreadable files, policy failures).
    pub unchecked: usize,
}

impl Report {
    pub fn count(&self, level: Level) -> usize {
        self.items.iter().filter(|i| i.level == level).count()
    }

    pub fn counts(&self) -> Counts {
        Counts {
            errors: self.count(Level::Error),
            warnings: self.count(Level::Warning),
            notes: self.count(Level::Note),
            unchecked: self.items.iter().filter(|i| i.unchecked).count(),
        }
    }

    /// The verdict, the one place the exit code is decided. Something that could not be
    /// checked wins over a rejection elsewhere, except a policy failure on an object that a
    /// `deny` finding rejects anyway (the object is refused whatever the failed policy said).
    pub fn verdict(&self) -> Verdict {
        let rejects = |i: &Item| i.level == Level::Error && !i.unchecked;
        let rejected_anyway = |u: &Item| {
            u.object.is_some()
                && self
                    .items
                    .iter()
                    .any(|i| rejects(i) && i.path == u.path && i.object == u.object)
        };
        if self
            .items
            .iter()
            .any(|i| i.unchecked && !rejected_anyway(i))
        {
            Verdict::Error
        } else if self.items.iter().any(|i| i.level == Level::Error) {
            Verdict::Rejected
        } else if self.fail_on_warn && self.count(Level::Warning) > 0 {
            Verdict::Failed
        } else {
            Verdict::Passed
        }
    }

    /// The process exit code of the verdict.
    pub fn exit_code(&self) -> u8 {
        self.verdict().exit_code()
    }
}

impl Level {
    /// The level of a finding of a policy with this enforcement action.
    pub fn of(action: Enforcement) -> Level {
        match action {
            Enforcement::Deny => Level::Error,
            Enforcement::Warn => Level::Warning,
            Enforcement::Dryrun => Level::Note,
        }
    }
}

/// Where a decision's findings point, and what they are about.
pub struct At<'a> {
    pub operation: &'a str,
    pub object: Option<&'a str>,
}

impl Item {
    /// The items of a decision: each finding at its level, and each policy that failed as an
    /// unchecked error (the object could not be judged). `locate` gives the file and line of a
    /// finding from its details (`details.path`); failures point where `locate(None)` does.
    pub fn of_decision(
        decision: &Decision,
        at: &At<'_>,
        locate: impl Fn(Option<&serde_json::Value>) -> (String, usize),
    ) -> Vec<Item> {
        let item = |level: Level,
                    policy: &str,
                    message: &str,
                    details: Option<&serde_json::Value>,
                    unchecked: bool| {
            let (path, line) = locate(details);
            Item {
                path,
                line,
                level,
                policy: policy.to_string(),
                message: message.to_string(),
                operation: Some(at.operation.to_string()),
                object: at.object.map(str::to_string),
                unchecked,
            }
        };
        let mut items: Vec<Item> = decision
            .findings()
            .map(|f| {
                item(
                    Level::of(f.action),
                    &f.policy,
                    &f.message,
                    f.details.as_ref(),
                    false,
                )
            })
            .collect();
        // A policy that failed could not judge the object: unchecked (exit 2) unless a deny
        // finding rejects the object anyway (see `Report::verdict`).
        items.extend(
            decision
                .errors
                .iter()
                .map(|e| item(Level::Error, &e.policy, &e.message, None, true)),
        );
        items
    }
}
