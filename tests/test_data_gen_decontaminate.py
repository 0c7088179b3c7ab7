"""Training problems that overlap an eval benchmark are dropped and reported."""

from __future__ import annotations

import pytest

from data_gen.decontaminate import NgramIndex, build_index, decontaminate, normalize_words
from inference.problems import Problem

AYA = (
    "Every morning Aya goes for a $9$-kilometer-long walk and stops at a coffee shop "
    "afterwards. When she walks at a constant speed of $s$ kilometers per hour, the walk "
    "takes her 4 hours, including $t$ minutes spent in the coffee shop."
)


def index_of(*texts: str, n: int = 8) -> NgramIndex:
    index = NgramIndex(n)
    index.add("bench", [Problem(id=f"b{i}", problem=t, answer="1") for i, t in enumerate(texts)])
    return index


def test_normalization_ignores_case_punctuation_and_latex_markup():
    assert normalize_words("A $9$-Kilometer walk, at $s+\\frac{1}{2}$!") == normalize_words(
        "a 9 kilometer WALK at s + frac 1 2"
    )


def test_reworded_copy_is_dropped_with_the_shared_ngram_and_fresh_problem_kept():
    copy = Problem(
        id="train-7",
        problem="Aya walks each MORNING: every morning aya goes for a 9 kilometer long walk "
        "and stops at a cafe.",
        answer="204",
    )
    fresh = Problem(
        id="train-8", problem="Find the remainder when 7^100 is divided by 13.", answer="9"
    )
    clean, dropped = decontaminate([copy, fresh], index_of(AYA))
    assert [p.id for p in clean] == ["train-8"]
    (hit,) = dropped
    assert (hit.id, hit.benchmark, hit.benchmark_id) == ("train-7", "bench", "b0")
    assert hit.ngram == "every morning aya goes for a 9 kilometer"
    assert hit.ngram in " ".join(normalize_words(AYA))


def test_ngram_length_is_configurable():
    seven_shared = Problem(id="t", problem="so every morning aya goes for a 9 mile run", answer="1")
    assert decontaminate([seven_shared], index_of(AYA, n=8))[1] == []
    assert len(decontaminate([seven_shared], index_of(AYA, n=7))[1]) == 1


def test_short_problem_matches_only_as_a_whole():
    index = index_of("Compute 2+2.", n=8)
    assert len(decontaminate([Problem("a", "compute 2 + 2", "4")], index)[1]) == 1
    assert decontaminate([Problem("b", "compute 2 + 3", "5")], index)[1] == []


def test_real_benchmark_file_catches_a_verbatim_aime24_problem(reference_data):
    import json

    aime24 = json.loads((reference_data / "aime_2024.json").read_text())
    index = build_index([str(reference_data / "aime_2024.json")], n=8)
    leaked = Problem(id="hist-1", problem=aime24[3]["problem"], answer=str(aime24[3]["answer"]))
    own = Problem(id="hist-2", problem="How many positive divisors does 2024 have?", answer="12")
    clean, dropped = decontaminate([leaked, own], index)
    assert [p.id for p in clean] == ["hist-2"]
    assert [d.id for d in dropped] == ["hist-1"]
    assert dropped[0].benchmark == str(reference_data / "aime_2024.json")


def test_bad_ngram_length_is_rejected():
    with pytest.raises(ValueError, match="n-gram"):
        NgramIndex(0)


def test_registry_name_with_a_local_replacement_labels_drops_by_name(reference_data):
    import json

    aimo = json.loads((reference_data / "aimo_2025.json").read_text())
    index = build_index(["aimo25"], n=8, local_files={"aimo25": reference_data / "aimo_2025.json"})
    leaked = Problem(id="x", problem=aimo[0]["problem"], answer=str(aimo[0]["answer"]))
    (hit,) = decontaminate([leaked], index)[1]
    assert (hit.benchmark, hit.benchmark_id) == ("aimo25", str(aimo[0]["id"]))


def test_missing_benchmark_file_names_the_key(tmp_path):
    from leapt.config import ConfigError

    with pytest.raises(ConfigError, match="decontam_benchmarks"):
        build_index([str(tmp_path / "nope.json")], n=8)
    with pytest.raises(ConfigError, match="local_files"):
        build_index(["aimo25"], n=8, local_files={"aimo25": str(tmp_path / "nope.json")})
