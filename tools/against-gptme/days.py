#!/usr/bin/env python3
"""Checks convmeta's `conversation_days` for one archive (see run) against gptme's answer: for
every listed conversation, each model's days add up to gptme's `models_usage` entry, and every
day is the date of a timestamp in the log as dateutil's `isoparse` reads it (no zone applied),
or '' where a line has none that reads. Then, given `usage --by workspace --json` of the index
made after gptme listed (`after.sqlite3`: gptme makes directories workspaces depend on),
checks its rows against that listing's items (whose every field compare.py holds to gptme's)
and the hidden conversations' rows: each workspace's cost and conversation count, a workspace
inside the conversation's own directory counted as none (null). Run with the venv's Python
(dateutil)."""
import collections, json, math, os, sqlite3, sys

from dateutil.parser import isoparse


def close(a, b):
    if isinstance(a, float) and math.isnan(a) or isinstance(b, float) and math.isnan(b):
        return isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def stamp_days(path):
    """The days of the log's timestamps, and whether some line has none that reads."""
    days, undated = set(), False
    for line in open(path, 'rb').read().split(b'\n'):
        try:
            m = json.loads(line.strip())  # as gptme's totals read a line
            days.add(isoparse(m['timestamp']).date().isoformat())
        except Exception:
            undated = True
    return days, undated


def check(d):
    body = json.load(open(d + '/gptme.json'))['body']
    db = sqlite3.connect(f'file:{d}/db.sqlite3?mode=ro', uri=True)
    rows = collections.defaultdict(list)
    for cid, day, model, cost, i, o, c in db.execute(
            'SELECT conversation_id, day, model, cost, input_tokens, output_tokens, cache_read_tokens FROM conversation_days'):
        # A NaN sum is stored as the text 'NaN' (SQLite has no NaN).
        rows[cid].append((day, model, *(float('nan') if v == 'NaN' else v for v in (cost, i, o, c))))
    bad = []
    for item in body:
        mine = rows.get(item['id'], [])
        sums = collections.defaultdict(lambda: [0.0, 0, 0, 0])
        for day, model, cost, i, o, c in mine:
            for k, v in enumerate((cost, i, o, c)):
                sums[model][k] += v
        usage = item['models_usage']
        if set(sums) != set(usage):
            bad.append((item['id'], 'models', sorted(usage), sorted(sums)))
            continue
        for model, u in usage.items():
            want = (u['cost'], u['input_tokens'], u['output_tokens'], u['cache_read_tokens'])
            if not all(close(float(a), float(b)) for a, b in zip(want, sums[model])):
                bad.append((item['id'], model, want, sums[model]))
        days, undated = stamp_days(item['path'])
        odd = {r[0] for r in mine} - days - ({''} if undated else set())
        if odd:
            bad.append((item['id'], 'days not in the log', sorted(odd)))
    n = sum(len(rows.get(item['id'], [])) for item in body)
    print(f'days: {len(body)} conversations, {n} rows, {len(bad)} differ')
    for b in bad[:5]:
        print('  ', json.dumps(b)[:300])
    return not bad


def check_workspaces(d):
    logs = os.path.realpath(d + '/logs')
    db = sqlite3.connect(f'file:{d}/after.sqlite3?mode=ro', uri=True)
    hidden = [{'id': i, 'workspace': w, 'models_usage': json.loads(u)}
              for i, w, u in db.execute('SELECT id, workspace, models_usage FROM conversations WHERE hidden = 1')]
    want = collections.defaultdict(lambda: [0.0, 0])
    for item in json.load(open(d + '/ours-after.json')) + hidden:
        if not item['models_usage']:
            continue
        own = f"{logs}/{item['id']}"
        ws = item['workspace']
        key = None if ws == own or ws.startswith(own + '/') else ws
        want[key][0] += sum(float(u['cost']) for u in item['models_usage'].values())
        want[key][1] += 1
    got = {r['workspace']: (float('nan') if r['cost'] is None else r['cost'], r['conversations']) for r in json.load(open(d + '/by-workspace.json'))}
    bad = [(k, want[k], got.get(k)) for k in set(want) | set(got)
           if k not in got or k not in want or not close(want[k][0], got[k][0]) or want[k][1] != got[k][1]]
    print(f'workspaces: {len(got)} rows, {sum(1 for k in got if k is None)} of own directories, {len(bad)} differ')
    for b in bad[:5]:
        print('  ', json.dumps(b)[:300])
    return not bad


if __name__ == '__main__':
    ok = check(sys.argv[1])
    if os.path.exists(sys.argv[1] + '/by-workspace.json'):
        ok = check_workspaces(sys.argv[1]) and ok
    sys.exit(0 if ok else 1)
