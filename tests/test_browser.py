"""The built book in a real browser: every page of ``_build/html`` opened in headless Chromium.

Run with ``make test-browser`` (builds the book first). A page fails on a JavaScript error, a
request that does not succeed, a request leaving the machine (the book must read offline),
a broken or alt-less ``<img>``, math that MathJax did not typeset, or an internal link to a
missing page or anchor. A full-page screenshot of each page goes to ``test-artifacts/``.
Playwright drives Debian's Chromium (``/usr/bin/chromium``); it never downloads a browser.
"""

from __future__ import annotations

import functools
import http.server
import re
import subprocess
import threading
from pathlib import Path
from urllib.parse import unquote, urldefrag, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
#: pages not to open (none at present: the index and search pages must work offline too)
SKIP: set[str] = set()
_REFRESH = re.compile(r'http-equiv="refresh"[^>]*url=([^"\'>]+)', re.IGNORECASE)

#: console messages of the toolchain itself, each harmless and explained, not of the book:
KNOWN = {
    # Sphinx 7.4 re-adds sphinx-thebe's inline config script (added with filename None) a
    # second time when writing; the second copy's `const` fails, the first already defined it.
    "Identifier 'THEBE_JS_URL' has already been declared",
    # pydata-sphinx-theme on a first visit (no colour mode stored yet) falls back to "auto".
    "Got invalid theme mode: . Resetting to auto.",
}

# Runs in the page once it has loaded: forces lazy images, waits for MathJax, then reports.
INSPECT = """async () => {
  const images = [...document.images];
  images.forEach(img => { img.loading = "eager"; });
  const broken = [];
  await Promise.all(images.map(img => img.decode().catch(() => broken.push(img.src))));
  const noAlt = images.filter(img => !(img.getAttribute("alt") || "").trim())
                      .map(img => img.getAttribute("src"));
  const maths = [...document.querySelectorAll(".math")];
  let mathjax = "absent";
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    await MathJax.startup.promise;
    mathjax = "ok";
  }
  const unrendered = maths.filter(el => !el.querySelector("mjx-container"))
                          .map(el => el.textContent.trim().slice(0, 60));
  const mathErrors = [...document.querySelectorAll("mjx-merror")]
                          .map(el => el.textContent.trim().slice(0, 60));
  const links = [...document.querySelectorAll("a[href]")].map(a => a.href);
  const ids = [...document.querySelectorAll("[id]")].map(el => el.id)
      .concat([...document.querySelectorAll("a[name]")].map(el => el.name));
  return {broken, noAlt, nMath: maths.length, mathjax, unrendered, mathErrors, links, ids};
}"""


def _pages() -> list[Path]:
    return sorted(p for p in HTML.rglob("*.html")
                  if p.name not in SKIP and not {"_static", "_sources", "_images"} & set(
                      p.relative_to(HTML).parts))


def _redirect(path: Path) -> str | None:
    """Target of a meta-refresh page (Jupyter Book's root index.html), else None."""
    match = _REFRESH.search(path.read_text(errors="replace")[:2000])
    return match.group(1) if match else None


@pytest.fixture(scope="module")
def site():
    """Serve ``_build/html`` (built with ``make book`` if missing) on a free local port."""
    if not (HTML / "index.html").exists():
        subprocess.run(["make", "book"], cwd=ROOT, check=True)
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):  # keep pytest's output readable
        pass


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `apt-get install -y chromium` (make test-browser "
                    f"does this)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                      headless=True)
        yield chromium
        chromium.close()


def _visit(browser, site: str, page_path: Path) -> tuple[list[str], dict]:
    """Problems found on one page, and what the page reported (links and anchor ids)."""
    context, page, problems = _offline_page(browser, site)
    page.on("console", lambda msg: problems.append(f"console error: {msg.text}")
            if msg.type == "error" and msg.text not in KNOWN else None)
    page.on("requestfailed", lambda req: problems.append(
        f"request failed: {req.url} ({req.failure})") if req.url.startswith(site) else None)
    page.on("response", lambda res: problems.append(f"HTTP {res.status}: {res.url}")
            if res.status >= 400 else None)
    url = site + page_path.relative_to(HTML).as_posix()
    page.goto(url, wait_until="load", timeout=60_000)
    report = page.evaluate(INSPECT)
    page.wait_for_timeout(200)  # let late console errors arrive
    shot = ARTIFACTS / (page_path.relative_to(HTML).as_posix().replace("/", "__") + ".png")
    page.screenshot(path=str(shot), full_page=True)
    context.close()
    problems += [f"image does not load: {src[:100]}" for src in report["broken"]]
    problems += [f"<img> without alt text: {str(src)[:100]}" for src in report["noAlt"]]
    if report["nMath"] and report["mathjax"] != "ok":
        problems.append(f"{report['nMath']} math elements but MathJax did not load")
    problems += [f"math not typeset: {txt!r}" for txt in report["unrendered"][:5]]
    problems += [f"MathJax error: {txt!r}" for txt in report["mathErrors"][:5]]
    return problems, report


def _local_target(site: str, href: str) -> tuple[Path, str] | None:
    """File under ``_build/html`` and fragment an internal link points to (None if external)."""
    if not href.startswith(site):
        return None
    url, fragment = urldefrag(href)
    rel = unquote(urlparse(url).path).lstrip("/")
    target = HTML / rel
    if not rel or rel.endswith("/"):
        target = target / "index.html"
    return target, fragment


def test_every_page_renders_offline_with_working_links(site, browser):
    pages = _pages()
    assert pages, f"no pages in {HTML}"
    ARTIFACTS.mkdir(exist_ok=True)
    problems, reports = {}, {}
    for path in pages:
        target = _redirect(path)
        if target is not None:  # a redirect: its target must exist, there is nothing to see
            if not (path.parent / target.split("#")[0]).exists():
                problems[path] = [f"redirect to a missing page: {target}"]
            continue
        found, reports[path] = _visit(browser, site, path)
        if found:
            problems[path] = found
    # internal links: the file must exist and, for an anchor into a book page, the id too
    for path, report in reports.items():
        for href in report["links"]:
            target = _local_target(site, href)
            if target is None:
                continue
            file, fragment = target
            if not file.exists():
                problems.setdefault(path, []).append(f"broken link: {href}")
            elif fragment and file in reports and fragment not in reports[file]["ids"]:
                problems.setdefault(path, []).append(f"missing anchor: {href}")
    lines = [f"{p.relative_to(HTML)}: {msg}" for p, msgs in problems.items() for msg in msgs]
    assert not lines, f"{len(lines)} problems on {len(problems)} of {len(pages)} pages:\n" + \
        "\n".join(lines)
    assert len(list(ARTIFACTS.glob("*.png"))) >= len(reports)


def test_search_works_offline(site, browser):
    """The search page answers from the built index (no search service needed)."""
    page = browser.new_page()
    errors = []
    page.on("pageerror", lambda err: errors.append(str(err)) if str(err) not in KNOWN else None)
    page.goto(site + "search.html?q=closure", wait_until="load", timeout=60_000)
    hits = page.locator("#search-results ul.search li")
    hits.first.wait_for(timeout=30_000)
    assert hits.count() >= 1 and not errors, (hits.count(), errors)
    page.close()


# --- self-check quizzes and collapsed answers (a two-page book built here, and the real one) --

@pytest.fixture(scope="module")
def minisite(tmp_path_factory):
    """The two-page book of ``tests/minibook.py`` (a lab page with a written answer and the
    stability quiz), served on a free local port."""
    from minibook import build

    html = build(tmp_path_factory.mktemp("minibook"))
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _offline_page(browser, site: str):
    """A page that aborts (and records) every request leaving ``site``, and records errors."""
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def route(r):
        if r.request.url.startswith(site) or r.request.url.startswith(("data:", "blob:")):
            r.continue_()
        else:
            problems.append(f"request leaves the machine: {r.request.url}")
            r.abort()

    page.route("**/*", route)
    page.on("pageerror", lambda err: problems.append(f"JavaScript error: {err}")
            if str(err) not in KNOWN else None)
    return context, page, problems


def _answer_every_question(page) -> int:
    """Click one answer of every multiple-choice question and submit every numeric one;
    return how many questions showed feedback."""
    # jupyterquiz: one div.Quiz per question, holding the question, its answers, a feedback
    questions = page.locator("div.Quiz")
    questions.first.wait_for(timeout=30_000)
    answered = 0
    for i in range(questions.count()):
        q = questions.nth(i)
        buttons = q.locator(".MCButton")
        if buttons.count():
            buttons.first.click()
        else:
            field = q.locator("input.Input-text")
            field.fill("42")
            field.press("Enter")
        feedback = q.locator(".Feedback")
        feedback.first.wait_for(timeout=5_000)
        if feedback.first.inner_text().strip():
            answered += 1
    return answered


def test_quiz_gives_immediate_feedback_offline(minisite, browser):
    from nnparam.quiz import questions

    context, page, problems = _offline_page(browser, minisite)
    page.goto(minisite + "solutions/lab99_mini.html", wait_until="load", timeout=60_000)
    answered = _answer_every_question(page)
    page.wait_for_timeout(800)  # jupyterquiz typesets math after 500 ms: must stay local
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "minibook__quiz.png"), full_page=True)
    context.close()
    assert answered == len(questions("stability")) and not problems, (answered, problems)


def test_written_answer_is_collapsed_until_opened(minisite, browser):
    from minibook import ANSWER

    context, page, problems = _offline_page(browser, minisite)
    page.goto(minisite + "solutions/lab99_mini.html", wait_until="load", timeout=60_000)
    text = page.get_by_text(ANSWER)
    assert not text.is_visible()
    page.locator(".lab-model-answer .toggle-button, .lab-model-answer button").first.click()
    text.wait_for(state="visible", timeout=5_000)
    context.close()
    assert not problems, problems


def test_chapter_quizzes_in_the_built_book_give_feedback(site, browser):
    pages = [p for p in _pages() if "show_questions" in p.read_text(errors="replace")]
    if not pages:
        pytest.skip("no page of the built book has a self-check quiz yet")
    failures = []
    for path in pages:
        context, page, problems = _offline_page(browser, site)
        page.goto(site + path.relative_to(HTML).as_posix(), wait_until="load", timeout=60_000)
        answered = _answer_every_question(page)
        page.wait_for_timeout(800)
        context.close()
        if not answered or problems:
            failures.append(f"{path.relative_to(HTML)}: {answered} answered, {problems}")
    assert not failures, "\n".join(failures)
