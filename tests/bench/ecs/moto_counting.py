"""tests/it/moto/launcher.py with a request counter in front of it (for the ECS benchmark).

Every AWS request is counted as SERVICE:ACTION, the service taken from the
SigV4 credential scope, the action from X-Amz-Target (JSON protocols: ECS) or
the `Action` parameter (query protocols: ELBv2, EC2).

  GET    /bench/counts   -> {"ecs:UpdateService": 20, ...}
  DELETE /bench/counts   -> clears the counts (POST /moto-api/reset does too)

Same command line as launcher.py: --host, --port.
"""
import importlib.util
import io
import json
import os
import re
import threading
from collections import Counter
from urllib.parse import parse_qs

HERE = os.path.dirname(os.path.abspath(__file__))
spec = importlib.util.spec_from_file_location(
    "launcher", os.path.join(HERE, "..", "..", "it", "moto", "launcher.py"))
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)

COUNTS = Counter()
LOCK = threading.Lock()
SCOPE = re.compile(r"Credential=[^/]+/[^/]+/[^/]+/([^/]+)/")


def action_of(environ):
    scope = SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
    service = scope.group(1) if scope else "unsigned"
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return f"{service}:{target.rsplit('.', 1)[-1]}", None
    action = parse_qs(environ.get("QUERY_STRING", "")).get("Action")
    body = None
    if not action and environ.get("REQUEST_METHOD") == "POST":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        action = parse_qs(body.decode("utf-8", "replace")).get("Action")
    return f"{service}:{action[0] if action else environ.get('REQUEST_METHOD')}", body


original = launcher.test_endpoints


def counting(app):
    inner = original(app)

    def wsgi(environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path == "/bench/counts":
            with LOCK:
                if method == "DELETE":
                    COUNTS.clear()
                data = json.dumps(dict(sorted(COUNTS.items()))).encode()
            start_response("200 OK", [("Content-Type", "application/json"),
                                      ("Content-Length", str(len(data)))])
            return [data]
        if path == "/moto-api/reset" and method == "POST":
            with LOCK:
                COUNTS.clear()
        elif not path.startswith(("/moto-api", "/slipway-test")):
            name, body = action_of(environ)
            if body is not None:
                environ["wsgi.input"] = io.BytesIO(body)
            with LOCK:
                COUNTS[name] += 1
        return inner(environ, start_response)

    return wsgi


launcher.test_endpoints = counting

if __name__ == "__main__":
    launcher.main()
