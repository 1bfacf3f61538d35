#!/usr/bin/env python3
"""Times the list as a client sees it, over HTTP, for a server at PORT: the default list (first
request, then again), one append later, `detail=true`, a paginated walk of everything at 50 a
page as the web UI scrolls, and what the web UI's History page and its search box ask for.
Prints one JSON object (see speed).

Usage: speed.py PORT LOGS"""
import gzip, json, sys, time, urllib.parse, urllib.request

port, logs = int(sys.argv[1]), sys.argv[2]


def get(path):
    """As a browser asks: compressed if the server will (both do, at 500 bytes or more)."""
    t = time.perf_counter()
    req = urllib.request.Request(f'http://127.0.0.1:{port}{path}', headers={'Accept-Encoding': 'gzip'})
    with urllib.request.urlopen(req, timeout=600) as r:
        data = r.read()
        if r.headers.get('Content-Encoding') == 'gzip':
            data = gzip.decompress(data)
    return time.perf_counter() - t, json.loads(data)


def median(xs):
    return sorted(xs)[len(xs) // 2]


out = {}
out['first'], items = get('/api/v2/conversations')
out['again'] = median([get('/api/v2/conversations')[0] for _ in range(9)])
# One more message in the newest conversation: is the next answer fresh?
newest = items[0]
with open(newest['path'], 'a') as f:
    f.write(json.dumps({'role': 'user', 'content': 'one more', 'timestamp': '2026-01-01T00:00:00'}) + '\n')
out['after_append'], items = get('/api/v2/conversations')
out['fresh_after_append'] = items[0]['messages'] == newest['messages'] + 1
out['detail'], _ = get('/api/v2/conversations?detail=true&limit=1000')
t, cursor, seen = time.perf_counter(), None, 0
while True:
    _, page = get('/api/v2/conversations?paginated=1&limit=50' + (f'&cursor={urllib.parse.quote(cursor)}' if cursor else ''))
    seen += len(page['conversations'])
    cursor = page['next_cursor']
    if not cursor:
        break
out['walk'], out['walked'] = time.perf_counter() - t, seen
# The web UI's History page: every conversation, with detail, in one request.
out['history'], items = get('/api/v2/conversations?limit=100000&detail=true')
out['history_items'] = len(items)
# Its search box (as typed, debounced): ten matches with detail.
out['search'], items = get('/api/v2/conversations?q=conversation-12&limit=10&detail=true')
out['search_items'] = len(items)
print(json.dumps(out))
