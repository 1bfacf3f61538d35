#!/usr/bin/env python3
"""An archive shaped like a real gptme one, for timing: a 10-40 KB system prompt first, then
5-60 messages of 100 B-3 KB (3% over 8 KB), assistant lines with model, usage and cost; a
`config.toml` (a name for 30%) and a `workspace/` beside each log, as gptme makes them.
Usage: gen_realistic.py SEED ROOT N (as the other generators, so `GEN=gen_realistic.py run` takes it)"""
import json, os, random, sys
seed, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
words = ['the', 'function', 'returns', 'a', 'value', 'error', 'file', 'test', 'naïve', '→', 'fix', 'build',
         '`code`', 'line\n', '"quoted"', 'path/to/x.rs', 'é', 'and', 'of', 'then']
def text(size):
    out, length = [], 0
    while length < size:
        w = rng.choice(words)
        out.append(w)
        length += len(w) + 1
    return ' '.join(out)
for i in range(n):
    d = os.path.join(root, f'2026-{1 + i % 12:02d}-{1 + i % 28:02d}-conversation-{i}')
    os.makedirs(d, exist_ok=True)
    t = 1767225600 + rng.randint(0, 300 * 86400)
    lines = [json.dumps({'role': 'system', 'content': text(rng.randint(10_000, 40_000)), 'pinned': True, 'hide': True,
                         'timestamp': '2026-01-01T00:00:00'})]
    for k in range(rng.randint(5, 60)):
        role = rng.choice(['user', 'assistant', 'assistant', 'system'])
        m = {'role': role, 'content': text(rng.randint(9_000, 20_000) if rng.random() < 0.03 else rng.randint(100, 3000)),
             'timestamp': f'2026-01-01T00:{k // 60 % 60:02d}:{k % 60:02d}.{rng.randint(0, 999999):06d}'}
        if role == 'assistant':
            m['metadata'] = {'model': rng.choice(['anthropic/claude-sonnet-4-5', 'openai/gpt-5']),
                             'usage': {'input_tokens': rng.randint(10, 5000), 'output_tokens': rng.randint(10, 2000),
                                       'cache_read_tokens': rng.randint(0, 30000), 'cache_creation_tokens': 0},
                             'cost': round(rng.random() / 50, 6)}
        lines.append(json.dumps(m))
    with open(os.path.join(d, 'conversation.jsonl'), 'w') as f:
        f.write('\n'.join(lines) + '\n')
    os.utime(os.path.join(d, 'conversation.jsonl'), (t, t))
    # As gptme writes it when a conversation starts: its workspace, and a name for some.
    os.makedirs(os.path.join(d, 'workspace'), exist_ok=True)
    name = f'name = "Conversation {i} about {rng.choice(["tests", "the build", "naïve → fixes"])}"\n' if rng.random() < 0.3 else ''
    with open(os.path.join(d, 'config.toml'), 'w') as f:
        f.write(f'[chat]\nstream = true\ninteractive = true\nworkspace = "{os.path.abspath(d)}/workspace"\n{name}\n[env]\n')
    os.utime(os.path.join(d, 'config.toml'), (t, t))
