//! Who may sign approved commits: git's `allowed_signers` file (the format of
//! `gpg.ssh.allowedSignersFile`) and SSH signatures of commits (SshSig, namespace `git`),
//! verified with the ssh-key crate as `git verify-commit` would.
//!
//! A line is `principals [options] keytype base64-key [comment]`: principals are
//! comma-separated patterns matched against the committer's email (`*` and `?` wildcards);
//! options are `namespaces="git,file"`, `valid-after=YYYYMMDD[HHMM[SS]]`,
//! `valid-before=...` and `cert-authority` (not supported: such lines are refused, not ignored).
//! The validity period is judged at the time the caller gives: when the mirror first saw the
//! commit ([`super::seen`]), never the commit's own date, which its author chose.

use ssh_key::{PublicKey, SshSig};

/// The namespace git signs commits in.
pub const GIT_NAMESPACE: &str = "git";

/// One line of an allowed signers file.
#[derive(Debug, Clone)]
pub struct AllowedSigner {
    pub principals: Vec<String>,
    pub namespaces: Option<Vec<String>>,
    pub valid_after: Option<i64>,
    pub valid_before: Option<i64>,
    pub key: PublicKey,
    /// `file:line`, to say which entry admitted a commit.
    pub source: String,
}

/// The parsed file.
#[derive(Debug, Clone, Default)]
pub struct AllowedSigners {
    pub signers: Vec<AllowedSigner>,
}

/// An error in an allowed signers file, naming the file and line.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct SignersError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// Why a commit signature is not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureProblem {
    #[error("not signed")]
    Unsigned,
    #[error("signed with OpenPGP, and no OpenPGP keys are trusted")]
    OpenPgpNotTrusted,
    #[error("the signature cannot be read: {0}")]
    Malformed(String),
    #[error("signed for namespace {0:?}, not \"git\"")]
    WrongNamespace(String),
    #[error("signed with OpenPGP by no trusted key, or the signature does not verify")]
    UntrustedOpenPgp,
    #[error("signed by {fingerprint}, which is not an allowed signer for {email}")]
    UntrustedKey { fingerprint: String, email: String },
    #[error("the signature does not verify: {0}")]
    Invalid(String),
    /// The key is an allowed signer for the committer, but not at the time the commit is
    /// judged at (when the mirror first saw it; never the commit's own date).
    #[error(
        "signed by {fingerprint}, whose allowed-signers entry {entry} is not valid at {}, when the commit was first seen (valid-after/valid-before)",
        format_time(*at)
    )]
    KeyNotValid {
        fingerprint: String,
        /// `file:line` of the entry.
        entry: String,
        at: i64,
    },
    /// The committer date is later than the time the commit was first seen, by more than the
    /// allowed clock skew.
    #[error(
        "dated in the future: its committer date {} is {ahead} s after the mirror first saw it (at most {skew} s of clock skew are allowed)",
        format_time(*date)
    )]
    FutureDated { date: i64, ahead: i64, skew: i64 },
}

impl AllowedSigners {
    /// Parses the text of an allowed signers file named `file`.
    pub fn parse(file: &str, text: &str) -> Result<AllowedSigners, SignersError> {
        let mut signers = Vec::new();
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let err = |message: String| SignersError {
                file: file.to_string(),
                line: i + 1,
                message,
            };
            let fields = split_fields(line);
            if fields.len() < 3 {
                return Err(err("expected `principals [options] keytype key`".into()));
            }
            let principals: Vec<String> = fields[0].split(',').map(str::to_string).collect();
            // Options come before the key type when the second field is not a key type.
            let (options, key_at) = if is_key_type(&fields[1]) {
                (Vec::new(), 1)
            } else {
                (split_options(&fields[1]), 2)
            };
            if fields.len() < key_at + 2 {
                return Err(err("missing key type or key".into()));
            }
            let key_text = format!("{} {}", fields[key_at], fields[key_at + 1]);
            let key = PublicKey::from_openssh(&key_text)
                .map_err(|e| err(format!("invalid public key: {e}")))?;
            let mut signer = AllowedSigner {
                principals,
                namespaces: None,
                valid_after: None,
                valid_before: None,
                key,
                source: format!("{file}:{}", i + 1),
            };
            for option in options {
                let (name, value) = option
                    .split_once('=')
                    .map_or((option.as_str(), ""), |(n, v)| (n, v));
                let value = value.trim_matches('"');
                match name.to_ascii_lowercase().as_str() {
                    "namespaces" => {
                        signer.namespaces = Some(value.split(',').map(str::to_string).collect())
                    }
                    "valid-after" => {
                        signer.valid_after = Some(
                            parse_time(value)
                                .ok_or_else(|| err(format!("invalid valid-after {value:?}")))?,
                        )
                    }
                    "valid-before" => {
                        signer.valid_before = Some(
                            parse_time(value)
                                .ok_or_else(|| err(format!("invalid valid-before {value:?}")))?,
                        )
                    }
                    other => return Err(err(format!("option {other:?} is not supported"))),
                }
            }
            signers.push(signer);
        }
        Ok(AllowedSigners { signers })
    }

    /// Verifies a commit's signature (`armored`, over `data`) made by `email`, with the key's
    /// validity judged at `time` (when the commit was first seen, not its own date).
    /// Returns the entry that admitted it.
    pub fn verify_commit(
        &self,
        armored: &str,
        data: &[u8],
        email: &str,
        time: i64,
    ) -> Result<&AllowedSigner, SignatureProblem> {
        let sig = SshSig::from_pem(armored.trim())
            .map_err(|e| SignatureProblem::Malformed(e.to_string()))?;
        if sig.namespace() != GIT_NAMESPACE {
            return Err(SignatureProblem::WrongNamespace(
                sig.namespace().to_string(),
            ));
        }
        let signer_key = sig.public_key();
        let fingerprint = || {
            PublicKey::from(signer_key.clone())
                .fingerprint(Default::default())
                .to_string()
        };
        let candidates = || {
            self.signers.iter().filter(|s| {
                s.key.key_data() == signer_key
                    && s.principals.iter().any(|p| wildcard(p, email))
                    && s.namespaces
                        .as_ref()
                        .is_none_or(|ns| ns.iter().any(|n| wildcard(n, GIT_NAMESPACE)))
            })
        };
        let entry = candidates()
            .find(|s| {
                s.valid_after.is_none_or(|t| time >= t) && s.valid_before.is_none_or(|t| time < t)
            })
            .ok_or_else(|| match candidates().next() {
                Some(s) => SignatureProblem::KeyNotValid {
                    fingerprint: fingerprint(),
                    entry: s.source.clone(),
                    at: time,
                },
                None => SignatureProblem::UntrustedKey {
                    fingerprint: fingerprint(),
                    email: email.to_string(),
                },
            })?;
        entry
            .key
            .verify(GIT_NAMESPACE, data, &sig)
            .map_err(|e| SignatureProblem::Invalid(e.to_string()))?;
        Ok(entry)
    }
}

fn is_key_type(s: &str) -> bool {
    s.starts_with("ssh-") || s.starts_with("ecdsa-") || s.starts_with("sk-")
}

/// Splits on whitespace, keeping double-quoted runs (`namespaces="git,file"`) together.
fn split_fields(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Splits an options field at commas outside quotes.
fn split_options(field: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in field.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                current.push(c);
            }
            ',' if !quoted => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// `YYYYMMDD[HHMM[SS]]` (UTC, optionally with a trailing `Z`) as seconds since the epoch.
fn parse_time(s: &str) -> Option<i64> {
    let s = s.trim_end_matches(['Z', 'z']);
    if !(s.len() == 8 || s.len() == 12 || s.len() == 14) || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).map_or(Some(0), |x| x.parse::<i64>().ok());
    let (y, m, d) = (n(0..4)?, n(4..6)?, n(6..8)?);
    let (hh, mm, ss) = (n(8..10)?, n(10..12)?, n(12..14)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146097 + doe - 719468;
    Some(days * 86400 + hh * 3600 + mm * 60 + ss)
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SSZ` (UTC), for messages.
pub fn format_time(secs: i64) -> String {
    let (days, rest) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // The civil date of a day count (Howard Hinnant's algorithm, the inverse of `parse_time`).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// Matches `*` (any run) and `?` (one character), as OpenSSH patterns do.
fn wildcard(pattern: &str, text: &str) -> bool {
    fn go(p: &[u8], t: &[u8]) -> bool {
        match (p.first(), t.first()) {
            (None, None) => true,
            (Some(b'*'), _) => go(&p[1..], t) || (!t.is_empty() && go(p, &t[1..])),
            (Some(b'?'), Some(_)) => go(&p[1..], &t[1..]),
            (Some(a), Some(b)) if a.eq_ignore_ascii_case(b) => go(&p[1..], &t[1..]),
            _ => false,
        }
    }
    go(pattern.as_bytes(), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str =
        "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGxpwPX7W7fGpJQvyCgo0b0F2nJ6G1cYPlS8SgzMKaxD";

    #[test]
    fn parses_principals_options_and_keys() {
        let text = format!(
            "# team\nalice@example.com {KEY} alice\n*@example.com namespaces=\"git,file\",valid-after=20260101 {KEY}\n"
        );
        let s = AllowedSigners::parse("allowed_signers", &text).unwrap();
        assert_eq!(s.signers.len(), 2);
        assert_eq!(
            s.signers[1].namespaces.as_deref(),
            Some(&["git".to_string(), "file".to_string()][..])
        );
        assert_eq!(s.signers[1].valid_after, Some(1_767_225_600));
        assert_eq!(s.signers[0].source, "allowed_signers:2");
    }

    #[test]
    fn errors_name_file_and_line() {
        let err = AllowedSigners::parse("as", &format!("a@b {KEY}\nbob ssh-ed25519 notbase64\n"))
            .unwrap_err();
        assert!(
            err.to_string().starts_with("as:2: invalid public key"),
            "{err}"
        );
        let err = AllowedSigners::parse("as", &format!("a@b cert-authority {KEY}\n")).unwrap_err();
        assert!(err.to_string().contains("not supported"), "{err}");
    }

    #[test]
    fn wildcards_and_times() {
        assert!(wildcard("*@example.com", "alice@example.com"));
        assert!(!wildcard("*@example.com", "alice@example.org"));
        assert!(wildcard("a?c", "abc"));
        assert_eq!(parse_time("19700101"), Some(0));
        assert_eq!(parse_time("20000301120000"), Some(951_912_000));
        assert_eq!(parse_time("2026"), None);
        assert_eq!(format_time(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_time(951_912_000), "2000-03-01T12:00:00Z");
        assert_eq!(format_time(1_795_623_689), "2026-11-25T16:21:29Z");
        assert_eq!(format_time(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn garbage_is_refused_with_a_reason() {
        let s = AllowedSigners::default();
        assert!(matches!(
            s.verify_commit("garbage", b"x", "a@b", 0).unwrap_err(),
            SignatureProblem::Malformed(_)
        ));
    }
}
