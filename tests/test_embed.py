"""Embedders: the local wheel model offline, Ollama and OpenAI-compatible servers on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from mirrorfs import embedders
from mirrorfs.embed import LocalEmbedder, unit_rows
from mirrorfs.embed_http import OllamaEmbedder, OpenAIEmbedder, ollama_base
from mirrorfs.errors import EmbedderError, EmbedderRequestError, InvalidValueError

KEY = "sk-test-SECRETKEY1234567890abcdef"


def test_local_embedder_gives_unit_float32_rows_and_a_stable_id():
    e = embedders.get("local")
    assert isinstance(e, LocalEmbedder) and embedders.get("local") is e
    assert e.id.startswith("wordllama-l2_supercat@0.4.") and e.id.endswith("/256")
    v = e.embed(["Sam drinks green tea every morning.", "", "   ", "What does he have at breakfast?"])
    assert v.shape == (4, 256) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), [1, 0, 0, 1], atol=1e-5)
    assert e.embed([]).shape == (0, 256)
    # Batches are sorted by length inside; the rows come back in the caller's order.
    texts = [f"{'long text ' * n}about tea" for n in (30, 1, 12)]
    assert np.allclose(e.embed(texts), np.stack([e.embed([t])[0] for t in texts]), atol=1e-5)


def test_unknown_embedder_name_is_a_clear_error():
    with pytest.raises(InvalidValueError, match="unknown embedder 'nope': use one of local, ollama, openai"):
        embedders.get("nope")


def test_unit_rows_rejects_wrong_shapes_naming_the_embedder_only():
    with pytest.raises(EmbedderError, match=r"srv returned vectors of shape \(1, 3\), expected \(2, 3\)"):
        unit_rows([[1, 2, 3]], 2, 3, "srv")
    assert np.allclose(unit_rows([[3, 4], [0, 0]], 2, 2, "srv"), [[0.6, 0.8], [0, 0]])


OFFLINE = r"""
import json, socket, sys
names = [n for _, n in socket.if_nameindex()]
routes = open("/proc/net/route").read().splitlines()[1:]
try:
    socket.getaddrinfo("pypi.org", 443)
    dns = True
except OSError:
    dns = False
s = socket.socket()
try:
    s.connect(("127.0.0.1", 9))
    loopback = True
except OSError:
    loopback = False
from mirrorfs import embedders
e = embedders.get("local")
v = e.embed(["Sam drinks green tea every morning.", "What does he have at breakfast?"])
print(json.dumps({"names": names, "routes": routes, "dns": dns, "loopback": loopback,
                  "id": e.id, "vectors": v.tolist()}))
"""


def test_local_embedder_runs_with_no_network_and_no_cache(tmp_path):
    unshare = shutil.which("unshare")
    assert unshare, "util-linux's unshare is needed to take the network away (apt-get install util-linux)"
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "HUGGINGFACE"))}
    env.update(HOME=str(home), XDG_CACHE_HOME=str(home / ".cache"), HF_HOME=str(home / "hf"))
    proc = subprocess.run([unshare, "--map-root-user", "--net", sys.executable, "-c", OFFLINE],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["names"] == ["lo"] and got["routes"] == [], "the namespace still has a network"
    assert got["dns"] is False and got["loopback"] is False
    local = embedders.get("local")
    assert got["id"] == local.id
    vectors = np.array(got["vectors"], dtype=np.float32)
    assert np.allclose(vectors, local.embed(["Sam drinks green tea every morning.",
                                             "What does he have at breakfast?"]), atol=1e-6)
    assert float(vectors[0] @ vectors[1]) > 0.2  # real, related vectors, not zeros
    assert list(home.rglob("*")) == [], "the local embedder wrote a cache"


# ---------------------------------------------------------------- fake servers


class _Server:
    """An HTTP server on 127.0.0.1 answering with a function of (path, headers, body)."""

    def __init__(self, answer):
        self.requests: list[tuple[str, dict, dict]] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append((self.path, dict(self.headers), body))
                status, payload = answer(self.path, self.headers, body)
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def serve():
    servers = []

    def start(answer):
        servers.append(_Server(answer))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _vec(text: str, dim: int = 4) -> list[float]:
    return [float(len(text) % 7 + 1), 1.0, float(text.count("e")), 0.5][:dim]


def test_ollama_embedder_speaks_api_embed(serve, monkeypatch):
    def answer(path, headers, body):
        assert path == "/api/embed"
        return 200, {"model": body["model"], "embeddings": [_vec(t) for t in body["input"]],
                     "total_duration": 14143917, "load_duration": 1019500, "prompt_eval_count": 8}

    server = serve(answer)
    monkeypatch.setenv("OLLAMA_HOST", server.url.removeprefix("http://"))
    e = OllamaEmbedder(model="all-minilm")
    assert e.id == "ollama-all-minilm@served/4"
    v = e.embed(["tea", "coffee please"])
    assert np.allclose(v, unit_rows([_vec("tea"), _vec("coffee please")], 2, 4, "x"))
    assert server.requests[-1][2] == {"model": "all-minilm", "input": ["tea", "coffee please"]}


def test_ollama_host_is_read_as_ollama_reads_it():
    assert ollama_base("") == "http://127.0.0.1:11434"
    assert ollama_base("0.0.0.0") == "http://127.0.0.1:11434"
    assert ollama_base("example.lan:8080") == "http://example.lan:8080"
    assert ollama_base("https://gpu.example.lan/") == "https://gpu.example.lan:443"


def test_ollama_error_and_unreachable_server_are_one_line_errors(serve):
    server = serve(lambda p, h, b: (404, {"error": 'model "nope" not found, try pulling it first'}))
    e = OllamaEmbedder(model="nope", host=server.url, dimension=4)
    with pytest.raises(EmbedderRequestError,
                       match=r'^http://127.0.0.1:\d+/api/embed answered HTTP 404: model "nope" not found, try pulling it first$'):
        e.embed(["tea"])
    server.close()
    with pytest.raises(EmbedderRequestError, match=r"^cannot reach http://127.0.0.1:\d+/api/embed: "):
        e.embed(["tea"])


def test_openai_embedder_speaks_v1_embeddings_and_reorders_by_index(serve):
    def answer(path, headers, body):
        assert path == "/v1/embeddings"
        assert headers["Authorization"] == f"Bearer {KEY}"
        items = [{"object": "embedding", "index": i, "embedding": _vec(t, 3)} for i, t in enumerate(body["input"])]
        return 200, {"object": "list", "data": items[::-1], "model": body["model"],
                     "usage": {"prompt_tokens": 5, "total_tokens": 5}}

    server = serve(answer)
    e = OpenAIEmbedder(model="text-embedding-3-small", base_url=server.url + "/v1", api_key=KEY,
                       dimension=3)
    v = e.embed(["tea", "green tea", "coffee"])
    assert np.allclose(v, unit_rows([_vec(t, 3) for t in ("tea", "green tea", "coffee")], 3, 3, "x"))
    body = server.requests[-1][2]
    # Sent shortest first (one batch of similar lengths), answered in the caller's order.
    assert body == {"model": "text-embedding-3-small", "input": ["tea", "coffee", "green tea"],
                    "encoding_format": "float", "dimensions": 3}
    assert KEY not in repr(e) and e.id == "openai-text-embedding-3-small@served/3"


def test_openai_key_never_appears_in_an_error(serve, monkeypatch):
    def answer(path, headers, body):
        # A worst case: the server echoes the whole key back.
        return 401, {"error": {"message": f"Incorrect API key provided: {KEY}. See your account.",
                               "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}

    server = serve(answer)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("OPENAI_BASE_URL", server.url.replace("http://", f"http://user:{KEY}@") + "/v1")
    e = OpenAIEmbedder(dimension=8)
    with pytest.raises(EmbedderRequestError) as info:
        e.embed(["tea"])
    message = str(info.value)
    assert message.startswith("http://127.0.0.1:") and "answered HTTP 401: Incorrect API key provided: ***" in message
    assert "SECRETKEY" not in message and "user" not in message


def test_openai_needs_a_key_for_the_real_service(monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    with pytest.raises(EmbedderRequestError, match="^the openai embedder needs an API key: set OPENAI_API_KEY$"):
        OpenAIEmbedder()


def test_a_server_answering_the_wrong_number_of_vectors_is_an_error(serve):
    server = serve(lambda p, h, b: (200, {"model": "m", "embeddings": [[1.0, 2.0]]}))
    e = OllamaEmbedder(model="m", host=server.url)
    assert e.dimension == 2
    with pytest.raises(EmbedderRequestError, match=r"returned 1 embeddings for 2 texts"):
        e.embed(["a", "b"])


def test_without_the_embed_extra_the_registry_still_imports_and_says_what_to_install():
    code = ("import sys; sys.modules['numpy'] = None\n"  # as on a core install
            "from mirrorfs import embedders\n"
            "from mirrorfs.errors import EmbedderNotInstalledError\n"
            "print(embedders.installed())\n"
            "try:\n    embedders.get('local').embed(['tea'])\n"
            "except EmbedderNotInstalledError as exc:\n    print(exc)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["False", "semantic search needs the embed extra: pip install 'mirrorfs[embed]'"]
