//! Pod and container security contexts: the spec's, applied verbatim (no merge, so a user
//! who sets one knows exactly what runs), or the Restricted Pod Security profile.
//!
//! The Restricted defaults run mysqld as the official image's `mysql` user (uid and gid
//! 999) with a read-only root filesystem; the directories mysqld writes outside its
//! datadir are emptyDir volumes (see the Deployment). `fsGroup` makes the data volume
//! writable by that user, and `OnRootMismatch` skips the recursive chown of a large
//! datadir on every start.

use k8s_openapi::api::core::v1::{
    Capabilities, PodSecurityContext, SeccompProfile, SecurityContext,
};

use crate::api::failover_group::MysqlFailoverGroupSpec;

/// The official MySQL image's `mysql` user and group.
const MYSQL_UID: i64 = 999;

fn runtime_default() -> SeccompProfile {
    SeccompProfile {
        type_: "RuntimeDefault".to_owned(),
        localhost_profile: None,
    }
}

/// The MySQL pod's security context.
pub fn pod_security_context(spec: &MysqlFailoverGroupSpec) -> PodSecurityContext {
    spec.pod_security_context
        .clone()
        .unwrap_or_else(|| PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(MYSQL_UID),
            run_as_group: Some(MYSQL_UID),
            fs_group: Some(MYSQL_UID),
            fs_group_change_policy: Some("OnRootMismatch".to_owned()),
            seccomp_profile: Some(runtime_default()),
            ..PodSecurityContext::default()
        })
}

/// The mysql container's security context.
pub fn container_security_context(spec: &MysqlFailoverGroupSpec) -> SecurityContext {
    spec.container_security_context
        .clone()
        .unwrap_or_else(|| SecurityContext {
            allow_privilege_escalation: Some(false),
            privileged: Some(false),
            run_as_non_root: Some(true),
            read_only_root_filesystem: Some(true),
            capabilities: Some(Capabilities {
                drop: Some(vec!["ALL".to_owned()]),
                add: None,
            }),
            seccomp_profile: Some(runtime_default()),
            ..SecurityContext::default()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_meet_the_restricted_profile() {
        let spec = MysqlFailoverGroupSpec::default();
        let pod = pod_security_context(&spec);
        assert_eq!(pod.run_as_non_root, Some(true));
        assert_eq!(pod.run_as_user, Some(999));
        assert_eq!(pod.seccomp_profile.unwrap().type_, "RuntimeDefault");
        let c = container_security_context(&spec);
        assert_eq!(c.allow_privilege_escalation, Some(false));
        assert_eq!(c.run_as_non_root, Some(true));
        assert_eq!(c.read_only_root_filesystem, Some(true));
        assert_eq!(c.capabilities.unwrap().drop, Some(vec!["ALL".to_owned()]));
        assert_eq!(c.seccomp_profile.unwrap().type_, "RuntimeDefault");
    }

    #[test]
    fn spec_contexts_are_applied_verbatim() {
        let spec = MysqlFailoverGroupSpec {
            pod_security_context: Some(PodSecurityContext {
                run_as_user: Some(27),
                ..PodSecurityContext::default()
            }),
            container_security_context: Some(SecurityContext {
                read_only_root_filesystem: Some(false),
                ..SecurityContext::default()
            }),
            ..MysqlFailoverGroupSpec::default()
        };
        // No merge with the defaults: unset fields stay unset.
        assert_eq!(
            pod_security_context(&spec),
            spec.pod_security_context.clone().unwrap()
        );
        assert_eq!(
            container_security_context(&spec),
            spec.container_security_context.clone().unwrap()
        );
    }
}
