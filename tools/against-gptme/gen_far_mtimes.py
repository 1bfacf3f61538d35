#!/usr/bin/env python3
"""Conversations whose log mtime lies far from today, which `modified` is, and `created` too
where no line has a timestamp: before 1970 (negative, with nanoseconds), at 0 and 1, within
seconds of the epoch with any fraction, at the
32-bit time_t edges, around daylight-saving transitions (the hour a clock repeats), far in the
future; many tied. ext4 keeps mtimes from 1901-12-13 to 2446-05-10 and clamps others, which
gptme and convmeta then both read as clamped.

    GEN=gen_far_mtimes.py tools/against-gptme/run 1-3 80 UTC America/New_York Europe/Dublin"""
import json, os, random, sys
seed, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
# Seconds since the epoch, in UTC.
EDGES = [0, 1, -1, -2, 59, -86400, -2**31, -2**31 + 1, 2**31 - 1, 2**31, 2**32, -631152000,
         -2208988800, 4102444800, 10**10, 14 * 10**9, 15 * 10**9]
# Around transitions: US (2040-03-11, 2040-11-04), EU (2040-03-25, 2040-10-28), Lord Howe's
# half hour (2040-04-01), and 1968's Dublin/London standard-time change.
TRANSITIONS = [2214975600, 2235535200, 2216425200, 2234570400, 2216987400, -37249200, 57722400]


def mtime_ns():
    k = rng.random()
    if k < 0.2:
        # Within seconds of the epoch, any fraction: where adding the microseconds to the whole
        # seconds as floats lands one float off Python's single division (session 40).
        return rng.randint(-10 * 10**9, 10 * 10**9)
    if k < 0.35:
        s = rng.choice(EDGES)
    elif k < 0.7:
        s = rng.choice(TRANSITIONS) + rng.randint(-7200, 7200)
    else:
        s = rng.randint(-2**31, 15 * 10**9)
    return s * 10**9 + rng.choice([0, 0, 1, 999999999, 500000, 499999, 500001, rng.randint(0, 999999999)])


os.makedirs(root, exist_ok=True)
shared = [mtime_ns() for _ in range(4)]
for i in range(n):
    d = os.path.join(root, 'm%d-%d' % (seed, i))
    os.makedirs(d)
    with open(os.path.join(d, 'conversation.jsonl'), 'w') as f:
        for k in range(rng.randint(0, 3)):
            m = {'role': rng.choice(['user', 'assistant', 'system']), 'content': 'hi %d' % k}
            if rng.random() < 0.3:
                m['timestamp'] = rng.choice(['1969-12-31T23:59:59.5', '2040-11-04T01:30:00', '1970-01-01T00:00:00Z'])
            f.write(json.dumps(m) + '\n')
    t = rng.choice(shared) if rng.random() < 0.3 else mtime_ns()
    os.utime(os.path.join(d, 'conversation.jsonl'), ns=(t, t))
