"""Dataset loaders for lorakit's lm-eval tasks: each reads a JSON-lines file shipped next to it, so the tasks run
offline (`custom_dataset: !function loaders.<name>` in the task YAML; lm-eval calls it with the task's metadata)."""

from pathlib import Path

import datasets

HERE = Path(__file__).resolve().parent


def _local(file_name: str) -> datasets.DatasetDict:
    return datasets.load_dataset("json", data_files={"test": str(HERE / file_name)})


def capitals(**_: object) -> datasets.DatasetDict:
    """40 countries with their capitals, three distractors and the answer's position."""
    return _local("capitals.jsonl")


def instruction(**_: object) -> datasets.DatasetDict:
    """The course's instruction eval rows, each with its right and its wrong answer."""
    return _local("instruction.jsonl")
