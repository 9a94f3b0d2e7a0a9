"""Published RewardBench v1 scores to read ours against (x100; sections Chat / Chat Hard / Safety /
Reasoning where published). Sources: the RISE-Judge paper (arXiv 2502.11689) for the RISE models,
the RewardBench leaderboard for the others."""
from __future__ import annotations

# name -> (overall, {section: score} or None where only the overall score is listed)
ANCHORS: dict[str, tuple[float, dict[str, float] | None]] = {
    "Skywork-Critic-Llama-3.1-70B": (93.3, {"Chat": 96.65, "Chat Hard": 87.94, "Safety": 93.11, "Reasoning": 95.54}),
    "SFR-Judge-70B": (92.7, None),
    "RISE-Judge-Qwen2.5-32B": (92.7, {"Chat": 96.6, "Chat Hard": 83.3, "Safety": 91.9, "Reasoning": 98.8}),
    "Skywork-Critic-Llama-3.1-8B": (89.0, None),
    "SFR-Judge-8B": (88.6, None),
    "RISE-Judge-Qwen2.5-7B": (88.2, {"Chat": 92.2, "Chat Hard": 76.5, "Safety": 88.0, "Reasoning": 96.1}),
    "GPT-4o": (86.7, None),
    "Prometheus-2-7B": (72.0, None),
    "Llama-3-8B-Instruct": (64.5, None),
    "random": (50.0, {"Chat": 50.0, "Chat Hard": 50.0, "Safety": 50.0, "Reasoning": 50.0}),
}
