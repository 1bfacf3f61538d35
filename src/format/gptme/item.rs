//! One list item, written exactly as gptme-server writes it: sorted keys, compact separators,
//! non-ASCII escaped, floats as Python's `repr`.

use super::accumulator::Accumulator;
use super::side::Side;
use std::fmt::Write;

use crate::json::{push_py_float, push_py_str, Scanner};

/// Everything an item is made of.
pub struct ItemParts<'a> {
    pub id: &'a str,
    pub path: &'a str,
    pub modified: f64,
    pub side: &'a Side,
    /// Settled (the preview computed).
    pub acc: &'a Accumulator,
    /// [`models_usage_json`] of `acc` (the row stores it too).
    pub models_usage: &'a str,
}

fn opt_str(out: &mut String, v: Option<&str>) {
    match v {
        Some(s) => push_py_str(out, s),
        None => out.push_str("null"),
    }
}

/// `models_usage` as gptme writes it (keys sorted).
pub fn models_usage_json(acc: &Accumulator) -> String {
    let mut models: Vec<_> = acc.models_usage.iter().collect();
    models.sort_by(|a, b| a.0.cmp(&b.0));
    let mut out = String::from("{");
    for (i, (model, u)) in models.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_py_str(&mut out, model);
        let _ = write!(out, ":{{\"cache_read_tokens\":{},\"cost\":", u.cache_read_tokens);
        push_py_float(&mut out, u.cost);
        let _ = write!(out, ",\"input_tokens\":{},\"output_tokens\":{}}}", u.input_tokens, u.output_tokens);
    }
    out.push('}');
    out
}

/// The item's JSON text (no trailing newline).
pub fn render(p: &ItemParts<'_>) -> String {
    let (acc, side) = (p.acc, p.side);
    let mut o = String::with_capacity(1024);
    o.push_str("{\"agent_avatar\":");
    opt_str(&mut o, side.agent_avatar.as_deref());
    o.push_str(",\"agent_name\":");
    opt_str(&mut o, side.agent_name.as_deref());
    o.push_str(",\"agent_path\":");
    opt_str(&mut o, side.agent_path.as_deref());
    o.push_str(",\"agent_urls\":");
    o.push_str(side.agent_urls.as_deref().unwrap_or("null"));
    let _ = write!(o, ",\"branches\":{},\"created\":", side.branches);
    push_py_float(&mut o, acc.created(p.modified));
    o.push_str(",\"id\":");
    push_py_str(&mut o, p.id);
    o.push_str(",\"last_message_preview\":");
    match &acc.last_message {
        Some(m) => {
            o.push_str(&m.preview_json);
            o.push_str(",\"last_message_role\":");
            push_py_str(&mut o, &m.role);
        }
        None => o.push_str("null,\"last_message_role\":null"),
    }
    o.push_str(",\"last_updated\":");
    push_py_float(&mut o, p.modified);
    let _ = write!(o, ",\"message_count\":{0},\"messages\":{0},\"model\":", acc.messages);
    opt_str(&mut o, acc.model.as_deref());
    o.push_str(",\"models_usage\":");
    o.push_str(p.models_usage);
    o.push_str(",\"modified\":");
    push_py_float(&mut o, p.modified);
    o.push_str(",\"name\":");
    push_py_str(&mut o, &side.name);
    o.push_str(",\"path\":");
    push_py_str(&mut o, p.path);
    let _ = write!(o, ",\"total_cache_read_tokens\":{},\"total_cost\":", acc.total_cache_read_tokens);
    push_py_float(&mut o, acc.total_cost);
    let _ = write!(
        o,
        ",\"total_input_tokens\":{},\"total_output_tokens\":{},\"workspace\":",
        acc.total_input_tokens, acc.total_output_tokens
    );
    push_py_str(&mut o, &side.workspace);
    o.push('}');
    o
}

/// `item_json` with its `created` replaced, the rest byte for byte as it was: under another time
/// zone only a naive `created` changes, and the stored state keeps it as the wall-clock reading
/// it was written as. None when the text is not an item as [`render`] writes it.
pub fn with_created(item_json: &str, created: f64) -> Option<String> {
    let mut s = Scanner::new(item_json.as_bytes());
    let mut span = None;
    s.object(|s, key| {
        s.peek()?;
        let start = s.offset();
        s.skip()?;
        if key.bytes == b"created" {
            span = Some(start..s.offset());
        }
        Ok(())
    })
    .ok()?;
    let span = span.filter(|_| s.at_end())?;
    let mut out = String::with_capacity(item_json.len() + 8);
    out.push_str(&item_json[..span.start]);
    push_py_float(&mut out, created);
    out.push_str(&item_json[span.end..]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Only the top-level `created` changes, even where a name, a model or an agent's urls
    /// spell `"created":` too; the rest stays byte for byte.
    #[test]
    fn with_created_replaces_the_items_created_alone() {
        let line = br#"{"role": "assistant", "content": "\"created\":1", "timestamp": "2026-01-01T00:00:00.5", "metadata": {"model": "created", "cost": 0.5}}"#;
        let mut acc = Accumulator::default();
        acc.feed(line, 0);
        acc.settle(|_, _| Some(line.to_vec()));
        let side = Side {
            name: "\"created\":2".into(),
            agent_urls: Some(r#"{"created":"https://x"}"#.into()),
            ..Default::default()
        };
        let models_usage = models_usage_json(&acc);
        let parts =
            ItemParts { id: "x", path: "/x", modified: 7.0, side: &side, acc: &acc, models_usage: &models_usage };
        let item = render(&parts);
        let old = crate::json::py_float(acc.created(7.0));
        for created in [1.25, -62135596800.0, 1e16, f64::NAN] {
            let replaced = with_created(&item, created).unwrap();
            let new = crate::json::py_float(created);
            assert_eq!(replaced.len(), item.len() - old.len() + new.len(), "{replaced}");
            let at = item.find(&format!(",\"created\":{old},")).unwrap() + ",\"created\":".len();
            assert_eq!(replaced[..at], item[..at]);
            assert_eq!(replaced[at..at + new.len()], new);
            assert_eq!(replaced[at + new.len()..], item[at + old.len()..]);
            if created.is_finite() {
                let mut expected: Value = serde_json::from_str(&item).unwrap();
                expected["created"] = created.into();
                assert_eq!(serde_json::from_str::<Value>(&replaced).unwrap(), expected);
            }
        }
        // Not an item as `render` writes it: nothing to replace.
        for text in [r#"{"created": 1"#, "[]", r#"{"id": "x"}"#, r#"{"created": 1} x"#, ""] {
            assert_eq!(with_created(text, 1.0), None, "{text}");
        }
    }
}
