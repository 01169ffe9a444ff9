import pytest

from pipeline.errors import ConfigError, NotBuiltError
from pipeline.registry import DESCRIPTORS, DETECTORS, LANDMARKERS, REFINERS, Registry


def test_unknown_name_lists_choices():
    with pytest.raises(ConfigError, match="dlib"):
        LANDMARKERS.create("nope")


def test_not_built_stage_names_its_issue():
    from pipeline.registry import _not_built

    r = Registry("thing")
    r.register("later", _not_built("thing", 42, "later"))
    with pytest.raises(NotBuiltError, match="issue #42"):
        r.create("later")


def test_lazy_registration_and_missing_module():
    r = Registry("thing")
    r.register("x", "json:dumps")
    assert r.factory("x")({"a": 1}) == '{"a": 1}'
    r.register("missing", "no_such_module_xyz:Foo")
    with pytest.raises(ConfigError, match="not installed"):
        r.create("missing")


def test_baselines_registered():
    assert {"dlib-hog", "dlib-mmod", "dpm"} <= set(DETECTORS.names())
    assert {"dlib", "godp"} <= set(LANDMARKERS.names())
    assert {"none", "bbox-cnn"} <= set(REFINERS.names())
    assert "dlib-resnet" in DESCRIPTORS.names()
