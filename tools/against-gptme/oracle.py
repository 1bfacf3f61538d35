#!/usr/bin/env python3
"""gptme 0.35.1's answer (detail=true) for an archive, as the pack's producer asked for it."""
import json, os, sys
os.environ['GPTME_DISABLE_AUTH'] = 'true'
from gptme.server.app import create_app
from gptme.server import api_v2
from gptme.logmanager import conversations
app = create_app()
client = app.test_client()
api_v2._invalidate_conversations_cache()
conversations._count_messages.cache_clear()
r = client.get('/api/v2/conversations?limit=1000&detail=true')
sys.stdout.write(json.dumps({'status': r.status_code, 'body': r.get_json()}))
