import json
import re

import pytest

from shieldkit.debugger import ContinuationTarget, attention_maps, explain
from shieldkit.debugger.base import SIGN_CONVENTION
from shieldkit.debugger.html import attention_page
from shieldkit.errors import ConfigError

# anything that would make a browser fetch: URLs, protocol-relative links, src/href attributes, CSS imports
EXTERNAL = re.compile(r"https?:|//[a-z0-9]|\bsrc\s*=|\bhref\s*=|@import|url\(", re.IGNORECASE)


@pytest.fixture(scope="module")
def result(tiny_runtime):
    target = ContinuationTarget(tiny_runtime, "Visit <b>bold</b> & 'quoted' text", " then stop", span=(0, 2))
    return explain(target, "integrated_gradients", steps=4, progress=lambda *_: None)


def test_json_export_carries_scores_segments_and_the_sign(result, tmp_path):
    data = json.loads(result.save(tmp_path / "r.json", "words").read_text())
    assert data["sign_convention"] == SIGN_CONVENTION
    assert [t["score"] for t in data["tokens"]] == result.scores
    assert data["granularity"] == "words" and data["segments"]
    assert data["completeness"]["gap"] == pytest.approx(result.completeness.gap)


def test_html_export_is_self_contained_with_a_sign_legend(result, tmp_path):
    page = result.save(tmp_path / "r.html").read_text()
    assert not EXTERNAL.search(page), EXTERNAL.search(page)
    assert "raised" in page and "lowered" in page and SIGN_CONVENTION.split(" (")[0] in page
    assert "<b>bold" not in page and "&lt;b&gt;" in page and "&lt;/b&gt;" in page  # user text is escaped
    assert page.count("class='sk-token") >= len([t for t in result.tokens if t.kind == "text"])
    assert "sk-target" in page  # the explained span is marked


def test_attention_page_is_self_contained(tiny_runtime):
    maps = attention_maps(tiny_runtime, "A </script><script>alert(1)</script> test")
    for view, head in (("weights", 0), ("weights", None), ("rollout", None)):
        page = attention_page(maps, layer=1, head=head, view=view)
        assert not EXTERNAL.search(page)
        assert "<script>alert(1)" not in page


def test_unknown_export_format_is_refused(result, tmp_path):
    with pytest.raises(ConfigError, match=".csv"):
        result.save(tmp_path / "r.csv")
