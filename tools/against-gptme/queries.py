#!/usr/bin/env python3
"""Random list queries (limit, q/search, paginated, cursor, detail; a key given twice): gptme-server and `convmeta serve` over one
archive, compared by status, ETag, ids in order and next_cursor presence.
Usage: queries.py PORT SEED COUNT (GPTME_LOGS_HOME set to the archive)."""
import json, os, random, sys, urllib.request, urllib.error
os.environ['GPTME_DISABLE_AUTH'] = 'true'
from gptme.server.app import create_app
from gptme.server import api_v2
from gptme.logmanager import conversations
port, seed = int(sys.argv[1]), int(sys.argv[2])
rng = random.Random(seed)
app = create_app(); client = app.test_client()
limits = ['', '1', '5', '+5', ' 7 ', '1_0', '0x10', 'abc', '-1', '0', '1e3', '\uff11\uff12', '\u0661\u0662', '2000', '3.0', '00012', '1__0', '_1']
# U+FFFD: what a lone surrogate in a preview must not match (the stored text holds U+FFFD for it).
qs = ['', ' ', 'chat', 'CHAT', ' conv ', 'é', 'x y', '%', '\u3000c', 'zzz', 'test', '\ufffd', 'd\ufffd']
flags = ['', '1', 'true', 'yes', 'no', 'TRUE', '0', 'Yes', ' true', 'on', 'false']
# Cursors: numbers as Python's float reads them, composite ones, and broken ones.
cursors = ['', 'abc', '1767225600', ' 1767225600.5 ', '1_767_225_600', '1e9', 'inf', '-inf', 'nan', 'Infinity|x',
           '\u0661\u0662', '0x10', '1767225600|', '|c1', '1767225600|c1', '1767225600|%ZZ', '1767225600|a|b', '1e999']
# Raw query text, not from quote(): bytes that are not UTF-8, broken escapes, NULs, keys without
# values. Drawn from a second generator, so the seeds' other queries stay as they were.
raw = ['q=%FF', 'q=%E2%82', 'q=a%00b', 'q=%2', 'q=%', 'q', 'search=%C0%80', 'limit=%FF', 'limit=1%00',
       'limit=%', 'limit', 'cursor=%FF', 'cursor=1767225600|%FF', 'cursor=%00', 'paginated', 'detail',
       '=x', '&', 'limit=5;q=x', 'q=+', 'q=a+b', 'limit=+5', 'q=%2B', 'limit=%EF%BC%91']
raw_rng = random.Random(seed * 7919 + 1)
def ours(path):
    try:
        r = urllib.request.urlopen(f'http://127.0.0.1:{port}{path}')
        return r.status, r.headers.get('ETag'), json.loads(r.read() or b'null')
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get('ETag'), json.loads(e.read() or b'null')
def theirs(path):
    api_v2._invalidate_conversations_cache(); conversations._count_messages.cache_clear()
    r = client.get(path)
    return r.status_code, r.headers.get('ETag'), r.get_json()
def ids(body):
    if isinstance(body, list): return [c['id'] for c in body]
    if isinstance(body, dict) and 'conversations' in body: return ([c['id'] for c in body['conversations']], body.get('next_cursor') is not None)
    return body
from urllib.parse import quote
# Conversations whose preview the spec improves (gptme shows none, or, in its default list,
# none where the last message lies beyond a log's last 8 KiB) may match a search here and not in
# gptme: leave them out of searches' comparisons.
detail = {c['id']: c for c in theirs('/api/v2/conversations?limit=1000&detail=true')[2]}
fast = {c['id']: c for c in theirs('/api/v2/conversations?limit=1000')[2]}
improved = {c['id'] for c in ours('/api/v2/conversations?limit=1000')[2]
            if any(c['last_message_preview'] != answer.get(c['id'], {}).get('last_message_preview')
                   for answer in (detail, fast))}
def searched(body):
    got = ids(body)
    if isinstance(got, tuple):
        return ([i for i in got[0] if i not in improved], got[1])
    return [i for i in got if i not in improved] if isinstance(got, list) else got
def same_window(a, b):
    """Search results agree once improved conversations are left out. One that matches on one
    side only also takes a place in that side's `limit` window, so the lists then agree up to
    the shorter one."""
    x, y = searched(a), searched(b)
    raw = [ids(a), ids(b)]
    raw = [r[0] if isinstance(r, tuple) else r for r in raw]
    slack = sum(1 for r in raw if isinstance(r, list) for i in r if i in improved)
    if isinstance(x, tuple) and isinstance(y, tuple):
        (x, more_x), (y, more_y) = x, y
        if more_x != more_y and not slack:
            return False
    if isinstance(x, list) and isinstance(y, list):
        n = min(len(x), len(y))
        return x[:n] == y[:n] and abs(len(x) - len(y)) <= slack
    return x == y
def etag(items):
    import hashlib
    return 'W/"%s"' % hashlib.md5(''.join('%s:%r\n' % (c['id'], c['modified']) for c in items).encode()).hexdigest()[:16]
def untie(a, b):
    """gptme's answer `a` with its ties (equal `modified`) in our order, when that is all that
    differs from ours (`b`): gptme leaves ties in directory order, convmeta orders them by id
    (see gptme-format.md). A group the limit cuts may hold other members on either side."""
    status, tag, body = a
    if not (isinstance(body, list) and isinstance(b[2], list) and len(body) == len(b[2])):
        return a
    if [c['modified'] for c in body] != [c['modified'] for c in b[2]] or ids(body) == ids(b[2]):
        return a
    i = 0
    while i < len(body):
        j = i
        while j < len(body) and body[j]['modified'] == body[i]['modified']:
            j += 1
        if j < len(body) and {c['id'] for c in body[i:j]} != {c['id'] for c in b[2][i:j]}:
            return a
        i = j
    return status, tag and etag(b[2]), b[2]
bad = 0
for i in range(int(sys.argv[3])):
    params = []
    if rng.random() < 0.6: params.append('limit=' + quote(rng.choice(limits)))
    if rng.random() < 0.4: params.append(rng.choice(['q', 'search']) + '=' + quote(rng.choice(qs)))
    if rng.random() < 0.3: params.append('paginated=' + quote(rng.choice(flags)))
    if rng.random() < 0.2: params.append('cursor=' + quote(rng.choice(cursors)))
    if rng.random() < 0.3: params.append('detail=' + quote(rng.choice(flags)))
    if params and rng.random() < 0.15:  # a key twice: the first value counts, as in Flask
        key = rng.choice(params).split('=')[0]
        pool = {'limit': limits, 'q': qs, 'search': qs, 'paginated': flags, 'cursor': cursors, 'detail': flags}[key]
        params.append(key + '=' + quote(rng.choice(pool)))
    rng.shuffle(params)
    if raw_rng.random() < 0.2:
        params.insert(raw_rng.randrange(len(params) + 1), raw_rng.choice(raw))
    path = '/api/v2/conversations' + ('?' + '&'.join(params) if params else '')
    a, b = theirs(path), ours(path)
    a = untie(a, b)
    if any(p.startswith(('q=', 'search=')) for p in params):
        same = a[0] == b[0] and a[1] == b[1] and same_window(a[2], b[2])
    else:
        same = a[0] == b[0] and a[1] == b[1] and ids(a[2]) == ids(b[2])
    if not same:
        bad += 1
        if bad <= 8: print('DIFF', path, 'gptme', a[0], a[1], str(ids(a[2]))[:120], '| ours', b[0], b[1], str(ids(b[2]))[:120])
print(f'{sys.argv[3]} queries, {bad} differ')
