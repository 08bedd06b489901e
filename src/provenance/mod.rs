//! Provenance: is an object traceable to an approved Git commit?
//!
//! - [`approval`]: the window of approved commits on the protected branch's first-parent chain.
//! - [`seen`]: the mirror's clock, when each commit was first seen (what the window's age and
//!   a key's validity are judged by).
//! - [`signers`]: trusted SSH signers (git's allowed_signers) and commit signature checks.
//! - [`openpgp`]: trusted OpenPGP keys and OpenPGP commit signatures.
//! - [`index`]: identity → the manifests for it in the approved window, each older version
//!   kept compact ([`stored`]).
//! - [`fetch`]: the bare mirror of a remote repository, fetched with gix over HTTPS or SSH.
//! - [`mirror`]: the index kept fresh off the request path and swapped in atomically.
//! - [`kcm`]: the identities kube-controller-manager writes as (exempt by default).
//! - [`verdict`]: `input.provenance` of a request: exempt, traceable, modified, untraceable.
//! - [`matching`]: the closed-world match of an admitted object against its manifest: every
//!   field explained by Git, an API-server default, the server, a tracking stamp or a mutation
//!   allowance; with [`quantity`] (canonical resource quantities), [`path`] (the reported path
//!   syntax and the allowances' patterns), [`schema`] (merge keys, quantities and server-owned
//!   fields of the built-in types), [`defaults`] (what the API server writes, exactly),
//!   [`crd`] (a custom resource's schema defaults), [`closed`] (tracking stamps and mutation
//!   allowances) and [`value`] (equality and hash keys of JSON values).

pub mod approval;
pub mod closed;
pub mod crd;
pub mod defaults;
pub mod error;
pub mod fetch;
pub mod index;
pub mod kcm;
pub mod matching;
pub mod mirror;
pub mod openpgp;
pub mod path;
pub mod quantity;
pub mod schema;
pub mod seen;
pub mod signers;
pub mod stored;
pub mod value;
pub mod verdict;

pub use error::ProvenanceError;
