//! The last-message preview: thinking blocks removed, whitespace collapsed, cut to 100
//! characters. Works on code points (Python's view of a string) so lone surrogates survive.

const LIMIT: usize = 100;

/// Python's `str.split()` and `str.strip()` whitespace.
pub fn is_py_space(cp: u32) -> bool {
    matches!(cp, 0x09..=0x0d | 0x1c..=0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000)
}

/// gptme removes thinking blocks with two substitutions: `<think(?:ing)?>[\s\S]*?</think(?:ing)?>`
/// (either opening tag closed by the first closing tag of either kind; some models do write
/// `<think>…</thinking>`), then, on what is left, `<think(?:ing)?>[\s\S]*$`.
const OPEN: [&str; 2] = ["<think>", "<thinking>"];
const CLOSE: [&str; 2] = ["</think>", "</thinking>"];

/// A stream of code points with a few in hand, to recognise tags.
struct Lookahead<I> {
    src: I,
    ahead: std::collections::VecDeque<u32>,
}

impl<I: Iterator<Item = u32>> Lookahead<I> {
    fn new(src: I) -> Self {
        Lookahead { src, ahead: Default::default() }
    }

    fn fill(&mut self, n: usize) -> bool {
        while self.ahead.len() < n {
            match self.src.next() {
                Some(c) => self.ahead.push_back(c),
                None => return false,
            }
        }
        true
    }

    /// The next code point when nothing is in hand and it cannot start a tag (most text), or
    /// the end: what needs no lookahead. None when the caller must look.
    fn plain(&mut self) -> Option<Option<u32>> {
        if !self.ahead.is_empty() {
            return None;
        }
        match self.src.next() {
            Some(c) if c == '<' as u32 => {
                self.ahead.push_back(c);
                None
            }
            c => Some(c),
        }
    }

    fn at(&mut self, tag: &str) -> bool {
        self.fill(tag.chars().count()) && self.ahead.iter().zip(tag.chars()).all(|(&a, t)| a == t as u32)
    }

    /// The length of whichever of `tags` starts here.
    fn at_any(&mut self, tags: [&str; 2]) -> Option<usize> {
        if !self.fill(1) || self.ahead[0] != '<' as u32 {
            return None;
        }
        tags.into_iter().find(|tag| self.at(tag)).map(str::len)
    }
}

/// The first substitution: closed blocks removed. An unclosed opening tag ends the stream (the
/// second substitution cuts there anyway: nothing after it can be a closed block). Streams:
/// memory stays constant however long the message.
struct WithoutBlocks<I>(Lookahead<I>);

impl<I: Iterator<Item = u32>> Iterator for WithoutBlocks<I> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let s = &mut self.0;
        if let Some(c) = s.plain() {
            return c;
        }
        'outer: loop {
            if !s.fill(1) {
                return None;
            }
            if let Some(open) = s.at_any(OPEN) {
                s.ahead.drain(..open);
                loop {
                    if let Some(close) = s.at_any(CLOSE) {
                        s.ahead.drain(..close);
                        continue 'outer;
                    }
                    if !s.fill(1) {
                        s.ahead.clear();
                        return None;
                    }
                    s.ahead.pop_front();
                }
            }
            return s.ahead.pop_front();
        }
    }
}

/// The second substitution: the stream ends at the first opening tag, including one formed
/// where the first removed a block (`<think` + a block + `>`).
struct CutAtOpening<I>(Lookahead<I>);

impl<I: Iterator<Item = u32>> Iterator for CutAtOpening<I> {
    type Item = u32;

    fn next(&mut self) -> Option<u32> {
        let s = &mut self.0;
        if let Some(c) = s.plain() {
            return c;
        }
        if !s.fill(1) || s.at_any(OPEN).is_some() {
            return None;
        }
        s.ahead.pop_front()
    }
}

/// The preview of a message's content, or None when nothing is left: words joined by single
/// spaces, cut to 100 characters plus `...`.
pub fn preview(content: impl Iterator<Item = u32>) -> Option<Vec<u32>> {
    let mut out: Vec<u32> = Vec::with_capacity(LIMIT + 3);
    let mut space = false;
    let mut more = false;
    let visible = CutAtOpening(Lookahead::new(WithoutBlocks(Lookahead::new(content))));
    for c in visible {
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

    /// gptme's two substitutions, as Python's `re` applies them (values from CPython).
    #[test]
    fn either_closing_tag_ends_a_block_and_formed_tags_cut() {
        assert_eq!(p("<think>plan</thinking>Answer: 42").as_deref(), Some("Answer: 42"));
        assert_eq!(p("<thinking>plan</think>Answer: 42").as_deref(), Some("Answer: 42"));
        assert_eq!(p("a<think>b</think>c<thinking>d</thinking>e").as_deref(), Some("ace"));
        // Removing the block forms `<think>` from its neighbours; the second substitution sees it.
        assert_eq!(p("<think<think>x</think>>tail"), None);
        assert_eq!(p("kept <thinking<think>x</think>> cut").as_deref(), Some("kept"));
    }

    /// The earliest of `tags` in `s`: (position, length).
    fn find_any(s: &str, tags: [&str; 2]) -> Option<(usize, usize)> {
        tags.iter().filter_map(|t| s.find(t).map(|at| (at, t.len()))).min_by_key(|&(at, len)| (at, usize::MAX - len))
    }

    /// gptme's substitutions and whitespace join done the plain way, on whole strings.
    fn reference(s: &str) -> Option<String> {
        let (mut kept, mut rest) = (String::new(), s);
        while let Some((at, len)) = find_any(rest, OPEN) {
            let Some((close, close_len)) = find_any(&rest[at + len..], CLOSE) else { break };
            kept.push_str(&rest[..at]);
            rest = &rest[at + len + close + close_len..];
        }
        kept.push_str(rest);
        let visible = find_any(&kept, OPEN).map_or(kept.as_str(), |(at, _)| &kept[..at]);
        let words: Vec<&str> = visible.split(|c| is_py_space(c as u32)).filter(|w| !w.is_empty()).collect();
        let joined: Vec<char> = words.join(" ").chars().collect();
        let cut: String = joined.iter().take(LIMIT).collect();
        (!joined.is_empty()).then(|| if joined.len() > LIMIT { cut + "..." } else { cut })
    }

    /// Random texts made of tags, tag fragments and words agree with the plain reference.
    #[test]
    fn agrees_with_the_plain_reference() {
        let pieces =
            ["<think>", "<thinking>", "</think>", "</thinking>", "<think", "<", ">", "a", " ", "\n", "é", "word "];
        let mut rng = crate::test_rng::Rng(0x9e37_79b9_7f4a_7c15);
        let mut next = |n: usize| rng.index(n);
        for _ in 0..20_000 {
            let len = next(40);
            let text: String = (0..len).map(|_| pieces[next(pieces.len())]).collect();
            assert_eq!(p(&text), reference(&text), "{text:?}");
        }
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
