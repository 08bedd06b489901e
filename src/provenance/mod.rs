//! Provenance: is an object traceable to an approved Git commit?
//!
//! - [`approval`]: the window of approved commits on the protected branch's first-parent chain.
//! - [`signers`]: trusted SSH signers (git's allowed_signers) and commit signature checks.
//! - [`openpgp`]: trusted OpenPGP keys and OpenPGP commit signatures.
//! - [`index`]: identity → the manifests for it in the approved window.

pub mod approval;
pub mod index;
pub mod openpgp;
pub mod signers;
