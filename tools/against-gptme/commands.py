#!/usr/bin/env python3
"""gptme's own commands (gptme-util) against convmeta's, as a user runs them: each a fresh
process, timed from start to exit, the two taking turns; and their answers compared, so that
the times are of the same work. Prints a Markdown table, and exits 1 if an answer differs.

Usage: commands.py GPTME_UTIL CONVMETA LOGS DB HOME ROUNDS"""
import json, os, subprocess, sys, time

gptme_util, convmeta, logs, db, home, rounds = sys.argv[1:6] + [int(sys.argv[6])]
gptme_env = dict(os.environ, HOME=home, XDG_CONFIG_HOME=f'{home}/.config', XDG_DATA_HOME=f'{home}/.local',
                 GPTME_LOGS_HOME=logs, TZ='UTC')
convmeta_env = dict(os.environ, TZ='UTC')


def run(argv, env):
    t = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True)
    # convmeta search, as grep, exits 1 when it finds nothing.
    if done.returncode not in (0, 1) or done.returncode == 1 and 'search' not in argv:
        sys.exit(f'{argv}: exit code {done.returncode}: {done.stderr.decode()}')
    return time.perf_counter() - t, done.stdout


def median(xs):
    return sorted(xs)[len(xs) // 2]


def same_list(theirs, ours):
    """The same conversations in the same order, with the same counts, names and totals."""
    key = lambda c: (c['id'], c['name'], c['messages'], c['total_input_tokens'], c['total_output_tokens'])
    return [key(c) for c in theirs] == [key(c) for c in ours]


def close(a, b):
    return abs(a - b) <= 1e-9 * max(1.0, abs(a), abs(b))


def same_spend(theirs, ours):
    """Tokens and cost by model. gptme-util also puts a conversation without usage under its
    last model (or `unknown`) with nothing spent, and counts it there, so its rows may hold
    more conversations, and models with nothing spent that convmeta has no row for."""
    theirs = {m['model']: m for m in theirs['by_model']}
    ours = {m['model']: m for m in ours}
    spent = lambda m: m['input_tokens'] or m['output_tokens'] or m['cache_read_tokens'] or m['cost']
    return ours.keys() <= theirs.keys() and not any(spent(theirs[k]) for k in theirs.keys() - ours.keys()) and all(
        theirs[k][t] == ours[k][t] for k in ours for t in ('input_tokens', 'output_tokens', 'cache_read_tokens')
    ) and all(close(theirs[k]['cost'], ours[k]['cost']) for k in ours)


def same_search(theirs, ours):
    """The same conversations, each with as many matching messages."""
    return sorted((c['id'], c['matches']) for c in theirs) == sorted((c['id'], c['matches']) for c in ours)


n = len([d for d in os.listdir(logs) if os.path.isfile(f'{logs}/{d}/conversation.jsonl')])
cm = [convmeta]
where = ['--logs', logs, '--db', db]
tasks = [
    ('the newest 100 conversations', 'chats list -n 100 --json', 'list -n 100 --json',
     [gptme_util, 'chats', 'list', '-n', '100', '--json'], cm + ['list', '-n', '100', '--json'] + where, same_list),
    ('tokens and cost by model, test conversations too', 'stats --include-test --json', 'usage --by model --json',
     [gptme_util, 'stats', '--include-test', '--json'], cm + ['usage', '--by', 'model', '--json'] + where, same_spend),
]
for text, found in [('quokka', 'in no message'), ('naïve → fix', 'in some messages')]:
    # gptme-util reads the 10 x `-n` newest conversations: -n as large as the archive reads all.
    tasks.append((f'`{text}` ({found}), the whole archive', f'chats search \'{text}\' -n {n} --json',
                  f'search \'{text}\' -n 0 --json', [gptme_util, 'chats', 'search', text, '-n', str(n), '--json'],
                  cm + ['search', text, '-n', '0', '--json'] + where, same_search))

print(f'{n} conversations, {rounds} rounds, medians\n')
print('| task | gptme-util | time | convmeta | time | gptme-util over convmeta | same answer |')
print('|---|---|---|---|---|---|---|')
failed = False
for task, theirs_args, ours_args, theirs_argv, ours_argv, same in tasks:
    t_theirs, t_ours = [], []
    for _ in range(rounds):
        t, theirs = run(theirs_argv, gptme_env)
        t_theirs.append(t)
        t, ours = run(ours_argv, convmeta_env)
        t_ours.append(t)
    ok = same(json.loads(theirs), json.loads(ours))
    failed |= not ok
    a, b = median(t_theirs), median(t_ours)
    print(f'| {task} | `{theirs_args}` | {a * 1000:,.0f} ms | `{ours_args}` | {b * 1000:,.1f} ms | '
          f'**{a / b:,.0f}x** | {"yes" if ok else "**no**"} |')
sys.exit(1 if failed else 0)
