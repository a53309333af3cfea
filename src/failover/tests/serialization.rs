//! Status JSON field names and persisted-state round trips.

use super::*;

#[test]
fn status_json_uses_the_published_field_names() {
    let mut h = after_failover();
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let d = h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let json = serde_json::to_value(&d.status).expect("json");
    assert_eq!(json["activeSite"], "pdx");
    let iad = &json["sites"][0];
    for field in [
        "name",
        "state",
        "readOnly",
        "gtidExecuted",
        "replicating",
        "secondsBehindSource",
        "divergentGtid",
        "divergentTransactionCount",
        "recoveryState",
        "sourceConvergence",
    ] {
        assert!(iad.get(field).is_some(), "missing {field} in {iad}");
    }
    assert_eq!(iad["state"], "read-only");
    assert_eq!(iad["recoveryState"], "RecoveryBlocked");
    assert_eq!(iad["divergentGtid"], g("iad:11-12").to_string());
    assert_eq!(json["lastFailover"]["target"], "pdx");
    assert_eq!(json["conditions"][0]["type"], "Ready");
}

#[test]
fn engine_state_round_trips_through_json() {
    let mut h = after_failover();
    h.poll(vec![
        fenced("iad", "iad:1-12"),
        writable("pdx", "iad:1-10,pdx:1-3"),
    ]);
    let json = serde_json::to_string(&h.state).expect("serialize");
    let back: EngineState = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, h.state);
}
