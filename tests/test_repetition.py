"""Repeated-text loops in judge outputs (judgejax/eval/repetition.py)."""

from judgejax.eval.repetition import loops

ANALYSIS = ("Assistant A explains the recursion step by step and its code handles the empty list. Assistant B "
            "gives only the final formula, which is wrong for negative inputs. A is more helpful and correct. "
            "[[A]]")


def test_a_repeated_sentence_loops_and_an_analysis_does_not():
    looped = ("Assistant A's answer is more accurate and detailed, while Assistant B's answer is less "
              "accurate. " * 3).strip()
    assert loops(looped)
    assert loops("the " * 10)  # one word over and over
    assert not loops(ANALYSIS)
    assert not loops(("Assistant A's answer is more accurate and detailed, while Assistant B's answer is less "
                      "accurate. ") * 2)  # twice is not yet a loop
    assert not loops("") and not loops("[[B]]")
