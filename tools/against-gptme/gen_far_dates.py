#!/usr/bin/env python3
"""Conversations whose timestamps lie far from today: before a zone's first transition, at the
32-bit time_t edges, past a zone file's last transition (where its POSIX rule decides), in
years 1 to 9999. Left out: naive times within a day of year 1's start or year 9999's end, where
gptme's `timestamp()` raises (a 500) in zones whose offset takes them out of range.

    GEN=gen_far_dates.py tools/against-gptme/run 1-3 80 UTC America/New_York Africa/Casablanca"""
import json, os, random, sys
seed, root, n = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
rng = random.Random(seed)
BASES = ['0001-01-02T12:00:00', '0002-03-04T05:06:07', '0100-01-01T00:00:00', '1000-06-15T12:00:00',
         '1799-12-31T23:59:59', '1800-01-01T00:00:00', '1847-12-01T00:00:00', '1883-11-18T12:03:58', '1900-01-01T00:00:00',
         '1901-12-13T20:45:52', '1901-12-13T20:45:51', '1916-05-21T02:30:00', '1968-10-27T01:30:00', '1969-12-31T23:59:59.999999',
         '1970-01-01T00:00:00', '2011-12-30T00:30:00', '2037-12-31T23:59:59', '2038-01-19T03:14:07', '2038-01-19T03:14:08',
         '2039-03-13T02:30:00', '2039-11-06T01:30:00', '2040-03-11T02:30:00', '2040-11-04T01:30:00', '2040-03-25T01:30:00',
         '2040-10-28T01:30:00', '2087-06-01T02:30:00', '2100-03-28T02:30:00', '2100-10-31T01:30:00', '2500-07-04T12:00:00',
         '3000-02-29T00:00:00', '9999-12-30T00:00:00', '2040-04-07T02:30:00',
         '2040-10-07T01:30:00', '2040-09-30T02:15:00', '2040-04-06T02:15:00']
SUFFIX = ['', '', '', '.5', '.123456', '+00:00', '+14:00', '-12:00', 'Z', '+05:45']
os.makedirs(root, exist_ok=True)
for i in range(n):
    d = os.path.join(root, 'y%d-%d' % (seed, i))
    os.makedirs(d)
    with open(os.path.join(d, 'conversation.jsonl'), 'w') as f:
        for k in range(rng.randint(1, 3)):
            ts = rng.choice(BASES) + rng.choice(SUFFIX)
            f.write(json.dumps({'role': rng.choice(['user', 'assistant']), 'content': 'hi %d' % k, 'timestamp': ts}) + '\n')
