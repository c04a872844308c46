""" "Use your own images": a visitor's zip or image files become a dataset of their session only.

The core does the hostile part (``Playground.add_own_images``: ``convenet.data.own_images``'s
safe ingest) and the isolation (``convenet.data.catalog``: a dataset with an owner exists only for
calls of that session, and the edge names the session of every call). Here: the box, one
handler, and the clean-up. A session's files live under ``CONVENET_OWN_DIR``, outside Gradio's
upload folder (which Gradio serves to anyone who names a path in it), and are deleted when the
page is closed or after ``CONVENET_OWN_IDLE_S`` seconds unused; one upload per session, the next
replaces it, and one client address holds at most ``CONVENET_OWN_PER_ADDRESS`` of the
``CONVENET_OWN_SESSIONS`` slots.
"""

from __future__ import annotations

import hashlib
import logging
import os
import secrets
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from convenet.models.registry import get_model_spec
from convenet.playground import Ingested, Playground
from convenet.settings import SETTINGS, own_images_dir
from ui.common import AppState, friendly, progress_callback
from ui.gradio_compat.files import cache_file
from ui.groups import OWN_IMAGES
from ui.server import client_address

log = logging.getLogger("convenet")
PREFIX = "mine-"  # own datasets' names: never a registered name


def app_folder() -> Path:
    """This process's own-images folder (apps sharing the machine do not clash)."""
    return own_images_dir() / f"app-{os.getpid()}"


def session_folder(session: str) -> Path:
    """The session's folder; named by a hash, since the session id is chosen by the client."""
    return app_folder() / hashlib.sha256(session.encode()).hexdigest()[:24]


def served_path(path: Path | str) -> str:
    """A dataset image as a URL path may name it: own images only through Gradio's cache
    (a content-addressed copy), since their own folder is never served."""
    if Path(path).resolve().is_relative_to(own_images_dir().resolve()):
        return cache_file(path)
    return str(path)


def dataset_choices(pg: Playground) -> list[tuple[str, str]]:
    """The datasets the current session may choose, its own under a readable label."""
    specs = [pg.spec(name) for name in pg.datasets()]
    return [(spec.title if spec.owner else spec.name, spec.name) for spec in specs]


LIMITS_TEXT = (
    "A **.zip** with one sub-folder per class (`cats/…`, `dogs/…`), or a flat .zip or several "
    "image files (then without classes). At most {images} images, {file} MB per image and "
    "{total} MB in all. They are a dataset of **this browser session only**, deleted when you "
    "close the page or after {idle} minutes unused."
)


@dataclass
class OwnImagesBox:
    box: gr.Accordion
    files: gr.File
    button: gr.Button
    status: gr.Markdown


def build_own_images_box() -> OwnImagesBox:
    """The upload box, inside whatever layout calls it (the search tab's controls)."""
    with gr.Accordion("Use your own images", open=False, elem_id="cn-own") as box:
        gr.Markdown(
            "<small>"
            + LIMITS_TEXT.format(
                images=SETTINGS.own_max_images,
                file=SETTINGS.own_max_file_mb,
                total=SETTINGS.own_max_total_mb,
                idle=SETTINGS.own_idle_s // 60,
            )
            + "</small>"
        )
        files = gr.File(
            label="Your .zip or images",
            file_count="multiple",
            file_types=[".zip", "image"],
            type="filepath",
            elem_id="own-files",
            height=110,
        )
        button = gr.Button("Make them my dataset", variant="primary", elem_id="own-make")
    status = gr.Markdown(elem_id="own-status")  # stays in view when the box folds away
    return OwnImagesBox(box, files, button, status)


class OwnImages:
    """Sessions' own datasets: made from an upload, dropped at the end of the session."""

    def __init__(self, state: AppState) -> None:
        self.pg = state.playground
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._busy: set[str] = set()  # sessions whose upload is being made: never idle
        self._address: dict[str, str] = {}  # each holding session's client address
        remove_dead_apps()

    def _check_room(self, address: str, session: str) -> None:
        """Refuse when every slot is taken, or when ``address`` holds its share of them
        already (so one address cannot lock others out); the refusal says when to come back.
        ``session``'s own slot counts as free (its new upload replaces it). Called with the
        lock held."""
        holding = {*self.pg.catalog.owners(), *self._busy} - {session}
        wait = f"in at most {-(-SETTINGS.own_idle_s // 60)} minutes, when unused ones are freed"
        mine = sum(self._address.get(s) == address for s in holding)
        if mine >= SETTINGS.own_per_address:
            raise ValueError(
                f"Your address already holds {mine} own-image datasets, the most one visitor "
                f"may; close one of those pages, or try again {wait}."
            )
        if len(holding) >= SETTINGS.own_sessions:
            raise ValueError(
                f"Too many visitors are using their own images right now; please try again {wait}."
            )

    def make(
        self,
        files: list[str] | None,
        model: str,
        session: str | None,
        address: str,
        progress: Any,
    ) -> tuple[str, Ingested]:
        """Ingest the upload, register it for ``session`` (from client ``address``), compute
        every curated layer."""
        if not session:
            raise ValueError("Your own images need a browser session; open the app's page.")
        if not files:
            raise ValueError("Choose a .zip or some image files first.")
        with self._lock:  # checked first: a refused session keeps the dataset it has
            self._check_room(address, session)
        self.drop(session)  # one upload per session: the new one replaces it
        with self._lock:
            self._busy.add(session)
            self._address[session] = address
        name = PREFIX + secrets.token_hex(4)
        home = session_folder(session) / name
        try:
            made = self.pg.add_own_images(name, session, [Path(f) for f in files], home)
            model_spec = get_model_spec(model)  # every curated layer comes from one pass
            self.pg.features(name, model_spec.key, model_spec.layer_names[-1], progress)
        except BaseException:
            self.drop(session)
            raise
        finally:
            with self._lock:
                self._busy.discard(session)
                self.pg.catalog.touch(session)  # idle from now, not from the start
        self._start_sweeper()
        log.info("A session made its own dataset of %d images", len(made.folder.paths))
        return name, made

    def drop(self, session: str) -> None:
        """Forget and delete everything of ``session`` (page closed, idle, or replaced)."""
        for spec in self.pg.catalog.drop_owner(session):
            self.pg.forget(spec.name)
        with self._lock:
            self._address.pop(session, None)
        shutil.rmtree(session_folder(session), ignore_errors=True)

    def _start_sweeper(self) -> None:
        with self._lock:
            if self._sweeper is not None:
                return
            self._sweeper = threading.Thread(target=self._sweep, name="own-images", daemon=True)
            self._sweeper.start()

    def _sweep(self) -> None:
        """Sessions that left without closing the page (an API client, a lost laptop)."""
        every = max(1.0, min(60.0, SETTINGS.own_idle_s / 4))
        while True:
            time.sleep(every)
            for owner in self.pg.catalog.idle_owners(SETTINGS.own_idle_s):
                with self._lock:
                    if owner in self._busy:
                        continue
                self.drop(owner)
                log.info("Removed a session's own images after %d s unused", SETTINGS.own_idle_s)


def remove_dead_apps() -> None:
    """Own-images folders of app processes that are gone (killed before they could clean up)."""
    root = own_images_dir()
    for folder in root.glob("app-*") if root.is_dir() else ():
        pid = folder.name.removeprefix("app-")
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def status_markdown(made: Ingested, model: str) -> str:
    """What was made, what it can do, and what was skipped, in a few plain lines."""
    folder = made.folder
    n = len(folder.paths)
    if made.labelled:
        kind = f"in {len(folder.classes)} classes ({', '.join(folder.classes[:10])})"
        can = "Every view works on it, scores included."
    else:
        kind = "without classes"
        can = (
            "Search, the map and the Model Explorer work on it; the quality overview and the "
            "model comparison are hidden, since their scores count results of the query's "
            "class and these images have none (put them in one sub-folder per class to score)."
        )
    lines = [
        f"**{n} images {kind}** are now the dataset *Your images*, for this browser session "
        f"only, with {get_model_spec(model).title}'s features of every curated layer. {can}",
        made.message(),
    ]
    return "\n\n".join(line for line in lines if line)


def wire_own_images(state: AppState, box: OwnImagesBox, tab: Any, demo: gr.Blocks) -> None:
    """The box's event (it then opens the new dataset in the search tab) and the clean-up."""
    own = OwnImages(state)
    boxes = state.dataset_boxes

    @friendly
    def make_dataset(
        files: list[str] | None,
        model: str,
        request: gr.Request,
        progress: gr.Progress = gr.Progress(),
    ) -> tuple[Any, ...]:
        on_progress = progress_callback(progress, "Features of your images, every layer at once")
        session = getattr(request, "session_hash", None)
        address = client_address(request, SETTINGS.trust_proxy)
        name, made = own.make(files, model, session, address, on_progress)
        choices = dataset_choices(state.playground)
        updates = [gr.update(choices=choices, value=name) for _ in boxes]
        return (*updates, status_markdown(made, model), None, gr.Accordion(open=False))

    made = box.button.click(
        make_dataset,
        [box.files, tab.current_model],
        [*boxes, box.status, box.files, box.box],
        api_name="own_images",
        **OWN_IMAGES.events(),
        show_progress_on=[box.status, box.files],  # not the box: see ui.search_tab
    )
    tab.open_dataset(made.success, api_visibility="private")

    def end_session(request: gr.Request) -> None:
        session = getattr(request, "session_hash", None)
        if session:
            own.drop(session)

    demo.unload(end_session)
