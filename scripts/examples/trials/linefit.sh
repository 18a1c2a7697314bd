#!/bin/sh
# A tiny real training job in plain shell: fits y = a*x + b to ten noisy
# points by gradient descent (awk), writing metrics.jsonl every 10 steps and
# metrics.json at the end to $AZ_BATCHAI_OUTPUT_METRICS (or $4).
# usage: linefit.sh LEARNING_RATE STEPS SEED [OUT_DIR]
set -eu
lr=$1 steps=$2 seed=$3
out=${4:-${AZ_BATCHAI_OUTPUT_METRICS:-.}}
mkdir -p "$out"
awk -v lr="$lr" -v steps="$steps" -v seed="$seed" -v out="$out" 'BEGIN {
  srand(seed)
  n = 10
  for (i = 0; i < n; i++) { x[i] = i / n; y[i] = 3 * x[i] + 1 + (rand() - 0.5) * 0.2 }
  a = 0; b = 0
  for (s = 1; s <= steps; s++) {
    ga = 0; gb = 0; loss = 0
    for (i = 0; i < n; i++) { e = a * x[i] + b - y[i]; ga += 2 * e * x[i] / n; gb += 2 * e / n; loss += e * e / n }
    a -= lr * ga; b -= lr * gb
    if (s % 10 == 0) printf "{\"step\": %d, \"loss\": %.10g}\n", s, loss >> (out "/metrics.jsonl")
  }
  printf "{\"loss\": %.10g, \"a\": %.10g, \"b\": %.10g}\n", loss, a, b > (out "/metrics.json.tmp")
  printf "loss=%.6g a=%.6g b=%.6g\n", loss, a, b
}'
mv "$out/metrics.json.tmp" "$out/metrics.json"
