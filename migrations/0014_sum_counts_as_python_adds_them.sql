-- convmeta schema 14. Earlier builds counted a token count or cost that was not an integer
-- (`12.0`, `true`, `"12"`) as a field of the wrong type and added 0, where gptme adds floats and
-- `true` as Python adds them, and stops a line's sums at a value that is not a number. Only a
-- log with a field of the wrong type can hold such a value: forget where those logs were read
-- to, and the next refresh reads them again from the start. Rows stay readable until then.

UPDATE _scan_state SET log_ino = NULL WHERE json_extract(accumulator, '$.problems.bad_fields') > 0;
