//! The demo's GitOps repository, written with gix in a temporary directory (no `git` binary,
//! no keys on the machine): commits whose trees hold the given files, signed with an SSH key
//! made for the demo (`SshSig`, namespace `git`, exactly what `git commit -S` with
//! `gpg.format=ssh` writes into the `gpgsig` header), so that the same signature checks that
//! judge a real repository judge this one.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use gix::ObjectId;
use gix::objs::WriteTo;
use gix::refs::transaction::PreviousValue;
use ssh_key::{Algorithm, HashAlg, LineEnding, PrivateKey};

/// Someone who commits: a name, an email, and the key they sign with (`None`: unsigned).
pub struct Author {
    pub name: &'static str,
    pub email: &'static str,
    pub key: Option<PrivateKey>,
}

impl Author {
    /// An author with a fresh ed25519 key.
    pub fn signing(name: &'static str, email: &'static str) -> Result<Author> {
        let key = PrivateKey::random(&mut ssh_key::rand_core::OsRng, Algorithm::Ed25519)
            .context("cannot make an SSH key for the demo")?;
        Ok(Author {
            name,
            email,
            key: Some(key),
        })
    }

    /// An author who does not sign.
    pub fn unsigned(name: &'static str, email: &'static str) -> Author {
        Author {
            name,
            email,
            key: None,
        }
    }

    /// This author's line in git's `allowed_signers` format, when they sign.
    pub fn allowed_signers_line(&self) -> Option<String> {
        let key = self.key.as_ref()?;
        let public = key.public_key().to_openssh().ok()?;
        Some(format!("{} namespaces=\"git\" {public}\n", self.email))
    }
}

/// A repository being written.
pub struct DemoRepo {
    repo: gix::Repository,
    dir: PathBuf,
    /// Commit times go forward from here, one minute per commit.
    clock: i64,
}

/// One change of a commit: a file's new content.
pub enum Edit<'a> {
    Write(&'a str, &'a str),
}

impl DemoRepo {
    /// A new repository in `dir` (created, with a work tree but no checkout).
    pub fn init(dir: &Path, start: i64) -> Result<DemoRepo> {
        let repo = gix::init(dir)
            .with_context(|| format!("{}: cannot make a Git repository", dir.display()))?;
        Ok(DemoRepo {
            repo,
            dir: dir.to_path_buf(),
            clock: start,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Commits `edits` on top of `parents[0]`'s tree (the empty tree for a first commit) and
    /// points `branch` at it. Returns the new commit.
    pub fn commit(
        &mut self,
        branch: &str,
        parents: &[ObjectId],
        edits: &[Edit],
        message: &str,
        author: &Author,
    ) -> Result<ObjectId> {
        let base_tree = match parents.first() {
            Some(p) => self.repo.find_commit(*p)?.tree_id()?.detach(),
            None => ObjectId::empty_tree(self.repo.object_hash()),
        };
        let mut editor = self.repo.edit_tree(base_tree)?;
        for edit in edits {
            match edit {
                Edit::Write(path, text) => {
                    let blob = self.repo.write_blob(text.as_bytes())?.detach();
                    editor.upsert(*path, gix::object::tree::EntryKind::Blob, blob)?;
                }
            }
        }
        let tree = editor.write()?.detach();
        self.clock += 60;
        let who = gix::actor::Signature {
            name: author.name.into(),
            email: author.email.into(),
            time: gix::date::Time {
                seconds: self.clock,
                offset: 0,
            },
        };
        let mut commit = gix::objs::Commit {
            tree,
            parents: parents.iter().copied().collect(),
            author: who.clone(),
            committer: who,
            encoding: None,
            message: format!("{message}\n").into(),
            extra_headers: Vec::new(),
        };
        if let Some(key) = &author.key {
            // The signed bytes are the commit without its signature header, as git signs it.
            let mut unsigned = Vec::new();
            commit.write_to(&mut unsigned)?;
            let signature = key
                .sign("git", HashAlg::Sha512, &unsigned)
                .context("cannot sign the demo commit")?
                .to_pem(LineEnding::LF)
                .context("cannot armor the demo signature")?;
            commit
                .extra_headers
                .push(("gpgsig".into(), signature.trim_end().into()));
        }
        let id = self.repo.write_object(&commit)?.detach();
        self.repo.reference(
            format!("refs/heads/{branch}"),
            id,
            PreviousValue::Any,
            message,
        )?;
        Ok(id)
    }
}
