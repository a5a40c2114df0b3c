"""The local server's pages in a real browser: headless Chromium from the distribution.

A real behave run of the demo suite (plus a feature whose names carry markup) reports to
the emulator; Chromium then loads the build's page and the index, and the DOM it built is
read back (``--dump-dom``): the build, its tests by feature and rule, a failed test's
failure and steps, its hooks, log lines, and the hostile names shown as text.  A
screenshot is taken too (kept when BSTACK_SCREENSHOT_DIR is set, to look at).

Skipped, saying so, when no Chromium is installed (.ci/run installs Debian's package and
then requires the test to run).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path

import pytest
from helpers import BEHAVE_13, DEMO_ARGS, FORMATTER

CHROMIUM = os.environ.get("BSTACK_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# .ci/run sets BSTACK_CHROMIUM_REQUIRED where it installed Chromium: there, no skipping.
pytestmark = pytest.mark.skipif(
    not os.access(CHROMIUM, os.X_OK) and not os.environ.get("BSTACK_CHROMIUM_REQUIRED"),
    reason=f"no Chromium at {CHROMIUM} (apt-get install chromium, or set BSTACK_CHROMIUM)",
)

EVIL_FEATURE = "Names from <script>document.title='pwned'</script> users"
EVIL_SCENARIO = "A <img src=x onerror=\"document.title='pwned'\"> & <b>bold</b> scenario"
HOSTILE = f"""Feature: {EVIL_FEATURE}

  Scenario: {EVIL_SCENARIO}
    Given an empty cart
    Then the cart is empty
"""


def chromium(url: str, *args: str, profile: Path) -> str:
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",  # root in CI; the page is our own, on loopback
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-dev-shm-usage",
            f"--user-data-dir={profile}",
            *args,
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


# --- the DOM Chromium built, as a small tree ------------------------------------------------

_VOID = {"meta", "br", "img", "input", "link", "hr", "col", "area", "base", "source", "wbr"}


class Node:
    def __init__(self, tag: str, attrs: dict, parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def classes(self) -> list[str]:
        return (self.attrs.get("class") or "").split()

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    def all(self, tag: str | None = None, cls: str | None = None) -> list[Node]:
        found = []
        for child in self.children:
            if isinstance(child, Node):
                if (tag is None or child.tag == tag) and (cls is None or cls in child.classes):
                    found.append(child)
                found.extend(child.all(tag, cls))
        return found

    def one(self, tag: str | None = None, cls: str | None = None, text: str = "") -> Node:
        """The single element of that tag/class whose own heading or summary says `text`."""
        hits = [n for n in self.all(tag, cls) if text in _label(n)]
        assert len(hits) == 1, (tag, cls, text, [_label(n)[:80] for n in hits])
        return hits[0]


def _label(node: Node) -> str:
    for child in node.children:
        if isinstance(child, Node) and child.tag in ("summary", "h1", "h2", "h3"):
            return child.text
    return node.text


class _TreeBuilder(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.root = self.node = Node("#document", {}, None)

    def handle_starttag(self, tag, attrs):
        node = Node(tag, dict(attrs), self.node)
        self.node.children.append(node)
        if tag not in _VOID:
            self.node = node

    def handle_endtag(self, tag):
        node = self.node
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.node = node.parent

    def handle_data(self, data):
        self.node.children.append(data)


def dom(text: str) -> Node:
    builder = _TreeBuilder()
    builder.feed(text)
    return builder.root


# --- the test -----------------------------------------------------------------------------


def test_the_build_page_in_chromium(tra_server, shop, reporting_env, run_behave, tmp_path):
    (shop / "features" / "hostile_names.feature").write_text(HOSTILE, encoding="utf-8")
    run = run_behave(["-f", FORMATTER, *DEMO_ARGS], shop, reporting_env)
    (build,) = tra_server.state.builds
    link = f"{tra_server.url}/builds/{build}"
    assert f"build: {link}" in run.stderr  # the summary's link is the page loaded below
    profile = Path(tempfile.mkdtemp(dir=tmp_path))

    page = dom(chromium(link, "--dump-dom", profile=profile))
    (title,) = page.all("title")
    (h1,) = page.all("h1")
    assert h1.text == shop.name and title.text.startswith(shop.name)  # the build's name
    assert "pwned" not in title.text
    assert not page.all("script") and not page.all("img")  # markup in names stayed text

    # tests grouped by feature, then rule
    checkout = page.one("section", "scope", "Checkout")
    assert len(checkout.all("details", "test")) == 5
    if BEHAVE_13:  # Rules need behave 1.3 (DEMO_ARGS leave them out on 1.2.6)
        loyalty = page.one("section", "scope", "Loyalty points")
        rule = loyalty.one("section", "scope", "Members earn one point per whole unit")
        rule.one("details", "test", "Points are earned at checkout")
    assert len(page.one("section", "scope", "Shopping cart").all("details", "test")) == 5

    # a failed test: open, its failure, its steps, its hooks and their log lines
    wrong = checkout.one("details", "test", "A deliberately wrong total")
    assert "open" in wrong.attrs and "failed" in _label(wrong)
    (failure, *_) = wrong.all("pre", "failure")
    assert "AssertionError: expected total 9.99, got 2.25" in failure.text
    rows = [r.all("td") for r in wrong.one("table", "steps").all("tr")[1:]]
    assert [(r[0].text.split(" Assertion")[0], r[1].text) for r in rows] == [
        ("Given the standard catalogue is in stock", "passed"),
        ('Given a cart with 1 "bread"', "passed"),
        ("Then the cart total is 9.99", "failed"),
        ("And the cart holds 1 items", "skipped"),
    ]
    assert "AssertionError: expected total 9.99" in rows[2][0].one("pre", "failure").text
    hooks = wrong.one("table", "hooks")
    before = [r for r in hooks.all("tr") if r.text.startswith("before_scenario")]
    assert len(before) == 1 and "[before_scenario] A deliberately wrong total" in before[0].text

    # a test's own log lines, and the hook runs that belong to no test
    logged = [t for t in page.all("details", "test") if "shop.cart: cart total is" in t.text]
    assert logged and logged[0].all("ul", "logs")
    loose = page.all("table", "hooks")[-1]
    assert "[before_all] shop suite starting" in loose.text and "before_all" in loose.text

    # names that carry markup are text, in the scope heading and the test's summary
    evil = page.one("section", "scope", EVIL_FEATURE)
    evil.one("details", "test", EVIL_SCENARIO)

    # the index lists the build, linking to its page
    index = dom(chromium(f"{tra_server.url}/", "--dump-dom", profile=profile))
    links = [a for a in index.all("a") if a.attrs.get("href") == f"/builds/{build}"]
    assert len(links) == 1 and links[0].text == shop.name

    # a screenshot renders (look at it: BSTACK_SCREENSHOT_DIR=/some/dir)
    shot = tmp_path / "build.png"
    chromium(link, f"--screenshot={shot}", "--window-size=1280,3000", profile=profile)
    data = shot.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 50_000
    keep = os.environ.get("BSTACK_SCREENSHOT_DIR")
    if keep:
        shutil.copy(shot, Path(keep) / "tra-emulator-build.png")
