-- convmeta schema 9. A log or `config.toml` made readable by a chown or chgrp was not read
-- again: the side stamp held the files' permission bits, not their owner and group. It holds
-- them now, so every stored side stamp is stale: clearing them makes the next refresh read each
-- conversation's side files again, and a log stored as unreadable; no readable log is re-read.

UPDATE _scan_state SET side_stamp = 0;
