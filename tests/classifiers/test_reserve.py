"""Benign rows the corpus's caps left out: extra rows for each everyday source's false-positive budget."""

import numpy as np
import pytest

from shieldkit.classifiers.calibration import PROBABILITY_FLOOR, benign_threshold
from shieldkit.classifiers.corpus import EVALUATION_SETS, EVERYDAY_SOURCES, SETS, build_corpus, normalise
from shieldkit.classifiers.reserve import Reserve, benign_reserve
from shieldkit.errors import DataError

from .conftest import DATA_ROOT

needs_data = pytest.mark.skipif(not (DATA_ROOT / "training").is_dir(), reason=f"no training data at {DATA_ROOT}")


def _source_with_three_high_rows():
    """200 held-out rows of one source, 3 of them high (1.5 %: a 1 % budget on 200 rows passes only the lowest), among
    2,000 easy rows of another, so that the pooled budget allows them."""
    rng = np.random.default_rng(0)
    held = np.concatenate([rng.random(200) * 0.3, rng.random(2000) * 0.3])
    held[:3] = [0.97, 0.95, 0.9]
    return held, np.array(["banking77-benign"] * 200 + ["clinc150-benign"] * 2000)


def test_a_sources_budget_hangs_on_its_top_rows_without_a_reserve():
    held, sources = _source_with_three_high_rows()
    cut, binding = benign_threshold(held, sources, 0.01)
    assert binding == "banking77-benign" and cut > 0.9


def test_reserve_rows_join_their_sources_budget():
    held, sources = _source_with_three_high_rows()
    easy = np.random.default_rng(1).random(1000) * 0.3  # rows the cap left out, as easy as the source's rest
    cut, binding = benign_threshold(held, sources, 0.01, {"banking77-benign": easy})
    assert cut == pytest.approx(PROBABILITY_FLOOR) and binding.startswith("probability floor")
    hard = 0.6 + np.random.default_rng(2).random(1000) * 0.4  # a source that really is flagged often
    cut, binding = benign_threshold(held, sources, 0.01, {"banking77-benign": hard})
    own = np.concatenate([held[sources == "banking77-benign"], hard])
    assert binding == "banking77-benign" and np.mean(own >= cut) <= 0.01


def test_reserve_rows_do_not_join_the_pool():
    """A reserve of easy commands must not dilute the pooled budget that guards the toxicity corpora's rows."""
    rng = np.random.default_rng(3)
    held = np.concatenate([rng.random(100) * 0.05, 0.5 + rng.random(100) * 0.5])
    sources = np.array(["clinc150-benign"] * 100 + ["stormfront-hate"] * 100)
    without = benign_threshold(held, sources, 0.01)
    with_reserve = benign_threshold(held, sources, 0.01, {"clinc150-benign": rng.random(5000) * 0.05})
    assert without == with_reserve and without[1] == "all benign rows"


def test_a_reserve_names_a_source_for_each_text():
    with pytest.raises(DataError, match="Reserve.origin"):
        Reserve(["a", "b"], ["clinc150-benign"])


@needs_data
def test_the_reserve_is_new_benign_rows_of_capped_everyday_sets():
    corpus = build_corpus(DATA_ROOT)
    reserve = benign_reserve(DATA_ROOT, corpus, per_set=200)
    capped = {name for name, rule in SETS.items() if rule.cap is not None and name in EVERYDAY_SOURCES}
    assert set(reserve.origin) == capped and len(capped) >= 5
    assert all(reserve.origin.count(name) == 200 for name in capped)
    keys = [normalise(text) for text in reserve.texts]
    assert len(set(keys)) == len(keys) and not set(keys) & {normalise(text) for text in corpus.texts}
    for name, reader in EVALUATION_SETS.items():
        assert not set(keys) & {normalise(text) for text in reader(DATA_ROOT)}, name
    assert benign_reserve(DATA_ROOT, corpus, per_set=200) == reserve  # seeded
    with pytest.raises(DataError, match="per_set"):
        benign_reserve(DATA_ROOT, corpus, per_set=-1)
