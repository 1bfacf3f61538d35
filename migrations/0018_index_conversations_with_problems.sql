-- convmeta schema 18. `status` (and every /metrics scrape) counts the conversations with
-- problems from this index rather than by reading every row: few conversations have any.

CREATE INDEX conversations_with_problems ON conversations (problems) WHERE problems > 0;
