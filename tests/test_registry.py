"""Tests for the checkpoint registry and downloader, against a real local HTTP server."""

from __future__ import annotations

import dataclasses
import hashlib
import http.server
import os
import signal
import socket
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tagger.embedded import EMBEDDED_MODEL
from tagger.errors import DownloadError, TaggerError
from tagger.loading import available_models, default_model_name
from tagger.registry import (
    DEFAULT_REMOTE_MODEL,
    MODELS,
    RemoteModel,
    cache_dir,
    download,
)

PAYLOAD_SIZE = 3 * 1024 * 1024 + 17  # a few MB, not a multiple of the read size


class _Server:
    """A threaded HTTP server over a folder that counts GETs per path and can misbehave on purpose."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.requests: list[str] = []
        self.stall = threading.Event()  # serve half the body, then hang until released
        self.interrupt = False  # serve half the body, then send SIGINT to the main thread
        self.release = threading.Event()
        server = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def __init__(self, *args, **kwargs):
                super().__init__(*args, directory=str(folder), **kwargs)

            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:
                server.requests.append(urllib.parse.urlsplit(self.path).path)
                if not (server.stall.is_set() or server.interrupt):
                    return super().do_GET()
                body = (folder / self.path.lstrip("/")).read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                if server.interrupt:
                    signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                server.release.wait(10)

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.closed = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def payload() -> bytes:
    return os.urandom(PAYLOAD_SIZE)


@pytest.fixture
def server(tmp_path: Path, payload: bytes) -> Iterator[_Server]:
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.pt").write_bytes(payload)
    running = _Server(served)
    yield running
    running.close()


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def _remote(server: _Server, payload: bytes, **changes) -> RemoteModel:
    fields = dict(
        url=server.url("model.pt"),
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
    )
    fields.update(changes)
    return dataclasses.replace(MODELS[DEFAULT_REMOTE_MODEL], **fields)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _listing(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# -- registry ---------------------------------------------------------------------------------


def test_registry_entries_are_official_release_assets() -> None:
    names = [model.name for model in MODELS.values()]
    assert len(names) == len(set(names))
    assert available_models() == [EMBEDDED_MODEL, *MODELS]
    assert default_model_name() == EMBEDDED_MODEL
    assert list(MODELS)[0] == DEFAULT_REMOTE_MODEL
    assert {"passt-s-swa", "passt-s-kd", "passt-s-s12", "passt-s-s14", "passt-s-s16",
            "passt-s-20s", "passt-s-30s"} <= set(names)
    for key, model in MODELS.items():
        assert key == model.name
        assert model.url.startswith("https://github.com/kkoutini/PaSST/releases/download/")
        assert model.url.endswith(".pt")
        assert model.filename == model.url.rsplit("/", 1)[1]
        assert model.sha256 is None or (len(model.sha256) == 64 and int(model.sha256, 16) >= 0)
        assert model.size is None or model.size > 0
        assert model.stride in (10, 12, 14, 16)
        assert model.context_seconds in (10.0, 20.0, 30.0)
        assert model.description and "\n" not in model.description
    assert len({model.filename for model in MODELS.values()}) == len(MODELS)


def test_cache_dir_honours_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("TAGGER_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == tmp_path / "explicit"

    monkeypatch.delenv("TAGGER_CACHE_DIR")
    assert cache_dir() == tmp_path / "xdg" / "tagger"

    monkeypatch.setenv("TAGGER_CACHE_DIR", "")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "tagger"


# -- downloads --------------------------------------------------------------------------------


def test_download_verifies_and_caches(server: _Server, payload: bytes, cache: Path) -> None:
    model = _remote(server, payload)
    path = download(model, cache, show_progress=False)
    assert path == cache / "model.pt"
    assert path.read_bytes() == payload
    assert _listing(cache) == ["model.pt"]  # known hash: no TOFU record, no temp files
    assert server.requests == ["/model.pt"]

    server.close()  # the second call must not need the network
    assert download(model, cache, show_progress=False) == path
    assert server.requests == ["/model.pt"]


def test_download_uses_cache_dir_by_default(server: _Server, payload: bytes, cache: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAGGER_CACHE_DIR", str(cache))
    assert download(_remote(server, payload), show_progress=False) == cache / "model.pt"


def test_download_shows_progress_on_stderr(server: _Server, payload: bytes, cache: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    download(_remote(server, payload), cache, show_progress=True)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "passt-s-swa" in captured.err


def test_wrong_sha256_is_rejected_and_nothing_is_left(server: _Server, payload: bytes,
                                                      cache: Path) -> None:
    wrong = "0" * 64
    with pytest.raises(DownloadError) as caught:
        download(_remote(server, payload, sha256=wrong), cache, show_progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert wrong in message and hashlib.sha256(payload).hexdigest() in message
    assert _listing(cache) == []


def test_wrong_size_is_rejected(server: _Server, payload: bytes, cache: Path) -> None:
    with pytest.raises(DownloadError, match=f"expected {len(payload) + 1} bytes, got {len(payload)}"):
        download(_remote(server, payload, size=len(payload) + 1), cache, show_progress=False)
    assert _listing(cache) == []


def test_http_404_is_a_one_line_error(server: _Server, payload: bytes, cache: Path) -> None:
    model = _remote(server, payload, url=server.url("missing.pt"))
    with pytest.raises(DownloadError) as caught:
        download(model, cache, show_progress=False)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot download passt-s-swa from {model.url}: HTTP 404")
    assert "--model" in message
    assert _listing(cache) == []


def test_connection_refused_is_a_download_error(payload: bytes, cache: Path) -> None:
    model = dataclasses.replace(MODELS[DEFAULT_REMOTE_MODEL],
                                url=f"http://127.0.0.1:{_closed_port()}/model.pt")
    with pytest.raises(DownloadError, match="are you offline") as caught:
        download(model, cache, show_progress=False)
    assert isinstance(caught.value, TaggerError)
    assert "\n" not in str(caught.value)
    assert _listing(cache) == []


def test_stalled_transfer_times_out_without_leftovers(server: _Server, payload: bytes,
                                                      cache: Path) -> None:
    server.stall.set()
    with pytest.raises(DownloadError, match="timed out"):
        download(_remote(server, payload), cache, show_progress=False, timeout=0.5)
    assert _listing(cache) == []


def test_ctrl_c_leaves_no_partial_file(server: _Server, payload: bytes, cache: Path) -> None:
    server.interrupt = True
    with pytest.raises(KeyboardInterrupt):
        download(_remote(server, payload), cache, show_progress=False, timeout=5)
    assert _listing(cache) == []


def test_corrupted_cache_with_known_hash_is_downloaded_again(server: _Server, payload: bytes,
                                                             cache: Path) -> None:
    model = _remote(server, payload)
    path = download(model, cache, show_progress=False)
    path.write_bytes(b"x" + payload[1:])  # same size, different content
    assert download(model, cache, show_progress=False).read_bytes() == payload
    assert server.requests == ["/model.pt", "/model.pt"]


def test_unknown_hash_is_trusted_on_first_use(server: _Server, payload: bytes, cache: Path) -> None:
    model = _remote(server, payload, sha256=None, size=None)
    path = download(model, cache, show_progress=False)
    record = cache / "model.pt.sha256"
    assert record.read_text().split() == [hashlib.sha256(payload).hexdigest(), "model.pt"]
    assert _listing(cache) == ["model.pt", "model.pt.sha256"]

    assert download(model, cache, show_progress=False) == path  # verified against the record
    assert server.requests == ["/model.pt"]

    # A corrupted cached file is detected: with the server gone it cannot be replaced ...
    path.write_bytes(payload[:-1] + bytes([payload[-1] ^ 1]))
    server.close()
    with pytest.raises(DownloadError, match="cannot download"):
        download(model, cache, show_progress=False, timeout=2)
    assert _listing(cache) == ["model.pt", "model.pt.sha256"]


def test_unknown_hash_corruption_is_repaired_and_upstream_change_is_caught(
        server: _Server, payload: bytes, cache: Path) -> None:
    model = _remote(server, payload, sha256=None, size=None)
    path = download(model, cache, show_progress=False)
    path.write_bytes(b"corrupt")
    assert download(model, cache, show_progress=False).read_bytes() == payload
    assert len(server.requests) == 2

    # The file on the server changes: the recorded hash no longer matches, so it is refused.
    (server.folder / "model.pt").write_bytes(payload[::-1])
    path.unlink()
    with pytest.raises(DownloadError, match="recorded in .*model.pt.sha256"):
        download(model, cache, show_progress=False)
    assert _listing(cache) == ["model.pt.sha256"]


def test_cached_file_without_record_is_recorded(payload: bytes, cache: Path) -> None:
    cache.mkdir()
    (cache / "model.pt").write_bytes(payload)
    model = dataclasses.replace(MODELS[DEFAULT_REMOTE_MODEL], sha256=None, size=None,
                                url=f"http://127.0.0.1:{_closed_port()}/model.pt")
    assert download(model, cache, show_progress=False) == cache / "model.pt"
    assert (cache / "model.pt.sha256").read_text().split()[0] == hashlib.sha256(payload).hexdigest()
