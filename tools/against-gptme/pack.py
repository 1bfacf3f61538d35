#!/usr/bin/env python3
"""Every request of the pack's expected/, asked of convmeta (serving the restored archive at
PORT) and of this venv's gptme, beside the pack's recorded answer (gptme 0.35.1). Where the
gptme asked answers otherwise than 0.35.1, says which of the two convmeta answers as.

    pack.py PACK WORK PORT      (WORK holds archive/, restored, and home/)
"""
import json, os, pathlib, sys, urllib.error, urllib.request

pack, work, port = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), int(sys.argv[3])
home, archive = work / 'home', str((work / 'archive').resolve())
os.environ.update(TZ='UTC', GPTME_DISABLE_AUTH='true', GPTME_LOGS_HOME=archive, HOME=str(home),
                  XDG_CONFIG_HOME=str(home / '.config'), XDG_DATA_HOME=str(home / '.local'),
                  XDG_CACHE_HOME=str(home / '.cache'))
import time
time.tzset()

requests = [(f.stem, json.loads(f.read_text())) for f in sorted((pack / 'expected').glob('*.json'))
            if not f.stem.startswith('crasher-')]


def ask_convmeta(exp):
    req = urllib.request.Request(f"http://127.0.0.1:{port}{exp['request']}", headers=exp.get('request_headers', {}))
    try:
        with urllib.request.urlopen(req) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


# convmeta first: gptme creates workspace/ directories while it lists.
ours = {name: ask_convmeta(exp) for name, exp in requests}

from gptme.server import api_v2  # noqa: E402
from gptme.server.app import create_app  # noqa: E402
from gptme.logmanager import conversations  # noqa: E402
client = create_app().test_client()


def fields(body):
    """{(position, id): item} of a list answer (a page's cursor as one more item), else the value."""
    try:
        v = json.loads(body or b'null')
    except ValueError:
        return {'raw': body}
    if isinstance(v, dict) and 'conversations' in v:
        v = v['conversations'] + [{'id': 'next_cursor', 'value': v.get('next_cursor')}]
    if isinstance(v, list):
        return {(i, item.get('id')): item for i, item in enumerate(v)}
    return {'value': v}


def differing(a, b):
    out = set()
    for k in set(a) | set(b):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out |= {(k, f) for f in set(x) | set(y) if x.get(f) != y.get(f)}
        elif x != y:
            out.add((k, '*'))
    return out


changed = follows_new = follows_old = neither = 0
for name, exp in requests:
    api_v2._invalidate_conversations_cache()
    conversations._count_messages.cache_clear()
    r = client.get(exp['request'], headers=exp.get('request_headers', {}))
    recorded = (pack / 'expected' / f'{name}.body').read_bytes()
    recorded = recorded.replace(b'{ARCHIVE}', archive.encode()).replace(b'{HOME}', str(home.resolve()).encode())
    c, old, new = fields(ours[name][1]), fields(recorded), fields(r.get_data())
    moved = differing(new, old)
    if r.status_code != exp['status']:
        moved.add(('status', '*'))
    if not moved:
        continue
    changed += 1
    as_new, as_old = moved - differing(c, new), moved - differing(c, old)
    follows_new += len(as_new)
    follows_old += len(as_old)
    neither += len(moved - as_new - as_old)
    print(f"{name} ({exp['request']}): {len(moved)} values moved; convmeta gives the new one for {len(as_new)}, "
          f"0.35.1's for {len(as_old)}")
    for (k, f) in sorted(moved - as_new, key=str)[:5]:
        print(f"    {k} {f}: convmeta as {'0.35.1' if (k, f) in as_old else 'neither'}")
print(f"{len(requests)} requests; {changed} answered otherwise than 0.35.1; of the values that moved, convmeta "
      f"gives the new one for {follows_new}, 0.35.1's for {follows_old}, neither for {neither}")
sys.exit(1 if neither else 0)
