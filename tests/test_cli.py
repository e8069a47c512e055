"""The CLI's argument parsing: `--set FIELD=VALUE` is read by the recipe field's type and checked against its
metadata before anything trains, and `lorakit train --help` lists every field with what it allows."""

import re

import pytest

from lorakit.cli import build_parser
from lorakit.config.recipes import FIELDS, allowed


def test_set_values_get_the_fields_types():
    args = build_parser().parse_args(["train", "--set", "r=8", "--set", "learning_rate=1e-4", "--set",
                                      "gradient_checkpointing=False", "--set", "target_modules=q_proj,v_proj",
                                      "--set", "quantization=None", "--set", "num_train_epochs=2"])
    assert dict(args.set) == {"r": 8, "learning_rate": 1e-4, "gradient_checkpointing": False,
                              "target_modules": ("q_proj", "v_proj"), "quantization": None, "num_train_epochs": 2.0}


@pytest.mark.parametrize("setting,message", [
    ("r=0", r"argument --set: r must be an integer in \[1, 1024\], got 0"),
    ("optim=lion", r"argument --set: optim must be one of \["),
    ("rank=8", r"argument --set: unknown recipe field\(s\) \['rank'\]"),
    ("r", "argument --set: --set expects FIELD=VALUE, got 'r'"),
])
def test_bad_settings_stop_at_parsing_naming_the_field(setting, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["train", "--set", setting])
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_train_help_lists_every_field_with_what_it_allows(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--help"])
    out = " ".join(capsys.readouterr().out.split())  # the field column is padded
    for name, field in FIELDS.items():
        assert f"{name} {' '.join(field.metadata['help'].split())}; {' '.join(allowed(name).split())}" in out
