//! The last-message preview: thinking blocks removed, whitespace collapsed, cut to 100
//! characters. Works on code points (Python's view of a string) so lone surrogates survive.

const LIMIT: usize = 100;

/// Python's `str.split()` whitespace.
fn is_py_space(cp: u32) -> bool {
    matches!(cp, 0x09..=0x0d | 0x1c..=0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000)
}

const TAGS: [(&str, &str); 2] = [("<think>", "</think>"), ("<thinking>", "</thinking>")];

/// The content with `<think>…</think>` and `<thinking>…</thinking>` blocks removed, and an
/// unclosed opening tag with everything after it. Streams: memory stays constant however long
/// the message.
struct Visible<I> {
    src: I,
    ahead: std::collections::VecDeque<u32>,
}

impl<I: Iterator<Item = u32>> Visible<I> {
    fn fill(&mut self, n: usize) -> bool {
        while self.ahead.len() < n {
            match self.src.next() {
                Some(c) => self.ahead.push_back(c),
                None => return false,
            }
        }
        true
    }

    fn at(&mut self, tag: &str) -> bool {
        self.fill(tag.chars().count()) && self.ahead.iter().zip(tag.chars()).all(|(&a, t)| a == t as u32)
    }
}

impl<I: Iterator<Item = u32>> Iterator for Visible<I> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        'outer: loop {
            if !self.fill(1) {
                return None;
            }
            if self.ahead[0] == '<' as u32 {
                for (open, close) in TAGS {
                    if self.at(open) {
                        self.ahead.drain(..open.len());
                        while !self.at(close) {
                            if !self.fill(1) {
                                self.ahead.clear();
                                return None; // unclosed: nothing after it shows
                            }
                            self.ahead.pop_front();
                        }
                        self.ahead.drain(..close.len());
                        continue 'outer;
                    }
                }
            }
            return self.ahead.pop_front();
        }
    }
}

/// The preview of a message's content, or None when nothing is left: words joined by single
/// spaces, cut to 100 characters plus `...`.
pub fn preview(content: impl Iterator<Item = u32>) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::with_capacity(LIMIT + 3);
    let mut space = false;
    let mut more = false;
    for c in (Visible { src: content, ahead: Default::default() }) {
        if is_py_space(c) {
            space = !out.is_empty();
            continue;
        }
        for c in [space.then_some(' ' as u32), Some(c)].into_iter().flatten() {
            if out.len() == LIMIT {
                more = true;
                break;
            }
            out.push(c);
        }
        space = false;
        if more {
            break;
        }
    }
    if out.is_empty() {
        return None;
    }
    if more {
        out.extend("...".chars().map(|c| c as u32));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        let cps: Vec<u32> = s.chars().map(|c| c as u32).collect();
        preview(cps.into_iter()).map(|v| v.into_iter().map(|c| char::from_u32(c).unwrap()).collect())
    }

    #[test]
    fn strips_thinking_and_collapses_space() {
        assert_eq!(p("Hello <think>hidden</think> world").as_deref(), Some("Hello world"));
        assert_eq!(p("a <thinking>x</thinking>b <think>never closed"), Some("a b".into()));
        assert_eq!(p("<thinking>only thoughts"), None);
        assert_eq!(p(" \u{1c}x\u{a0}y\u{3000}z\u{200b}w\t\n"), Some("x y z\u{200b}w".into()));
    }

    #[test]
    fn cuts_at_a_hundred_code_points() {
        let long = "é".repeat(150);
        let got = p(&long).unwrap();
        assert_eq!(got.chars().count(), 103);
        assert!(got.ends_with("..."));
        assert_eq!(p(&"x".repeat(100)).unwrap().len(), 100);
        assert_eq!(p(&format!("{} {}", "x".repeat(99), "y")).unwrap().len(), 103);
    }
}
