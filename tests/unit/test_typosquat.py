"""Typosquat detection against the ML stack's PyPI names (policy/ml_packages.toml)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hexscan.policy import lists
from hexscan.supply.typosquat import damerau_levenshtein, load_policy, nearest, typosquat_of
from hexscan.supply.versions import normalise


@pytest.mark.parametrize(("name", "target"), [
    ("tourch", "torch"),                 # inserted letter
    ("troch", "torch"),                  # swapped letters
    ("numpyy", "numpy"),                 # doubled letter
    ("nunpy", "numpy"),                  # substituted letter
    ("transformer", "transformers"),     # dropped letter (no such PyPI project)
    ("transfromers", "transformers"),
    ("scikit-lern", "scikit-learn"),
    ("scikitlearn", "scikit-learn"),     # separator dropped
    ("sklearn-scikit", None),
    ("huggingfacehub", "huggingface-hub"),
    ("sentencetransformers", "sentence-transformers"),
    ("tensorflw", "tensorflow"),
    ("tenserflow", "tensorflow"),
    ("tensorfolw", "tensorflow"),
    ("reqeusts", "requests"),
    ("pandsa", "pandas"),
    ("panda", "pandas"),                 # exists on PyPI, but a classic typo target
    ("opencv-pyhton", "opencv-python"),
    ("llama-cpp-pyton", "llama-cpp-python"),
    ("safetensor", "safetensors"),
    ("onxn", "onnx"),                    # short names: swaps only
    ("tqmd", "tqdm"),
    ("python-torch", "torch"),           # prefix squats
    ("Python3_NumPy", "numpy"),
    ("py-transformers", "transformers"),
])
def test_squats(name: str, target: str | None) -> None:
    assert typosquat_of(name) == target


@pytest.mark.parametrize("name", [
    # the listed names themselves, in any spelling PEP 503 treats as the same project
    "torch", "Torch", "scikit-learn", "scikit_learn", "Scikit.Learn", "huggingface_hub",
    "sentence_transformers", "PyYAML", "Pillow", "opencv_python", "llama_cpp_python",
    # real projects near a listed name (the allowlist)
    "torchx", "scapy", "scipp", "tensorflowjs", "tensorboardX", "ctransformers",
    "x-transformers", "dataset", "datasette", "ngboost", "pyaml", "grequests", "niquests",
    "openapi", "willow", "wand", "jaxlie", "streamlink", "sops", "tokenize-rt",
    # real projects far enough not to need an entry
    "torchvision", "torchaudio", "tensorflow-cpu", "tensorflow-gpu", "keras-nlp",
    "onnxruntime-gpu", "pandas-stubs", "scikit-image", "opencv-python-headless", "jaxlib",
    "transformers-stream-generator", "pytorch", "sklearn", "flask", "django", "pydantic",
    "numba", "torchmetrics", "h5pyd", "rlax", "timmx", "tdqm-extra",
    # short listed names are not fuzzy-matched
    "jam", "onyx", "tqdx", "jaxx",
    # nothing to compare
    "", "-", "x" * 500,
])
def test_not_squats(name: str) -> None:
    assert typosquat_of(name) is None


def test_every_allowlisted_name_is_within_reach() -> None:
    """An allowlist entry that the rule would not report anyway is dead weight."""
    policy = load_policy()
    unreachable = [name for name in policy.allowlist if nearest(name, policy) is None]
    assert unreachable == []


def test_listed_names_are_not_near_each_other() -> None:
    """Otherwise a listed name would shadow another's typos."""
    policy = load_policy()
    for name in policy.names:
        others = replace(policy, names=tuple(n for n in policy.names if n != name))
        assert nearest(name, others) is None, name


def test_policy_file_is_normalised_and_documented() -> None:
    data = lists.load("ml_packages")
    names = data["packages"]["names"]
    assert len(names) == len(set(names)) and len(names) >= 30
    assert all(normalise("PyPI", n) == n for n in names)
    for required in ("torch", "tensorflow", "keras", "transformers", "numpy", "scipy", "pandas",
                     "scikit-learn", "onnx", "onnxruntime", "safetensors", "tokenizers",
                     "huggingface-hub", "accelerate", "diffusers", "datasets",
                     "sentence-transformers", "llama-cpp-python", "joblib", "xgboost",
                     "lightgbm", "jax", "flax", "gradio", "mlflow", "langchain", "openai",
                     "pillow", "opencv-python", "requests", "pyyaml"):
        assert required in names
    assert not set(data["allowlist"]["names"]) & set(names)


@pytest.mark.parametrize(("a", "b", "distance"), [
    ("torch", "torch", 0), ("torch", "troch", 1), ("torch", "tourch", 1),
    ("torch", "orch", 1), ("torch", "porch", 1), ("abcd", "badc", 2), ("ca", "abc", 3),
    ("transformers", "transformer", 1), ("", "abc", 3),
])
def test_damerau_levenshtein(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b, 5) == distance
    assert damerau_levenshtein(a, b, 0) == min(distance, 1)


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.", max_size=12),
       st.text(alphabet="abcdefghijklmnopqrstuvwxyz-_.", max_size=12),
       st.integers(min_value=0, max_value=4))
def test_capped_distance_agrees_with_uncapped(a: str, b: str, cap: int) -> None:
    full = damerau_levenshtein(a, b, 100)
    assert damerau_levenshtein(a, b, cap) == (full if full <= cap else cap + 1)
    assert full == damerau_levenshtein(b, a, 100)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=60))
def test_fuzz_never_raises(name: str) -> None:
    result = typosquat_of(name)
    assert result is None or result in load_policy().names
