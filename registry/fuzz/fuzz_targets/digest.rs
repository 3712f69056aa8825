//! Digests: `digest::parse` (the registry's gate for every `<digest>` in a path or query) and
//! the hashers behind it.
//!
//! Invariants: an accepted digest is `sha256:` + 64 or `sha512:` + 128 lowercase hex digits,
//! prints back to the input exactly and parses again to the same value; hashing with its
//! algorithm yields a digest of the same algorithm that parses too.
#![no_main]

use berth_registry::digest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(d) = digest::parse(s) {
        assert_eq!(d.to_string(), s);
        let (alg, hex) = s.split_once(':').expect("algorithm:hex");
        let want = match alg {
            "sha256" => 64,
            "sha512" => 128,
            other => panic!("accepted algorithm {other:?}"),
        };
        assert_eq!(hex.len(), want, "{s:?}");
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_eq!(digest::parse(&d.to_string()).as_ref(), Ok(&d));
        let computed = digest::of_bytes_like(&d, data);
        assert_eq!(computed.algorithm(), d.algorithm());
        assert_eq!(digest::parse(computed.as_ref()).as_ref(), Ok(&computed));
    }
    if let Some(mut h) = digest::Hasher::from_name(s) {
        assert!(digest::SUPPORTED.contains(&h.algorithm()));
        h.update(data);
        let d = h.finish();
        assert!(digest::parse(d.as_ref()).is_ok());
    }
});
