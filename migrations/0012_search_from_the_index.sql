-- convmeta schema 12. A search (`?q=`) tests every listed conversation's name, id and preview,
-- newest first. With them in the newest-first index it walks that index alone (an eighth of
-- the table's pages) and reads an item only for a conversation it lists.

DROP INDEX conversations_newest;
CREATE INDEX conversations_newest ON conversations (hidden, modified DESC, id DESC, name, last_message_preview);
