//! The group's sidecar token Secret (`mysql-<group>-sidecar-token`, key `token`): the
//! bearer token the group's sidecars present to each other and to the operator's
//! active-site endpoint. The operator creates it once, when a group opts in to the sidecar
//! and the Secret is absent, and never writes it again (users may rotate the token). The
//! token's bytes come from the caller: randomness is I/O, not rendering.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::{Owner, RenderError, names};
use crate::api::MysqlFailoverGroup;

/// The Secret holding `token`, owned by `group` (garbage-collected with it).
pub fn sidecar_token_secret(
    group: &MysqlFailoverGroup,
    token: &str,
) -> Result<Secret, RenderError> {
    let owner = Owner::new(group)?;
    Ok(Secret {
        metadata: owner.meta(
            names::sidecar_token_secret(owner.name),
            names::group_labels(owner.name),
        ),
        type_: Some("Opaque".to_owned()),
        data: Some(BTreeMap::from([(
            names::SIDECAR_TOKEN_KEY.to_owned(),
            ByteString(token.as_bytes().to_vec()),
        )])),
        ..Secret::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::group;

    #[test]
    fn the_secret_is_named_keyed_and_owned_by_the_group() {
        let secret = sidecar_token_secret(&group(), "abc123").expect("renders");
        assert_eq!(
            secret.metadata.name.as_deref(),
            Some("mysql-orders-sidecar-token")
        );
        assert_eq!(secret.metadata.namespace.as_deref(), Some("db"));
        let owners = secret.metadata.owner_references.expect("owned");
        assert_eq!(owners.len(), 1);
        assert_eq!(owners[0].kind, "MysqlFailoverGroup");
        assert_eq!(owners[0].uid, "0b9c4f6e-1111-2222-3333-444455556666");
        assert_eq!(owners[0].controller, Some(true));
        assert_eq!(
            secret
                .data
                .expect("data")
                .get("token")
                .map(|b| b.0.as_slice()),
            Some(b"abc123".as_slice())
        );
        assert_eq!(
            secret
                .metadata
                .labels
                .expect("labels")
                .get(names::LABEL_GROUP)
                .map(String::as_str),
            Some("orders")
        );
    }

    #[test]
    fn a_group_without_a_uid_is_refused() {
        let mut g = group();
        g.metadata.uid = None;
        assert!(sidecar_token_secret(&g, "x").is_err());
    }
}
