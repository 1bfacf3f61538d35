#!/usr/bin/env python3
"""Serves a web UI build as a single-page app (any unknown path gets index.html), as the hosted
UI is served from its own origin. Usage: spa_server.py DIR PORT"""
import functools, http.server, os, sys

root, port = sys.argv[1], int(sys.argv[2])


class Handler(http.server.SimpleHTTPRequestHandler):
    def send_head(self):
        if not os.path.exists(self.translate_path(self.path)):
            self.path = '/index.html'
        return super().send_head()

    def log_message(self, *args):
        pass


http.server.ThreadingHTTPServer(('127.0.0.1', port), functools.partial(Handler, directory=root)).serve_forever()
