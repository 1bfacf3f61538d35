#!/usr/bin/env python3
"""gptme-server writing, convmeta serving: random writes through gptme-server's own routes
(create, append, edit, truncate, delete a message, fork, rename and re-point the workspace
through the config route, delete a conversation), sent through `convmeta serve --upstream` or
straight to gptme-server; after each, convmeta's list (at once: read your writes) is compared field by field with
gptme's `detail=true` list (see live).

Usage: live.py CONVMETA_PORT GPTME_PORT SEED STEPS"""
import json, random, sys, urllib.request, urllib.error
from compare import differences

ours_port, gptme_port, seed, steps = (int(a) for a in sys.argv[1:5])
rng = random.Random(seed)
TEXT = ['hello', 'naïve ☃', '<think>hidden</think>', '<thinking>open', 'x' * 120, '\n', '  ', '日本', '😀',
        '"quoted"', 'back\\slash', '\u2028', 'user', 'assistant']


def call(port, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f'http://127.0.0.1:{port}{path}', data=data, method=method,
                                 headers={'Content-Type': 'application/json'})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()
    except urllib.error.URLError as e:
        sys.exit(f'{method} {path} on port {port} ({"convmeta" if port == ours_port else "gptme"}): {e.reason}')


def text():
    return ''.join(rng.choice(TEXT) + rng.choice(['', ' ']) for _ in range(rng.randint(1, 8)))


def message():
    return {'role': rng.choice(['user', 'assistant', 'system']), 'content': text()}


def listing(port, query):
    status, body = call(port, 'GET', '/api/v2/conversations?' + query)
    assert status == 200, (port, status, body[:200])
    return json.loads(body)


ids, made, bad = [], 0, 0
done = {}
for step in range(steps):
    op = rng.choice(['create'] * 2 + ['append'] * 6 + ['edit', 'truncate', 'delete-message', 'fork', 'rename',
                                                        'workspace', 'delete'] if ids else ['create'])
    cid = rng.choice(ids) if ids else None
    # Through convmeta (forwarded, then that conversation read again), or straight to gptme
    # (convmeta learns of it from its sweep or its watch).
    to = rng.choice([ours_port, gptme_port])
    path = f'/api/v2/conversations/{cid}'
    if op == 'create':
        made += 1
        cid = f'live-{seed}-{made}'
        status, _ = call(to, 'PUT', f'/api/v2/conversations/{cid}',
                         {'messages': [message() for _ in range(rng.randint(0, 3))]})
        if status == 200:
            ids.append(cid)
    elif op == 'append':
        status, _ = call(to, 'POST', path, message())
    elif op in ('edit', 'truncate'):
        _, body = call(gptme_port, 'GET', path)
        users = [i for i, m in enumerate(json.loads(body).get('log', [])) if m.get('role') == 'user'] or [0]
        index = rng.choice(users)
        status, _ = call(to, 'PATCH', f'{path}/messages/{index}' + ('?truncate=1' if op == 'truncate' else ''),
                         {'content': text()})
    elif op == 'delete-message':
        _, body = call(gptme_port, 'GET', path)
        status, _ = call(to, 'DELETE', f'{path}/messages/{rng.randint(0, max(0, len(json.loads(body).get("log", [])) - 1))}')
    elif op == 'fork':
        status, body = call(to, 'POST', f'{path}/fork?after_message={rng.randint(0, 4)}')
        if status == 200:
            forked = json.loads(body).get('conversation_id')
            if forked:
                ids.append(forked)
    elif op == 'rename':
        status, _ = call(to, 'PATCH', f'{path}/config', {'chat': {'name': rng.choice([text(), ''])}})
    elif op == 'workspace':
        status, _ = call(to, 'PATCH', f'{path}/config', {'chat': {'workspace': rng.choice(['workspace', 'sub', '@log', '.'])}})
    else:
        status, _ = call(to, 'DELETE', path)
        if status == 200:
            ids.remove(cid)
    done.setdefault(op, []).append(status)
    ours = listing(ours_port, 'limit=1000')
    theirs = listing(gptme_port, 'limit=1000&detail=true')
    only, diffs, examples, _, _ = differences(theirs, ours)
    order = [c['id'] for c in ours] == [c['id'] for c in theirs]
    if only[0] or only[1] or diffs or not order:
        bad += 1
        print(f'step {step} {op} {cid} ({status}): only gptme {only[0][:3]}, only ours {only[1][:3]}, order same {order},'
              f' differing {diffs}')
        for f, (k, a, b) in list(examples.items())[:3]:
            print(f'  {f} in {k}: gptme {json.dumps(a)[:120]} | ours {json.dumps(b)[:120]}')
print(', '.join(f'{op} {sum(s == 200 for s in v)}/{len(v)}' for op, v in sorted(done.items())))
print(f'{steps} writes, {len(ids)} conversations at the end, {bad} answers differ')
