-- convmeta schema 2. Items rendered by earlier builds could differ from Python's float repr in
-- the last digit when a float (a `modified` with nanoseconds a multiple of 3,906,250, say) lies
-- exactly halfway between its two shortest forms. Marking every row's side files as changed
-- makes the next refresh render each item again from its stored state: no log is re-read.

UPDATE _scan_state SET side_stamp = 0;
