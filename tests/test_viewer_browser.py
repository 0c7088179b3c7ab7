"""The viewer page in a real browser (headless Debian chromium; install: .ci/setup-browser.sh).

The page is the one ``leapt view`` writes for a LeaP run made by the real
engine; the checks read the DOM after the page's script ran, click like a
reader would, and look at a screenshot's pixels.
"""

from __future__ import annotations

import json

import pytest

from leapt.cli import main as leapt
from tests import browser
from tests.viewer_fixture import PROBLEMS, N, build_run

pytestmark = pytest.mark.skipif(
    not browser.available(), reason="chromium not installed (run .ci/setup-browser.sh)"
)

PEER_BLUE = (0xDC, 0xEB, 0xFD)  # --peer-bg in viewer.css
SUMMARY_AMBER = (0xFD, 0xF0, 0xC4)  # --summary-bg


@pytest.fixture(scope="module")
def page(tmp_path_factory, tiny_model_dir):
    out = tmp_path_factory.mktemp("viewer-browser")
    traces = build_run(out / "run", tiny_model_dir)
    assert leapt(["view", str(out / "run"), "--output", str(out / "view.html")]) == 0
    with browser.Chromium(out) as chrome:
        chrome.open((out / "view.html").as_uri())
        yield chrome, traces, out


def visible(chrome, selector: str) -> int:
    return chrome.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        ".filter(e => e.offsetParent !== null).length"
    )


def search(chrome, text: str) -> None:
    """Type ``text`` into the search box as a user would (the page filters on ``input``)."""
    chrome.evaluate(
        "(() => { const s = document.querySelector('#search');"
        f" s.value = {json.dumps(text)}; s.dispatchEvent(new Event('input')); }})()"
    )


def test_problems_listed_with_gold_answers_and_correctness(page):
    chrome, traces, _ = page
    rows = chrome.evaluate(
        "[...document.querySelectorAll('#problems tbody tr')].map(tr => "
        "[...tr.children].slice(0, 3).map(td => td.textContent)"
        ".concat([[...tr.querySelectorAll('.chip')].map(c => c.className + ' ' + c.textContent)]))"
    )
    expected = []
    for t in traces:
        right = sum(bool(p.correct) for p in t.paths)
        chips = [f"chip {'ok' if p.correct else 'bad'} {p.final_answer}" for p in t.paths]
        expected.append([t.id, t.answer, f"{right}/{len(t.paths)}", chips])
    assert rows == expected
    assert chrome.evaluate("document.querySelector('#detail h2').textContent") == "Problem p1"


def test_paths_side_by_side_turns_aligned_peer_blocks_highlighted(page):
    chrome, traces, _ = page
    assert visible(chrome, ".phdr") == N
    turns = sorted({r.turn for r in traces[0].routing})
    # one row per LeaP turn (+ the answers after the last exchange), aligned across paths
    tops = chrome.evaluate(
        "[...document.querySelectorAll('.cell[data-row=\"1\"]')]"
        ".map(c => Math.round(c.getBoundingClientRect().top))"
    )
    assert len(tops) == N and len(set(tops)) == 1
    lefts = chrome.evaluate(
        "[...document.querySelectorAll('.phdr')].map(c => c.getBoundingClientRect().left)"
    )
    assert lefts == sorted(lefts) and len(set(lefts)) == N
    labels = chrome.evaluate("[...document.querySelectorAll('.rowlabel')].map(e => e.textContent)")
    assert labels == [f"turn {t}" for t in turns] + ["after last exchange"]
    peer_bg = chrome.evaluate(
        "getComputedStyle(document.querySelector('.cell .piece.peer')).backgroundColor"
    )
    assert peer_bg == f"rgb({PEER_BLUE[0]}, {PEER_BLUE[1]}, {PEER_BLUE[2]})"
    assert visible(chrome, ".cell .piece.peer") == N * len(turns)
    assert visible(chrome, ".cell .piece.summary") >= N * len(turns)
    caption = chrome.evaluate("document.querySelector('.peer-caption').textContent")
    first = next(r for r in traces[0].routing if r.path == 0 and r.turn == turns[0])
    assert caption.startswith(f"reads path {first.peers[0]} (similarity ")


def test_routing_view_for_turn_one_shows_the_recorded_peers(page):
    chrome, traces, _ = page
    chrome.evaluate("document.querySelector('details[data-turn=\"1\"] summary').click()")
    chrome.wait_for("document.querySelector('details[data-turn=\"1\"] .routing-matrix')")
    routed = chrome.evaluate(
        "[...document.querySelectorAll('details[data-turn=\"1\"] td.routed')]"
        ".map(td => [Number(td.dataset.reader), Number(td.dataset.peer)])"
    )
    recorded = [[r.path, q] for r in traces[0].routing if r.turn == 1 for q in r.peers]
    assert sorted(routed) == sorted(recorded)
    cells = chrome.evaluate(
        "document.querySelectorAll('details[data-turn=\"1\"] .routing-matrix td').length"
    )
    assert cells == N * N


def test_hostile_trace_text_renders_as_text(page):
    chrome, _, _ = page
    assert chrome.evaluate("typeof window.__pwned") == "undefined"
    assert chrome.evaluate("document.querySelectorAll('img').length") == 0
    assert chrome.evaluate("document.querySelectorAll('script').length") == len(PROBLEMS) + 2
    problem = chrome.evaluate("document.querySelector('.problem-text').textContent")
    assert problem == PROBLEMS[0].problem
    assert "<script>" in chrome.evaluate("document.querySelector('.cell').textContent")
    assert chrome.errors == []


def test_search_filters_problems_and_long_text_folds(page):
    chrome, _, _ = page
    search(chrome, "3 * 5")
    ids = chrome.evaluate(
        "[...document.querySelectorAll('#problems tbody td.pid')].map(td => td.textContent)"
    )
    assert ids == ["p2"]
    assert chrome.evaluate("document.querySelector('#count').textContent") == "1 of 2 problems"
    chrome.evaluate("document.querySelector('#problems tbody tr').click()")
    assert chrome.evaluate("document.querySelector('#detail h2').textContent") == "Problem p2"
    folded = chrome.evaluate("document.querySelector('.problem-text').textContent")
    assert len(folded) < len(PROBLEMS[1].problem) and "more characters" in folded
    chrome.evaluate("document.querySelector('.problem-text button.fold').click()")
    unfolded = chrome.evaluate("document.querySelector('.problem-text').firstChild.textContent")
    assert unfolded == PROBLEMS[1].problem
    search(chrome, "")
    assert visible(chrome, "#problems tbody tr") == len(PROBLEMS)


def test_a_path_expands_alone_and_paths_stack_on_a_narrow_screen(page):
    chrome, traces, _ = page
    chrome.evaluate("document.querySelectorAll('#problems tbody tr')[0].click()")
    chrome.evaluate("document.querySelectorAll('.phdr button.solo')[2].click()")
    shown = chrome.evaluate(
        "[...document.querySelectorAll('.cell')].filter(c => c.offsetParent !== null)"
        ".map(c => c.dataset.path)"
    )
    assert shown and set(shown) == {"2"}
    chrome.evaluate("document.querySelectorAll('.phdr button.solo')[2].click()")
    assert visible(chrome, ".phdr") == N
    chrome.call(
        "Emulation.setDeviceMetricsOverride",
        width=600,
        height=900,
        deviceScaleFactor=1,
        mobile=False,
    )
    try:
        boxes = chrome.evaluate(
            "[...document.querySelectorAll('.phdr, .cell')].filter(c => c.offsetParent !== null)"
            ".map(c => { const r = c.getBoundingClientRect();"
            " return [c.dataset.path, c.dataset.row || '', Math.round(r.left), r.top]; })"
        )
        # stacked: one column, path after path, each path's turns in order
        assert len({left for _, _, left, _ in boxes}) == 1
        ordered = [b[:2] for b in sorted(boxes, key=lambda b: b[3])]
        assert [p for p, _ in ordered] == sorted(p for p, _ in ordered)
        turns = sorted({str(r.turn) for r in traces[0].routing})
        assert [r for p, r in ordered if p == "0"] == ["", *turns, "end"]
    finally:
        chrome.call(
            "Emulation.setDeviceMetricsOverride",
            width=1400,
            height=900,
            deviceScaleFactor=1,
            mobile=False,
        )


def test_screenshot_shows_the_coloured_trace(page):
    from matplotlib.image import imread

    chrome, _, out = page
    chrome.evaluate("document.querySelectorAll('#problems tbody tr')[0].click()")
    shot = out / "viewer.png"
    chrome.screenshot(shot)
    pixels = (imread(shot)[:, :, :3] * 255).round().astype(int)
    assert pixels.shape[:2] == (900, 1400)
    colours = {tuple(px) for px in pixels.reshape(-1, 3)[::7].tolist()}
    assert PEER_BLUE in colours and SUMMARY_AMBER in colours
