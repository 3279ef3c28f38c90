"""Fetching the authors' checkpoint from the Google Drive link their README publishes, with resume.

`download_checkpoint(folder)` downloads `audio2head.pth.tar` into `folder`, converts it safely (the pickle is read
with `weights_only=True`) into `audio2head.safetensors` beside it and strict-loads the result. It uses only the
standard library (urllib):

- Google Drive answers a large file with an HTML page ("can't scan this file for viruses") holding a form, or on older
  servers a `confirm=` token / `download_warning` cookie; the download follows it.
- The bytes go to a stable hidden name (`.audio2head.pth.tar.download`); an interrupted download resumes from there
  with an HTTP Range request, and the file appears under its own name only when complete.
- Without a network the error says exactly which file to put where.

Nothing calls this implicitly: the command line's `download` and the ComfyUI loader's explicit choice do.
"""
from __future__ import annotations

import http.client
import http.cookiejar
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path

from a2h_core.config import ModelConfig
from a2h_core.errors import Audio2HeadError
from a2h_core.io.weights import ORIGINAL_FILENAME, convert_checkpoint, converted_cache_path, load_models
from a2h_core.paths import checked_output_folder, remove_quietly

DRIVE_FILE_ID = "1tvI43ZIrnx9Ti2TpFiEO4dK5DOwcECD7"  # README of wangsuzhen/Audio2Head, "Pretrained Checkpoint"
DRIVE_VIEW_URL = f"https://drive.google.com/file/d/{DRIVE_FILE_ID}/view?usp=sharing"
DRIVE_DOWNLOAD_URL = f"https://drive.google.com/uc?export=download&id={DRIVE_FILE_ID}"
PARTIAL_SUFFIX = ".download"  # `.audio2head.pth.tar.download`: kept between runs so that a download resumes
CHUNK = 1 << 20  # bytes read at a time
TIMEOUT_S = 60  # per connection / read
TERMS_NOTE = (
    "The Audio2Head checkpoint is published by its authors (wangsuzhen/Audio2Head, Google Drive link in their "
    "README) without a licence file: this project's licence covers our code only, not their weights. Check the "
    "original repository's terms before you use or share the weights; whether your use is allowed is your decision.")

Progress = Callable[[int, int], None]  # (bytes done, bytes in all; 0 when unknown)


def offline_help(folder: str | os.PathLike) -> str:
    """Where to put the file by hand."""
    target = Path(folder) / ORIGINAL_FILENAME
    return (f"download {ORIGINAL_FILENAME} from {DRIVE_VIEW_URL} on a machine with internet access and put it at "
            f"{str(target)!r}; it is converted on first use (or run: python -m a2h_core convert {target})")


class _DriveForm(HTMLParser):
    """The confirmation form of Google Drive's large-file page: its action and hidden inputs."""

    def __init__(self):
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self._in_form = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and self.action is None and "download" in (attrs.get("id", "") + attrs.get("action", "")):
            self.action, self._in_form = attrs.get("action") or "", True
        elif tag == "input" and self._in_form and attrs.get("name"):
            self.fields[attrs["name"]] = attrs.get("value") or ""

    def handle_endtag(self, tag):
        if tag == "form":
            self._in_form = False


def confirmed_url(page: str, page_url: str, cookies: http.cookiejar.CookieJar) -> str | None:
    """The URL that fetches the file after Google Drive's large-file warning page, or None if the page has none
    (e.g. "quota exceeded" or a sign-in page)."""
    form = _DriveForm()
    form.feed(page)
    if form.action is not None and form.fields:
        action = urllib.parse.urljoin(page_url, form.action)
        return f"{action}{'&' if '?' in action else '?'}{urllib.parse.urlencode(form.fields)}"
    token = re.search(r"confirm=([0-9A-Za-z_-]+)", page)
    if token is None:
        token = next((c.value for c in cookies if c.name.startswith("download_warning")), None)
    else:
        token = token.group(1)
    if token is None:
        return None
    parts = urllib.parse.urlsplit(page_url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    query["confirm"] = token
    return urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query)))


def _content_range(response) -> tuple[int, int] | None:
    """(first byte, total size or 0) of a 206 response."""
    match = re.match(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
    if match is None:
        return None
    return int(match.group(1)), 0 if match.group(2) == "*" else int(match.group(2))


def _open(opener, url: str, offset: int):
    headers = {"User-Agent": "ComfyUI-Audio2Head"}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    return opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT_S)


def download_file(url: str, dest: str | os.PathLike, progress: Progress | None = None,
                  log: Callable[[str], None] | None = None) -> Path:
    """Download `url` (a Google Drive link or any HTTP URL) to `dest`, resuming a previous partial download."""
    dest = Path(dest)
    partial = dest.with_name(f".{dest.name}{PARTIAL_SUFFIX}")
    say = log or (lambda message: None)
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(cookies := http.cookiejar.CookieJar()))
    offset = partial.stat().st_size if partial.is_file() else 0
    if offset:
        say(f"resuming the download at {offset / 1e6:.1f} MB")
    try:
        response = _open(opener, url, offset)
        if response.headers.get_content_type() == "text/html":  # the large-file confirmation page
            page = response.read(1 << 20).decode("utf-8", "replace")
            response.close()
            next_url = confirmed_url(page, response.geturl(), cookies)
            if next_url is None:
                raise Audio2HeadError(f"Google Drive did not give the file (it answered with a page without a "
                                      f"download link, e.g. its daily quota is exceeded); {offline_help(dest.parent)}")
            response = _open(opener, next_url, offset)
            if response.headers.get_content_type() == "text/html":
                response.close()
                raise Audio2HeadError(f"Google Drive answered with a web page instead of the file; "
                                      f"{offline_help(dest.parent)}")
        with response:
            total = 0
            if response.status == 206:
                first, total = _content_range(response) or (-1, 0)
                if first != offset:
                    raise Audio2HeadError(f"the server resumed at byte {first}, not {offset}; delete "
                                          f"{str(partial)!r} and try again")
                mode = "ab"
            else:  # 200: the whole file (the server ignores ranges, or nothing was downloaded yet)
                offset, mode = 0, "wb"
                total = int(response.headers.get("Content-Length") or 0)
            done = offset
            with open(partial, mode) as out:
                while chunk := response.read(CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if progress is not None:
                        progress(done, total)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # everything was there already
            total = offset
        else:
            raise Audio2HeadError(f"download failed: HTTP {exc.code} {exc.reason} from {url}; "
                                  f"{offline_help(dest.parent)}") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = getattr(exc, "reason", None) or exc
        kept = f"; the {partial.stat().st_size / 1e6:.1f} MB received are kept and the next run resumes" \
            if partial.is_file() and partial.stat().st_size else ""
        raise Audio2HeadError(f"cannot download {url} ({reason}){kept}. Offline: {offline_help(dest.parent)}") from None
    size = partial.stat().st_size if partial.is_file() else 0
    if total and size != total:
        raise Audio2HeadError(f"the download stopped at {size} of {total} bytes (the connection was cut); the bytes "
                              "received are kept and the next run resumes")
    os.replace(partial, dest)
    return dest


def download_checkpoint(folder: str | os.PathLike, *, url: str = DRIVE_DOWNLOAD_URL, config: ModelConfig | None = None,
                        progress: Progress | None = None, log: Callable[[str], None] | None = None) -> Path:
    """Fetch `audio2head.pth.tar` into `folder` (skipped if it is already there), convert it to
    `audio2head.safetensors` beside it and strict-load that; returns the safetensors path."""
    say = log or (lambda message: None)
    folder = checked_output_folder(folder, "download folder")
    original = folder / ORIGINAL_FILENAME
    if original.is_file():
        say(f"{original} is already there: not downloading it again")
    else:
        say(f"downloading {ORIGINAL_FILENAME} into {folder}")
        download_file(url, original, progress=progress, log=say)
    converted = converted_cache_path(original)
    say(f"converting {original.name} (read with weights_only=True) into {converted.name}")
    try:
        convert_checkpoint(original, converted, config=config)
    except Audio2HeadError:
        remove_quietly(converted)
        raise
    load_models(converted, config=config)
    return converted
