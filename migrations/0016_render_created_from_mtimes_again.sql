-- convmeta schema 16. A first line without a timestamp gives `created` as gptme's
-- `datetime.fromtimestamp(mtime, tz=timezone.utc).timestamp()`: the microseconds since the epoch
-- divided once. Earlier builds added the rounded microseconds to the whole seconds as floats,
-- which for an mtime near 1970 can land one float off (1.4642490000000001 for 1.464249).
-- Marking the side files of the conversations whose `created` is their log's mtime as changed
-- makes the next refresh render their items again: no log is re-read.

UPDATE _scan_state SET side_stamp = 0 WHERE json_extract(accumulator, '$.created') = 'FileMtime';
