//! Image references, parsed and normalised exactly as Docker does.
//!
//! The grammar and the normalisation follow Docker's reference library (`ParseNormalizedNamed`,
//! `FamiliarString`, `TagNameOnly`):
//!
//! ```text
//! reference        := name [ ":" tag ] [ "@" digest ]
//! name             := [domain "/"] path
//! domain           := host [":" port]
//! host             := domain-name | "[" ipv6 "]"
//! domain-name      := component ("." component)*     component: [a-zA-Z0-9] or [a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9]
//! path             := path-component ("/" path-component)*
//! path-component   := [a-z0-9]+ (separator [a-z0-9]+)*   separator: "." | "_" | "__" | "-"+
//! tag              := [\w][\w.-]{0,127}
//! digest           := algorithm ":" hex{32,}
//! ```
//!
//! Normalisation: the first path element is a domain when it contains `.` or `:`, is `localhost`,
//! or has an uppercase letter; otherwise the domain is `docker.io`. `index.docker.io` is
//! `docker.io`, and single-element Docker Hub paths get the `library/` namespace. Parsing never
//! adds a tag; [`Reference::parse_with_default_tag`] adds `latest` when there is neither a tag
//! nor a digest.

use crate::digest::{Digest, DigestError};
use std::fmt;
use std::str::FromStr;

/// Docker Hub's canonical domain.
pub const DEFAULT_DOMAIN: &str = "docker.io";
/// Docker Hub's legacy domain, normalised to [`DEFAULT_DOMAIN`].
pub const LEGACY_DEFAULT_DOMAIN: &str = "index.docker.io";
/// The namespace of official images on Docker Hub.
pub const OFFICIAL_REPO_PREFIX: &str = "library/";
/// The tag that [`Reference::parse_with_default_tag`] adds.
pub const DEFAULT_TAG: &str = "latest";
/// Longest repository path Docker accepts.
pub const NAME_TOTAL_LENGTH_MAX: usize = 255;

/// Why a string is not an image reference. The texts are Docker's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReferenceError {
    #[error("invalid reference format")]
    InvalidFormat,
    #[error("invalid tag format")]
    InvalidTag,
    #[error("invalid reference format: repository name ({0}) must be lowercase")]
    NotLowercase(String),
    #[error("repository name must be lowercase")]
    ContainsUppercase,
    #[error("repository name must have at least one component")]
    NameEmpty,
    #[error("repository name must not be more than 255 characters")]
    NameTooLong,
    #[error("invalid repository name ({0}), cannot specify 64-byte hexadecimal strings")]
    HexName(String),
    #[error("invalid checksum digest format")]
    DigestInvalidFormat,
    #[error("invalid checksum digest length")]
    DigestInvalidLength,
    #[error("unsupported digest algorithm")]
    DigestUnsupported,
}

/// A normalised image reference: `domain/path[:tag][@digest]`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    domain: String,
    path: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

/// Whether `s` is 64 lowercase hex digits: Docker treats such a string as an image ID, never as
/// a repository name.
pub fn looks_like_image_id(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Reference {
    /// Parses and normalises `s` (Docker's `ParseNormalizedNamed`). Adds no tag.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        if looks_like_image_id(s) {
            return Err(ReferenceError::HexName(s.to_string()));
        }
        let (domain, remainder) = split_docker_domain(s);
        let remote_name = match remainder.find(':') {
            Some(i) => &remainder[..i],
            None => &remainder[..],
        };
        if remote_name.to_lowercase() != remote_name {
            return Err(ReferenceError::NotLowercase(remote_name.to_string()));
        }
        parse_full(&format!("{domain}/{remainder}"))
    }

    /// Parses like [`Reference::parse`] and adds the `latest` tag when the reference has
    /// neither a tag nor a digest (Docker's `TagNameOnly`).
    pub fn parse_with_default_tag(s: &str) -> Result<Reference, ReferenceError> {
        let mut r = Reference::parse(s)?;
        if r.tag.is_none() && r.digest.is_none() {
            r.tag = Some(DEFAULT_TAG.to_string());
        }
        Ok(r)
    }

    /// The registry domain, with its port: `docker.io`, `localhost:5000`, `[::1]:5000`.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The repository path inside the registry: `library/busybox`.
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// The full repository name: `docker.io/library/busybox`.
    pub fn repository(&self) -> String {
        if self.domain.is_empty() {
            self.path.clone()
        } else {
            format!("{}/{}", self.domain, self.path)
        }
    }

    /// The repository as Docker shows it: `busybox`, `user/x`, `localhost:5000/x`.
    pub fn familiar_repository(&self) -> String {
        if self.domain == DEFAULT_DOMAIN {
            match self.path.strip_prefix(OFFICIAL_REPO_PREFIX) {
                Some(rest) if !rest.contains('/') => rest.to_string(),
                _ => self.path.clone(),
            }
        } else {
            self.repository()
        }
    }

    /// The reference as Docker shows it: `busybox:latest`, `busybox@sha256:…`,
    /// `busybox:1.0@sha256:…`.
    pub fn familiar_string(&self) -> String {
        let mut s = self.familiar_repository();
        self.push_tag_digest(&mut s);
        s
    }

    /// The same repository (and digest) with `tag`.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        if !valid_tag(tag) {
            return Err(ReferenceError::InvalidTag);
        }
        Ok(Reference {
            tag: Some(tag.to_string()),
            ..self.clone()
        })
    }

    /// The same repository (and tag) with `digest`.
    pub fn with_digest(&self, digest: Digest) -> Reference {
        Reference {
            digest: Some(digest),
            ..self.clone()
        }
    }

    /// The repository alone.
    pub fn without_tag_or_digest(&self) -> Reference {
        Reference {
            domain: self.domain.clone(),
            path: self.path.clone(),
            tag: None,
            digest: None,
        }
    }

    fn push_tag_digest(&self, s: &mut String) {
        if let Some(t) = &self.tag {
            s.push(':');
            s.push_str(t);
        }
        if let Some(d) = &self.digest {
            s.push('@');
            s.push_str(&d.to_string());
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = self.repository();
        self.push_tag_digest(&mut s);
        f.write_str(&s)
    }
}

impl fmt::Debug for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Reference({self})")
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

impl serde::Serialize for Reference {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Reference {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// Docker's `splitDockerDomain`: (domain, remainder with tag and digest).
fn split_docker_domain(name: &str) -> (String, String) {
    let (domain, mut remote) = match name.split_once('/') {
        None => {
            return (
                DEFAULT_DOMAIN.to_string(),
                format!("{OFFICIAL_REPO_PREFIX}{name}"),
            )
        }
        Some((first, rest)) => {
            if first == "localhost" {
                (first.to_string(), rest.to_string())
            } else if first == LEGACY_DEFAULT_DOMAIN {
                (DEFAULT_DOMAIN.to_string(), rest.to_string())
            } else if first.contains(['.', ':']) || first.to_lowercase() != first {
                (first.to_string(), rest.to_string())
            } else {
                (DEFAULT_DOMAIN.to_string(), name.to_string())
            }
        }
    };
    if domain == DEFAULT_DOMAIN && !remote.contains('/') {
        remote = format!("{OFFICIAL_REPO_PREFIX}{remote}");
    }
    (domain, remote)
}

/// Docker's `Parse`: the full grammar, with no normalisation.
fn parse_full(s: &str) -> Result<Reference, ReferenceError> {
    let Some(parts) = match_reference(s) else {
        if s.is_empty() {
            return Err(ReferenceError::NameEmpty);
        }
        if match_reference(&s.to_lowercase()).is_some() {
            return Err(ReferenceError::ContainsUppercase);
        }
        return Err(ReferenceError::InvalidFormat);
    };
    if parts.path.len() > NAME_TOTAL_LENGTH_MAX {
        return Err(ReferenceError::NameTooLong);
    }
    let digest = match parts.digest {
        Some(d) => Some(parse_digest(d)?),
        None => None,
    };
    Ok(Reference {
        domain: parts.domain.to_string(),
        path: parts.path.to_string(),
        tag: parts.tag.map(str::to_string),
        digest,
    })
}

struct Parts<'a> {
    domain: &'a str,
    path: &'a str,
    tag: Option<&'a str>,
    digest: Option<&'a str>,
}

/// Matches Docker's anchored `ReferenceRegexp`.
fn match_reference(s: &str) -> Option<Parts<'_>> {
    let (rest, digest) = match s.split_once('@') {
        Some((r, d)) => {
            if !digest_syntax(d) {
                return None;
            }
            (r, Some(d))
        }
        None => (s, None),
    };
    let last_slash = rest.rfind('/');
    let (name, tag) = match rest.rfind(':') {
        Some(i) if last_slash.is_none_or(|sl| i > sl) => (&rest[..i], Some(&rest[i + 1..])),
        _ => (rest, None),
    };
    if let Some(t) = tag {
        if !valid_tag(t) {
            return None;
        }
    }
    // The domain group is optional and tried first; a name that does not split into a valid
    // domain and path may still be a valid path on its own.
    let (domain, path) = match name.split_once('/') {
        Some((d, p)) if valid_domain(d) && valid_path(p) => (d, p),
        _ if valid_path(name) => ("", name),
        _ => return None,
    };
    Some(Parts {
        domain,
        path,
        tag,
        digest,
    })
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// `[\w][\w.-]{0,127}`
fn valid_tag(t: &str) -> bool {
    let b = t.as_bytes();
    !b.is_empty()
        && b.len() <= 128
        && is_word(b[0])
        && b[1..].iter().all(|&c| is_word(c) || c == b'.' || c == b'-')
}

/// `host [":" port]`, host a domain name or a bracketed IPv6 address.
fn valid_domain(d: &str) -> bool {
    let (host, port) = if let Some(rest) = d.strip_prefix('[') {
        let Some(end) = rest.find(']') else {
            return false;
        };
        let ip = &rest[..end];
        if ip.is_empty() || !ip.bytes().all(|b| b.is_ascii_hexdigit() || b == b':') {
            return false;
        }
        let after = &rest[end + 1..];
        match after.strip_prefix(':') {
            Some(p) => (None, Some(p)),
            None if after.is_empty() => (None, None),
            None => return false,
        }
    } else {
        match d.split_once(':') {
            Some((h, p)) => (Some(h), Some(p)),
            None => (Some(d), None),
        }
    };
    if let Some(p) = port {
        if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
            return false;
        }
    }
    match host {
        None => true,
        Some(h) => h.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|&x| x.is_ascii_alphanumeric() || x == b'-')
        }),
    }
}

/// `path-component ("/" path-component)*`
fn valid_path(p: &str) -> bool {
    p.split('/').all(valid_path_component)
}

fn valid_path_component(c: &str) -> bool {
    let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    let b = c.as_bytes();
    if b.is_empty() || !alnum(b[0]) || !alnum(b[b.len() - 1]) {
        return false;
    }
    let mut i = 0;
    while i < b.len() {
        if alnum(b[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && !alnum(b[i]) {
            i += 1;
        }
        let sep = &c[start..i];
        let ok = matches!(sep, "." | "_" | "__") || sep.bytes().all(|x| x == b'-');
        if !ok {
            return false;
        }
    }
    true
}

/// `[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}`
fn digest_syntax(d: &str) -> bool {
    let Some((alg, hex)) = d.split_once(':') else {
        return false;
    };
    let alg_ok = alg.split(['-', '_', '+', '.']).all(|part| {
        let b = part.as_bytes();
        !b.is_empty() && b[0].is_ascii_alphabetic() && b.iter().all(|x| x.is_ascii_alphanumeric())
    });
    alg_ok && hex.len() >= 32 && hex.bytes().all(|b| b.is_ascii_hexdigit())
}

/// The digest checks of Docker's digest library, then [`Digest`]'s own.
fn parse_digest(d: &str) -> Result<Digest, ReferenceError> {
    let (alg, hex) = d
        .split_once(':')
        .ok_or(ReferenceError::DigestInvalidFormat)?;
    let size = match alg {
        "sha256" => 32,
        "sha384" => 48,
        "sha512" => 64,
        _ => return Err(ReferenceError::DigestUnsupported),
    };
    if hex.len() != size * 2 {
        return Err(ReferenceError::DigestInvalidLength);
    }
    if !hex
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(ReferenceError::DigestInvalidFormat);
    }
    d.parse::<Digest>().map_err(|e| match e {
        DigestError::UnsupportedAlgorithm(_) => ReferenceError::DigestUnsupported,
        DigestError::Invalid(_) => ReferenceError::DigestInvalidFormat,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    /// input, repository, familiar repository, tag, has digest, full string, familiar string
    #[test]
    fn normalises_like_docker() {
        let dg = format!("sha256:{HEX}");
        let cases: Vec<(String, &str, &str, Option<&str>, bool)> = vec![
            (
                "busybox".into(),
                "docker.io/library/busybox",
                "busybox",
                None,
                false,
            ),
            (
                "busybox:latest".into(),
                "docker.io/library/busybox",
                "busybox",
                Some("latest"),
                false,
            ),
            (
                "busybox:1.36.1-musl".into(),
                "docker.io/library/busybox",
                "busybox",
                Some("1.36.1-musl"),
                false,
            ),
            (
                "library/busybox".into(),
                "docker.io/library/busybox",
                "busybox",
                None,
                false,
            ),
            (
                "docker.io/busybox".into(),
                "docker.io/library/busybox",
                "busybox",
                None,
                false,
            ),
            (
                "docker.io/library/busybox".into(),
                "docker.io/library/busybox",
                "busybox",
                None,
                false,
            ),
            (
                "index.docker.io/busybox".into(),
                "docker.io/library/busybox",
                "busybox",
                None,
                false,
            ),
            (
                "index.docker.io/user/app:v1".into(),
                "docker.io/user/app",
                "user/app",
                Some("v1"),
                false,
            ),
            (
                "user/app".into(),
                "docker.io/user/app",
                "user/app",
                None,
                false,
            ),
            (
                "user/team/app".into(),
                "docker.io/user/team/app",
                "user/team/app",
                None,
                false,
            ),
            (
                "library/distros/ubuntu".into(),
                "docker.io/library/distros/ubuntu",
                "library/distros/ubuntu",
                None,
                false,
            ),
            (
                "localhost/app".into(),
                "localhost/app",
                "localhost/app",
                None,
                false,
            ),
            (
                "localhost:5000/app:dev".into(),
                "localhost:5000/app",
                "localhost:5000/app",
                Some("dev"),
                false,
            ),
            (
                "registry.example.com/team/app".into(),
                "registry.example.com/team/app",
                "registry.example.com/team/app",
                None,
                false,
            ),
            (
                "example:5000/app".into(),
                "example:5000/app",
                "example:5000/app",
                None,
                false,
            ),
            (
                "127.0.0.1:5000/app".into(),
                "127.0.0.1:5000/app",
                "127.0.0.1:5000/app",
                None,
                false,
            ),
            (
                "[::1]:5000/app:1".into(),
                "[::1]:5000/app",
                "[::1]:5000/app",
                Some("1"),
                false,
            ),
            (
                "[2001:db8::1]/app".into(),
                "[2001:db8::1]/app",
                "[2001:db8::1]/app",
                None,
                false,
            ),
            (
                "Example.COM/app".into(),
                "Example.COM/app",
                "Example.COM/app",
                None,
                false,
            ),
            ("UPPER/app".into(), "UPPER/app", "UPPER/app", None, false),
            (
                "a.b-c_d__e---f/x".into(),
                "a.b-c_d__e---f/x",
                "a.b-c_d__e---f/x",
                None,
                false,
            ),
            (
                "user/a.b_c__d---e".into(),
                "docker.io/user/a.b_c__d---e",
                "user/a.b_c__d---e",
                None,
                false,
            ),
            (
                format!("busybox@{dg}"),
                "docker.io/library/busybox",
                "busybox",
                None,
                true,
            ),
            (
                format!("busybox:1.0@{dg}"),
                "docker.io/library/busybox",
                "busybox",
                Some("1.0"),
                true,
            ),
            (
                format!("localhost:5000/x@{dg}"),
                "localhost:5000/x",
                "localhost:5000/x",
                None,
                true,
            ),
            (
                "localhost:5000".into(),
                "docker.io/library/localhost",
                "localhost",
                Some("5000"),
                false,
            ),
            (
                "busybox:_tag".into(),
                "docker.io/library/busybox",
                "busybox",
                Some("_tag"),
                false,
            ),
        ];
        for (input, repo, familiar, tag, has_digest) in cases {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input}: {e}"));
            assert_eq!(r.repository(), repo, "{input}");
            assert_eq!(r.familiar_repository(), familiar, "{input}");
            assert_eq!(r.tag(), tag, "{input}");
            assert_eq!(r.digest().is_some(), has_digest, "{input}");
            let mut full = repo.to_string();
            let mut fam = familiar.to_string();
            if let Some(t) = tag {
                full += &format!(":{t}");
                fam += &format!(":{t}");
            }
            if has_digest {
                full += &format!("@{dg}");
                fam += &format!("@{dg}");
            }
            assert_eq!(r.to_string(), full, "{input}");
            assert_eq!(r.familiar_string(), fam, "{input}");
            // The full form parses back to the same reference.
            assert_eq!(Reference::parse(&full).unwrap(), r, "{input}");
            assert_eq!(Reference::parse(&fam).unwrap(), r, "{input}");
        }
    }

    #[test]
    fn rejects_like_docker() {
        let long_tag = format!("busybox:{}", "a".repeat(129));
        let long_name = format!("user/{}", "a".repeat(251));
        let cases: Vec<(String, &str)> = vec![
            ("".into(), "invalid reference format"),
            ("Busybox".into(), "invalid reference format: repository name (library/Busybox) must be lowercase"),
            ("user/App:v1".into(), "invalid reference format: repository name (user/App) must be lowercase"),
            ("docker.io/User/app".into(), "invalid reference format: repository name (User/app) must be lowercase"),
            ("busybox:".into(), "invalid reference format"),
            ("busybox:-tag".into(), "invalid reference format"),
            ("busybox:.tag".into(), "invalid reference format"),
            (long_tag, "invalid reference format"),
            ("busybox:a:b".into(), "invalid reference format"),
            ("-busybox".into(), "invalid reference format"),
            ("busybox-".into(), "invalid reference format"),
            ("bu..sybox".into(), "invalid reference format"),
            ("bu___sybox".into(), "invalid reference format"),
            ("bu_-sybox".into(), "invalid reference format"),
            ("user//app".into(), "invalid reference format"),
            ("user/app/".into(), "invalid reference format"),
            ("/app".into(), "invalid reference format"),
            ("a b".into(), "invalid reference format"),
            ("host:port/app".into(), "invalid reference format"),
            ("-host.com/app".into(), "invalid reference format"),
            ("[::1/app".into(), "invalid reference format"),
            ("[zz::1]:5000/app".into(), "invalid reference format"),
            ("busybox@sha256:abc".into(), "invalid reference format"),
            ("busybox@sha256".into(), "invalid reference format"),
            ("busybox@".into(), "invalid reference format"),
            (format!("busybox@sha256:{}", &HEX[..40]), "invalid checksum digest length"),
            (format!("busybox@sha256:{}", HEX.to_uppercase()), "invalid checksum digest format"),
            (format!("busybox@md5:{HEX}"), "unsupported digest algorithm"),
            (long_name, "repository name must not be more than 255 characters"),
            (HEX.into(), &*Box::leak(format!("invalid repository name ({HEX}), cannot specify 64-byte hexadecimal strings").into_boxed_str())),
        ];
        for (input, msg) in cases {
            let e = Reference::parse(&input).expect_err(&input);
            assert_eq!(e.to_string(), msg, "{input:?}");
        }
        // Exactly 255 characters of path is allowed.
        assert!(Reference::parse(&format!("user/{}", "a".repeat(250))).is_ok());
        assert_eq!(
            parse_full("docker.io/library/BUSYBOX")
                .unwrap_err()
                .to_string(),
            "repository name must be lowercase"
        );
        assert_eq!(
            parse_full("").unwrap_err().to_string(),
            "repository name must have at least one component"
        );
    }

    #[test]
    fn default_tag_and_builders() {
        let r = Reference::parse_with_default_tag("busybox").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/busybox:latest");
        assert_eq!(r.familiar_string(), "busybox:latest");
        let d: Digest = format!("sha256:{HEX}").parse().unwrap();
        let r2 = Reference::parse_with_default_tag(&format!("busybox@{d}")).unwrap();
        assert_eq!(r2.tag(), None);
        let r3 = Reference::parse_with_default_tag("busybox:1").unwrap();
        assert_eq!(r3.tag(), Some("1"));

        let t = r.with_tag("v2").unwrap();
        assert_eq!(t.familiar_string(), "busybox:v2");
        assert_eq!(
            r.with_tag("bad tag").unwrap_err(),
            ReferenceError::InvalidTag
        );
        assert_eq!(
            r.with_tag("").unwrap_err().to_string(),
            "invalid tag format"
        );
        let wd = r.with_digest(d.clone());
        assert_eq!(wd.familiar_string(), format!("busybox:latest@{d}"));
        assert_eq!(wd.with_tag("x").unwrap().digest(), Some(&d));
        assert_eq!(
            wd.without_tag_or_digest().to_string(),
            "docker.io/library/busybox"
        );
        assert_eq!(wd.domain(), "docker.io");
        assert_eq!(wd.path(), "library/busybox");

        let via: Reference = "localhost:5000/a/b:c".parse().unwrap();
        assert_eq!(via.domain(), "localhost:5000");
        assert_eq!(via.path(), "a/b");
        let json = serde_json::to_string(&via).unwrap();
        assert_eq!(json, "\"localhost:5000/a/b:c\"");
        assert_eq!(serde_json::from_str::<Reference>(&json).unwrap(), via);
    }

    #[test]
    fn image_ids() {
        assert!(looks_like_image_id(HEX));
        assert!(!looks_like_image_id(&HEX[..63]));
        assert!(!looks_like_image_id(&HEX.to_uppercase()));
        assert!(!looks_like_image_id(&format!("sha256:{HEX}")));
        // 63 hex digits is an ordinary name.
        assert!(Reference::parse(&HEX[..63]).is_ok());
    }
}
