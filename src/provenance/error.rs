//! What goes wrong in provenance, typed: each variant names its input (a file, the repository,
//! the URL without its credentials), and says whether trying again later may help
//! ([`ProvenanceError::is_transient`]): the mirror keeps deciding on its last good index
//! either way.

use super::approval::Rewind;
use super::openpgp::KeyError;
use super::signers::SignersError;
use crate::git::GitError;

/// Why a sync, a fetch or the trusted keys failed.
#[derive(Debug, thiserror::Error)]
pub enum ProvenanceError {
    /// The repository (the local path, or the mirror) could not be read.
    #[error(transparent)]
    Git(#[from] GitError),
    /// The remote could not be fetched; the message names its URL without credentials.
    #[error("{0}")]
    Fetch(String),
    /// The protected branch is not in the repository.
    #[error("{repo}: the protected branch {branch} is not there (looked for {looked_for})")]
    NoBranch {
        repo: String,
        branch: String,
        looked_for: String,
    },
    /// A file the mirror keeps (the first-seen times) could not be read or written.
    #[error("{file}: cannot {action}: {source}")]
    File {
        file: String,
        action: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// An SSH allowed-signers file could not be read or parsed.
    #[error("{file}: cannot read: {source}")]
    KeyFile {
        file: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Signers(#[from] SignersError),
    #[error(transparent)]
    OpenPgp(#[from] KeyError),
    /// The protected branch moved backwards: the window does not move.
    #[error("{0}")]
    Rewound(Rewind),
}

impl ProvenanceError {
    /// Whether a later sync may succeed on its own (the remote or the disk came back); a
    /// rewind, a missing branch or a bad key file needs someone to act.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            ProvenanceError::Fetch(_) | ProvenanceError::File { .. } | ProvenanceError::Git(_)
        )
    }
}
