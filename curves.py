"""curves.py — pictures of training runs: train loss, val loss, val bits per byte and lr against
tokens, read from each run's log.jsonl (train.py), one line per round and per run. train.py redraws
out_dir/curves.png at most once a minute and at each round's end; overlay runs to compare them:

    python curves.py out_a out_b --out=cmp.png

matplotlib is optional: without it nothing is drawn, nothing fails, and this says how to install it.
"""
import json
import os
import sys

# (panel title, log row field): train rows carry loss and lr, eval rows val_loss and val_bpb
PANELS = [("train loss (nats/token)", "loss"), ("val loss (nats/token)", "val_loss"),
          ("val bits per byte", "val_bpb"), ("learning rate", "lr")]


def draw(run_dirs, png_path):
    """Draw the runs' curves into png_path (four panels, x = tokens trained over all rounds).
    Returns the path, or None when matplotlib is missing. Uses matplotlib's object API with the
    Agg canvas: no window, no pyplot state, safe inside train.py (and under torchrun)."""
    try:
        from matplotlib.figure import Figure
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        print("curves.py: matplotlib is not installed, no curves drawn: pip install matplotlib")
        return None
    figure = Figure(figsize=(11, 7), dpi=90)          # 990 x 630 pixels
    FigureCanvasAgg(figure)                            # renders in memory; savefig writes a PNG
    axes = figure.subplots(2, 2).flatten()             # one panel per PANELS entry
    for run_dir in run_dirs:
        # log.jsonl's rows; a resumed run repeats none (train.py drops rows past its checkpoint)
        with open(os.path.join(run_dir, "log.jsonl")) as f:
            rows = [json.loads(line) for line in f if line.strip()]
        for round_number in sorted({r["round"] for r in rows}):
            label = os.path.basename(os.path.normpath(run_dir))
            label += f" round {round_number}" if round_number > 1 else ""
            for ax, (title, key) in zip(axes, PANELS):
                # x: tokens over all rounds (older logs have only the step); a round is its own line
                points = [(r.get("tokens", r["step"]), r[key]) for r in rows
                          if r["round"] == round_number and key in r]
                if points:                             # dots only while few enough to see
                    ax.plot(*zip(*points), marker="." if len(points) < 30 else None, label=label)
    for ax, (title, key) in zip(axes, PANELS):
        ax.set(title=title, xlabel="tokens")
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(png_path)
    return png_path


if __name__ == "__main__":
    dirs = [a for a in sys.argv[1:] if not a.startswith("--")]
    out = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--out=")), "curves.png")
    missing = [d for d in dirs if not os.path.isfile(os.path.join(d, "log.jsonl"))]
    if not dirs or missing:
        sys.exit(f"curves.py: error: name run folders holding log.jsonl (train.py's out_dir; "
                 f"missing in {', '.join(missing) or 'none given'}): "
                 f"python curves.py out_a out_b --out=cmp.png")
    if draw(dirs, out):
        print(f"wrote {out}")
