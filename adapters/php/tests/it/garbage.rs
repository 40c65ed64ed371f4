//! Garbage in: every input gives `Ok` or `Err`, never a panic, never a
//! large allocation (declared lengths are checked against the input before
//! anything is reserved), and an accepted input encodes back to itself.

use std::time::{Duration, Instant};

use proptest::prelude::*;
use session_bridge_php::{DecodeProblem, Error, Format, Limits, PhpSession, unserialize};

use crate::codec::{FORMATS, php_fixture};

/// Decode in every format (and as one value); whatever is accepted must
/// encode back to the input.
fn check(input: &[u8]) {
    let limits = Limits::default();
    for format in FORMATS {
        if let Ok(s) = PhpSession::decode(format, input, &limits) {
            assert_eq!(
                s.encode().unwrap(),
                input,
                "{format}: {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }
    let _ = unserialize(input, &limits);
}

fn problem(format: Format, input: &[u8], limits: &Limits) -> DecodeProblem {
    let started = Instant::now();
    let err = PhpSession::decode(format, input, limits).unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2), "slow rejection");
    match err {
        Error::Decode { problem, .. } => problem,
        other => panic!("not a decode error: {other}"),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn random_bytes(input in prop::collection::vec(any::<u8>(), 0..512)) {
        check(&input);
    }

    /// Bytes drawn from the format's own alphabet get much further in.
    #[test]
    fn random_php_like_text(input in prop::collection::vec(
        prop::sample::select(b"aisdbNOCErR:;{}\"|0123456789-.E".to_vec()), 0..256)) {
        check(&input);
    }

    #[test]
    fn mutated_php_sessions(at in any::<prop::sample::Index>(), byte in any::<u8>(), cut in any::<bool>()) {
        for format in FORMATS {
            let mut input = php_fixture_cached(format);
            let i = at.index(input.len());
            if cut { input.remove(i); } else { input[i] = byte; }
            check(&input);
        }
    }
}

fn php_fixture_cached(format: Format) -> Vec<u8> {
    use std::sync::OnceLock;
    static CACHE: OnceLock<Vec<(Format, Vec<u8>)>> = OnceLock::new();
    let all = CACHE.get_or_init(|| FORMATS.iter().map(|&f| (f, php_fixture(f, true))).collect());
    all.iter()
        .find(|(f, _)| *f == format)
        .map(|(_, b)| b.clone())
        .unwrap()
}

#[test]
fn every_truncation_of_php_output() {
    for format in FORMATS {
        let full = php_fixture_cached(format);
        let mut rejected = 0;
        for end in 0..full.len() {
            let prefix = &full[..end];
            match PhpSession::decode(format, prefix, &Limits::default()) {
                // Only a cut between two keys is still a session.
                Ok(s) => assert_eq!(s.encode().unwrap(), prefix),
                Err(_) => rejected += 1,
            }
            let _ = unserialize(prefix, &Limits::default());
        }
        assert!(
            rejected > full.len() * 9 / 10,
            "{format}: {rejected} of {}",
            full.len()
        );
    }
}

#[test]
fn huge_declared_lengths() {
    let limits = Limits::default();
    for input in [
        &br#"a|s:99999999999:"x";"#[..],
        br#"a|s:18446744073709551615:"x";"#,
        br#"a|s:99999999999999999999999:"x";"#,
        b"a|a:2147483647:{",
        b"a|a:2147483647:{i:0;N;}",
        br#"a|O:999999999:"A":0:{}"#,
        br#"a|O:1:"A":2147483647:{}"#,
        br#"a|C:1:"A":99999999:{}"#,
        br#"a|E:4294967296:"A:B";"#,
        br#"a|S:99999999:"\61";"#,
        b"a|r:4294967297;",
        b"a|R:99999999999999999999;",
    ] {
        let p = problem(Format::Php, input, &limits);
        assert!(
            matches!(
                p,
                DecodeProblem::LengthOutOfRange | DecodeProblem::BadReference
            ),
            "{}: {p:?}",
            String::from_utf8_lossy(input)
        );
    }
    let p = problem(Format::PhpSerialize, b"a:2147483647:{", &limits);
    assert_eq!(p, DecodeProblem::LengthOutOfRange);
}

#[test]
fn deep_nesting() {
    const LEVELS: usize = 100_000;
    for (open, close) in [
        (&b"a:1:{i:0;"[..], &b"}"[..]),
        (br#"O:8:"stdClass":1:{s:1:"a";"#, b"}"),
        // Non-canonical counts take the raw path all the way down.
        (b"a:01:{i:0;", b"}"),
    ] {
        let mut input = b"k|".to_vec();
        for _ in 0..LEVELS {
            input.extend_from_slice(open);
        }
        input.extend_from_slice(b"N;");
        for _ in 0..LEVELS {
            input.extend_from_slice(close);
        }
        let limits = Limits {
            max_input: input.len(),
            ..Limits::default()
        };
        assert_eq!(
            problem(Format::Php, &input, &limits),
            DecodeProblem::TooDeep
        );
        // Even when asked for more, the depth stays capped.
        let limits = Limits {
            max_depth: usize::MAX,
            ..limits
        };
        assert_eq!(
            problem(Format::Php, &input, &limits),
            DecodeProblem::TooDeep
        );
    }
    // 64 levels (the default) are fine.
    let mut input = b"k|".to_vec();
    input.extend(b"a:1:{i:0;".repeat(64));
    input.extend_from_slice(b"N;");
    input.extend(b"}".repeat(64));
    assert!(PhpSession::decode(Format::Php, &input, &Limits::default()).is_ok());
}

#[test]
fn size_and_element_bounds() {
    let limits = Limits::default();
    let big = [b"k|s:1048576:\"".as_slice(), &vec![b'x'; 1 << 20], b"\";"].concat();
    assert!(matches!(
        problem(Format::Php, &big, &limits),
        DecodeProblem::TooLarge { .. }
    ));

    let n = 150_000;
    let many = [
        format!("k|a:{n}:{{").into_bytes(),
        b"i:0;N;".repeat(n),
        b"}".to_vec(),
    ]
    .concat();
    let roomy = Limits {
        max_input: many.len(),
        ..Limits::default()
    };
    assert_eq!(
        problem(Format::Php, &many, &roomy),
        DecodeProblem::TooManyElements
    );
    let fewer = Limits {
        max_elements: 10,
        ..Limits::default()
    };
    assert_eq!(
        problem(
            Format::Php,
            b"k|a:11:{i:0;N;i:1;N;i:2;N;i:3;N;i:4;N;i:5;N;i:6;N;i:7;N;i:8;N;i:9;N;i:10;N;}",
            &fewer
        ),
        DecodeProblem::TooManyElements
    );
}

#[test]
fn malformed_sessions() {
    let limits = Limits::default();
    for (format, input) in [
        (Format::Php, &b"no bar here"[..]),
        (Format::Php, b"a|i:1;trailing"),
        (Format::Php, b"a|b:2;"),
        (Format::Php, b"a|r:0;"),
        (Format::Php, b"a|r:5;"),
        (Format::Php, b"a|R:1;"),
        (Format::Php, br#"a|E:3:"abc";"#),
        (Format::Php, b"a|x:1;"),
        (Format::Php, b"a|a:1:{d:1.5;N;}"),
        (Format::PhpBinary, b"\x81ai:1;"),
        (Format::PhpBinary, b"\x05ab"),
        (Format::PhpSerialize, b"a:0:{}x"),
        (Format::PhpSerialize, b"i:1;"),
        (Format::PhpSerialize, b"a:1:{i:01;N;}"),
    ] {
        assert!(
            PhpSession::decode(format, input, &limits).is_err(),
            "{format}: {}",
            String::from_utf8_lossy(input)
        );
    }
}

/// Found by the mutation test: a reference number with a leading zero (PHP
/// reads it, never writes it) must be refused or come back byte for byte.
#[test]
fn non_canonical_reference_numbers_never_change_on_the_way_back() {
    for input in [
        &b"a|i:1;b|R:01;"[..],
        b"a|i:1;b|r:01;",
        b"a|a:1:{i:0;i:1;}b|R:002;",
    ] {
        check(input);
    }
}
