//! `gitgate demo`: the whole story on this machine, with no setup and no network. It writes a
//! GitOps repository with signed history in a temporary directory, checks two pull requests
//! with `gitgate check` (one breaks policies and is unsigned, one passes), merges the good one,
//! starts the webhook on loopback over TLS with provenance on, and sends it AdmissionReview
//! requests shaped like a real API server's. Every verdict is printed as a person reads it and
//! compared with the expected one: the demo exits 1 if any differs, so it doubles as a smoke
//! test of the product.

mod manifests;
mod pki;
mod repo;
mod requests;

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use crate::check::{self, Target};
use crate::config::Config;
use crate::policy::rego::RegoVersion;
use repo::{Author, DemoRepo, Edit};
use requests::{ADMIN, ALICE, BOB, CONFIGMAP, DEPLOYMENT, FLUX, POD, User};

/// How the demo runs.
pub struct Options {
    /// Keep the temporary directory (repository, configuration, keys, certificates).
    pub keep: bool,
    /// ANSI colours.
    pub color: bool,
    pub rego_version: RegoVersion,
}

/// Runs the demo, printing to `out`. `Ok(true)` when every verdict was the expected one.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<bool> {
    let started = Instant::now();
    let tmp = tempfile::Builder::new()
        .prefix("gitgate-demo-")
        .tempdir()
        .context("cannot make a temporary directory")?;
    let mut p = Printer {
        out,
        color: options.color,
        mismatches: Vec::new(),
    };
    p.line("gitgate demo: the whole story on this machine, in a temporary directory")?;
    let mut world = make_repository(tmp.path(), &mut p)?;
    let config = write_config(tmp.path())?;
    check_pull_requests(&world, &config, tmp.path(), options.rego_version, &mut p)?;
    merge_pull_request(&mut world, &mut p)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_stack_size(crate::isolate::THREAD_STACK)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(admission(&config, tmp.path(), options.rego_version, &mut p))?;

    let ok = p.mismatches.is_empty();
    p.blank()?;
    if ok {
        p.line(&format!(
            "Every verdict was the expected one ({:.1} s).",
            started.elapsed().as_secs_f64()
        ))?;
    } else {
        p.line("These verdicts were NOT the expected ones:")?;
        for m in p.mismatches.clone() {
            p.line(&format!("  - {m}"))?;
        }
    }
    if options.keep {
        let dir = tmp.keep();
        p.line(&format!(
            "Kept {}: run `gitgate check -c {0}/gitgate.yaml --repo {0}/gitops --base main --head pr/1-add-cache` to see the check again.",
            dir.display()
        ))?;
    } else {
        let dir = tmp.path().display().to_string();
        tmp.close()
            .with_context(|| format!("{dir}: cannot remove"))?;
        p.line(&format!("Removed {dir} (run with --keep to look inside)."))?;
    }
    Ok(ok)
}

/// The repository and who signs in it.
struct World {
    repo: DemoRepo,
    priya: Author,
    main: gix::ObjectId,
    pr2: gix::ObjectId,
}

fn short(id: &gix::ObjectId) -> String {
    id.to_hex_with_len(7).to_string()
}

fn make_repository(dir: &Path, p: &mut Printer) -> Result<World> {
    p.heading(1, "A GitOps repository with signed history")?;
    let start = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 - 3600)
        .unwrap_or(1_780_000_000);
    let mut repo = DemoRepo::init(&dir.join("gitops"), start)?;
    let priya = Author::signing("Priya (platform team)", "priya@shop.example")?;
    let sam = Author::signing("Sam (web team)", "sam@shop.example")?;
    let dev = Author::unsigned("Dev (new hire)", "dev@shop.example");
    let signers: String = [&priya, &sam]
        .iter()
        .filter_map(|a| a.allowed_signers_line())
        .collect();
    std::fs::write(dir.join("allowed_signers"), &signers)
        .context("cannot write allowed_signers")?;

    let web = manifests::web("6.5.0");
    let main = repo.commit(
        "main",
        &[],
        &[
            Edit::Write(manifests::NAMESPACE_PATH, manifests::NAMESPACE),
            Edit::Write(manifests::WEB_PATH, &web),
            Edit::Write(manifests::CONFIG_PATH, manifests::CONFIG),
        ],
        "shop: namespace, web (podinfo 6.5.0) and its config",
        &priya,
    )?;
    let pr1 = repo.commit(
        "pr/1-add-cache",
        &[main],
        &[Edit::Write(manifests::CACHE_PATH, manifests::CACHE)],
        "add a redis cache",
        &dev,
    )?;
    let web2 = manifests::web("6.5.1");
    let pr2 = repo.commit(
        "pr/2-web-6.5.1",
        &[main],
        &[Edit::Write(manifests::WEB_PATH, &web2)],
        "web: podinfo 6.5.1",
        &sam,
    )?;
    p.detail(&format!("{}", repo.dir().display()))?;
    p.detail(&format!(
        "main             {}  shop: namespace, web (podinfo 6.5.0), its config   signed by priya@shop.example",
        short(&main)
    ))?;
    p.detail(&format!(
        "pr/1-add-cache   {}  add a redis cache                                   NOT signed (dev@shop.example)",
        short(&pr1)
    ))?;
    p.detail(&format!(
        "pr/2-web-6.5.1   {}  web: podinfo 6.5.1                                  signed by sam@shop.example",
        short(&pr2)
    ))?;
    p.detail("trusted keys (allowed_signers): priya@shop.example, sam@shop.example (ed25519, made for the demo)")?;
    Ok(World {
        repo,
        priya,
        main,
        pr2,
    })
}

/// The configuration a platform team would write, validated by the same parser as theirs.
fn write_config(dir: &Path) -> Result<Config> {
    let d = dir.display();
    let text = format!(
        "\
repository:
  url: {d}/gitops
  branch: main
  paths: [clusters/prod]
  refresh: 1h
approval:
  window: {{commits: 20, maxAge: 168h}}
  requireSignatures: true
  allowedSigners: {d}/allowed_signers
provenance:
  controllerStamps: {{labelPrefixes: [kustomize.toolkit.fluxcd.io/]}}
breakGlass:
  groups: [oncall]
  reasonAnnotation: gitgate.dev/break-glass-reason
server:
  listen: 127.0.0.1:0
  tlsCert: {d}/tls/tls.crt
  tlsKey: {d}/tls/tls.key
"
    );
    let path = dir.join("gitgate.yaml");
    std::fs::write(&path, &text).with_context(|| format!("{}: cannot write", path.display()))?;
    Config::load(&path, true).map_err(|e| anyhow::anyhow!("{e}"))
}

fn check_pull_requests(
    world: &World,
    config: &Config,
    dir: &Path,
    rego_version: RegoVersion,
    p: &mut Printer,
) -> Result<()> {
    p.heading(2, "Before merge: `gitgate check` on each pull request")?;
    let set = crate::setup::from_config(config, dir, &[], rego_version)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let repo_dir = world.repo.dir().to_path_buf();
    for (branch, expect_rejected) in [("pr/1-add-cache", true), ("pr/2-web-6.5.1", false)] {
        p.blank()?;
        p.detail(&format!(
            "$ gitgate check --repo gitops --base main --head {branch}"
        ))?;
        let target = Target::Range {
            repo: repo_dir.clone(),
            base: Some("main".into()),
            head: Some(branch.into()),
        };
        let report = check::run(&target, &set, config).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut text = Vec::new();
        crate::report::text::write(&report, p.color, &mut text)?;
        for line in String::from_utf8_lossy(&text).lines() {
            p.detail(&format!("  {line}"))?;
        }
        let expected = if expect_rejected {
            check::Verdict::Rejected
        } else {
            check::Verdict::Passed
        };
        if report.verdict() != expected {
            p.mismatches.push(format!(
                "check of {branch}: expected {}",
                if expect_rejected {
                    "rejected"
                } else {
                    "passed"
                }
            ));
        }
    }
    Ok(())
}

fn merge_pull_request(world: &mut World, p: &mut Printer) -> Result<()> {
    let web2 = manifests::web("6.5.1");
    let merge = world.repo.commit(
        "main",
        &[world.main, world.pr2],
        &[Edit::Write(manifests::WEB_PATH, &web2)],
        "Merge pull request #2 from pr/2-web-6.5.1",
        &world.priya,
    )?;
    p.blank()?;
    p.detail(&format!(
        "pull request #2 merged: main is now {}, signed by priya@shop.example; #1 stays open",
        short(&merge)
    ))?;
    Ok(())
}

/// One request of the story and the verdict it must get.
struct Scenario {
    title: &'static str,
    user: &'static User,
    operation: &'static str,
    body: Value,
    allowed: bool,
    warned: bool,
}

fn scenarios() -> Vec<Scenario> {
    use requests::{config_stored, debug_pod, review, web_by_hand, web_stored};
    let applied = web_stored("6.5.1", 1, &[]);
    let reason = "INC-4711: CVE-2026-1234 hotfix, pull request #3 follows";
    vec![
        Scenario {
            title: "Flux applies Deployment shop/web as merged (podinfo 6.5.1)",
            user: &FLUX,
            operation: "CREATE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c01",
                "CREATE",
                &DEPLOYMENT,
                "web",
                &FLUX,
                applied.clone(),
                Value::Null,
                "kustomize-controller",
            ),
            allowed: true,
            warned: false,
        },
        Scenario {
            title: "a cluster admin runs `kubectl edit` and swaps the image of shop/web",
            user: &ADMIN,
            operation: "UPDATE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c02",
                "UPDATE",
                &DEPLOYMENT,
                "web",
                &ADMIN,
                web_stored("6.6.0", 2, &[]),
                applied.clone(),
                "kubectl-edit",
            ),
            allowed: false,
            warned: false,
        },
        Scenario {
            title: "a developer re-creates shop/web by hand with an init container and another service account",
            user: &ALICE,
            operation: "CREATE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c06",
                "CREATE",
                &DEPLOYMENT,
                "web",
                &ALICE,
                web_by_hand(),
                Value::Null,
                "kubectl-create",
            ),
            allowed: false,
            // container-resources finds no limits on the init container.
            warned: true,
        },
        Scenario {
            title: "a cluster admin deletes ConfigMap shop/web-config, which Git still holds",
            user: &ADMIN,
            operation: "DELETE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c03",
                "DELETE",
                &CONFIGMAP,
                "web-config",
                &ADMIN,
                Value::Null,
                config_stored(),
                "",
            ),
            allowed: false,
            warned: false,
        },
        Scenario {
            title: "a developer starts a debug pod that mounts the node's / and runs as root",
            user: &ALICE,
            operation: "CREATE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c04",
                "CREATE",
                &POD,
                "debug",
                &ALICE,
                debug_pod(),
                Value::Null,
                "kubectl-run",
            ),
            allowed: false,
            // container-resources, a `warn` policy, finds no limits either.
            warned: true,
        },
        Scenario {
            title: "on call, at 3 a.m., with a reason: break-glass image hotfix of shop/web",
            user: &BOB,
            operation: "UPDATE",
            body: review(
                "7f1c6a2e-0b1d-4c55-9a57-3f1e8d2b6c05",
                "UPDATE",
                &DEPLOYMENT,
                "web",
                &BOB,
                web_stored("6.5.2", 2, &[("gitgate.dev/break-glass-reason", reason)]),
                applied,
                "kubectl-set",
            ),
            allowed: true,
            warned: true,
        },
    ]
}

async fn admission(
    config: &Config,
    dir: &Path,
    rego_version: RegoVersion,
    p: &mut Printer<'_>,
) -> Result<()> {
    p.heading(3, "At apply time: `gitgate serve`, the admission webhook")?;
    let (files, client_tls) = pki::make(&dir.join("tls"))?;
    let state = crate::serve::setup::state(config, dir, rego_version)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let running = crate::serve::start(
        Arc::new(state),
        &config.server.listen,
        files,
        config.server.max_body_bytes,
    )
    .await?;
    let base = format!("https://{}", running.addr);
    let client = reqwest::Client::builder()
        .tls_backend_preconfigured(client_tls)
        .timeout(Duration::from_secs(10))
        .build()
        .context("cannot make the HTTPS client")?;

    // Ready once the mirror has indexed the approved window, as the kubelet's probe sees it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let ready: Value = loop {
        let response = client.get(format!("{base}/readyz")).send().await?;
        if response.status().is_success() {
            break response.json().await?;
        }
        if Instant::now() > deadline {
            bail!(
                "the webhook was not ready within 10 s: {}",
                response.text().await?
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    p.detail(&format!(
        "{base}/validate over TLS (a CA made for the demo); ready: {} approved commits of main indexed",
        ready
            .pointer("/provenance/approvedCommits")
            .and_then(Value::as_u64)
            .unwrap_or(0)
    ))?;

    for s in scenarios() {
        let response: Value = client
            .post(format!("{base}/validate"))
            .json(&s.body)
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let answer = &response["response"];
        let allowed = answer["allowed"].as_bool().unwrap_or(false);
        let warnings: Vec<&str> = answer["warnings"]
            .as_array()
            .map(|w| w.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        p.blank()?;
        p.verdict(allowed, s.title)?;
        p.detail(&format!("            {} · {}", s.user.name, s.operation))?;
        // The verdict's audit annotations, as the API server's audit log records them.
        let audit = |key: &str| answer["auditAnnotations"][key].as_str();
        if let Some(status) = audit("provenance") {
            let mut line = format!("provenance: {status}");
            if let Some(commit) = audit("provenance-commit") {
                line += &format!(", commit {}", commit.get(..7).unwrap_or(commit));
            }
            if let Some(source) = audit("provenance-source") {
                line += &format!(", {source}");
            }
            p.detail(&format!("            {line}"))?;
        }
        if let Some(message) = answer.pointer("/status/message").and_then(Value::as_str)
            && !allowed
        {
            let message = message
                .strip_prefix("gitgate denied the request: ")
                .unwrap_or(message);
            for reason in message.split("; [") {
                let reason = if reason.starts_with('[') {
                    reason.to_string()
                } else {
                    format!("[{reason}")
                };
                p.detail(&format!("            {reason}"))?;
            }
        }
        for w in &warnings {
            p.detail(&format!("            warning: {w}"))?;
        }
        if allowed != s.allowed || warnings.is_empty() == s.warned {
            p.mismatches.push(format!(
                "{}: expected {}{}",
                s.title,
                if s.allowed { "admitted" } else { "refused" },
                if s.warned { " with a warning" } else { "" }
            ));
        }
    }

    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    p.blank()?;
    p.detail("from /metrics:")?;
    for line in metrics.lines().filter(|l| {
        l.starts_with("gitgate_provenance_verdicts_total")
            || l.starts_with("gitgate_break_glass_total")
    }) {
        p.detail(&format!("  {line}"))?;
    }
    running
        .handle
        .graceful_shutdown(Some(Duration::from_secs(2)));
    let _ = running.task.await;
    Ok(())
}

/// Writes the story: numbered headings, indented details, verdicts in colour on a terminal.
struct Printer<'a> {
    out: &'a mut dyn Write,
    color: bool,
    mismatches: Vec<String>,
}

impl Printer<'_> {
    fn paint(&self, code: &str, s: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn line(&mut self, s: &str) -> std::io::Result<()> {
        writeln!(self.out, "{s}")
    }

    fn blank(&mut self) -> std::io::Result<()> {
        writeln!(self.out)
    }

    fn heading(&mut self, n: u32, s: &str) -> std::io::Result<()> {
        let text = self.paint("1", &format!("{n}. {s}"));
        writeln!(self.out, "\n{text}")
    }

    fn detail(&mut self, s: &str) -> std::io::Result<()> {
        writeln!(self.out, "   {s}")
    }

    fn verdict(&mut self, allowed: bool, title: &str) -> std::io::Result<()> {
        let word = if allowed {
            self.paint("1;32", "ADMITTED")
        } else {
            self.paint("1;31", "REFUSED ")
        };
        writeln!(self.out, "   {word}    {title}")
    }
}
