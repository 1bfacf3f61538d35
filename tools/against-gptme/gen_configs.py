#!/usr/bin/env python3
"""A random archive for the side files: each conversation's `config.toml` and the agents'
`gptme.toml` written every way gptme reads or refuses them (see `configs`).

    gen_configs.py SEED OUT N

OUT/logs holds N conversations of one line each; OUT/home is $HOME; OUT/agents the agents.
Every key gptme's ChatConfig and ProjectConfig know, with values of every TOML type, in every
table form (`[chat]`, inline, dotted, `[[chat]]`), unknown keys, and bytes that are not UTF-8,
byte-order marks, CRLF and NUL here and there.
"""
import os, random, sys

seed, out, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
logs, home, agents = (os.path.join(out, d) for d in ('logs', 'home', 'agents'))
for d in (logs, home, agents, os.path.join(home, 'proj'), os.path.join(out, 'rel', 'dir')):
    os.makedirs(d, exist_ok=True)
os.symlink(agents, os.path.join(home, 'agents'))

TEXT = ['"x"', '"My chat"', "'literal \\n'", '""', '"  "', '"naïve ☃"', '"esc \\u00e9\\t"', '"""multi\nline"""',
        "'''raw\nlines'''", '"a\\\n   b"', '"\\ud800"', '"tab\there"',
        # TOML 1.1, which tomlkit (agents' files) reads and tomllib (config.toml) does not
        '"\\x41da"', '"\\e[1m"']
PATHS = ['"@log"', '"~"', '"~/proj"', '"~/proj/"', '"/tmp"', '"/tmp/x/../y"', '"rel/dir"', '"."', '""',
         '"/nonexistent/x"', '"~nosuchuser/x"', '"~root"', '"@log/x"', '"~/agents/a1"']
OTHER = ['42', '0', '-1', '1.5', '0.5', '1e3', 'inf', 'nan', '-0.0', 'true', 'false', '[]', '["a", "b"]', '[1, 2]',
         '{}', '{a = 1}', '{ url = "https://x/" }', '1979-05-27T07:32:00Z', '1979-05-27T07:32:00', '1979-05-27',
         '07:32:00', '07:32', '1979-05-27T07:32', '"0.5"', '"1000"', '"abc"', '" 0.25 "', '"1_000"', '2000', '0x10', '"inf"', '"nan"', '1.0']
CHAT_KEYS = ['name', 'workspace', 'agent', 'model', 'tools', 'tool_format', 'stream', 'interactive', 'no_confirm',
             'watch_autowake', 'max_tokens', 'context_budget', 'temperature', 'top_p', 'system_prompt',
             'agent_profile', 'allow_hosts', 'gear', 'foo', 'Name', '"name"', "'workspace'"]


def value(key):
    r = rng.random()
    if key in ('workspace', "'workspace'") and r < 0.6 or key == 'agent' and r < 0.3:
        return rng.choice(PATHS)
    if key == 'agent' and r < 0.8:
        return agent_ref()
    if r < 0.5 and key.strip('"\'') in ('name', 'model', 'system_prompt', 'agent_profile', 'tool_format', 'foo'):
        return rng.choice(TEXT)
    return rng.choice(OTHER + TEXT[:4])


def agent_ref():
    a = 'a%d' % rng.randrange(12)
    return '"%s"' % rng.choice([os.path.join(agents, a), os.path.join(agents, a) + '/', '~/agents/' + a,
                                 'agents/' + a, os.path.join(agents, 'missing'), ''])


def chat_section():
    keys = rng.sample(CHAT_KEYS, rng.choice([1, 1, 2, 3, 4]))
    # Mostly what gptme accepts: a name, a workspace, an agent.
    if rng.random() < 0.6:
        keys = rng.sample(['name', 'workspace', 'agent'], rng.randint(1, 3))
    pairs = [(k, value(k)) for k in keys]
    form = rng.choices(['table', 'inline', 'dotted', 'array', 'scalar', 'none'], [70, 8, 8, 3, 2, 9])[0]
    if form == 'table':
        return rng.choice(['[chat]', '[ chat ]', '["chat"]', '[chat] # c']) + '\n' + ''.join(
            '%s = %s\n' % p for p in pairs)
    if form == 'inline' and all('\n' not in v for _, v in pairs):
        return 'chat = { %s }\n' % ', '.join('%s = %s' % p for p in pairs)
    if form == 'dotted':
        return ''.join('chat.%s = %s\n' % p for p in pairs)
    if form == 'array':
        return '[[chat]]\n' + ''.join('%s = %s\n' % p for p in pairs)
    if form == 'scalar':
        return 'chat = %s\n' % rng.choice(['5', '"x"', '[]'])
    return ''


def extras(kind):
    """Other tables: what ChatConfig (`env`, `mcp`) or ProjectConfig checks, and unknown ones."""
    out = ''
    for _ in range(rng.choice([0, 0, 0, 1, 2])):
        out += rng.choice({
            'chat': ['[env]\nFOO = "bar"\n', 'env = "x"\n', '[mcp]\nenabled = true\n', 'mcp = 1\n',
                     '[other]\nx = 1\n', 'name = "top-level"\n', '[mcp]\nservers = []\n', 'env = {}\n',
                     '[mcp]\nservers = 5\n', '[[mcp.servers]]\nname = "s"\ncommand = "x"\n',
                     '[[mcp.servers]]\ncommand = "x"\n', '[[mcp.servers]]\nname = "s"\nbogus = 1\n',
                     'mcp = { servers = [5] }\n', '[mcp]\nfoo = 1\n'],
            'agent': ['files = ["README.md"]\n', 'files = 5\n', '[rag]\nenabled = true\n', 'rag = 5\n',
                      '[env]\nA = "b"\n', 'env = 1\n', 'prompt = "be nice"\n', 'base_prompt = 5\n',
                      '[plugins]\npaths = ["x"]\n', '[plugins]\npaths = 5\n', '[settings]\nfoo = 1\n',
                      '[subagent]\nmax_concurrent = 4\n', '[lessons]\ndirs = 5\n', '[project]\nname = "p"\n',
                      'context_cmd = "echo"\n', '[hooks]\nscripts = 5\n', '[plugin]\nx = 1\n',
                      'plugin = 0\n', 'plugin = "p"\n', '[prompt]\nsystem = "short"\n', '[prompt]\nsystem = 1\n',
                      '[prompt]\nfiles = "x"\n', '[rag]\nenabled = true\nbogus = 1\n', '[subagent]\nfoo = 1\n',
                      '[[hooks.scripts]]\nevent = "session.start"\ncommand = "make"\n',
                      '[[hooks.scripts]]\nevent = "session.start"\ncommand = "  "\n',
                      '[[hooks.scripts]]\nevent = "session.end"\ncommand = "x"\ntimeout = %s\n'
                      % rng.choice(['0', '300', '301', 'true', '1.5', '"5"']),
                      '[[hooks.scripts]]\nevent = 5\ncommand = 5\n', '[settings]\ngear = 1\n',
                      '[mcp]\nservers = [{ name = "x" }]\n', '[mcp]\nservers = [{ url = "x" }]\n',
                      'context = 1\n', '[context]\nenabled = true\n', '[lessons]\ndirs = ["a"]\n'],
        }[kind])
    return out


def agent_toml():
    out = ''
    r = rng.random()
    if r < 0.85:
        out += '[agent]\n'
        keys = ['name'] if rng.random() < 0.5 else rng.sample(['name', 'avatar', 'color', 'foo'], rng.randint(0, 3))
        for k in keys:
            v = rng.choice(TEXT) if rng.random() < 0.7 else rng.choice(OTHER)
            if k == 'avatar' and rng.random() < 0.5:
                v = rng.choice(['"assets/a.png"', '"https://x/a.png"', '"/abs/a.png"', '"~/a.png"'])
            if k == 'color' and rng.random() < 0.6:
                v = rng.choice(['"red"', '"#ff69b4"', '"rgb(1,2,3)"', '"notacolor"', '"pink"'])
            out += '%s = %s\n' % (k, v)
        if rng.random() < 0.4:
            if rng.random() < 0.7:
                out += '[agent.urls]\n' + ''.join('%s = %s\n' % (k, rng.choice(['"https://%s/"' % k] * 4 + OTHER))
                                                  for k in rng.sample(['dashboard', 'repo', 'b', 'a', '"q k"'], 2))
            elif rng.random() < 0.5:
                # TOML 1.1: an inline table over lines, with a trailing comma
                out += 'urls = {\n  repo = "https://r/",\n  met = %s,\n}\n' % rng.choice(['1815-12-10T09:15', '"x"', '07:32'])
            else:
                out += 'agent.urls = %s\n' % rng.choice(OTHER)
    elif r < 0.92:
        out += 'agent = %s\n' % rng.choice(OTHER)
    return out + extras('agent')


def mangle(text):
    """Bytes from text, sometimes damaged the ways files on disk are."""
    data = text.encode('utf-8', 'surrogatepass')
    r = rng.random()
    if r < 0.12 and data:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + rng.choice([b'\xe9', b'\xff', b'\xc3', b'\xed\xa0\x80', b'\xf0\x9f', b'\x80\x80']) + data[at:]
    elif r < 0.16:
        data = b'\xef\xbb\xbf' + data
    elif r < 0.22:
        data = data.replace(b'\n', b'\r\n')
    elif r < 0.24 and data:
        at = rng.randrange(len(data) + 1)
        data = data[:at] + b'\x00' + data[at:]
    return data


def write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'wb') as f:
        f.write(data)


for i in range(12):
    d = os.path.join(agents, 'a%d' % i)
    os.makedirs(d, exist_ok=True)
    where = rng.choice(['gptme.toml'] * 4 + ['.github/gptme.toml', 'none'])
    if where != 'none':
        write(os.path.join(d, where), mangle(agent_toml()))
        if rng.random() < 0.3:
            write(os.path.join(os.path.dirname(os.path.join(d, where)), 'gptme.local.toml'), mangle(agent_toml()))

for i in range(n):
    d = os.path.join(logs, 'c%d' % i)
    write(os.path.join(d, 'conversation.jsonl'),
          b'{"role": "user", "content": "hi", "timestamp": "2026-01-01T10:00:00"}\n')
    if rng.random() < 0.9:
        text = chat_section() + extras('chat')
        if rng.random() < 0.5:
            text = extras('chat') + chat_section()
        write(os.path.join(d, 'config.toml'), mangle(text))
    if rng.random() < 0.15:
        os.symlink(rng.choice([os.path.join(home, 'proj'), os.path.join(out, 'nowhere')]), os.path.join(d, 'workspace'))
    t = (1767225600 + i * 60) * 10**9
    os.utime(os.path.join(d, 'conversation.jsonl'), ns=(t, t))
