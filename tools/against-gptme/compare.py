#!/usr/bin/env python3
"""Field-by-field comparison of gptme's answer and convmeta's for one archive (see run)."""
import collections, json, re, sys


def improved(path):
    """The spec's deliberate improvement: gptme picks the preview's line by its raw bytes (the
    last holding `"user"` or `"assistant"`); the spec, the last line that parses with one of
    those roles. Where the two picks differ: the (role, preview) the spec's pick gives, made as
    gptme makes them; else None."""
    raw = spec = None
    for line in open(path, 'rb'):
        line = line.strip()
        if line and (b'"user"' in line or b'"assistant"' in line):
            raw = line
        try:
            m = json.loads(line)
        except Exception:
            continue
        if isinstance(m, dict) and m.get('role') in ('user', 'assistant'):
            spec = line
    return None if raw == spec else preview(spec)


def preview(line):
    """gptme 0.35.1's `_parse_preview`, in its words' effect: (role, preview) or (None, None)."""
    if line is None:
        return None, None
    m = json.loads(line)
    content = m.get('content', '')
    try:
        if content:
            content = re.sub(r'<think(?:ing)?>[\s\S]*?</think(?:ing)?>', '', content)
            content = re.sub(r'<think(?:ing)?>[\s\S]*$', '', content).strip()
        if content:
            collapsed = ' '.join(content.split())
            return m['role'], collapsed[:100] + '...' if len(collapsed) > 100 else collapsed
    except TypeError:
        pass
    return None, None


def same(a, b):
    """Equal as JSON: NaN equals NaN, and an int is not the float of its value (`6` is not
    `6.0`, which Python's == would let by)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


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
        spec = improved(gi[k]['path'])
        if spec is not None:
            # Compared with what the spec's pick gives, not with gptme's.
            skip = {'last_message_preview', 'last_message_role'}
            ours_pair = (oi[k].get('last_message_role'), oi[k].get('last_message_preview'))
            if ours_pair != spec:
                diffs['spec preview'] += 1
                examples.setdefault('spec preview', (k, spec, ours_pair))
            elif ours_pair != (gi[k].get('last_message_role'), gi[k].get('last_message_preview')):
                improvements += 1
        for f in sorted(set(gi[k]) | set(oi[k])):
            if f not in skip and not same(gi[k].get(f), oi[k].get(f)):
                if k in ai and same(gi[k].get(f), ai[k].get(f)):
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
    if not order_same and not only[0] and not only[1]:
        # gptme leaves equal `modified` values in directory order, convmeta orders them by id.
        by_key = sorted(g['body'], key=lambda c: (c['modified'], c['id']), reverse=True)
        order_same = 'up to ties' if [c['id'] for c in by_key] == [c['id'] for c in ours] else False
    print(f'{len(g["body"])} conversations, order same: {order_same}, previews improved by the spec: {improvements}, fields differing: {diffs}'
          + (f', values as after gptme made directories while listing: {made_by_gptme}' if made_by_gptme else ''))
    if order_same is False:
        print('  order: gptme', [c['id'] for c in g['body']][:8], '| ours', [c['id'] for c in ours][:8])
    for f, (k, a, b) in examples.items():
        print(f'  {f} in {k}: gptme {json.dumps(a)[:150]} | ours {json.dumps(b)[:150]}')
