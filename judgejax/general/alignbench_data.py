"""AlignBench files, read from a folder the user gives (a copy of the THUDM/AlignBench repository
layout: `data/data_v1.1_release.jsonl` and `config/*.json`). AlignBench has no license, so
judgejax does not ship it; get it from https://github.com/THUDM/AlignBench."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from judgejax.data.errors import DataError
from judgejax.general.records import field, question_records

QUESTIONS_FILE = "data/data_v1.1_release.jsonl"
CONFIG_FILES = {
    "dimension_set": "config/dimension_set.json",  # question type -> dimension names
    "definitions": "config/dimension_definition.json",  # dimension name -> definition
    "subcategory_type": "config/subcategory_question_mapping.json",  # subcategory -> question type
    "temperature": "config/temperature.json",  # primary category -> temperature of the model under test
}
DEFAULT_TEMPERATURE = 0.7  # get_answers.py's fallback for a category missing from temperature.json
# The two top-level groups of show_result.py, in its order.
GROUPS = {
    "中文推理": ("数学计算", "逻辑推理"),
    "中文语言": ("基本任务", "中文理解", "综合问答", "文本写作", "角色扮演", "专业能力"),
}
ENGLISH = {
    "数学计算": "Mathematics", "逻辑推理": "Logical Reasoning", "基本任务": "Fundamental Language",
    "中文理解": "Chinese Understanding", "综合问答": "Open-ended QA", "文本写作": "Writing",
    "角色扮演": "Role Play", "专业能力": "Professional Knowledge",
    "中文推理": "Reasoning (avg)", "中文语言": "Language (avg)", "总分": "Overall",
}


@dataclasses.dataclass(frozen=True)
class AlignQuestion:
    id: int
    category: str  # primary category: named in the judge prompt, used for temperature and scores
    subcategory: str  # selects the judging dimensions
    question: str
    reference: str


@dataclasses.dataclass(frozen=True)
class AlignConfig:
    dimension_set: dict[str, list[str]]
    definitions: dict[str, str]
    subcategory_type: dict[str, str]
    temperature: dict[str, float]

    def dimensions(self, subcategory: str) -> list[str]:
        """Dimension names for a subcategory: subcategory -> question type -> dimension set."""
        kind = self.subcategory_type.get(subcategory)
        if kind is None or kind not in self.dimension_set:
            raise KeyError(f"subcategory {subcategory!r} has no question type with a dimension set in "
                           f"{CONFIG_FILES['subcategory_type']} / {CONFIG_FILES['dimension_set']}")
        return self.dimension_set[kind]

    def temperature_for(self, category: str) -> float:
        return self.temperature.get(category, DEFAULT_TEMPERATURE)


def load_config(folder: str | Path) -> AlignConfig:
    folder = Path(folder)
    loaded = {}
    for key, relative in CONFIG_FILES.items():
        path = folder / relative
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing; --data must be an AlignBench folder holding "
                                    f"{QUESTIONS_FILE} and {', '.join(CONFIG_FILES.values())}")
        try:
            loaded[key] = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise ValueError(f"{path}: not valid JSON ({error})") from error
        if not isinstance(loaded[key], dict):
            raise ValueError(f"{path}: expected a JSON object")
    config = AlignConfig(**loaded)
    for kind, dimensions in config.dimension_set.items():
        undefined = [d for d in dimensions if d not in config.definitions]
        if undefined:
            raise ValueError(f"{folder / CONFIG_FILES['dimension_set']}: {kind!r} uses dimensions {undefined} "
                             f"that {CONFIG_FILES['definitions']} does not define")
    return config


def load_questions(folder: str | Path, config: AlignConfig) -> list[AlignQuestion]:
    """The questions in file order (which is not id order in v1.1); every subcategory must have
    a dimension set."""
    path = Path(folder) / QUESTIONS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing; --data must be an AlignBench folder (see "
                                "https://github.com/THUDM/AlignBench)")
    questions = []
    for ref, record, qid in question_records(path):
        question = AlignQuestion(qid, field(ref, record, "category", str), field(ref, record, "subcategory", str),
                                 field(ref, record, "question", str), field(ref, record, "reference", str))
        try:
            config.dimensions(question.subcategory)
        except KeyError as error:
            raise DataError(ref, "subcategory", "unmapped", str(error)) from error
        questions.append(question)
    return questions
