#!/usr/bin/env python3
"""Compares `convmeta search` with gptme's test of a message, for one archive (see search):
for each query, with and without --system, the number of matching messages of every listed
conversation, as convmeta counts them (`search -n 0 -m 0 --json`) and as gptme's
`_get_matching_messages` counts them over the messages `Log.read_jsonl` reads (a conversation
whose log gptme cannot read at all is left out). A quarter as many queries again are two
texts (convmeta's extension), counted on gptme's side as the messages its test finds for
both. Then each single query again as a word (`-w`, convmeta's alone), counted here over the
same messages: the lowered text in the lowered content with no character of a word on either
side (Unicode's `\w`: letters, marks, decimal digits, letter numbers, connectors). Then each
single query in its own case (`-s`), counted here as the messages whose content holds it
exactly, and so as a word too (`-s -w`, where convmeta's texts are patterns). Then each
single query, and each pair as two alternatives, as a regular expression (`-E`, convmeta's
alone: the text escaped), counted here with Python's `re` (IGNORECASE, MULTILINE) over the
same messages. Run in gptme's venv:

    search.py CONVMETA LOGS DB SEED QUERIES
"""
import json, random, re, subprocess, sys, types, unicodedata
from pathlib import Path

from gptme.logmanager.manager import Log
from gptme.tools.chats import _get_matching_messages


def convmeta_json(convmeta, args):
    # `search` exits 1 when nothing is found, as grep does; 2 is trouble.
    done = subprocess.run([convmeta, *args], capture_output=True)
    if done.returncode not in (0, 1):
        raise subprocess.CalledProcessError(done.returncode, done.args, done.stdout, done.stderr)
    return json.loads(done.stdout)


def word_character(c):
    """UTS #18's `\\w`, as near as Python's Unicode data tells it (Other_Alphabetic's
    circled letters are the symbols among it)."""
    category = unicodedata.category(c)
    return category[0] in 'LM' or category in ('Nd', 'Nl', 'Pc') or c in '\u200c\u200d' or '\u24b6' <= c <= '\u24e9'


def says_as_word(content, text, lower=True):
    lowered, text = (content.lower(), text.lower()) if lower else (content, text)
    at = lowered.find(text)
    while at != -1:
        before, after = lowered[at - 1:at], lowered[at + len(text):at + len(text) + 1]
        if not (before and word_character(before)) and not (after and word_character(after)):
            return True
        at = lowered.find(text, at + 1)
    return False


def main():
    convmeta, logs, db, seed, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    rng = random.Random(seed)
    target = ['--logs', str(logs), '--db', db]
    listed = {i['id'] for i in convmeta_json(convmeta, ['list', '--json', '-n', '0', *target])}
    messages = {}
    for conversation in sorted(listed):
        try:
            messages[conversation] = Log.read_jsonl(logs / conversation / 'conversation.jsonl').messages
        except Exception as e:  # gptme cannot read it at all: nothing to compare
            print(f'{conversation}: gptme cannot read it: {e!r}', file=sys.stderr)
    # Queries: pieces of what the messages say, in random case, a few of Python's lowering's
    # corners, and texts outside ASCII the archives hold (a byte test looks for their ways).
    texts = [m.content for ms in messages.values() for m in ms if isinstance(m.content, str) and m.content.strip()]
    queries = ['the', 'é', 'k', 'i\u0307', 'ς', ' x', 'q"', '\\', '日本', 'NAÏ', '😀', 'привет', 'ΟΔΟΣ', 'σ']
    while texts and len(queries) < count:
        text = rng.choice(texts)
        start = rng.randrange(len(text))
        piece = text[start:start + rng.randint(1, 12)]
        # A command line holds no NUL and no lone surrogate.
        if piece.strip() and '\0' not in piece and not any(0xD800 <= ord(c) < 0xE000 for c in piece):
            queries.append(''.join(c.upper() if rng.random() < 0.3 else c for c in piece))
    pairs = [[rng.choice(queries), rng.choice(queries)] for _ in range(len(queries) // 4)]
    differ = compared = 0
    for texts in [[query] for query in queries] + pairs:
        for system in (False, True):
            args = ['search', '-n', '0', '-m', '0', '--json', *target, *(['--system'] if system else []), '--', *texts]
            ours = {s['id']: s['matches'] for s in convmeta_json(convmeta, args)}
            for conversation, ms in messages.items():
                log = types.SimpleNamespace(log=ms)
                found = [{i for i, _ in _get_matching_messages(log, text, system)} for text in texts]
                theirs = len(set.intersection(*found))
                compared += 1
                if ours.get(conversation, 0) != theirs:
                    differ += 1
                    if differ <= 20:
                        print(f'{texts!r} system={system} {conversation}: convmeta {ours.get(conversation, 0)}, gptme {theirs}')
    for query in queries:
        args = ['search', '-n', '0', '-m', '0', '--json', '-w', *target, '--', query]
        ours = {s['id']: s['matches'] for s in convmeta_json(convmeta, args)}
        for conversation, ms in messages.items():
            theirs = sum(1 for m in ms if m.role != 'system' and isinstance(m.content, str) and says_as_word(m.content, query))
            compared += 1
            if ours.get(conversation, 0) != theirs:
                differ += 1
                if differ <= 20:
                    print(f'{query!r} -w {conversation}: convmeta {ours.get(conversation, 0)}, here {theirs}')
    # In the case typed (`-s`): Python's `in`, no lowering at all.
    for query in queries:
        args = ['search', '-n', '0', '-m', '0', '--json', '-s', *target, '--', query]
        ours = {s['id']: s['matches'] for s in convmeta_json(convmeta, args)}
        for conversation, ms in messages.items():
            theirs = sum(1 for m in ms if m.role != 'system' and isinstance(m.content, str) and query in m.content)
            compared += 1
            if ours.get(conversation, 0) != theirs:
                differ += 1
                if differ <= 20:
                    print(f'{query!r} -s {conversation}: convmeta {ours.get(conversation, 0)}, Python {theirs}')
    for query in queries:
        args = ['search', '-n', '0', '-m', '0', '--json', '-s', '-w', *target, '--', query]
        ours = {s['id']: s['matches'] for s in convmeta_json(convmeta, args)}
        for conversation, ms in messages.items():
            theirs = sum(1 for m in ms if m.role != 'system' and isinstance(m.content, str) and says_as_word(m.content, query, lower=False))
            compared += 1
            if ours.get(conversation, 0) != theirs:
                differ += 1
                if differ <= 20:
                    print(f'{query!r} -s -w {conversation}: convmeta {ours.get(conversation, 0)}, here {theirs}')
    # The characters both regex syntaxes take escaped and some need escaped.
    escaped = lambda text: ''.join('\\' + c if c in '\\.+*?()|[]{}^$#&-~' else c for c in text)
    patterns = [escaped(q) for q in queries] + ['|'.join(escaped(t) for t in pair) for pair in pairs]
    for pattern in patterns:
        args = ['search', '-n', '0', '-m', '0', '--json', '-E', *target, '--', pattern]
        ours = {s['id']: s['matches'] for s in convmeta_json(convmeta, args)}
        regex = re.compile(pattern, re.IGNORECASE | re.MULTILINE)
        for conversation, ms in messages.items():
            theirs = sum(1 for m in ms if m.role != 'system' and isinstance(m.content, str) and regex.search(m.content))
            compared += 1
            if ours.get(conversation, 0) != theirs:
                differ += 1
                if differ <= 20:
                    print(f'{pattern!r} -E {conversation}: convmeta {ours.get(conversation, 0)}, Python {theirs}')
    print(f'{len(queries)} queries ({len(pairs)} of two texts, each as a word, in its own case, as a word in it, and as patterns), {len(messages)} conversations, {compared} counts compared, {differ} differ')


if __name__ == '__main__':
    sys.exit(main())
