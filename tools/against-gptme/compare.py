#!/usr/bin/env python3
"""Field-by-field comparison of gptme's answer and convmeta's for one archive (see run)."""
import json, sys, collections


def improved(path):
    """The spec's deliberate improvement: gptme's raw-bytes pick of the preview line is not a
    parsing user/assistant line, so gptme shows no preview."""
    last = None
    for line in open(path, 'rb'):
        line = line.strip()
        if line and (b'"user"' in line or b'"assistant"' in line):
            last = line
    try:
        m = json.loads(last)
        return m.get('role') not in ('user', 'assistant')
    except Exception:
        return last is not None


def differences(theirs, ours, after=()):
    """(ids only in one, fields differing by count, an example of each, previews improved,
    values that only convmeta's listing of the archive as gptme left it gives). gptme makes
    workspace directories while it lists, which can change other conversations' workspaces:
    `after` is convmeta's fresh listing of the archive once gptme's has ended."""
    gi = {c['id']: c for c in theirs}
    oi = {c['id']: c for c in ours}
    ai = {c['id']: c for c in after}
    diffs = collections.Counter()
    examples = {}
    improvements = 0
    made_by_gptme = 0
    for k in sorted(set(gi) & set(oi)):
        skip = set()
        if gi[k].get('last_message_preview') is None and oi[k].get('last_message_preview') is not None \
                and improved(gi[k]['path']):
            skip = {'last_message_preview', 'last_message_role'}
            improvements += 1
        for f in sorted(set(gi[k]) | set(oi[k])):
            if f not in skip and gi[k].get(f) != oi[k].get(f):
                if k in ai and gi[k].get(f) == ai[k].get(f):
                    made_by_gptme += 1
                    continue
                diffs[f] += 1
                examples.setdefault(f, (k, gi[k].get(f), oi[k].get(f)))
    only = (sorted(set(gi) - set(oi)), sorted(set(oi) - set(gi)))
    return only, dict(diffs), examples, improvements, made_by_gptme


if __name__ == '__main__':
    d = sys.argv[1]
    g = json.load(open(d + '/gptme.json'))
    if g['status'] != 200:
        print('gptme status', g['status']); sys.exit(1)
    ours = json.load(open(d + '/ours.json'))
    try:
        after = json.load(open(d + '/ours-after.json'))
    except FileNotFoundError:
        after = []
    only, diffs, examples, improvements, made_by_gptme = differences(g['body'], ours, after)
    if only[0] or only[1]:
        print('ids differ: only gptme', only[0][:5], 'only ours', only[1][:5])
    order_same = [c['id'] for c in g['body']] == [c['id'] for c in ours]
    print(f'{len(g["body"])} conversations, order same: {order_same}, previews improved by the spec: {improvements}, fields differing: {diffs}'
          + (f', values as after gptme made directories while listing: {made_by_gptme}' if made_by_gptme else ''))
    for f, (k, a, b) in examples.items():
        print(f'  {f} in {k}: gptme {json.dumps(a)[:150]} | ours {json.dumps(b)[:150]}')
