//! What an immutable image reference is, for the `immutable-image` JSON Schema format the
//! image-pinning rules use (`format: immutable-image` in `lint-rules/`).
//!
//! A reference is immutable when it names content that cannot change under it:
//! - a digest: it ends with `@sha256:` and 64 lowercase hex digits (a tag before the digest
//!   is ignored by the runtime, so it is ignored here too); or
//! - a full-version tag: the tag (after the last `:` that follows the last `/`, so a
//!   registry port such as `reg:5000/mysql` is not a tag) is an optional `v`, then
//!   `X.Y.Z` of decimal numbers, then optionally a suffix starting with `-`, `_`, `.` or `+`
//!   (a build or variant such as `-oraclelinux9`, `-1`, `+build.5`) in which no word is a
//!   moving word. Words are the suffix's parts split on `-`, `_`, `.` and `+`, compared
//!   case-insensitively with trailing digits removed (`dev2` is `dev`).
//!
//! Moving words are those registries use for tags that are re-pushed:
//! [`MOVING_WORDS`]. `mysql:9.7.4-latest` is therefore not pinned, while
//! `mysql:9.7.4-oraclelinux9` and `mysql:9.7.4-rc1` are; `mysql:9.7`, `mysql:9` and
//! `mysql:lts` are not.

/// Tag words that name a moving target rather than one build.
pub const MOVING_WORDS: [&str; 18] = [
    "latest", "stable", "edge", "main", "master", "nightly", "dev", "devel", "develop", "lts",
    "current", "rolling", "snapshot", "canary", "head", "next", "unstable", "trunk",
];

/// Whether `reference` pins an image by digest or by a full-version tag (see the module
/// documentation for the exact definition).
pub fn is_immutable(reference: &str) -> bool {
    if let Some((name, digest)) = reference.rsplit_once('@') {
        return !name.is_empty() && is_sha256_digest(digest);
    }
    let last_segment = reference.rfind('/').map_or(0, |i| i + 1);
    let Some((name, tag)) = reference[last_segment..].rsplit_once(':') else {
        return false;
    };
    (last_segment > 0 || !name.is_empty()) && is_immutable_tag(tag)
}

fn is_sha256_digest(digest: &str) -> bool {
    digest.strip_prefix("sha256:").is_some_and(|hex| {
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// A full-version tag: `[v]X.Y.Z[suffix]` with no moving word in the suffix.
pub fn is_immutable_tag(tag: &str) -> bool {
    let version = tag.strip_prefix('v').unwrap_or(tag);
    let mut rest = version;
    for i in 0..3 {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        if digits == 0 {
            return false;
        }
        rest = &rest[digits..];
        if i < 2 {
            let Some(after_dot) = rest.strip_prefix('.') else {
                return false;
            };
            rest = after_dot;
        }
    }
    if rest.is_empty() {
        return true;
    }
    let Some(suffix) = rest.strip_prefix(['-', '_', '.', '+']) else {
        return false;
    };
    let tag_chars = suffix
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'+'));
    tag_chars
        && !suffix.is_empty()
        && suffix.split(['-', '_', '.', '+']).all(|word| {
            let word = word.trim_end_matches(|c: char| c.is_ascii_digit());
            !MOVING_WORDS.iter().any(|m| word.eq_ignore_ascii_case(m))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn realistic_tag_shapes() {
        let digest = format!("mysql@sha256:{}", "0123456789abcdef".repeat(4));
        let tagged_digest = format!("reg:5000/db/mysql:latest@sha256:{}", "a".repeat(64));
        for pinned in [
            "mysql:9.7.4",
            "mysql:v9.7.4",
            "mysql:9.7.4-oraclelinux9",
            "mysql:9.7.4-1",
            "mysql:9.7.4-rc1",
            "mysql:9.7.4+build.5",
            "reg:5000/mysql:9.7.4",
            "registry.local:5000/db/mysql:9.7.4-1",
            "container-registry.oracle.com/mysql/community-server:9.7.4",
            "docker.dragonflydb.io/dragonflydb/dragonfly:v1.38.0",
            digest.as_str(),
            tagged_digest.as_str(),
        ] {
            assert!(is_immutable(pinned), "{pinned} is pinned");
        }
        let short_digest = format!("mysql@sha256:{}", "a".repeat(63));
        let upper_digest = format!("mysql@sha256:{}", "A".repeat(64));
        for moving in [
            "mysql",
            "mysql:latest",
            "mysql:lts",
            "mysql:9",
            "mysql:9.7",
            "mysql:9.7-oraclelinux9",
            "mysql:9.7.4-latest",
            "mysql:9.7.4-LATEST",
            "mysql:9.7.4.latest",
            "mysql:9.7.4-lts",
            "mysql:9.7.4-nightly2",
            "mysql:9.7.4-dev",
            "mysql:9.7.4-oraclelinux9-stable",
            "mysql:9.7.4-",
            "mysql:9.7.4x",
            "mysql:9.7.x",
            "reg:5000/mysql",
            "reg:5000/mysql:latest",
            ":9.7.4",
            "",
            short_digest.as_str(),
            upper_digest.as_str(),
            "mysql@sha512:abc",
        ] {
            assert!(!is_immutable(moving), "{moving} is not pinned");
        }
    }
}
