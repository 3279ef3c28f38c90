"""`python -m a2h_core download` against a local server imitating Google Drive (confirmation page, Range requests,
a dropped connection); no test touches the internet."""
import http.server
import threading
import urllib.parse
from pathlib import Path

import pytest

from a2h_core import cli
from a2h_core.config import ModelConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.io.download import TERMS_NOTE, confirmed_url, download_checkpoint
from a2h_core.io.weights import read_metadata
from a2h_devkit.random_weights import random_state, save_original


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """Reduced random weights in the authors' pickle layout, as bytes."""
    path = save_original(random_state(ModelConfig.reduced(), seed=3),
                         tmp_path_factory.mktemp("original") / "audio2head.pth.tar", epoch=7)
    return path.read_bytes()


class FakeDrive(http.server.ThreadingHTTPServer):
    """/uc answers with Drive's large-file warning page; its form leads to /download, which serves the file and
    honours Range. `drop_after` bytes: the first file response stops there (a dropped connection)."""

    def __init__(self, payload: bytes):
        super().__init__(("127.0.0.1", 0), DriveHandler)
        self.payload, self.drop_after, self.ranges, self.form = payload, None, [], True

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/uc?export=download&id=FILEID"


class DriveHandler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        parts = urllib.parse.urlsplit(self.path)
        query = dict(urllib.parse.parse_qsl(parts.query))
        server = self.server
        if parts.path == "/uc":
            action = f"http://127.0.0.1:{server.server_address[1]}/download"
            body = ("<html><body><p>Google Drive can't scan this file for viruses.</p>"
                    f'<form id="download-form" action="{action}" method="get">'
                    '<input type="submit" value="Download anyway"/>'
                    '<input type="hidden" name="id" value="FILEID"><input type="hidden" name="export" '
                    'value="download"><input type="hidden" name="confirm" value="t"><input type="hidden" '
                    'name="uuid" value="abc-123"></form></body></html>' if server.form else
                    "<html><body>Too many users have viewed or downloaded this file recently.</body></html>")
            self._send(200, body.encode(), "text/html; charset=utf-8")
            return
        if parts.path != "/download" or query.get("confirm") != "t" or query.get("uuid") != "abc-123":
            self._send(404, b"not found", "text/plain")
            return
        data, start = server.payload, 0
        requested = self.headers.get("Range")
        server.ranges.append(requested)
        if requested:
            start = int(requested.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data) - start))
        self.end_headers()
        if server.drop_after is not None:
            self.wfile.write(data[start:server.drop_after])
            server.drop_after = None
            self.close_connection = True
            return
        self.wfile.write(data[start:])

    def _send(self, code, body, content_type):
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def drive(checkpoint):
    server = FakeDrive(checkpoint)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def reduced_is_published(monkeypatch):
    """The command converts for the published model; the test file holds the reduced networks."""
    monkeypatch.setattr(ModelConfig, "published", ModelConfig.reduced)


def test_cli_downloads_through_the_confirmation_page_converts_and_loads(drive, checkpoint, tmp_path, capsys,
                                                                       reduced_is_published):
    folder = tmp_path / "models"
    assert cli.main(["download", "--to", str(folder), "--url", drive.url]) == 0
    captured = capsys.readouterr()
    assert captured.err.index(TERMS_NOTE) < captured.err.index("downloading")
    assert "strict load OK" in captured.out and "Downloading [" in captured.err
    assert (folder / "audio2head.pth.tar").read_bytes() == checkpoint
    assert read_metadata(folder / "audio2head.safetensors")["source_file"] == "audio2head.pth.tar"
    assert sorted(p.name for p in folder.iterdir()) == ["audio2head.pth.tar", "audio2head.safetensors"]
    assert drive.ranges == [None]
    # A second run finds the checkpoint and does not download again.
    assert cli.main(["download", "--to", str(folder), "--url", drive.url]) == 0
    assert "not downloading it again" in capsys.readouterr().err and drive.ranges == [None]


def test_an_interrupted_download_resumes_with_a_range_request(drive, checkpoint, tmp_path):
    drive.drop_after = len(checkpoint) // 3
    with pytest.raises(Audio2HeadError, match="received are kept and the next run resumes"):
        download_checkpoint(tmp_path, url=drive.url, config=ModelConfig.reduced())
    assert not (tmp_path / "audio2head.pth.tar").exists()
    assert (tmp_path / ".audio2head.pth.tar.download").stat().st_size == len(checkpoint) // 3
    seen = []
    converted = download_checkpoint(tmp_path, url=drive.url, config=ModelConfig.reduced(),
                                    progress=lambda done, total: seen.append((done, total)))
    assert drive.ranges == [None, f"bytes={len(checkpoint) // 3}-"]
    assert (tmp_path / "audio2head.pth.tar").read_bytes() == checkpoint
    assert seen[-1] == (len(checkpoint), len(checkpoint)) and converted.is_file()
    assert not (tmp_path / ".audio2head.pth.tar.download").exists()


def test_offline_says_which_file_goes_where(tmp_path, capsys):
    import socket

    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    assert cli.main(["download", "--to", str(tmp_path / "m"), "--url", f"http://127.0.0.1:{port}/uc"]) == 2
    message = capsys.readouterr().err.splitlines()[-1]
    assert message.startswith("error: cannot download")
    assert "drive.google.com/file/d/1tvI43ZIrnx9Ti2TpFiEO4dK5DOwcECD7" in message
    assert repr(str(Path(tmp_path / "m" / "audio2head.pth.tar"))) in message


def test_a_drive_page_without_a_link_is_a_clear_error(drive, tmp_path):
    drive.form = False
    with pytest.raises(Audio2HeadError, match="quota"):
        download_checkpoint(tmp_path, url=drive.url)
    assert list(tmp_path.iterdir()) == []


def test_older_drive_confirm_tokens():
    import http.cookiejar

    page_url = "https://drive.google.com/uc?export=download&id=X"
    url = confirmed_url('<a href="/uc?export=download&amp;confirm=AbC_9&amp;id=X">Download</a>', page_url,
                        http.cookiejar.CookieJar())
    assert dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query)) == {"export": "download", "id": "X",
                                                                              "confirm": "AbC_9"}
    jar = http.cookiejar.CookieJar()
    jar.set_cookie(http.cookiejar.Cookie(0, "download_warning_123", "TOK", None, False, "drive.google.com", True,
                                         False, "/", True, False, None, False, None, None, {}))
    assert "confirm=TOK" in confirmed_url("<html>no link</html>", page_url, jar)
    assert confirmed_url("<html>quota exceeded</html>", page_url, http.cookiejar.CookieJar()) is None


def test_the_comfyui_loader_downloads_only_when_chosen(drive, checkpoint, tmp_path, monkeypatch, run_node,
                                                      reduced_is_published):
    import functools

    from nodes import model_loader

    monkeypatch.setenv("AUDIO2HEAD_MODELS_DIR", str(tmp_path))
    calls = []

    def fake_download(folder, **kwargs):
        calls.append(folder)
        return download_checkpoint(folder, url=drive.url, **kwargs)

    monkeypatch.setattr(model_loader, "download_checkpoint", functools.partial(fake_download))
    assert model_loader.weight_choices()[-2:] == [model_loader.DOWNLOAD_CHOICE, model_loader.HUB_CHOICE]
    with pytest.raises(Audio2HeadError, match=r"not found.*python -m a2h_core download --to"):
        run_node("Audio2HeadModelLoader", weights="nope.safetensors", device="cpu", dtype="fp32")
    assert calls == [] and drive.ranges == []  # a missing file never starts a download
    model = run_node("Audio2HeadModelLoader", weights=model_loader.DOWNLOAD_CHOICE, device="cpu",
                     dtype="fp32").args[0]
    assert calls == [tmp_path] and (tmp_path / "audio2head.safetensors").is_file()
    assert model.source == str(tmp_path / "audio2head.safetensors")
    run_node("Audio2HeadModelLoader", weights=model_loader.DOWNLOAD_CHOICE, device="cpu", dtype="fp32")
    assert len(calls) == 1  # the converted file is there: no second download
