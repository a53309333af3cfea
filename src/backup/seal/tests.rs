use std::io::{Read, Write};
use std::sync::OnceLock;

use proptest::prelude::*;

use super::*;

const PASS: &[u8] = b"correct horse battery staple";
const LOG2: u8 = MIN_CHUNK_LOG2;
const CHUNK: usize = 1 << LOG2;
const FULL: usize = CHUNK + TAG_LEN;

fn options() -> SealOptions {
    SealOptions {
        kdf: KdfParams::insecure_fast_for_tests(),
        chunk_log2: LOG2,
    }
}

fn master() -> &'static MasterKey {
    static MASTER: OnceLock<MasterKey> = OnceLock::new();
    MASTER.get_or_init(|| MasterKey::generate(PASS, KdfParams::insecure_fast_for_tests()).unwrap())
}

fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| u8::try_from(i * 31 % 251).unwrap())
        .collect()
}

fn seal(data: &[u8]) -> Vec<u8> {
    let mut s = Sealer::with_master(Vec::new(), master(), LOG2).unwrap();
    s.write_all(data).unwrap();
    s.finish().unwrap()
}

fn open(sealed: &[u8]) -> Result<Vec<u8>, SealError> {
    let mut o = Opener::new(sealed, PASS)?;
    let mut out = Vec::new();
    o.read_to_end(&mut out)?;
    Ok(out)
}

/// Chunk i's byte range in a sealed artifact of `len` plaintext bytes.
fn chunk_range(i: usize) -> std::ops::Range<usize> {
    HEADER_LEN + i * FULL..HEADER_LEN + (i + 1) * FULL
}

#[test]
fn round_trips_edge_sizes() {
    for len in [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK, 5 * CHUNK + 17] {
        let data = plaintext(len);
        let sealed = seal(&data);
        assert_eq!(open(&sealed).unwrap(), data, "size {len}");
        let chunks = len.div_ceil(CHUNK).max(1);
        assert_eq!(
            sealed.len(),
            HEADER_LEN + len + chunks * TAG_LEN,
            "size {len}"
        );
    }
}

#[test]
fn passphrase_sealer_uses_its_own_salt_and_opens() {
    let mut s = Sealer::new(Vec::new(), PASS, options()).unwrap();
    s.write_all(b"hello").unwrap();
    let sealed = s.finish().unwrap();
    assert_ne!(Header::decode(&sealed).unwrap().salt, master().salt());
    assert_eq!(open(&sealed).unwrap(), b"hello");
}

#[test]
fn strong_params_are_the_default() {
    let d = SealOptions::default();
    assert_eq!(d.kdf, KdfParams::STRONG);
    assert_eq!(
        (d.kdf.memory_kib, d.kdf.passes, d.kdf.lanes),
        (64 * 1024, 3, 1)
    );
    assert_eq!(d.chunk_log2, DEFAULT_CHUNK_LOG2);
}

#[test]
fn master_key_opener_refuses_another_salt() {
    let other = MasterKey::generate(PASS, KdfParams::insecure_fast_for_tests()).unwrap();
    let sealed = seal(b"x");
    assert!(matches!(
        Opener::with_master(&sealed[..], &other).unwrap_err(),
        SealError::BadHeader { .. }
    ));
    let mut o = Opener::with_master(&sealed[..], master()).unwrap();
    let mut out = Vec::new();
    o.read_to_end(&mut out).unwrap();
    assert_eq!(out, b"x");
}

#[test]
fn an_empty_passphrase_is_refused_for_sealing() {
    assert!(matches!(
        Sealer::new(Vec::new(), b"", options()).unwrap_err(),
        SealError::EmptyPassphrase
    ));
}

#[test]
fn wrong_passphrase_is_reported_as_such() {
    let sealed = seal(b"secret");
    assert!(matches!(
        Opener::new(&sealed[..], b"wrong").unwrap_err(),
        SealError::WrongPassphrase
    ));
}

#[test]
fn dropped_sealer_is_truncated() {
    let mut out = Vec::new();
    {
        let mut s = Sealer::with_master(&mut out, master(), LOG2).unwrap();
        s.write_all(&plaintext(3 * CHUNK + 5)).unwrap();
    }
    assert!(matches!(open(&out), Err(SealError::Truncated { .. })));
}

#[test]
fn truncation_at_every_chunk_boundary_is_truncated() {
    let sealed = seal(&plaintext(4 * CHUNK + 9));
    for i in 0..=4 {
        let cut = HEADER_LEN + i * FULL;
        match open(&sealed[..cut]) {
            Err(SealError::Truncated { chunks }) => assert_eq!(chunks, i as u64),
            other => panic!("cut at chunk {i}: {other:?}"),
        }
    }
}

#[test]
fn truncation_mid_chunk_fails() {
    let sealed = seal(&plaintext(3 * CHUNK + 9));
    for cut in HEADER_LEN + 1..sealed.len() {
        if (cut - HEADER_LEN).is_multiple_of(FULL) {
            continue;
        }
        match open(&sealed[..cut]) {
            Err(SealError::Tampered { .. } | SealError::Truncated { .. }) => {}
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
}

#[test]
fn swapped_chunks_are_tampered() {
    let mut sealed = seal(&plaintext(3 * CHUNK + 9));
    let (a, b) = (chunk_range(0), chunk_range(1));
    let first = sealed[a.clone()].to_vec();
    let second = sealed[b.clone()].to_vec();
    sealed[a].copy_from_slice(&second);
    sealed[b].copy_from_slice(&first);
    assert!(matches!(
        open(&sealed),
        Err(SealError::Tampered { chunk: 0 })
    ));
}

#[test]
fn dropped_middle_chunk_is_tampered() {
    let mut sealed = seal(&plaintext(3 * CHUNK + 9));
    sealed.drain(chunk_range(1));
    assert!(matches!(
        open(&sealed),
        Err(SealError::Tampered { chunk: 1 })
    ));
}

#[test]
fn no_plaintext_is_released_before_the_failing_chunk_verifies() {
    let mut sealed = seal(&plaintext(2 * CHUNK + 9));
    let last = sealed.len() - 1;
    sealed[last] ^= 1;
    let mut o = Opener::new(&sealed[..], PASS).unwrap();
    let mut out = Vec::new();
    let err = SealError::from(o.read_to_end(&mut out).unwrap_err());
    assert!(matches!(err, SealError::Tampered { chunk: 2 }));
    // Only the two verified chunks came out, and the opener stays failed.
    assert_eq!(out, plaintext(2 * CHUNK));
    let again = SealError::from(o.read(&mut [0u8; 8]).unwrap_err());
    assert!(matches!(again, SealError::Tampered { chunk: 2 }));
}

#[test]
fn verify_to_end_counts_plaintext_and_reports_failures() {
    let sealed = seal(&plaintext(2 * CHUNK + 9));
    let o = Opener::new(&sealed[..], PASS).unwrap();
    assert_eq!(o.verify_to_end().unwrap(), (2 * CHUNK + 9) as u64);
    let o = Opener::new(&sealed[..sealed.len() - 1], PASS).unwrap();
    assert!(matches!(
        o.verify_to_end(),
        Err(SealError::Tampered { chunk: 2 })
    ));
}

#[test]
fn trailing_garbage_is_trailing_data() {
    for len in [0, 1, CHUNK - 1, CHUNK, 3 * CHUNK + 9] {
        for extra in [1, 15, 16, 17, CHUNK, 3 * CHUNK] {
            let mut sealed = seal(&plaintext(len));
            sealed.extend(std::iter::repeat_n(0xA5, extra));
            match open(&sealed) {
                Err(SealError::TrailingData { .. }) => {}
                other => panic!("size {len} + {extra}: {other:?}"),
            }
        }
    }
}

#[test]
fn header_edits_name_the_check() {
    let sealed = seal(&plaintext(CHUNK + 3));
    let edit = |at: usize, value: u8| {
        let mut s = sealed.clone();
        s[at] = value;
        open(&s).unwrap_err()
    };
    assert!(matches!(edit(0, b'X'), SealError::NotEncrypted));
    assert!(matches!(
        edit(4, 2),
        SealError::UnsupportedVersion { version: 2, .. }
    ));
    assert!(matches!(edit(5, 9), SealError::BadHeader { .. }));
    // Memory 2^24+ KiB is beyond the bound a reader accepts.
    assert!(matches!(edit(6, 0xFF), SealError::BadHeader { .. }));
    assert!(matches!(edit(17, 0), SealError::BadHeader { .. }));
    assert!(matches!(edit(41, 40), SealError::BadHeader { .. }));
    // Salt and KDF cost edits derive another key: indistinguishable from a wrong passphrase.
    assert!(matches!(
        edit(20, sealed[20] ^ 1),
        SealError::WrongPassphrase
    ));
    assert!(matches!(edit(9, sealed[9] ^ 1), SealError::WrongPassphrase));
    assert!(matches!(
        edit(50, sealed[50] ^ 1),
        SealError::WrongPassphrase
    ));
    // The nonce prefix and chunk size are bound by every chunk's AAD.
    assert!(matches!(
        edit(36, sealed[36] ^ 1),
        SealError::Tampered { chunk: 0 }
    ));
    assert!(matches!(
        edit(41, LOG2 + 1),
        SealError::Tampered { chunk: 0 }
    ));
}

#[test]
fn short_and_foreign_inputs_are_named() {
    assert!(matches!(open(b""), Err(SealError::NotEncrypted)));
    assert!(matches!(
        open(b"-- MySQL dump"),
        Err(SealError::NotEncrypted)
    ));
    assert!(matches!(open(b"BRV"), Err(SealError::BadHeader { .. })));
    let sealed = seal(b"");
    assert!(matches!(
        open(&sealed[..HEADER_LEN - 1]),
        Err(SealError::BadHeader { .. })
    ));
    assert!(matches!(
        open(&sealed[..HEADER_LEN]),
        Err(SealError::Truncated { chunks: 0 })
    ));
}

#[test]
fn errors_carry_categories_and_survive_io() {
    use crate::error::{Categorized, Category};
    assert_eq!(SealError::WrongPassphrase.category(), Category::Config);
    assert_eq!(
        SealError::Tampered { chunk: 1 }.category(),
        Category::InvalidInput
    );
    let io: std::io::Error = SealError::Truncated { chunks: 3 }.into();
    assert!(matches!(
        SealError::from(io),
        SealError::Truncated { chunks: 3 }
    ));
    let raw = std::io::Error::other("disk gone");
    let e = SealError::from(raw);
    assert_eq!(e.category(), Category::Unavailable);
    assert!(e.to_string().contains("disk gone"));
}

#[test]
fn chunk_api_rejects_oversized_chunks_and_wrong_flags() {
    let key = SealKey::create(master(), LOG2).unwrap();
    let mut big = vec![0u8; CHUNK + 1];
    assert!(matches!(
        key.seal_chunk(0, false, &mut big),
        Err(SealError::Misuse { .. })
    ));
    let mut c = b"abc".to_vec();
    key.seal_chunk(7, true, &mut c).unwrap();
    let mut wrong_flag = c.clone();
    assert!(matches!(
        key.open_chunk(7, false, &mut wrong_flag),
        Err(SealError::Tampered { chunk: 7 })
    ));
    assert!(wrong_flag.is_empty());
    let mut wrong_index = c.clone();
    assert!(matches!(
        key.open_chunk(6, true, &mut wrong_index),
        Err(SealError::Tampered { chunk: 6 })
    ));
    key.open_chunk(7, true, &mut c).unwrap();
    assert_eq!(c, b"abc");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trips_any_size_and_write_split(
        len in 0usize..6 * CHUNK,
        splits in proptest::collection::vec(1usize..3 * CHUNK, 1..8),
        read_size in 1usize..2 * CHUNK,
    ) {
        let data = plaintext(len);
        let mut s = Sealer::with_master(Vec::new(), master(), LOG2).unwrap();
        let mut rest = &data[..];
        let mut i = 0;
        while !rest.is_empty() {
            let n = splits[i % splits.len()].min(rest.len());
            s.write_all(&rest[..n]).unwrap();
            s.flush().unwrap();
            rest = &rest[n..];
            i += 1;
        }
        let sealed = s.finish().unwrap();
        let mut o = Opener::new(&sealed[..], PASS).unwrap();
        let mut out = Vec::new();
        let mut buf = vec![0u8; read_size];
        loop {
            let n = o.read(&mut buf).unwrap();
            if n == 0 { break; }
            out.extend_from_slice(&buf[..n]);
        }
        prop_assert_eq!(out, data);
    }

    #[test]
    fn a_flipped_bit_anywhere_is_an_error(len in 0usize..4 * CHUNK, at in any::<prop::sample::Index>(), bit in 0u8..8) {
        let data = plaintext(len);
        let mut sealed = seal(&data);
        let at = at.index(sealed.len());
        sealed[at] ^= 1 << bit;
        let err = open(&sealed).unwrap_err();
        let expected = if at < HEADER_LEN {
            matches!(err, SealError::NotEncrypted | SealError::BadHeader { .. }
                | SealError::UnsupportedVersion { .. } | SealError::WrongPassphrase
                | SealError::Tampered { chunk: 0 })
        } else {
            matches!(err, SealError::Tampered { chunk } if chunk == ((at - HEADER_LEN) / FULL) as u64)
        };
        prop_assert!(expected, "flip at {}: {:?}", at, err);
    }

    #[test]
    fn arbitrary_bytes_never_panic(mut bytes in proptest::collection::vec(any::<u8>(), 0..4 * FULL), keep_header in any::<bool>()) {
        if keep_header {
            let sealed = seal(b"");
            bytes.splice(0..0, sealed[..HEADER_LEN].iter().copied());
        }
        // Never wrong plaintext: the only plaintext a random body could yield is none.
        match open(&bytes) {
            Ok(out) => prop_assert!(false, "random bytes opened to {} bytes", out.len()),
            Err(e) => {
                let internal = matches!(e, SealError::Io(_) | SealError::Poisoned | SealError::Misuse { .. });
                prop_assert!(!internal, "internal error on random input: {:?}", e);
            }
        }
    }
}

#[test]
fn strong_default_round_trips() {
    let mut s = Sealer::new(Vec::new(), PASS, SealOptions::default()).unwrap();
    s.write_all(b"strong").unwrap();
    let sealed = s.finish().unwrap();
    assert_eq!(Header::decode(&sealed).unwrap().kdf, KdfParams::STRONG);
    assert_eq!(open(&sealed).unwrap(), b"strong");
}

#[test]
fn tampering_at_the_default_chunk_size_is_reported_promptly() {
    let master = MasterKey::generate(PASS, KdfParams::insecure_fast_for_tests()).unwrap();
    let mut s = Sealer::with_master(Vec::new(), &master, DEFAULT_CHUNK_LOG2).unwrap();
    s.write_all(&plaintext(3 << DEFAULT_CHUNK_LOG2)).unwrap();
    let mut sealed = s.finish().unwrap();
    sealed[HEADER_LEN + 10] ^= 1;
    let started = std::time::Instant::now();
    let err = Opener::with_master(&sealed[..], &master)
        .unwrap()
        .verify_to_end()
        .unwrap_err();
    assert!(matches!(err, SealError::Tampered { chunk: 0 }));
    eprintln!("tamper verdict in {:?}", started.elapsed());
}

#[test]
fn an_edited_chunk_size_cannot_make_the_failure_path_run_for_hours() {
    let master = MasterKey::generate(PASS, KdfParams::insecure_fast_for_tests()).unwrap();
    let mut s = Sealer::with_master(Vec::new(), &master, DEFAULT_CHUNK_LOG2).unwrap();
    s.write_all(&plaintext((1 << MAX_CHUNK_LOG2) + 5)).unwrap();
    let mut sealed = s.finish().unwrap();
    sealed[41] = MAX_CHUNK_LOG2;
    let started = std::time::Instant::now();
    let err = Opener::with_master(&sealed[..], &master)
        .unwrap()
        .verify_to_end()
        .unwrap_err();
    assert!(matches!(err, SealError::Tampered { chunk: 0 }));
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
    eprintln!("verdict in {:?}", started.elapsed());
}
