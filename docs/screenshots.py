"""Build the documentation, then take screenshots of its pages in a headless browser.

Usage, from the repository root (with ``pip install -e ".[docs]"`` and a
Chromium or Chrome browser, e.g. ``apt-get install chromium``)::

    python docs/screenshots.py OUTPUT_DIR [--html DIR] [--no-build] [--browser PATH]

It runs ``sphinx-build -W --keep-going -b html docs DIR`` (``DIR`` defaults to
``docs/_build/html``; ``--no-build`` shoots an existing build), then writes PNG
files to ``OUTPUT_DIR``: the top of the home page, the user guide, the other
narrative pages, the API reference, a class page, the benchmarks page, the
gallery and one example, and, cut to the element, every table of the user
guide, every figure of the benchmarks page and every figure of the example.

Each view is checked: the page must have loaded, its images must have loaded
(none broken), an element view must find at least its minimum number of
elements, and no PNG may be blank or near-uniform. The exit status is 0 when
every view passed, 1 otherwise, 2 when no browser is found.

The browser is ``--browser``, else ``$SKFEWSHOT_BROWSER``, else the first of
``chromium``, ``chromium-browser``, ``google-chrome``, ``google-chrome-stable``
and ``chrome`` on the ``PATH``. It is driven through the Chrome DevTools
Protocol on a pipe (``--remote-debugging-pipe``), so nothing else is needed.
"""

import argparse
import base64
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DOCS = Path(__file__).resolve().parent
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
WIDTH, HEIGHT = 1400, 1000
MAX_CLIP_HEIGHT = 2400

# name, page, CSS selector of the elements to cut out (None: the top of the page),
# the fewest elements the page must have
VIEWS = [
    ("index", "index.html", None, 0),
    ("user_guide", "user_guide.html", None, 0),
    ("user_guide_table", "user_guide.html", "article table", 2),
    ("large_data", "large_data.html", None, 0),
    ("scaling", "scaling.html", None, 0),
    ("datasets", "datasets.html", None, 0),
    ("benchmarks", "benchmarks.html", None, 0),
    ("benchmarks_figure", "benchmarks.html", "article img", 1),
    ("api", "api.html", None, 0),
    ("api_class", "generated/skfewshot.meta.MAMLLearner.html", None, 0),
    ("parameters", "parameters.html", None, 0),
    ("gallery", "auto_examples/index.html", None, 0),
    ("gallery_thumbnails", "auto_examples/index.html", "article .sphx-glr-thumbnails", 1),
    ("gallery_example", "auto_examples/plot_episode_grid_digits.html", None, 0),
    (
        "gallery_example_figure",
        "auto_examples/plot_episode_grid_digits.html",
        "article img.sphx-glr-single-img, article img.sphx-glr-multi-img",
        1,
    ),
]

# Loads the images a browser would load only when scrolled to, and waits for the fonts.
SETTLE = """
Promise.all([document.fonts.ready].concat(Array.from(document.images).map(function (img) {
    img.loading = "eager";
    return img.decode().catch(function () { return null; });
}))).then(function () {
    return Array.from(document.querySelectorAll("article img"))
        .filter(function (img) { return !(img.complete && img.naturalWidth > 0); })
        .map(function (img) { return img.getAttribute("src"); });
})
"""

# The boxes of the elements matching a selector, in page coordinates (a table in its
# scrolling container: the container).
BOXES = """
Array.from(document.querySelectorAll(%s)).map(function (element) {
    var box = (element.closest(".pst-scrollable-table-container") || element)
        .getBoundingClientRect();
    return [box.left + window.scrollX, box.top + window.scrollY, box.width, box.height];
})
"""


class BrowserError(RuntimeError):
    pass


def find_browser(given=None):
    """The path of a Chromium-based browser, or None."""
    for candidate in (given, os.environ.get("SKFEWSHOT_BROWSER")):
        if candidate:
            return shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


class Chromium:
    """A headless Chromium driven through the DevTools Protocol on fds 3 and 4."""

    def __init__(self, path, profile):
        commands_read, self._commands = os.pipe()
        self._replies, replies_write = os.pipe()
        # Above 4, so that putting them on fds 3 and 4 in the child overwrites neither.
        child_read = fcntl.fcntl(commands_read, fcntl.F_DUPFD_CLOEXEC, 10)
        child_write = fcntl.fcntl(replies_write, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(commands_read)
        os.close(replies_write)

        def on_fds_3_and_4():
            os.dup2(child_read, 3)
            os.dup2(child_write, 4)

        self.process = subprocess.Popen(
            [
                path,
                "--headless",
                "--no-sandbox",  # root in a container has no user namespaces for the sandbox
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--no-first-run",
                "--no-default-browser-check",
                "--force-color-profile=srgb",
                f"--user-data-dir={profile}",
                "--remote-debugging-pipe",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=False,
            preexec_fn=on_fds_3_and_4,
        )
        os.close(child_read)
        os.close(child_write)
        self._next_id = 0
        self._buffer = b""
        self._events = []
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self.session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session=self.session)

    def _receive(self, deadline):
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("the browser did not answer in time")
            ready, _, _ = select.select([self._replies], [], [], left)
            if ready:
                chunk = os.read(self._replies, 1 << 20)
                if not chunk:
                    raise BrowserError(f"the browser exited (status {self.process.poll()})")
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method, session=None, timeout=60, **params):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._commands, data) :]
        deadline = time.monotonic() + timeout
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            self._events.append(reply)

    def wait_for(self, event, timeout=60):
        deadline = time.monotonic() + timeout
        while True:
            for i, message in enumerate(self._events):
                if message.get("method") == event:
                    del self._events[i]
                    return message.get("params", {})
            self._events.append(self._receive(deadline))

    def evaluate(self, expression):
        result = self.call(
            "Runtime.evaluate",
            session=self.session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"script failed: {result['exceptionDetails'].get('text')}")
        return result["result"].get("value")

    def open(self, url):
        """Load ``url`` in a WIDTH x HEIGHT window; the images of its article that failed."""
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session=self.session,
            width=WIDTH,
            height=HEIGHT,
            deviceScaleFactor=1,
            mobile=False,
        )
        self._events.clear()
        reply = self.call("Page.navigate", session=self.session, url=url)
        if reply.get("errorText"):
            raise BrowserError(f"{url}: {reply['errorText']}")
        self.wait_for("Page.loadEventFired")
        return self.evaluate(SETTLE)

    def boxes(self, selector):
        return self.evaluate(BOXES % json.dumps(selector))

    def screenshot(self, png, clip=None):
        params = {"format": "png"}
        if clip is not None:
            params.update(clip=dict(clip, scale=1), captureBeyondViewport=True)
        data = self.call("Page.captureScreenshot", session=self.session, **params)["data"]
        png.write_bytes(base64.b64decode(data))

    def close(self):
        try:
            self.call("Browser.close", timeout=10)
        except BrowserError:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self._commands)
        os.close(self._replies)


def blank(png):
    """Why ``png`` does not show a rendered page (blank or near-uniform), or None."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 16)
    if colours is None:  # more than 65,536 colours: a picture, not a blank
        return None
    total = sum(count for count, _ in colours)
    if len(colours) < 8 or max(colours)[0] > 0.995 * total:
        return f"blank or near-uniform image ({len(colours)} colours)"
    return None


def build(html):
    command = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html"]
    command += [str(DOCS), str(html)]
    print("$", " ".join(command), flush=True)
    subprocess.run(command, check=True)


def shoot(browser, html, output):
    """Take every view's screenshots; the names of the views that failed."""
    failures = []
    for name, page, selector, fewest in VIEWS:
        path = html / page
        try:
            if not path.is_file():
                raise BrowserError(f"{path} was not built")
            broken = browser.open(path.resolve().as_uri())
            if broken:
                raise BrowserError(f"images that did not load: {broken}")
            if selector is None:
                pngs = [output / f"{name}.png"]
                browser.screenshot(pngs[0])
            else:
                boxes = browser.boxes(selector)
                if len(boxes) < fewest:
                    raise BrowserError(f"{len(boxes)} elements {selector!r}, fewer than {fewest}")
                pngs = []
                for i, (x, y, width, height) in enumerate(boxes, 1):
                    pngs.append(output / f"{name}_{i}.png")
                    clip = {
                        "x": max(x - 16, 0),
                        "y": max(y - 16, 0),
                        "width": min(width + 32, WIDTH),
                        "height": min(height + 32, MAX_CLIP_HEIGHT),
                    }
                    browser.screenshot(pngs[-1], clip)
            for png in pngs:
                problem = blank(png)
                if problem:
                    raise BrowserError(f"{png.name}: {problem}")
        except BrowserError as error:
            print(f"FAIL  {name}  ({page}): {error}", flush=True)
            failures.append(name)
            continue
        for png in pngs:
            print(f"ok    {png}  ({page})", flush=True)
    return failures


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="folder for the PNG files (created)")
    parser.add_argument(
        "--html",
        type=Path,
        default=DOCS / "_build" / "html",
        help="the HTML build folder (default: docs/_build/html)",
    )
    parser.add_argument("--no-build", action="store_true", help="shoot the build in --html")
    parser.add_argument("--browser", help="path or name of a Chromium-based browser")
    args = parser.parse_args(argv)

    path = find_browser(args.browser)
    if path is None:
        given = args.browser or os.environ.get("SKFEWSHOT_BROWSER")
        looked = f"{given!r} not found" if given else f"looked for {', '.join(BROWSERS)}"
        print(
            "screenshots.py: no headless browser found: install Chromium "
            "(e.g. `apt-get install chromium`) or Chrome, or pass --browser PATH "
            f"({looked}).",
            file=sys.stderr,
        )
        return 2
    if not args.no_build:
        build(args.html)
    elif not (args.html / "index.html").is_file():
        print(f"screenshots.py: no built site in {args.html} (drop --no-build)", file=sys.stderr)
        return 1
    args.output.mkdir(parents=True, exist_ok=True)

    with tempfile.TemporaryDirectory(prefix="skfewshot-browser-") as profile:
        try:
            browser = Chromium(path, profile)
        except (BrowserError, OSError) as error:
            print(f"screenshots.py: could not start {path}: {error}", file=sys.stderr)
            return 2
        try:
            failures = shoot(browser, args.html, args.output)
        finally:
            browser.close()
    if failures:
        print(f"{len(failures)} of {len(VIEWS)} views failed: {', '.join(failures)}")
        return 1
    print(f"{len(VIEWS)} views, screenshots in {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
