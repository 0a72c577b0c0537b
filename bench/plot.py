"""Draws docs/benchmarks/results.png from results.json written by bench/run.

One panel per workload, grouped bars of req/s per target for each
concurrency. Run with the bench venv's Python (it has matplotlib).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main(src, dst):
    data = json.load(open(src))
    opts, results, names = data["options"], data["results"], data["targets"]
    workloads, conc, targets = opts["workloads"], opts["conc"], opts["targets"]
    cols = 3
    rows = (len(workloads) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(6 * cols, 4.2 * rows), squeeze=False)
    width = 0.8 / len(targets)
    for i, w in enumerate(workloads):
        ax = axes[i // cols][i % cols]
        for j, t in enumerate(targets):
            ys = [results.get(t, {}).get(w, {}).get(str(c), {}).get("rps", 0) for c in conc]
            xs = [k + (j - (len(targets) - 1) / 2) * width for k in range(len(conc))]
            ax.bar(xs, ys, width, label=names[t])
        ax.set_title(f"{w}: {data['workloads'][w]}", fontsize=10)
        ax.set_xticks(range(len(conc)))
        ax.set_xticklabels([f"c{c}" for c in conc])
        ax.set_ylabel("req/s")
        ax.grid(axis="y", alpha=0.3)
    for k in range(len(workloads), rows * cols):
        axes[k // cols][k % cols].axis("off")
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(targets), fontsize=9)
    quick = " (--quick: indicative only)" if opts.get("quick") else ""
    fig.suptitle(f"mod_wsgi_rs benchmarks, {data['machine']['date']}, "
                 f"{data['machine']['nproc']} cores{quick}")
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(dst, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
