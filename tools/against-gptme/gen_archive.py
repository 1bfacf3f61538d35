#!/usr/bin/env python3
"""A random gptme archive: realistic and edge-case lines, none of gptme's known crashers."""
import json, os, random, sys
seed, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
words = ['hello', 'world', 'fix', 'the', 'bug', 'é', 'naïve', '日本', '😀', 'x' * 30, '<think>', '</think>',
         '<thinking>', '</thinking>', '\n', '\t', '  ', '\u00a0', '\u2028', '\u3000', '\u200b', '\x1c', 'a\\b', '"q"',
         # Other alphabets, in both cases (a search finds a text of them by one of its letters),
         # a final sigma's context, and letters that lower to two or to ASCII.
         'Привет', 'мир', 'ОШИБКА', 'ΟΔΟΣ', 'σας', 'ǅ', 'ẞ', 'İ', '\u212a',
         # Escapes whose last two digits repeat (a search finds those by their last two).
         'Đường', 'ФБР', 'фото']
models = ['openai/gpt-5', 'anthropic/claude-sonnet-4-5', 'gpt-4o', 'm', 'ünï']
# Ways to write a name in TOML, valid and not (gptme falls back to the id when it cannot read it).
# Not a string (`name = 42`) is left out: gptme shows the value, we count a problem and show the id.
NAMES = ['"My chat"', '"naïve ☃"', "'literal \\n'", '"""multi\nline"""', "'''raw\nlines'''",
         '"esc \\u00e9 \\U0001F600 \\t"', '"bad \\x41"', '"a" # comment', '""', '"\\""', '"tab\there"',
         '"unterminated', '"dup"\nname = "again"', '"x" trailing',
         '"a\\\n   b"', '"\\ud800"', '"  spaced  "']

def ts():
    r = rng.random()
    y, mo, d = rng.choice([2025, 2026]), rng.randint(1, 12), rng.randint(1, 28)
    h, mi, s = rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
    base = f'{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}'
    if r < 0.5: return base + f'.{rng.randint(0, 999999):06d}'
    if r < 0.6: return base
    if r < 0.7: return base + rng.choice(['+00:00', 'Z', '+05:30', '-08:00'])
    if r < 0.75: return base.replace('T', ' ')
    if r < 0.8: return f'{y:04d}{mo:02d}{d:02d}'
    if r < 0.85: return rng.choice(['yesterday', '', '2026-02-30T00:00:00', '2026-01-01T25:00'])
    if r < 0.9: return rng.choice([12345, None, 1.5, [], {}, '', 0, False])
    return base + '.5'
def content():
    r = rng.random()
    if r < 0.05: return rng.choice([None, 5, ['a'], {'x': 1}, True])
    if r < 0.1: return ''
    return ''.join(rng.choice(words) + rng.choice(['', ' ']) for _ in range(rng.randint(1, 40)))
def line(first):
    role = rng.choice(['user', 'assistant', 'assistant', 'system', 'tool', 5 if rng.random() < 0.1 else 'user'])
    if first and rng.random() < 0.7: role = 'system'
    m = {'role': role, 'content': content()}
    if rng.random() < 0.9: m['timestamp'] = ts()
    if rng.random() < 0.2: m['files'] = rng.choice([['a.txt'], None, 5, 'ab', {}, []])
    if role == 'assistant' and rng.random() < 0.7:
        md = {}
        if rng.random() < 0.9: md['model'] = rng.choice(models + [None])
        if rng.random() < 0.8:
            md['usage'] = {k: rng.choice([rng.randint(0, 5000), rng.randint(0, 5000), 0, None])
                           for k in ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens'] if rng.random() < 0.8}
        if rng.random() < 0.8: md['cost'] = rng.choice([round(rng.random() / 10, rng.randint(1, 8)), 0, 0.1 + 0.2, 1e-7, 3, None])
        m['metadata'] = md if rng.random() < 0.9 else rng.choice([[], '', 0, False, None, {}])
    text = json.dumps(m, ensure_ascii=rng.random() < 0.8)
    r = rng.random()
    if r < 0.03: text = text[:-3]  # malformed
    elif r < 0.05: text = ''
    elif r < 0.06: text = '   '
    return text + ('\r\n' if rng.random() < 0.03 else '\n')
# Agents ([chat].agent -> a directory with gptme.toml), drawn from their own generator so the
# rest of each seed's archive stays as it was. Under HOME too, for `~` paths. Left out: an
# [agent] table without `name`, and a gptme.toml with a BOM (gptme 0.35.1 answers 500; convmeta
# lists them, the second with its problem counted).
arng = random.Random(seed * 7919 + 1)
base = os.path.dirname(os.path.abspath(root))
AGENT_TOMLS = {
    'ok': '[agent]\nname = "Bob"\navatar = "assets/avatar.png"\n\n[agent.urls]\ndashboard = "https://bob.example.com/"\n',
    'name-only': '[agent]\nname = "Bøb ☃"\n',
    'avatar-url': '[agent]\nname = "U"\navatar = "https://example.com/a.png"\n',
    'avatar-abs': '[agent]\nname = "A"\navatar = "/tmp/a.png"\n',
    'urls-many': '[agent]\nname = "M"\n[agent.urls]\na = "https://a/"\nb = "https://b/"\n',
    'no-agent-table': '[project]\nname = "p"\n',
    'empty': '',
}
for where in ['agents', 'home/agents']:
    for kind, text in AGENT_TOMLS.items():
        os.makedirs(os.path.join(base, where, kind), exist_ok=True)
        with open(os.path.join(base, where, kind, 'gptme.toml'), 'w', encoding='utf-8', newline='') as f:
            f.write(text)
    os.makedirs(os.path.join(base, where, 'no-toml'), exist_ok=True)
    # gptme merges gptme.local.toml over gptme.toml, and reads .github/ when gptme.toml is absent.
    for kind, files in {'local': {'gptme.toml': AGENT_TOMLS['ok'],
                                  'gptme.local.toml': '[agent]\nname = "Local"\n[agent.urls]\nrepo = "https://r/"\n'},
                        'github': {'.github/gptme.toml': AGENT_TOMLS['name-only'],
                                   '.github/gptme.local.toml': '[agent]\navatar = "gh.png"\n'},
                        'only-local': {'gptme.local.toml': AGENT_TOMLS['ok']}}.items():
        for f, text in files.items():
            os.makedirs(os.path.dirname(os.path.join(base, where, kind, f)), exist_ok=True)
            with open(os.path.join(base, where, kind, f), 'w', encoding='utf-8') as out:
                out.write(text)
os.makedirs(os.path.join(base, 'projects', 'p'), exist_ok=True)
os.makedirs(os.path.join(base, 'home', 'proj'), exist_ok=True)
WORKSPACES = ['', '~/proj', '~/proj/', '/tmp/', '/tmp/x/../y', 'rel/../proj', '~', os.path.join(base, 'projects', 'p'),
              os.path.join(base, 'projects', 'missing')]
def agent_value():
    kind = arng.choice(list(AGENT_TOMLS) + ['no-toml', 'missing-dir', 'local', 'github', 'only-local'])
    r = arng.random()
    if r < 0.6: return os.path.join(base, 'agents', kind)
    if r < 0.8: return '~/agents/' + kind
    return os.path.join(base, 'agents', kind) + '/'

# Pieces of a last message around the preview's 100-character cut: lone and paired surrogates
# (escaped, as json.dumps writes them), combining marks, emoji, NUL, line and paragraph
# separators, Python-only whitespace, thinking tags closed, unclosed and mixed.
TRICKY = ['\ud800', '\udc00', '\ud83d\ude00', 'e\u0301', '\U0001F600', '\u0000', '\u2028', '\u2029', '\x1f',
          '\x85', '\u3000', '<think>x</think>', '<thinking>', '</thinking>', '<think>a</thinking>', 'a' * 97, ' ' * 5,
          '\r\n', 'word', '\u00e9', '\t']
def tricky_line():
    text = ''.join(arng.choice(TRICKY) for _ in range(arng.randint(1, 12)))
    m = {'role': arng.choice(['user', 'assistant']), 'content': text, 'timestamp': '2026-01-01T00:00:00'}
    return json.dumps(m)  # ensure_ascii: lone surrogates can only be written escaped

os.makedirs(root, exist_ok=True)
for i in range(n):
    cid = rng.choice(['2026-01-%02d-conv-%d' % (rng.randint(1, 28), i), 'chat-%d' % i, 'test-x-%d' % i if rng.random() < 0.1 else 'c%d' % i])
    d = os.path.join(root, cid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'conversation.jsonl'), 'w', encoding='utf-8', newline='') as f:
        for k in range(rng.randint(0, 30)):
            f.write(line(k == 0))
    wrote_workspace = False
    if rng.random() < 0.3:
        with open(os.path.join(d, 'config.toml'), 'w', encoding='utf-8', newline='') as f:
            f.write(rng.choice(['[chat]\n', '[chat]\r\n', '# c\n[chat] # t\n', '\ufeff[chat]\n']))
            if rng.random() < 0.7: f.write('name = %s\n' % rng.choice(NAMES))
            if rng.random() < 0.3:
                f.write('workspace = "%s"\n' % rng.choice(['/tmp', '@log', '.']))
                wrote_workspace = True
    if arng.random() < 0.3:
        with open(os.path.join(d, 'config.toml'), 'a', encoding='utf-8', newline='') as f:
            if f.tell() == 0: f.write('[chat]\n')
            f.write('agent = "%s"\n' % agent_value())
    if not wrote_workspace and arng.random() < 0.2:
        with open(os.path.join(d, 'config.toml'), 'a', encoding='utf-8', newline='') as f:
            if f.tell() == 0: f.write('[chat]\n')
            f.write('workspace = "%s"\n' % arng.choice(WORKSPACES))
    if arng.random() < 0.15:  # a workspace entry beside the log (used when no config names one)
        os.symlink(arng.choice([os.path.join(base, 'projects', 'p'), os.path.join(base, 'nowhere'), '..', 'sub/../..']),
                   os.path.join(d, 'workspace'))
    if rng.random() < 0.2:
        os.makedirs(os.path.join(d, 'branches'), exist_ok=True)
        for b in range(rng.randint(0, 3)):
            open(os.path.join(d, 'branches', 'b%d.jsonl' % b), 'w').close()
    if arng.random() < 0.15:  # branch entries of every kind gptme's glob("branches/*.jsonl") sees
        b = os.path.join(d, 'branches')
        kind = arng.choice(['entries', 'file', 'link'])
        if kind == 'file' and not os.path.exists(b):
            open(b, 'w').close()
        elif kind == 'link' and not os.path.exists(b):
            os.makedirs(os.path.join(base, 'shared-branches'), exist_ok=True)
            open(os.path.join(base, 'shared-branches', 'x.jsonl'), 'w').close()
            os.symlink(os.path.join(base, 'shared-branches'), b)
        elif os.path.isdir(b) or not os.path.exists(b):
            os.makedirs(b, exist_ok=True)
            for name in arng.sample(['.hidden.jsonl', '.jsonl', 'notes.txt', 'x.jsonl.bak', 'UPPER.JSONL', 'dir.jsonl'], 3):
                (os.makedirs if name == 'dir.jsonl' else lambda p: open(p, 'w').close())(os.path.join(b, name))
            if arng.random() < 0.5:
                os.symlink('nowhere', os.path.join(b, 'dangling.jsonl'))
    if arng.random() < 0.15:  # a last message with text that is hard to preview
        with open(os.path.join(d, 'conversation.jsonl'), 'a', encoding='utf-8', newline='') as f:
            f.write(tricky_line() + arng.choice(['\n', '\n', '']))
    t = rng.randint(1735689600, 1798761600) * 10**9 + rng.choice([0, rng.randint(0, 999999999)])
    os.utime(os.path.join(d, 'conversation.jsonl'), ns=(t, t))
# Directory names gptme lists as they are: spaces, non-ASCII (composed and not), dots, a
# dash first, a tab, a long one. Left out: a name that is not UTF-8 (gptme-server answers 500
# for most list queries then; convmeta lists the others and warns that it skips that one).
ODD_IDS = ['with space', 'ünï', 'u\u0308ni', 'x..y', '-dash', 'tab\there', 'emoji😀', 'l' * 200]
for cid in arng.sample(ODD_IDS, 4):
    d = os.path.join(root, cid)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'conversation.jsonl'), 'w', encoding='utf-8', newline='') as f:
        for k in range(arng.randint(1, 5)):
            f.write(json.dumps({'role': arng.choice(['user', 'assistant']), 'content': 'odd %d' % k}) + '\n')
    if arng.random() < 0.5:
        with open(os.path.join(d, 'config.toml'), 'w', encoding='utf-8') as f:
            f.write('[chat]\nname = "odd %s"\n' % arng.randint(0, 99))
    t = arng.randint(1735689600, 1798761600) * 10**9
    os.utime(os.path.join(d, 'conversation.jsonl'), ns=(t, t))
