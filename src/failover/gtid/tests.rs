use proptest::prelude::*;

use super::*;

const A: &str = "3e11fa47-71ca-11e1-9e33-c80aa9429562";
const B: &str = "8a94f357-aab4-11df-86ab-c80aa9429562";

fn set(text: &str) -> GtidSet {
    match GtidSet::parse(text) {
        Ok(s) => s,
        Err(e) => panic!("{text:?} should parse: {e}"),
    }
}

#[test]
fn parses_and_prints_canonical_forms() {
    let cases = [
        ("", ""),
        ("   \n ", ""),
        (&format!("{A}:1-5"), &format!("{A}:1-5") as &str),
        (&format!("{A}:1-5:7-9"), &format!("{A}:1-5:7-9")),
        (&format!("{A}:7-9:1-5:6"), &format!("{A}:1-9")),
        (&format!("{A}:3"), &format!("{A}:3")),
        (&format!("{B}:1-2,\n{A}:1-5"), &format!("{A}:1-5,{B}:1-2")),
        (&format!("{}:1-5", A.to_uppercase()), &format!("{A}:1-5")),
        (&format!("{A}:tag:1-5"), &format!("{A}:tag:1-5")),
        (
            &format!("{A}:zz:1:TAG_A:1-3:7,{A}:1-5"),
            &format!("{A}:1-5:tag_a:1-3:7:zz:1"),
        ),
        (&format!(" {A} : 1 - 5 ,\n\t{A}:6 , "), &format!("{A}:1-6")),
        (&format!("{A}:1-5,,{B}:9"), &format!("{A}:1-5,{B}:9")),
        (&format!("{A}:_x:1,{A}:_x:2"), &format!("{A}:_x:1-2")),
        (
            &format!("{A}:1-9223372036854775807"),
            &format!("{A}:1-9223372036854775807"),
        ),
    ];
    for (input, expected) in cases {
        assert_eq!(set(input).to_string(), expected, "input {input:?}");
    }
}

#[test]
fn rejects_malformed_sets_with_position() {
    let cases: &[(String, GtidErrorKind, usize)] = &[
        ("not-a-uuid:1".into(), GtidErrorKind::InvalidUuid, 0),
        (A.to_owned(), GtidErrorKind::MissingInterval, 36),
        (format!("{A}:"), GtidErrorKind::MissingInterval, 37),
        (format!("{A}:0"), GtidErrorKind::GnoOutOfRange, 37),
        (
            format!("{A}:9223372036854775808"),
            GtidErrorKind::GnoOutOfRange,
            37,
        ),
        (
            format!("{A}:99999999999999999999"),
            GtidErrorKind::GnoOutOfRange,
            37,
        ),
        (format!("{A}:5-3"), GtidErrorKind::ReversedInterval, 37),
        (format!("{A}:1-"), GtidErrorKind::UnexpectedCharacter, 39),
        (format!("{A}:tag"), GtidErrorKind::MissingInterval, 37),
        (format!("{A}:a:b:1"), GtidErrorKind::MissingInterval, 37),
        (
            format!("{A}:1:{}:2", "t".repeat(33)),
            GtidErrorKind::InvalidTag,
            39,
        ),
        (format!("{A}:1x"), GtidErrorKind::UnexpectedCharacter, 38),
        (
            format!("{A}:1 {B}:1"),
            GtidErrorKind::UnexpectedCharacter,
            39,
        ),
        (format!("{A}:-1"), GtidErrorKind::MissingInterval, 37),
        (format!("{A}:1;"), GtidErrorKind::UnexpectedCharacter, 38),
    ];
    for (input, kind, offset) in cases {
        match GtidSet::parse(input) {
            Ok(parsed) => panic!("{input:?} parsed as {parsed}"),
            Err(e) => {
                assert_eq!((e.kind, e.offset), (*kind, *offset), "{input:?}: {e}");
                assert!(!e.found.is_empty(), "{input:?}: error names no text");
            }
        }
    }
}

#[test]
fn error_message_names_offset_and_text() {
    let err = GtidSet::parse("xyz:1").err();
    let message = err.map(|e| e.to_string()).unwrap_or_default();
    assert!(message.contains("byte 0"), "{message}");
    assert!(message.contains("\"xyz\""), "{message}");
    assert_eq!(
        GtidSet::parse("").map(|s| s.is_empty()),
        Ok(true),
        "empty string is the empty set"
    );
}

#[test]
fn parse_error_is_invalid_input() {
    use crate::error::{Categorized, Category};
    let err = GtidSet::parse("x").err();
    assert_eq!(err.map(|e| e.category()), Some(Category::InvalidInput));
}

#[test]
fn subtract_matches_mysql_examples() {
    // Examples from the MySQL manual's GTID_SUBTRACT section.
    let a = set(&format!("{A}:21-57"));
    let b = set(&format!("{A}:20-25"));
    assert_eq!(a.subtract(&b).to_string(), format!("{A}:26-57"));
    let c = set(&format!("{A}:20-30"));
    assert_eq!(a.subtract(&c).to_string(), format!("{A}:31-57"));
    let tagged = set(&format!("{A}:1-5:t:1-5"));
    assert_eq!(
        tagged.subtract(&set(&format!("{A}:1-5"))).to_string(),
        format!("{A}:t:1-5")
    );
}

#[test]
fn contains_is_gtid_subset_reversed() {
    let big = set(&format!("{A}:1-10,{B}:1-3"));
    assert!(big.contains(&set(&format!("{A}:2-4:7"))));
    assert!(big.contains(&GtidSet::new()));
    assert!(!big.contains(&set(&format!("{A}:9-11"))));
    assert!(
        !big.contains(&set(&format!("{A}:t:1"))),
        "tags are separate sequences"
    );
    assert!(GtidSet::new().contains(&GtidSet::new()));
}

#[test]
fn count_and_insert() {
    let mut s = set(&format!("{A}:1-5:7,{B}:t:1-2"));
    assert_eq!(s.count(), 8);
    assert_eq!(s.insert(A, None, 6), Ok(()));
    assert_eq!(s.to_string(), format!("{A}:1-7,{B}:t:1-2"));
    assert_eq!(s.insert(B, Some("T"), 3), Ok(()));
    assert_eq!(s.count(), 10);
    assert_eq!(
        s.insert(A, None, 0).map_err(|e| e.kind),
        Err(GtidErrorKind::GnoOutOfRange)
    );
    assert_eq!(
        s.insert("nope", None, 1).map_err(|e| e.kind),
        Err(GtidErrorKind::InvalidUuid)
    );
    assert_eq!(
        s.insert(A, Some("9x"), 1).map_err(|e| e.kind),
        Err(GtidErrorKind::InvalidTag)
    );
    let sources: Vec<_> = s
        .sources()
        .map(|(u, t)| (u.to_string(), t.map(str::to_owned)))
        .collect();
    assert_eq!(
        sources,
        vec![(A.to_owned(), None), (B.to_owned(), Some("t".to_owned()))]
    );
}

#[test]
fn without_uuid_drops_every_tag_of_that_server() {
    let s = set(&format!("{A}:1-5:t:1,{B}:1-2"));
    let a = Uuid::parse(A).expect("uuid");
    assert_eq!(s.without_uuid(a), set(&format!("{B}:1-2")));
    assert_eq!(s.last_gno(a, None), Some(5));
}

#[test]
fn insert_out_of_order_keeps_normal_form() {
    let mut s = GtidSet::new();
    for gno in [5, 1, 3, 2, 4, 9] {
        assert_eq!(s.insert(A, None, gno), Ok(()));
    }
    assert_eq!(s, set(&format!("{A}:1-5:9")));
}

#[test]
fn serde_uses_the_printed_string() {
    let s = set(&format!("{B}:1-2,{A}:3"));
    let json = serde_json::to_string(&s).unwrap_or_default();
    assert_eq!(json, format!("\"{A}:3,{B}:1-2\""));
    let back: Result<GtidSet, _> = serde_json::from_str(&json);
    assert_eq!(back.ok(), Some(s));
    assert!(serde_json::from_str::<GtidSet>("\"bad\"").is_err());
}

// ---- property tests -------------------------------------------------------------------

const UUIDS: [&str; 3] = [A, B, "00000000-0000-0000-0000-000000000001"];
const TAGS: [Option<&str>; 3] = [None, Some("a"), Some("zeta")];

fn arb_set() -> impl Strategy<Value = GtidSet> {
    prop::collection::vec((0..3usize, 0..3usize, 1..40u64, 0..6u64), 0..12).prop_map(|parts| {
        let mut s = GtidSet::new();
        for (u, t, start, len) in parts {
            let uuid = Uuid::parse(UUIDS[u]);
            let tag = TAGS[t].and_then(Tag::parse);
            if let Some(uuid) = uuid {
                let _ = s.insert_range(uuid, tag, start, start + len);
            }
        }
        s
    })
}

proptest! {
    #[test]
    fn print_parse_round_trip(a in arb_set()) {
        let printed = a.to_string();
        prop_assert_eq!(GtidSet::parse(&printed), Ok(a.clone()));
        // Normalizing is idempotent: printing the reparsed set gives the same text.
        prop_assert_eq!(set(&printed).to_string(), printed);
    }

    #[test]
    fn union_laws(a in arb_set(), b in arb_set()) {
        let u = a.union(&b);
        prop_assert!(u.contains(&a));
        prop_assert!(u.contains(&b));
        prop_assert_eq!(&u, &b.union(&a));
        prop_assert_eq!(u.count(), a.count() + b.subtract(&a).count());
    }

    #[test]
    fn subtract_laws(a in arb_set(), b in arb_set()) {
        let d = a.subtract(&b);
        prop_assert!(a.contains(&d));
        prop_assert!(d.intersect(&b).is_empty());
        // Whatever was removed came from b: a = (a-b) ∪ (a∩b).
        prop_assert_eq!(d.union(&a.intersect(&b)), a.clone());
        prop_assert_eq!(a.subtract(&a), GtidSet::new());
        prop_assert_eq!(b.contains(&a), d.is_empty());
    }

    #[test]
    fn contains_is_a_partial_order(a in arb_set(), b in arb_set(), c in arb_set()) {
        prop_assert!(a.contains(&a));
        if a.contains(&b) && b.contains(&a) {
            prop_assert_eq!(&a, &b);
        }
        if a.contains(&b) && b.contains(&c) {
            prop_assert!(a.contains(&c));
        }
    }

    #[test]
    fn parse_never_panics(text in "[0-9a-fA-F:,\\- tag_\n]{0,80}") {
        let _ = GtidSet::parse(&text);
    }
}
