"""General-ability evaluation of chat models: MT-Bench and AlignBench, graded by any judge.

mtbench_data / alignbench_data (question, reference and config files), mtbench_prompts /
alignbench_prompt (official judge prompts and rating parsers), judges (a chat backend from
judgejax.sample, local or OpenAI-compatible HTTP, as a greedy judge), scores (the official aggregation),
mtbench / alignbench (answer, grade, report; resumable), layout (the output folder), report
(tables and charts)."""
