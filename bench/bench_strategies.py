"""The seed tutorial's strategy comparison, 50 repeats, for logistic regression and label
spreading: 5 random initial labels, then 9 batches of 5 by each strategy, accuracy on the
whole pool (the tutorial's evaluation). Prints both summary tables.

Run: python bench/bench_strategies.py [REPEATS]
"""

import sys

from machine import machine

from activeprop.cli import main

REPEATS = sys.argv[1] if len(sys.argv) > 1 else "50"
COMMON = ["compare", "--strategies", "random,least-confident,margin,entropy", "--subset", "0",
          "--initial", "5", "--batch", "5", "--rounds", "10", "--repeats", REPEATS,
          "--seed", "0", "--eval", "all", "--quiet"]

print(machine())
for model in ("logistic", "spreading"):
    print(f"\n### {model}: `activeprop {' '.join(COMMON)} --model {model} "
          f"--out bench/out/strategies-{model}`\n")
    code = main([*COMMON, "--model", model, "--out", f"bench/out/strategies-{model}"])
    if code:
        sys.exit(code)
