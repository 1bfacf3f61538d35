//! Generates gptme archives with realistic shapes: a 10–40 KB pinned system prompt first,
//! 20–2000 lines, assistant metadata, tool output, some lines over 8 KB, JSON escapes.

use std::fmt::Write as _;
use std::path::Path;

pub use crate::common::Rng;

/// Prose as the bench's archives write it: English words, with Python's escapes of a newline,
/// a quote, a tab and one accented letter.
pub const WORDS: &[&str] = &[
    "the",
    "file",
    "function",
    "we",
    "should",
    "parse",
    "config",
    "index",
    "thread",
    "\\n",
    "\\\"quoted\\\"",
    "caf\\u00e9",
    "refactor",
    "error",
    "cache",
    "return",
    "import",
    "python",
    "rust",
    "query",
    "server",
    "\\t",
    "module",
    "test",
];

/// [`WORDS`] with what else models and tools write outside ASCII, each character escaped as
/// Python's json.dumps escapes it: curly quotes, dashes, arrows, emoji (a surrogate pair), a
/// directory tree's lines, a terminal's colour codes and Chinese.
pub const WORDS_WITH_UNICODE: &[&str] = &[
    "the",
    "file",
    "function",
    "should",
    "parse",
    "config",
    "index",
    "thread",
    "\\n",
    "caf\\u00e9",
    "error",
    "query",
    "server",
    "module",
    "don\\u2019t",
    "\\u2014",
    "\\u201cquoted\\u201d",
    "\\u2192",
    "\\u2705",
    "\\ud83d\\ude80",
    "\\u2502\\u00a0\\u00a0\\u251c\\u2500\\u2500",
    "\\u001b[32mok\\u001b[0m",
    "\\u4e2d\\u6587\\u6587\\u672c",
    "\\u7d22\\u5f15",
];

/// Russian prose, with some English and code between its words, each Cyrillic letter escaped as
/// Python's json.dumps escapes it (as gptme writes it); some words capitalised, as a sentence
/// starts, so a search meets them in either case.
pub fn words_in_russian() -> Vec<String> {
    const WORDS: &[&str] = &[
        "файл",
        "Файл",
        "функция",
        "сервер",
        "Сервер",
        "ошибка",
        "Ошибка",
        "разбора",
        "индекс",
        "запрос",
        "кэш",
        "модуль",
        "поток",
        "привет",
        "Привет",
        "нужно",
        "проверить",
        "конфиг",
        "и",
        "в",
        "не",
        "на",
        "что",
        "это",
        "the",
        "rust",
        "\\n",
        "error",
    ];
    let escaped = |c: char| if c.is_ascii() { c.to_string() } else { format!("\\u{:04x}", c as u32) };
    WORDS.iter().map(|w| w.chars().map(escaped).collect()).collect()
}

/// `len` bytes of prose from `words`, which hold the escapes Python's json.dumps writes.
fn text(rng: &mut Rng, words: &[&str], len: usize, out: &mut String) {
    let start = out.len();
    while out.len() - start < len {
        out.push_str(words[rng.below(words.len() as u64) as usize]);
        out.push(' ');
    }
}

fn ts(i: usize) -> String {
    format!(
        "2026-01-{:02}T{:02}:{:02}:{:02}.{:06}",
        1 + i / 86400 % 28,
        i / 3600 % 24,
        i / 60 % 60,
        i % 60,
        i * 7919 % 1_000_000
    )
}

/// One conversation's JSONL text with `lines` lines after the system prompt, its prose from
/// `words`.
pub fn conversation(rng: &mut Rng, lines: usize, words: &[&str]) -> String {
    let mut s = String::with_capacity(lines * 1500 + 40_000);
    s.push_str("{\"role\": \"system\", \"content\": \"");
    let prompt = rng.range(10_000, 40_000) as usize;
    text(rng, words, prompt, &mut s);
    s.push_str("\", \"timestamp\": \"2026-01-01T00:00:00\", \"pinned\": true, \"hide\": true}\n");
    for i in 0..lines {
        let (role, len) = match i % 3 {
            0 => ("user", rng.range(20, 600)),
            1 => ("assistant", rng.range(100, 3000)),
            _ => ("system", rng.range(50, 4000)),
        };
        // About 3% of lines are over 8 KB (long answers, big tool output).
        let len = if rng.below(100) < 3 { rng.range(8_500, 30_000) } else { len } as usize;
        write!(s, "{{\"role\": \"{role}\", \"content\": \"").unwrap();
        text(rng, words, len, &mut s);
        write!(s, "\", \"timestamp\": \"{}\"", ts(i)).unwrap();
        if role == "assistant" {
            let model =
                ["anthropic/claude-sonnet-4-5", "openai/gpt-5", "anthropic/claude-opus-4-1"][rng.below(3) as usize];
            write!(
                s,
                ", \"metadata\": {{\"model\": \"{model}\", \"usage\": {{\"input_tokens\": {}, \"output_tokens\": {}, \"cache_read_tokens\": {}, \"cache_creation_tokens\": {}}}, \"cost\": 0.{:04}}}",
                rng.range(1, 5000),
                rng.range(1, 2000),
                rng.range(0, 90_000),
                rng.range(0, 3000),
                rng.range(1, 9999)
            )
            .unwrap();
        }
        s.push_str("}\n");
    }
    s
}

/// Lines per conversation: mostly short, a long tail up to 2000.
pub fn line_count(rng: &mut Rng) -> usize {
    match rng.below(10) {
        0..=5 => rng.range(20, 150),
        6..=8 => rng.range(150, 600),
        _ => rng.range(600, 2000),
    }
    .try_into()
    .unwrap()
}

/// Writes `n` conversations under `logs`, each with a small config.toml; returns total bytes.
pub fn archive(logs: &Path, n: usize, seed: u64, lines: impl Fn(&mut Rng) -> usize, words: &[&str]) -> u64 {
    let mut rng = Rng(seed);
    let mut total = 0;
    for i in 0..n {
        let dir = logs.join(format!("2026-01-01-conversation-{i:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        let count = lines(&mut rng);
        let text = conversation(&mut rng, count, words);
        total += text.len() as u64;
        std::fs::write(dir.join("conversation.jsonl"), text).unwrap();
        std::fs::write(dir.join("config.toml"), format!("[chat]\nname = \"Conversation {i}\"\nworkspace = \"@log\"\n"))
            .unwrap();
    }
    total
}

/// Small conversations (a few short lines), for sweep costs at large counts.
pub fn small_archive(logs: &Path, n: usize) {
    for i in 0..n {
        let dir = logs.join(format!("2026-01-01-small-{i:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        let text = format!(
            "{{\"role\": \"user\", \"content\": \"hello {i}\", \"timestamp\": \"2026-01-01T10:00:00\"}}\n{{\"role\": \"assistant\", \"content\": \"hi\", \"timestamp\": \"2026-01-01T10:00:01\", \"metadata\": {{\"model\": \"m\", \"cost\": 0.01}}}}\n"
        );
        std::fs::write(dir.join("conversation.jsonl"), text).unwrap();
        if i % 2 == 0 {
            std::fs::write(dir.join("config.toml"), format!("[chat]\nname = \"Small {i}\"\n")).unwrap();
        }
    }
}

/// `n` conversations for `usage`: 1–8 assistant lines each with usage, on days spread over a
/// year, on six models; a name and one of 20 workspaces for half of them, one of three agents
/// (whose `gptme.toml` lies in `agents`) for a third.
pub fn usage_archive(logs: &Path, agents: &Path, n: usize) {
    const MODELS: [&str; 6] = [
        "anthropic/claude-sonnet-4-5",
        "anthropic/claude-opus-4-1",
        "openai/gpt-5",
        "openai/gpt-5-mini",
        "openrouter/deepseek/deepseek-v4-flash",
        "gpt-4o-mini",
    ];
    for name in ["bob", "alice", "carol"] {
        std::fs::create_dir_all(agents.join(name)).unwrap();
        std::fs::write(agents.join(name).join("gptme.toml"), format!("[agent]\nname = \"{name}\"\n")).unwrap();
    }
    let mut rng = Rng(0x5eed_0045);
    for i in 0..n {
        let dir = logs.join(format!("2026-01-01-usage-{i:06}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut day = rng.range(0, 330) as i64;
        let mut s = String::new();
        for _ in 0..rng.range(1, 8) {
            day += rng.range(0, 5) as i64;
            let date = chrono::NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + chrono::Duration::days(day);
            let model = MODELS[rng.index(MODELS.len())];
            writeln!(
                s,
                "{{\"role\": \"user\", \"content\": \"q\", \"timestamp\": \"{date}T10:00:00\"}}\n\
                 {{\"role\": \"assistant\", \"content\": \"a\", \"timestamp\": \"{date}T10:00:05\", \"metadata\": {{\"model\": \"{model}\", \"usage\": {{\"input_tokens\": {}, \"output_tokens\": {}, \"cache_read_tokens\": {}}}, \"cost\": 0.{:04}}}}}",
                rng.range(1, 5000),
                rng.range(1, 2000),
                rng.range(0, 90_000),
                rng.range(1, 9999)
            )
            .unwrap();
        }
        std::fs::write(dir.join("conversation.jsonl"), s).unwrap();
        let mut config = String::new();
        if i % 2 == 0 {
            config += &format!("name = \"Usage {i}\"\nworkspace = \"/projects/p{}\"\n", rng.below(20));
        }
        if i % 3 == 0 {
            let agent = ["bob", "alice", "carol"][rng.index(3)];
            config += &format!("agent = \"{}\"\n", agents.join(agent).display());
        }
        if !config.is_empty() {
            std::fs::write(dir.join("config.toml"), format!("[chat]\n{config}")).unwrap();
        }
    }
}
