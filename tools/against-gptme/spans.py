#!/usr/bin/env python3
"""Checks `convmeta list --since/--until` for one archive (see run) against Python's own local
time: for spans picked from the listing's items (each one's day; some months, years and open ends;
days and weeks ago), the ids listed are those of the items, in order, whose `modified` falls on
those local days as `datetime.fromtimestamp` reads it in the same `TZ`. Run with `TZ` set, as
convmeta was:

    spans.py DIR CONVMETA LOGS SEED
"""
import datetime, json, math, random, subprocess, sys


def local_day(modified):
    # Days begin on whole seconds, so the second a float lies in decides its day.
    return datetime.datetime.fromtimestamp(math.floor(modified)).date()


def main():
    d, convmeta, logs, seed = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    items = json.load(open(d + '/ours-after.json'))
    if not items:
        print('spans: no items')
        return 0
    rng = random.Random(seed)
    days = [local_day(i['modified']) for i in items]
    # Every item's own day, where a bound off by hours shows; then months, years and open ends.
    spans = [(day.isoformat(), day.isoformat()) for day in sorted(set(days))]
    for _ in range(5):
        day = rng.choice(days)
        month, year = day.strftime('%Y-%m'), day.strftime('%Y')
        spans += [(month, month), (year, None), (None, month), (day.isoformat(), None), (None, day.isoformat())]
    # Days and weeks ago, counted back from today on the same local clock.
    today = datetime.date.today()
    for _ in range(5):
        ago = (today - rng.choice(days)).days
        if ago >= 0:
            spans += [(f'{ago}d', f'{ago}d'), (f'{ago // 7}w', None), (None, f'{ago}d'), (f'{ago}d', 'today')]

    def resolved(text):
        """A day counted back as the ISO date it names; any other text as it is."""
        if text == 'today':
            return today.isoformat()
        if text is None or text[-1] not in 'dw':
            return text
        ago = int(text[:-1]) * (7 if text[-1] == 'w' else 1)
        return (today - datetime.timedelta(days=ago)).isoformat()

    failed = 0
    for since, until in spans:
        args = [convmeta, 'list', '--json', '--limit', '0', '--logs', logs, '--db', d + '/after.sqlite3']
        args += ['--since', since] if since else []
        args += ['--until', until] if until else []
        got = [i['id'] for i in json.loads(subprocess.run(args, capture_output=True, check=True).stdout)]

        def within(day, since=resolved(since), until=resolved(until)):
            text = day.isoformat()
            return (since is None or text[:len(since)] >= since) and (until is None or text[:len(until)] <= until)

        want = [i['id'] for i, day in zip(items, days) if within(day)]
        if got != want:
            failed = 1
            print(f'spans: --since {since} --until {until}: {len(got)} listed, {len(want)} wanted; '
                  f'extra {sorted(set(got) - set(want))[:5]}, missing {sorted(set(want) - set(got))[:5]}')
    print(f'spans: {len(spans)} spans, {"some differ" if failed else "0 differ"}')
    return failed


if __name__ == '__main__':
    sys.exit(main())
