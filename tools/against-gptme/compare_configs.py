#!/usr/bin/env python3
"""gptme's reading of the side files against convmeta's, for one archive of `configs`."""
import collections, json, re, sys

d = sys.argv[1]
gptme = json.load(open(d + '/gptme.json'))
ours = {i['id']: i for i in json.load(open(d + '/ours.json'))}
before = {i['id']: i for i in json.load(open(d + '/ours-before.json'))}
problems = {r['id']: r['problem_notes'] or '' for r in json.load(open(d + '/problems.json'))}
differ, unflagged, examples = collections.Counter(), 0, []
refused = 0
kinds = collections.Counter()
for cid, g in sorted(gptme.items()):
    item = ours.get(cid)
    if item is None:
        differ['missing'] += 1
        examples.append((cid, 'missing'))
        continue
    if 'error' in g:
        refused += 1
        # gptme fails its whole list here; convmeta lists the conversation and counts why.
        if not problems.get(cid):
            unflagged += 1
            examples.append((cid, 'gptme refuses (%s), convmeta counts no problem' % g['error'][:120]))
        continue
    if problems.get(cid):
        # What convmeta counts where gptme reads on: each kind should be one gptme also warns
        # of or shows as garbage (listed with -v).
        for note in problems[cid].split('; '):
            kinds[re.sub(r'"[^"]*"|/\S+|\d+', '…', note)[:90]] += 1
    for f, v in g.items():
        # Documented: gptme shows a name that is not text as it is; convmeta keeps text.
        if isinstance(v, dict) and 'not text' in v:
            continue
        if v not in (item.get(f), before.get(cid, {}).get(f)):
            differ[f] += 1
            examples.append((cid, f, v, item.get(f), problems.get(cid)))
print('%d conversations, %d refused by gptme, unflagged: %d, fields differing: %s'
      % (len(gptme), refused, unflagged, dict(differ)))
for e in examples[:15]:
    print('  ', e)
if '-v' in sys.argv:
    for kind, count in kinds.most_common():
        print('   counted where gptme reads on: %4d  %s' % (count, kind))
sys.exit(1 if differ or unflagged else 0)
