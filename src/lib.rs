//! gitgate: a policy and admission gate for GitOps.
//!
//! Three doors onto one decision core. `check` (CI, before merge) turns a Git range into
//! [`input::Document`]s; `serve` (the admission webhook) turns an AdmissionReview into one;
//! `audit` turns what the cluster holds into them. Each hands its documents to
//! [`decision::decide`] under [`decision::guard`], with the same compiled
//! [`policy::PolicySet`] and the same provenance verdict, and formats the same
//! [`decision::findings`]. `ARCHITECTURE.md` draws the layers and the path of a document.
//!
//! Module map, from the bottom up (a module imports only modules below it):
//! - Foundations: [`isolate`] (panics caught, deadlines kept), [`manifest`] (YAML/JSON with
//!   file and line, limits against hostile input), [`git`] (gix), [`input`] (the one input
//!   document and `input.provenance`'s shape), [`objects`] (the objects of manifest files and
//!   their diff).
//! - Engines: [`policy`] (Rego, templates, conftest; matching; the `test_` runner), [`render`]
//!   (what a GitOps controller applies, through the real engines), [`builtin`] (the embedded
//!   `policies/`).
//! - [`provenance`] (the approved window, the mirror and index, the closed-world match, the
//!   verdict) and [`cluster`] (kube-rs caches, `data.inventory`).
//! - [`decision`]: the core (`decide`, the guard and fan-out, the findings, `verify` suites).
//! - [`config`] (the one YAML file) and [`setup`] (the configuration turned into the working
//!   parts, once: below it nothing reads `Config`).
//! - Doors: [`check`], [`serve`], [`audit`], [`demo`]; [`report`] (the output formats and the
//!   printers of `verify`, `test`, `policies`); [`cli`] (parse and dispatch).

pub mod audit;
pub mod author;
pub mod builtin;
pub mod check;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod conftest;
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
