-- convmeta schema 15. Earlier builds counted a token count or cost written as `NaN`,
-- `Infinity`, `-Infinity` or `1e400` as a field of the wrong type and added 0, where gptme's
-- `json.loads` reads a float that is not finite and adds it. Such a log has a field of the wrong
-- type counted: forget where those logs were read to, and the next refresh reads them again from
-- the start. Rows stay readable until then.

UPDATE _scan_state SET log_ino = NULL WHERE json_extract(accumulator, '$.problems.bad_fields') > 0;
