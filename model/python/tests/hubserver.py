"""A fake Hugging Face hub for tests: serves files under /{owner}/{name}/resolve/{rev}/{file}."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Hub:
    """Serves repos = {"owner/name": {filename: bytes}} on 127.0.0.1 at a random port.

    private: repos that need "Authorization: Bearer <token>"; cut: (repo, file) pairs whose body is
    cut short after a Content-Length promising more; cdn: (repo, file) pairs answered with a 302 to
    another host name (localhost instead of 127.0.0.1), as the real hub sends big files to its CDN.
    renamed: {"old/name": "new/name"}, answered with a 307 to a relative path under the new name, as
    the hub does for a moved repo (tinkoff-ai/ruDialoGPT-small is now t-bank-ai/ruDialoGPT-small).
    requests records (method, path, authorization header) of every request.
    """

    def __init__(self, repos, private=(), token="secret", cut=(), cdn=(), renamed=None):
        self.repos, self.private, self.token = repos, set(private), token
        self.cut, self.cdn, self.renamed = set(cut), set(cdn), dict(renamed or {})
        self.requests = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def _handler(hub):  # noqa: N805 - the handler class closes over the hub
        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_HEAD(self):
                self._serve(body=False)

            def do_GET(self):
                self._serve(body=True)

            def _serve(self, body):
                hub.requests.append((self.command, self.path, self.headers.get("Authorization")))
                if self.path.startswith("/cdn/"):
                    return self._send(hub._file(self.path[len("/cdn"):]), body)
                parts = self.path.lstrip("/").split("/")
                if len(parts) != 5 or parts[2] != "resolve":
                    return self._status(404)
                repo, fname = "/".join(parts[:2]), parts[4]
                if repo in hub.renamed:
                    self.send_response(307)
                    self.send_header("Location", "/" + "/".join([hub.renamed[repo]] + parts[2:]))
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                if repo in hub.private and self.headers.get("Authorization") != f"Bearer {hub.token}":
                    return self._status(401)
                data = hub.repos.get(repo, {}).get(fname)
                if data is None:
                    return self._status(404)
                if (repo, fname) in hub.cdn:
                    self.send_response(302)
                    self.send_header("Location", f"http://localhost:{hub.port}/cdn{self.path}")
                    self.send_header("Content-Length", "0")
                    return self.end_headers()
                self._send(data, body, cut=(repo, fname) in hub.cut)

            def _send(self, data, body, cut=False):
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if body:
                    self.wfile.write(data[: len(data) // 2] if cut else data)
                if cut:
                    self.close_connection = True

            def _status(self, code):
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

    def _file(self, path):
        parts = path.lstrip("/").split("/")
        return self.repos["/".join(parts[:2])][parts[4]]
