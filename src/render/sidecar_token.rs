//! The group's sidecar token Secret (`mysql-<group>-sidecar-token`): under `token` the
//! bearer token the group's sidecars present to each other and to the operator's
//! active-site endpoint, under `ca.crt` the operator's serving CA, the only CA the sidecars
//! trust for that endpoint. The operator creates it when a group opts in to the sidecar
//! and the Secret is absent; afterwards it writes only `ca.crt`, when its CA changes
//! (users may rotate the token). The token's bytes and the CA come from the caller:
//! randomness and files are I/O, not rendering.

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

use super::{Owner, RenderError, names};
use crate::api::MysqlFailoverGroup;

/// The Secret holding `token` and, when known, the operator's CA bundle, owned by
/// `group` (garbage-collected with it).
pub fn sidecar_token_secret(
    group: &MysqlFailoverGroup,
    token: &str,
    operator_ca: Option<&[u8]>,
) -> Result<Secret, RenderError> {
    let owner = Owner::new(group)?;
    let mut data = BTreeMap::from([(
        names::SIDECAR_TOKEN_KEY.to_owned(),
        ByteString(token.as_bytes().to_vec()),
    )]);
    if let Some(ca) = operator_ca {
        data.insert(
            names::SIDECAR_OPERATOR_CA_KEY.to_owned(),
            ByteString(ca.to_vec()),
        );
    }
    Ok(Secret {
        metadata: owner.meta(
            names::sidecar_token_secret(owner.name),
            names::group_labels(owner.name),
        ),
        type_: Some("Opaque".to_owned()),
        data: Some(data),
        ..Secret::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::tests::group;

    #[test]
    fn the_secret_is_named_keyed_and_owned_by_the_group() {
        let secret = sidecar_token_secret(&group(), "abc123", None).expect("renders");
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
    fn the_operators_ca_is_carried_when_known() {
        let secret = sidecar_token_secret(&group(), "abc123", Some(b"-----BEGIN CERTIFICATE-----"))
            .expect("renders");
        let data = secret.data.expect("data");
        assert_eq!(
            data.get("ca.crt").map(|b| b.0.as_slice()),
            Some(b"-----BEGIN CERTIFICATE-----".as_slice())
        );
        assert_eq!(data.len(), 2);
    }

    #[test]
    fn a_group_without_a_uid_is_refused() {
        let mut g = group();
        g.metadata.uid = None;
        assert!(sidecar_token_secret(&g, "x", None).is_err());
    }
}
