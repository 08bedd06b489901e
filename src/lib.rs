//! gitgate: a policy and admission gate for GitOps.
//!
//! One decision path serves two doors. `check` (CI, before merge) turns a Git range into
//! [`input::Document`]s; `serve` (the admission webhook) turns an AdmissionReview into one.
//! Both hand the document to [`decision::decide`] with the same compiled [`policy::PolicySet`].
//!
//! Module map (one concern each):
//! - [`manifest`]: YAML/JSON documents with file and line, limits against hostile input.
//! - [`input`]: the one input document (`review`, `parameters`, `source`, `provenance`).
//! - [`policy`]: loading, matching and evaluating Rego policies; the `verify` and `test` runners.
//! - [`decision`]: runs the matching policies and applies enforcement actions.
//! - [`isolate`]: panics caught and deadlines kept, so that no answer is lost.
//! - [`builtin`]: the embedded `policies/` library.
//! - [`config`]: the one configuration file shared by `check` and `serve`.
//! - [`git`]: reading repositories with gix (ranges, trees, blobs).
//! - [`render`]: what a GitOps controller applies for a source at a commit (plain, kustomize,
//!   helm through the real binaries, sandboxed).
//! - [`provenance`]: traceability to an approved commit (approval window, index, matching).
//! - Front ends: [`check`] (the pre-merge door), [`report`] (its output formats), [`serve`]
//!   (the admission door), [`cli`].

pub mod audit;
pub mod builtin;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod decision;
pub mod demo;
pub mod git;
pub mod input;
pub mod isolate;
pub mod manifest;
pub mod objects;
pub mod policy;
pub mod provenance;
pub mod render;
pub mod report;
pub mod serve;
pub mod setup;
