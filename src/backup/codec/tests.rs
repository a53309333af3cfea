use super::*;
use crate::backup::seal::KdfParams;

fn sealed(passphrase: &[u8]) -> Codec {
    let master =
        MasterKey::generate(passphrase, KdfParams::insecure_fast_for_tests()).expect("derive");
    Codec::new(Protection::Sealed(Arc::new(master)))
}

fn rows(n: usize) -> Vec<u8> {
    (0..n)
        .flat_map(|i| format!("{i}\tname-{i}\t\\N\n").into_bytes())
        .collect()
}

#[test]
fn plain_and_sealed_round_trip() {
    let plain = rows(10_000);
    for codec in [Codec::new(Protection::Plain), sealed(b"pass")] {
        let (stored, record) = codec.encode("data/a/b/00000.tsv", &plain).expect("encode");
        assert_eq!(record.plain_bytes, plain.len() as u64);
        assert_eq!(record.stored_bytes, stored.len() as u64);
        assert!(
            stored.len() < plain.len() / 3,
            "compressed: {}",
            stored.len()
        );
        assert_eq!(codec.decode(&record, &stored).expect("decode"), plain);
    }
}

#[test]
fn an_empty_artifact_round_trips() {
    for codec in [Codec::new(Protection::Plain), sealed(b"pass")] {
        let (stored, record) = codec.encode("empty", b"").expect("encode");
        assert_eq!(codec.decode(&record, &stored).expect("decode"), b"");
    }
}

fn check_of(error: &ArtifactError) -> &'static str {
    match error {
        ArtifactError::Integrity { check, .. } => check,
        ArtifactError::WrongPassphrase { .. } => "passphrase",
        _ => "other",
    }
}

#[test]
fn every_kind_of_damage_is_named() {
    let codec = sealed(b"pass");
    let (stored, record) = codec.encode("k", &rows(50_000)).expect("encode");

    let mut flipped = stored.clone();
    flipped[stored.len() / 2] ^= 1;
    let error = codec.decode(&record, &flipped).expect_err("flipped");
    assert_eq!(check_of(&error), "digest", "{error}");

    // An attacker who can also rewrite the record (an unencrypted manifest) still cannot
    // get past the seal.
    let forged = StoredArtifact {
        sha256: sha256_hex(&flipped),
        ..record.clone()
    };
    let error = codec.decode(&forged, &flipped).expect_err("forged digest");
    assert_eq!(check_of(&error), "authentication", "{error}");

    let truncated = &stored[..stored.len() - 100];
    let forged = StoredArtifact {
        sha256: sha256_hex(truncated),
        stored_bytes: truncated.len() as u64,
        ..record.clone()
    };
    let error = codec.decode(&forged, truncated).expect_err("truncated");
    assert_eq!(check_of(&error), "authentication", "{error}");

    let error = codec.decode(&record, &stored[..10]).expect_err("short");
    assert_eq!(check_of(&error), "size", "{error}");

    let lying = StoredArtifact {
        plain_bytes: record.plain_bytes - 1,
        ..record.clone()
    };
    let error = codec.decode(&lying, &stored).expect_err("length");
    assert_eq!(check_of(&error), "size", "{error}");
}

#[test]
fn a_wrong_passphrase_is_told_apart_from_tampering() {
    let writer = sealed(b"right");
    let (stored, record) = writer.encode("k", &rows(100)).expect("encode");
    let Protection::Sealed(master) = &writer.protection else {
        unreachable!()
    };
    let wrong = MasterKey::derive(b"wrong", master.kdf(), master.salt()).expect("derive");
    let reader = Codec::new(Protection::Sealed(Arc::new(wrong)));
    let error = reader
        .decode(&record, &stored)
        .expect_err("wrong passphrase");
    assert_eq!(check_of(&error), "passphrase", "{error}");
}

#[test]
fn a_sealed_object_read_as_plain_fails_decompression() {
    let (stored, record) = sealed(b"p").encode("k", &rows(10)).expect("encode");
    let error = Codec::new(Protection::Plain)
        .decode(&record, &stored)
        .expect_err("plain reader");
    assert_eq!(check_of(&error), "decompression", "{error}");
}

mod fuzz {
    use proptest::prelude::*;

    use super::*;

    fn records() -> impl Strategy<Value = StoredArtifact> {
        (0u64..1 << 20, any::<bool>()).prop_map(|(plain_bytes, _)| StoredArtifact {
            key: "k".into(),
            plain_bytes,
            stored_bytes: 0,
            sha256: String::new(),
        })
    }

    proptest! {
        /// Whatever the store hands back, decoding fails with a named check or returns
        /// exactly the recorded length; it never panics and never inflates past it.
        #[test]
        fn decoding_hostile_objects_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..4096),
            record in records(),
            sealed_reader in any::<bool>(),
        ) {
            let record = StoredArtifact {
                stored_bytes: bytes.len() as u64,
                sha256: sha256_hex(&bytes),
                ..record
            };
            let codec = if sealed_reader {
                let master = MasterKey::derive(b"p", KdfParams::insecure_fast_for_tests(), [7; 16])
                    .expect("derive");
                Codec::new(Protection::Sealed(Arc::new(master)))
            } else {
                Codec::new(Protection::Plain)
            };
            if let Ok(plain) = codec.decode(&record, &bytes) {
                prop_assert_eq!(plain.len() as u64, record.plain_bytes);
            }
        }

        /// A valid zstd frame that inflates beyond the recorded size is refused, not read.
        #[test]
        fn a_decompression_bomb_is_cut_at_the_recorded_size(claimed in 0u64..1000) {
            let (stored, record) = Codec::new(Protection::Plain)
                .encode("bomb", &vec![0u8; 1 << 20])
                .expect("encode");
            let lying = StoredArtifact { plain_bytes: claimed, ..record };
            let error = Codec::new(Protection::Plain).decode(&lying, &stored).expect_err("bomb");
            prop_assert!(error.to_string().contains("size check failed"), "{}", error);
        }
    }
}
