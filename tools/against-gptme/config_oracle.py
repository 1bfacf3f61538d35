#!/usr/bin/env python3
"""gptme's reading of each conversation's side files (see `configs`): the side-file fields of
its list item as gptme-server would serve them, or the exception that would fail its list."""
import json, logging, os, sys
from pathlib import Path
os.environ['GPTME_DISABLE_AUTH'] = 'true'
logging.disable(logging.CRITICAL)
from gptme.server.app import create_app
from gptme.logmanager.conversations import _meta_from_file
app = create_app()
FIELDS = ['name', 'workspace', 'agent_name', 'agent_path', 'agent_avatar', 'agent_urls']
answers = {}
for d in sorted(Path(sys.argv[1]).iterdir()):
    try:
        meta = _meta_from_file(d / 'conversation.jsonl')
        # Through the server's JSON provider: it renders what the item holds as the list would.
        answer = json.loads(app.json.dumps({f: getattr(meta, f) for f in FIELDS}))
        # Values that are not text (a number or a date as the name) are shown as they are by
        # gptme, and kept out by convmeta, as documented: marked, not compared.
        for f in ('name', 'agent_name', 'agent_avatar'):
            if not isinstance(getattr(meta, f), str | None):
                answer[f] = {'not text': answer[f]}
        answers[d.name] = answer
    except Exception as e:
        answers[d.name] = {'error': '%s: %s' % (type(e).__name__, e)}
json.dump(answers, sys.stdout)
