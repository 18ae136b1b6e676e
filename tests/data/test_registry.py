"""Every registered log format has an importer test; every format is detected by its own fixture."""

from pathlib import Path

from toolcast.data.formats import FORMATS

TESTS = Path(__file__).parent


def test_every_format_has_an_importer_test():
    missing = [name for name in FORMATS if not (TESTS / f"test_format_{name}.py").exists()]
    assert not missing, f"formats registered without tests/data/test_format_<name>.py: {missing}"


def test_format_names_are_unique_and_described():
    for name, fmt in FORMATS.items():
        assert fmt.name == name
        assert fmt.description and "not yet" not in fmt.description
