#!/usr/bin/env python3
"""A random gptme archive whose lines are JSON written every way json.loads reads it, or nearly:
whitespace, number forms, escapes, duplicate and escaped keys, nesting, values of the wrong type
in the fields that feed the item, and lines that are not quite JSON. For `run` (GEN=gen_mutants.py)."""
import json, os, random, sys
seed, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)

# Whitespace between tokens: JSON's own, and bytes json.loads refuses there.
WS = [' ', '  ', '\t', '', '', '']
BAD_WS = ['\r', '\x0b', '\x0c', '\u00a0', '\u2028']
# Forms of a number, valid and not.
NUMBERS = ['0', '-0', '1', '1.0', '1e2', '1E+2', '1e-2', '100.00', '0.1', '1e400', '-1e400', '1e-400', 'NaN',
           'Infinity', '-Infinity', '123456789012345678901234567890', '12345678901234567890.5', '2.5e1',
           '3.0000000000000004', '9007199254740993']
BAD_NUMBERS = ['01', '.5', '1.', '+1', '0x10', '1_000', '- 1', 'nan', 'inf']
# Pieces of strings: escapes of every kind, valid and not, and raw bytes.
STRING_PIECES = ['a', 'text', '\\/', '\\u0000', '\\ud800', '\\udfff', '\\ud83d\\ude00', '\\u00E9', '\\u00e9',
                 '\x7f', 'é', '😀', '\\"', '\\\\', '\\n', '\\r\\n', '<think>', '</think>', ' ', '\\u2028',
                 '\\u0085', 'word ', 'more words ']
BAD_STRING_PIECES = ['\\u12', '\\x41', '\\a', '\x1f', '\t']
ROLES = ['user', 'assistant', 'system', 'tool', 'User', 'assistant ', '', 'us\\u0065r', 'ASSISTANT']
# Not a lone surrogate (`x\\ud800`): gptme shows it as such, convmeta as U+FFFD (see README).
MODELS = ['openai/gpt-5', 'anthropic/claude-sonnet-4-5', 'm', 'op\\u0065nai/x', 'nul\\u0000', '\\u00e9\\t',
          'a\\"b', 'unknown', '', '\\ud83d\\ude00']


# Most lines are JSON json.loads reads; in a broken one, any token may be written wrong.
broken = False


def pick(good, bad, p=0.15):
    return rng.choice(bad) if broken and rng.random() < p else rng.choice(good)


def ws():
    return pick(WS, BAD_WS) if rng.random() < 0.3 else ''


def jstring(pieces):
    return '"' + ''.join(pieces) + '"'


def rand_string():
    return jstring(pick(STRING_PIECES, BAD_STRING_PIECES) for _ in range(rng.randint(0, 8)))


def value(depth=0):
    r = rng.random()
    if r < 0.3: return pick(NUMBERS, BAD_NUMBERS)
    if r < 0.5: return rand_string()
    if r < 0.6: return pick(['true', 'false', 'null'], ['True', 'None', 'tru'])
    if r < 0.75 and depth < 4: return '[' + ','.join(value(depth + 1) for _ in range(rng.randint(0, 3))) + ']'
    if r < 0.9 and depth < 4: return obj([(rand_string(), value(depth + 1)) for _ in range(rng.randint(0, 3))])
    return pick(['[]', '{}', '""'], ['[', '{', '"', '', '[1,]', '{"a":1,}', '{"a"}', "'x'"], 1)


def obj(pairs):
    out = '{' + ws()
    for i, (k, v) in enumerate(pairs):
        if i: out += ws() + ',' + ws()
        out += k + ws() + ':' + ws() + v
    return out + ws() + '}'


# Counts and costs of other types, from their own generator so the rest of each seed's archive
# stays as it was: floats and `true` gptme adds as Python adds them, falsy values it reads as 0,
# values that raise TypeError where gptme adds them, ending that line's sums, and floats that
# are not finite, as json.loads reads them. (Not here, where convmeta counts a problem instead:
# ints past 2^63, a model that is not a string.)
vrng = random.Random(seed * 7919 + 11)
ODD_VALUES = ['12.0', '1e3', '2.5', '0.5', '0.0', '-0.0', '-3.5', '1E2', 'true', 'false', '""', '"12"', '[]',
              '[1]', '{}', '{"a": 1}', 'NaN', 'Infinity', '-Infinity', '1e400', '-1e999']


def odd(v):
    return vrng.choice(ODD_VALUES) if vrng.random() < 0.15 else v


def usage():
    keys = ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens']
    pairs = []
    for k in keys:
        if rng.random() < 0.7:
            v = rng.choice([str(rng.randint(0, 5000)), str(rng.randint(0, 5000)), '0', 'null'])
            pairs.append((jstring([k]), odd(v)))
    return obj(pairs)


# Token counts flat in `metadata` (older gptme), and a `usage` that is falsy or given twice
# (`usage or metadata` decides which counts gptme sums), from their own generator so the rest
# of each seed's archive stays as it was.
lrng = random.Random(seed * 104729 + 3)


def legacy_counts():
    pairs = []
    if lrng.random() < 0.3:
        pairs += ['"%s": %d' % (k, lrng.randint(0, 999)) for k in
                  ['input_tokens', 'output_tokens', 'cache_read_tokens', 'cache_creation_tokens'] if lrng.random() < 0.6]
    if lrng.random() < 0.2:
        pairs.append('"usage": ' + lrng.choice(['{}', 'null', '[]', '""', '0', 'false', '{"reasoning_tokens": 3}',
                                                '{"input_tokens": %d}' % lrng.randint(0, 999)]))
    lrng.shuffle(pairs)
    return pairs


def metadata():
    pairs = []
    if rng.random() < 0.8:
        pairs.append(('"model"', jstring([rng.choice(MODELS)]) if rng.random() < 0.9 else 'null'))
    if rng.random() < 0.7: pairs.append(('"usage"', usage()))
    if rng.random() < 0.7:
        pairs.append(('"cost"', odd(rng.choice(['0.01', '0.1', '1e-7', '0', '3', '0.30000000000000004', '1E-2', '-0.0', 'null']))))
    if rng.random() < 0.2: pairs.append((rand_string(), value()))
    out, extra = obj(pairs), legacy_counts()
    if not extra: return out
    # Spliced in after the others, so a `usage` here may repeat one before it.
    return out[:-1] + (', ' if pairs else '') + ', '.join(extra) + '}'


def metadata_value():
    """A metadata object, or a falsy value of another type: gptme 0.35.1 answers 500 for a
    truthy one that is not an object (convmeta lists it: the pack's archive-crashers/)."""
    return metadata() if rng.random() < 0.8 else rng.choice(['null', '""', '0', 'false', '[]', '0.0'])


def message():
    role = rng.choice(ROLES)
    content = [pick(STRING_PIECES, BAD_STRING_PIECES, 0.05) for _ in range(rng.randint(0, 12))]
    pairs = [('"role"', jstring([role])), ('"content"', jstring(content))]
    if rng.random() < 0.8:
        t = '2026-0%d-1%dT1%d:00:00%s' % (rng.randint(1, 9), rng.randint(0, 9), rng.randint(0, 9),
                                          rng.choice(['', '.5', 'Z', '+01:00', '.123456789', ' ']))
        if rng.random() < 0.2:  # escapes that read as the same text, or as other characters
            t = t.replace(rng.choice(['-', 'T', ':', '0']), rng.choice(['\\u002d', '\\u0054', '\\u003a', '\\u0030', '\\/']), 1)
        pairs.append(('"timestamp"', jstring([t])))
    if rng.random() < 0.5: pairs.append(('"metadata"', metadata_value()))
    if rng.random() < 0.1: pairs.append(('"files"', value()))
    if rng.random() < 0.03:  # deep nesting, within what gptme-server's Python parses (~990)
        d = rng.randint(100, 450)  # two levels each
        pairs.append((rand_string(), '[{"a":' * d + '1' + '}]' * d))
    if rng.random() < 0.1: pairs.append((rand_string(), value()))
    rng.shuffle(pairs)
    if rng.random() < 0.1:  # a duplicate key: json.loads keeps the last
        k = rng.choice(['"role"', '"content"', '"metadata"', '"timestamp"'])
        pairs.append((k, metadata_value() if k == '"metadata"' else rng.choice([jstring([rng.choice(ROLES)]), rand_string(), 'null'])))
    if rng.random() < 0.05:  # a key written with an escape that reads as one gptme looks for
        k = rng.choice(['"r\\u006fle"', '"\\u0063ontent"', '"met\\u0061data"'])
        pairs.append((k, metadata_value() if 'met' in k else jstring([rng.choice(ROLES)])))
    return obj(pairs)


def line():
    global broken
    broken = rng.random() < 0.25
    r = rng.random()
    text = message() if r < 0.85 else rng.choice(['[]', '"s"', '1', 'null', '{}', value(), '\ufeff' + message()])
    r = rng.random()
    if r < 0.05: text += rng.choice([' x', '{}', ',', ' ', '\t', '\x0c', '\x00'])
    elif r < 0.08: text = rng.choice([' ', '\x0c', '\u00a0', '\u3000', '\x1c', '\x85']) + text
    elif r < 0.1: text = '[' * 30 + ']' * 30 if rng.random() < 0.5 else text[:rng.randint(0, len(text))]
    return text + ('\r\n' if rng.random() < 0.05 else '\n')


os.makedirs(root, exist_ok=True)
for i in range(n):
    d = os.path.join(root, 'mutant-%d' % i)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, 'conversation.jsonl'), 'w', encoding='utf-8', newline='', errors='surrogatepass') as f:
        for _ in range(rng.randint(1, 12)):
            f.write(line())
    t = rng.randint(1735689600, 1798761600) * 10**9 + rng.randint(0, 999999999)
    os.utime(os.path.join(d, 'conversation.jsonl'), ns=(t, t))
