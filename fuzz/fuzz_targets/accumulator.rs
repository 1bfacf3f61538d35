//! Arbitrary bytes, cut at an arbitrary point: feeding the lines before the cut, storing the
//! state (serialized, as the index stores it), resuming and feeding the rest must end exactly
//! where feeding everything at once ends. Also: nothing panics on any input.
#![no_main]

use convmeta::format::gptme::Accumulator;
use libfuzzer_sys::fuzz_target;

/// Complete lines of `bytes[from..]` with their offsets.
fn lines(bytes: &[u8], from: usize, to: usize) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = from;
    for (i, &b) in bytes[from..to].iter().enumerate() {
        if b == b'\n' {
            out.push((start, from + i));
            start = from + i + 1;
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&cut, bytes)) = data.split_first() else { return };
    let read = |at: u64, len: usize| bytes.get(at as usize..at as usize + len).map(<[u8]>::to_vec);

    let mut whole = Accumulator::default();
    for (a, b) in lines(bytes, 0, bytes.len()) {
        whole.feed(&bytes[a..b], a as u64);
    }
    whole.settle(read);

    // Cut at a line boundary near `cut`, as the scanner resumes after complete lines only.
    let all = lines(bytes, 0, bytes.len());
    let split = if all.is_empty() { 0 } else { all[cut as usize % all.len()].1 + 1 };
    let mut first = Accumulator::default();
    for (a, b) in lines(bytes, 0, split) {
        first.feed(&bytes[a..b], a as u64);
    }
    first.settle(read);
    let stored = serde_json::to_string(&first).unwrap();
    let mut resumed: Accumulator = serde_json::from_str(&stored).unwrap();
    for (a, b) in lines(bytes, split, bytes.len()) {
        resumed.feed(&bytes[a..b], a as u64);
    }
    resumed.settle(read);
    assert_eq!(serde_json::to_string(&whole).unwrap(), serde_json::to_string(&resumed).unwrap());
});
