//! The validating scanner against serde_json: a text is valid JSON for one exactly when it is
//! for the other, where the two are meant to agree (serde_json refuses lone surrogates, NaN,
//! Infinity, and numbers past f64's range, which Python accepts, and nests less deeply). Strings are the interesting part:
//! the bytes are also wrapped in quotes, so the SIMD string scanner sees every kind of block.
#![no_main]

use convmeta::json::Scanner;
use libfuzzer_sys::fuzz_target;

fn ours(text: &[u8]) -> bool {
    let mut sc = Scanner::new(text);
    sc.skip().is_ok() && sc.at_end()
}

fn theirs(text: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(text).is_ok()
}

fn comparable(text: &[u8]) -> bool {
    let lower = text.to_ascii_lowercase();
    let has = |s: &[u8]| lower.windows(s.len()).any(|w| w == s);
    let exponent = lower.windows(2).any(|w| w[0].is_ascii_digit() && w[1] == b'e');
    let huge = text.split(|c| !c.is_ascii_digit()).any(|digits| digits.len() > 300);
    !has(b"\\ud")
        && !has(b"nan")
        && !has(b"infinity")
        && !exponent
        && !huge
        && text.iter().filter(|&&c| c == b'[' || c == b'{').count() < 100
}

fuzz_target!(|data: &[u8]| {
    let quoted = [b"\"", data, b"\""].concat();
    for text in [data, &quoted] {
        if comparable(text) {
            assert_eq!(ours(text), theirs(text), "{:?}", String::from_utf8_lossy(text));
        } else {
            ours(text);
        }
    }
});
