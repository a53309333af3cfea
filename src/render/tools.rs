//! The two-image pattern: a pod whose work needs both this binary and MySQL's client
//! programs (`mysqlbinlog`, `mysql`).
//!
//! The operator's image is a static binary on distroless (no shell, no MySQL tools); the
//! group's MySQL image has the tools but not this binary. So an init container on the
//! operator's image copies the binary into an `emptyDir` (`bloodraven copy-self`), and the
//! working container runs that copy on the group's pinned MySQL image, pointed at the
//! image's tools. Every pod that replays or reads binary logs is made this one way: the
//! point-in-time restore Job, the verification Job that replays, the archiver.

use serde_json::{Value, json};

use crate::api::backup::BackupSpec;

/// Where the copied binary is, in both containers.
pub const TOOLS_DIR: &str = "/opt/bloodraven";
/// The copied binary.
pub const COPIED_BINARY: &str = "/opt/bloodraven/bloodraven";
/// The MySQL image's client programs (the official image's paths).
pub const MYSQLBINLOG: &str = "/usr/bin/mysqlbinlog";
pub const MYSQL: &str = "/usr/bin/mysql";
/// The init container that copies the binary, and the volume it copies into.
pub const COPY_CONTAINER: &str = "copy-bloodraven";
const VOLUME: &str = "bloodraven-bin";

/// The pieces a pod spec needs to run an engine container on the MySQL image.
#[derive(Debug, Clone, PartialEq)]
pub struct OnMysqlImage {
    /// The init container (operator image) that copies the binary.
    pub init: Value,
    /// The `emptyDir` it copies into.
    pub volume: Value,
}

/// Moves `container` (an engine container as [`super::backup::engine_container`] makes it,
/// with `args` for this binary) onto `mysql_image`: it runs the copied binary, with the
/// image's `mysqlbinlog` and `mysql` as its tool flags, and mounts the copy read-only.
/// Answers the init container and volume the pod adds.
pub fn on_mysql_image(
    container: &mut Value,
    operator_image: &str,
    mysql_image: &str,
    spec: &BackupSpec,
) -> OnMysqlImage {
    container["image"] = json!(mysql_image);
    // The MySQL image's entrypoint would start mysqld: name the program explicitly.
    container["command"] = json!([COPIED_BINARY]);
    if let Some(args) = container.get_mut("args").and_then(Value::as_array_mut) {
        args.extend(
            ["--mysqlbinlog", MYSQLBINLOG, "--mysql", MYSQL]
                .iter()
                .map(|s| json!(s)),
        );
    }
    let mount = json!({"name": VOLUME, "mountPath": TOOLS_DIR, "readOnly": true});
    match container
        .get_mut("volumeMounts")
        .and_then(Value::as_array_mut)
    {
        Some(mounts) => mounts.push(mount),
        None => container["volumeMounts"] = json!([mount]),
    }
    let init = json!({
        "name": COPY_CONTAINER,
        "image": operator_image,
        "args": ["copy-self", "--to", COPIED_BINARY],
        "securityContext": super::backup::container_context(spec),
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"memory": "64Mi"}},
        "volumeMounts": [{"name": VOLUME, "mountPath": TOOLS_DIR}],
    });
    // Memory-backed would count the binary against the pod's memory; disk is enough.
    let volume = json!({"name": VOLUME, "emptyDir": {"sizeLimit": "256Mi"}});
    OnMysqlImage { init, volume }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_container_runs_the_copy_on_the_mysql_image_with_its_tools() {
        let spec = BackupSpec::default();
        let mut container = json!({"name": "restore", "image": "op@sha256:1",
            "args": ["backup", "restore"], "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}]});
        let pieces = on_mysql_image(&mut container, "op@sha256:1", "mysql:9.7.4", &spec);
        assert_eq!(container["image"], "mysql:9.7.4");
        assert_eq!(container["command"], json!([COPIED_BINARY]));
        assert_eq!(
            container["args"],
            json!([
                "backup",
                "restore",
                "--mysqlbinlog",
                MYSQLBINLOG,
                "--mysql",
                MYSQL
            ])
        );
        assert_eq!(container["volumeMounts"][1]["mountPath"], TOOLS_DIR);
        assert_eq!(container["volumeMounts"][1]["readOnly"], true);
        assert_eq!(pieces.init["image"], "op@sha256:1");
        assert_eq!(
            pieces.init["args"],
            json!(["copy-self", "--to", COPIED_BINARY])
        );
        assert_eq!(
            pieces.init["volumeMounts"][0]["name"],
            pieces.volume["name"]
        );
        assert!(
            pieces.init.get("command").is_none(),
            "the operator image's entrypoint runs"
        );
    }
}
