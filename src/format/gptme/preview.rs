//! The last-message preview: thinking blocks removed, whitespace collapsed, cut to 100
//! characters. Works on code points (Python's view of a string) so lone surrogates survive.

const LIMIT: usize = 100;

/// Python's `str.split()` whitespace.
fn is_py_space(cp: u32) -> bool {
    matches!(cp, 0x09..=0x0d | 0x1c..=0x20 | 0x85 | 0xa0 | 0x1680 | 0x2000..=0x200a | 0x2028 | 0x2029 | 0x202f | 0x205f | 0x3000)
}

fn find(hay: &[u32], needle: &str, from: usize) -> Option<usize> {
    let n: Vec<u32> = needle.chars().map(|c| c as u32).collect();
    (from..hay.len().saturating_sub(n.len() - 1)).find(|&i| hay[i..].starts_with(&n))
}

/// Removes `<think>…</think>` and `<thinking>…</thinking>` blocks, and an unclosed opening tag
/// with everything after it.
fn strip_thinking(cps: &[u32]) -> Vec<u32> {
    let mut out = Vec::with_capacity(cps.len());
    let mut at = 0;
    loop {
        let open = [("<think>", "</think>"), ("<thinking>", "</thinking>")]
            .into_iter()
            .filter_map(|(o, c)| find(cps, o, at).map(|i| (i, o, c)))
            .min_by_key(|(i, _, _)| *i);
        let Some((i, open, close)) = open else {
            out.extend_from_slice(&cps[at..]);
            return out;
        };
        out.extend_from_slice(&cps[at..i]);
        match find(cps, close, i + open.len()) {
            Some(j) => at = j + close.len(),
            None => return out,
        }
    }
}

/// The preview of a message's content, or None when nothing is left.
pub fn preview(content: &[u32]) -> Option<Vec<u32>> {
    let stripped = strip_thinking(content);
    let mut out: Vec<u32> = Vec::with_capacity(LIMIT + 3);
    let mut words = stripped.split(|&c| is_py_space(c)).filter(|w| !w.is_empty());
    let mut len = 0usize;
    if let Some(first) = words.next() {
        out.extend(first.iter().take(LIMIT + 1));
        len += first.len();
    }
    for w in words {
        if out.len() > LIMIT {
            len += 1 + w.len();
            break;
        }
        out.push(b' ' as u32);
        out.extend(w.iter().take(LIMIT + 1));
        len += 1 + w.len();
    }
    if out.is_empty() {
        return None;
    }
    if len > LIMIT {
        out.truncate(LIMIT);
        out.extend("...".chars().map(|c| c as u32));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Option<String> {
        let cps: Vec<u32> = s.chars().map(|c| c as u32).collect();
        preview(&cps).map(|v| v.into_iter().map(|c| char::from_u32(c).unwrap()).collect())
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
