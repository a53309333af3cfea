//! The five credential Secrets exist, hold `username` and `password`, and are five
//! distinct users. The linter hands these checks the canonical form of the object, where
//! every Secret name is a string (see [`crate::policy::rules::shapes`]).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{BuiltinCheck, get_known, namespace_of, violation};
use crate::policy::rules::condition::Violation;
use crate::policy::rules::context::{Lookup, ObjectContext};
use crate::policy::rules::shapes::CREDENTIAL_ROLES as ROLES;

pub struct CredentialSecrets;

impl BuiltinCheck for CredentialSecrets {
    fn cross_object(&self) -> bool {
        true
    }

    fn check(&self, object: &Value, ctx: &dyn ObjectContext) -> Vec<Violation> {
        let namespace = namespace_of(object);
        let mut out = Vec::new();
        let mut users: BTreeMap<String, String> = BTreeMap::new();
        for role in ROLES {
            let pointer = format!("/spec/credentials/{role}");
            let Some(name) = object.pointer(&pointer).and_then(Value::as_str) else {
                continue;
            };
            match get_known(ctx, "Secret", namespace, name) {
                Lookup::Unknown => {}
                Lookup::Missing => {
                    out.push(violation(&pointer, format!("Secret {name} does not exist")));
                }
                Lookup::Found(secret) => {
                    for key in ["username", "password"] {
                        if secret_value(&secret, key).is_none() {
                            out.push(violation(
                                &pointer,
                                format!("Secret {name} has no {key} key"),
                            ));
                        }
                    }
                    if let Some(user) = secret_value(&secret, "username") {
                        if let Some(other) = users.get(&user) {
                            out.push(violation(
                                &pointer,
                                format!("Secret {name} uses the same username as {other}"),
                            ));
                        } else {
                            users.insert(user, name.to_owned());
                        }
                    }
                }
            }
        }
        out
    }
}

/// A Secret value from `stringData` or base64 `data`.
fn secret_value(secret: &Value, key: &str) -> Option<String> {
    if let Some(v) = secret
        .pointer(&format!("/stringData/{key}"))
        .and_then(Value::as_str)
    {
        return Some(v.to_owned());
    }
    let encoded = secret
        .pointer(&format!("/data/{key}"))
        .and_then(Value::as_str)?;
    decode_base64(encoded).map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
}

fn decode_base64(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut buf = 0u32;
    let mut bits = 0u32;
    for c in text.bytes().filter(|c| !c.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        buf = (buf << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buf >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The five role Secrets are five different Secrets (so five different users).
pub struct DistinctCredentialSecrets;

impl BuiltinCheck for DistinctCredentialSecrets {
    fn cross_object(&self) -> bool {
        false
    }

    fn check(&self, object: &Value, _: &dyn ObjectContext) -> Vec<Violation> {
        let mut seen: BTreeMap<&str, &str> = BTreeMap::new();
        let mut out = Vec::new();
        for role in ROLES {
            let pointer = format!("/spec/credentials/{role}");
            let Some(name) = object.pointer(&pointer).and_then(Value::as_str) else {
                continue;
            };
            if let Some(first) = seen.insert(name, role) {
                out.push(violation(
                    pointer,
                    format!("{role} reuses Secret {name} of {first}"),
                ));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_base64() {
        assert_eq!(decode_base64("YXBw").as_deref(), Some(&b"app"[..]));
        assert_eq!(decode_base64("b3JkZXJz").as_deref(), Some(&b"orders"[..]));
        assert_eq!(decode_base64("YQ==").as_deref(), Some(&b"a"[..]));
        assert_eq!(decode_base64("!!"), None);
    }
}
