"""The Space, rehearsed: the tree ``deploy --dry-run`` stages, run from a cold start the way a
Space runs it, behind a real reverse proxy, inside a blog post's iframe from another origin.

One app start for the module: ``python app.py`` in the staged folder with ``SYSTEM=spaces``,
``SPACE_ID``, ``GRADIO_SERVER_NAME=0.0.0.0``, empty ``HF_HOME``/``CONVENET_CACHE`` and a Hub that
cannot be reached. nginx in front adds ``X-Forwarded-For``/``X-Forwarded-Proto`` as the Spaces
proxy does, with HTTP/1.1, WebSocket upgrades and no buffering (the queue streams events). A
"blog" page on 127.0.0.2 embeds it; Chromium drives the app inside that iframe at 420 and 1400
px. Screenshots go to ``artifacts/screenshots/rehearsal_*.png``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from convenet.explain.featurevis_gallery import shipped_channels
from tests.app_server import REPO, free_ports, serving_url, stop
from tests.test_browser import (
    CHROMIUM,
    WAIT_MS,
    assert_images_load,
    copied_link,
    expected_summary,
    shoot,
)

NGINX = Path(shutil.which("nginx") or "/usr/sbin/nginx")
if not (NGINX.exists() and CHROMIUM.exists()) and not os.environ.get("CI"):
    pytest.skip("nginx or Chromium is not installed (CI installs both)", allow_module_level=True)

from gradio_client import Client, handle_file  # noqa: E402
from playwright.sync_api import Browser, Frame, Page, expect  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.browser]

SPACE_ID = "rehearsal/convnet-playground"
MODEL = "efficientnet_lite0"
UPLOAD = REPO / "examples" / "flower.jpg"
COLD_MS = 6 * WAIT_MS  # the first upload on an empty cache builds the model's ONNX graph
START_S = 300.0

NGINX_CONF = """
worker_processes 1;
user {user};
pid {root}/nginx.pid;
error_log {root}/error.log;
daemon off;
events {{ worker_connections 256; }}
http {{
  access_log {root}/access.log;
  client_body_temp_path {root}/body;
  proxy_temp_path {root}/proxy;
  fastcgi_temp_path {root}/fastcgi;
  uwsgi_temp_path {root}/uwsgi;
  scgi_temp_path {root}/scgi;
  client_max_body_size 64m;
  map $http_upgrade $connection_upgrade {{ default upgrade; '' close; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{app_port};
      proxy_http_version 1.1;
      proxy_set_header Host $http_host;
      proxy_set_header Upgrade $http_upgrade;
      proxy_set_header Connection $connection_upgrade;
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_buffering off;
      proxy_cache off;
      proxy_read_timeout 600s;
    }}
  }}
}}
"""

BLOG = """<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>How a CNN sees</title>
<style>body {{ margin: 0; font-family: sans-serif; }} p {{ margin: 8px; }}
iframe {{ width: 100%; height: 1500px; border: 0; }}</style></head>
<body><p>A blog post. The demo below runs on a Space:</p>
<iframe id="space" name="space" src="{src}" allow="clipboard-read; clipboard-write"></iframe>
<p>The end.</p></body></html>
"""


@dataclass(frozen=True)
class Rehearsal:
    staged: Path
    proxy: str  # the Space's public URL (through nginx)
    blog: str  # the page that embeds it, on another origin
    logs: Path


def stage(out: Path) -> str:
    """``deploy --dry-run`` exactly as a new user runs it; returns what it printed."""
    done = subprocess.run(
        [sys.executable, "-m", "convenet", "deploy", "--space", SPACE_ID, "--dry-run"]
        + ["--out", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def wait_for_http(
    where: Callable[[], str | None], process: subprocess.Popen, log: Path, timeout: float
) -> str:
    """The URL that answered 200, asking ``where`` each time (the app's log names its port
    once it serves; None before). On a timeout the server is made to dump every
    thread's stack (PYTHONFAULTHANDLER, then SIGABRT), and the error shows the log's start,
    its end with that dump, and how the last try failed: enough to tell a hang from a port
    that went elsewhere, from CI's output alone."""
    start, last, url = time.monotonic(), "no try", None
    while time.monotonic() - start < timeout:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: exited early:\n{log.read_text()[-3000:]}")
        url = where()
        if url is None:
            last = "the log names no address yet"
            time.sleep(0.5)
            continue
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return url
                last = f"HTTP {response.status}"
        except OSError as error:
            last = repr(error)
            time.sleep(0.5)
    if process.poll() is None:
        process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
    text = log.read_text(errors="replace")
    raise RuntimeError(
        f"{url} did not answer in {timeout:.0f} s (last try: {last});"
        f" the log's start:\n{text[:2500]}\n[...] its end:\n{text[-6000:]}"
    )


def space_environment(root: Path, port: int, hub_port: int) -> dict[str, str]:
    """As a Space runs the app: its variables, empty caches, a Hub nobody answers for (on
    ``hub_port``, apart from the app's)."""
    unreachable = f"http://127.0.0.1:{hub_port}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVENET_", "HF_", "GRADIO_"))}
    for name in ("home", "hf-home", "cache", "keras", "gradio-tmp", "own"):
        (root / name).mkdir()
    return {
        **env,
        "SYSTEM": "spaces",
        "SPACE_ID": SPACE_ID,
        "GRADIO_SERVER_NAME": "0.0.0.0",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HOME": str(root / "home"),
        "HF_HOME": str(root / "hf-home"),
        "HF_ENDPOINT": unreachable,
        "CONVENET_CACHE": str(root / "cache"),
        "KERAS_HOME": str(root / "keras"),
        "GRADIO_TEMP_DIR": str(root / "gradio-tmp"),  # this app's uploads, apart from others'
        "CONVENET_OWN_DIR": str(root / "own"),
        "PYTHONUNBUFFERED": "1",
        "PYTHONFAULTHANDLER": "1",  # a hang found by wait_for_http shows its stacks
    }


@pytest.fixture(scope="module")
def staged(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("space") / "tree"
    return out, stage(out)


@pytest.fixture(scope="module")
def space(
    staged: tuple[Path, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Rehearsal]:
    tree, _ = staged
    root = tmp_path_factory.mktemp("space-run")
    app_port, proxy_port, hub_port = free_ports(3)
    app_log = root / "app.log"
    with app_log.open("w") as log:
        app = subprocess.Popen(
            [sys.executable, "app.py"],
            cwd=tree,
            env=space_environment(root, app_port, hub_port),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    with contextlib.ExitStack() as started:  # each server stops, whatever happened
        started.callback(stop, app)
        # the app first: only its log says which port it took; the others bind after it
        served = wait_for_http(lambda: serving_url(app_log), app, app_log, START_S)
        conf = root / "nginx.conf"
        user = pwd.getpwuid(os.getuid()).pw_name
        served_port = int(served.rstrip("/").rsplit(":", 1)[1])
        conf.write_text(
            NGINX_CONF.format(user=user, root=root, port=proxy_port, app_port=served_port)
        )
        nginx = subprocess.Popen(
            [str(NGINX), "-p", str(root), "-c", str(conf)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        started.callback(stop, nginx)
        proxy = wait_for_http(
            lambda: f"http://127.0.0.1:{proxy_port}/", nginx, root / "error.log", 30
        )
        blog_dir = root / "blog"
        blog_dir.mkdir()
        (blog_dir / "index.html").write_text(BLOG.format(src=proxy))
        handler = functools.partial(SimpleHTTPRequestHandler, directory=str(blog_dir))
        blog = ThreadingHTTPServer(("127.0.0.2", 0), handler)
        started.callback(blog.server_close)
        threading.Thread(target=blog.serve_forever, daemon=True).start()
        started.callback(blog.shutdown)
        yield Rehearsal(tree, proxy, f"http://127.0.0.2:{blog.server_address[1]}/", root)


def is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(8000)


def test_the_staged_tree_is_what_a_space_accepts(staged: tuple[Path, str]) -> None:
    """The card names no repository that was never published, and every binary file is
    routed to large-file storage by the staged .gitattributes (checked by git itself, in the
    folder made a repository as the Space is)."""
    tree, said = staged
    files = [p.relative_to(tree).as_posix() for p in tree.rglob("*") if p.is_file()]
    assert re.search(rf"staged {len(files)} files, [\d.]+ MB", said)
    meta = yaml.safe_load((tree / "README.md").read_text(encoding="utf-8").split("---\n")[1])
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert "preload_from_hub" not in meta and "datasets" not in meta
    assert "left out of the card" not in said  # the repository's card needed no repair
    assert not [f for f in files if f.startswith(("tests/", "benchmarks/", ".venv", ".cache"))]
    binaries = [f for f in files if is_binary(tree / f)]
    assert len(binaries) > 600
    subprocess.run(["git", "init", "-q", str(tree)], check=True)
    out = subprocess.run(
        ["git", "check-attr", "--stdin", "filter"],
        cwd=tree,
        input="\n".join(binaries) + "\n",
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert [line for line in out.splitlines() if not line.endswith(": filter: lfs")] == []
    shutil.rmtree(tree / ".git")


@pytest.fixture(scope="module")
def api(space: Rehearsal) -> Client:
    return Client(space.proxy, verbose=False)  # through the proxy too: its event stream


def app_frame(page: Page) -> Frame:
    frame = page.frame(name="space")
    assert frame is not None
    return frame


def wait_for_query(frame: Frame, key: str, value: str) -> None:
    """The app's own address (the iframe's, not the blog's) names ``key=value``."""
    frame.wait_for_function(
        "([key, value]) => new URLSearchParams(location.search).get(key) === value",
        arg=[key, value],
        timeout=WAIT_MS,
    )


def summary(frame: Frame):
    return frame.locator("#search-summary")


def results(frame: Frame):
    return frame.locator("#results-gallery button.thumbnail-item")


@pytest.mark.parametrize("width", [420, 1400])  # the first one meets the cold start
def test_a_visitor_uses_the_space_inside_a_blog_post(
    browser: Browser, space: Rehearsal, api: Client, width: int
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 1000})
    for origin in (space.proxy.rstrip("/"), space.blog.rstrip("/")):
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=origin)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(space.blog)
    frame = app_frame(page)
    assert frame.url.startswith(space.proxy)

    # A search: the first view, as the API answers it.
    expect(results(frame)).to_have_count(50, timeout=COLD_MS)
    expect(summary(frame)).to_contain_text(expected_summary(api, query_index=0), timeout=WAIT_MS)
    wait_for_query(frame, "query", "0")
    shoot(page, f"rehearsal_{width}_1_search")

    # A result click makes it the query.
    third = api.predict(query_index=0, api_name="/search")["results"][2]["index"]
    assert_images_load(frame, "results-gallery")  # settled: a click now is not swallowed
    results(frame).nth(2).click()
    wait_for_query(frame, "query", str(third))
    expect(summary(frame)).to_contain_text(
        expected_summary(api, query_index=third), timeout=WAIT_MS
    )
    expect(frame.locator("#results-gallery button.thumbnail-item.selected")).to_have_count(0)
    shoot(page, f"rehearsal_{width}_2_result_clicked")

    # An upload searches with it (on the cold start, the model is prepared first).
    upload = frame.locator(".block", has_text="Or search with your own image")
    upload.locator("input[type=file]").set_input_files(UPLOAD)
    expect(summary(frame)).to_contain_text("Your image", timeout=COLD_MS)
    best = api.predict(query=handle_file(str(UPLOAD)), k=1, api_name="/search")["results"][0]
    expect(results(frame).first).to_contain_text(
        re.compile(rf"#1 {best['similarity']:.0f}%.* {best['class']}"), timeout=WAIT_MS
    )
    shoot(page, f"rehearsal_{width}_3_upload")

    # The share button's link opens the same view at top level, not inside the blog.
    shared = results(frame).all_inner_texts()
    page.bring_to_front()  # the clipboard takes text only from the focused tab
    page.evaluate("navigator.clipboard.writeText('')")  # no link left from an earlier test
    frame.get_by_role("button", name="Copy a link to this view").click()
    expect(frame.get_by_role("button", name="Link copied")).to_be_visible(timeout=WAIT_MS)
    link = copied_link(page)
    assert link.startswith(space.proxy) and re.search(r"[?&]deep_link=[\w-]+", link), link
    opened = context.new_page()
    opened.goto(link)
    expect(opened.locator("#search-summary")).to_contain_text("Your image", timeout=WAIT_MS)
    expect(opened.locator("#results-gallery button.thumbnail-item")).to_have_text(
        shared, timeout=WAIT_MS
    )
    assert_images_load(opened, "results-gallery")
    shoot(opened, f"rehearsal_{width}_4_link_opened")
    opened.close()

    # The Model Explorer's channel grid: every shipped channel picture drawn.
    frame.get_by_role("tab", name="Model Explorer").click()
    grid = frame.locator("#explorer-channel-grid button.thumbnail-item img")
    expect(grid).to_have_count(len(shipped_channels(MODEL, "stem_conv")), timeout=COLD_MS)
    for picture in grid.all():  # lazy pictures load once scrolled to, inside the iframe too
        picture.scroll_into_view_if_needed()
    frame.wait_for_function(
        "() => [...document.querySelectorAll('#explorer-channel-grid img')]"
        ".every(e => e.complete && e.naturalWidth > 0)",
        timeout=WAIT_MS,
    )
    shoot(page, f"rehearsal_{width}_5_explorer")
    context.close()
    assert not errors, f"script errors in the page: {errors}"
    # Every request went through the proxy, the queue's event stream included.
    log = (space.logs / "access.log").read_text()
    assert re.search(r'"GET /gradio_api/queue/data\S* HTTP/1\.1" 200', log)
