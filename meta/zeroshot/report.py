"""What ``jungle report`` shows about blanks and about a zero-shot model.

- :func:`blank_filter_html`: for any model with a ``blank`` class whose labelled clips have
  out-of-fold probabilities, the blank filter's curve (blank clips removed against animal clips
  lost, over every threshold) and the share of blanks removed at a few acceptable losses.
- :func:`unmeasured_html`: the page of a zero-shot model made without labels: what made it (the
  evidence, encoders, images, detector, class map and its uncovered classes, the rule's constants)
  and that nothing about it is measured yet.
"""

from __future__ import annotations

import html

import numpy as np

from .blank_filter import BLANK, filter_curve

__all__ = ["LOSSES", "blank_filter_html", "zero_shot_html", "unmeasured_html"]

LOSSES = (0.01, 0.02, 0.05, 0.1, 0.2)
"""Acceptable shares of animal clips lost at which the report reads the curve."""


def _rows(rows) -> str:
    return "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)


def blank_filter_html(classes: list[str], Y: np.ndarray, P: np.ndarray, png) -> str:
    """The blank filter section from labelled clips' out-of-fold labels ``Y`` and probabilities ``P``
    ('' without a blank class or without both blank and animal clips). ``png(fig)`` embeds a figure."""
    if BLANK not in classes or not len(Y):
        return ""
    blank = classes.index(BLANK)
    animal = np.asarray(Y)[:, blank] == 0
    if animal.all() or not animal.any():
        return ""
    curve = filter_curve(1.0 - np.asarray(P)[:, blank], animal)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4))
    ax.step(curve.animal_loss * 100, curve.blanks_removed * 100, where="post")
    ax.axvline(5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlabel("animal clips lost (%)")
    ax.set_ylabel("blank clips removed (%)")
    ax.set_xlim(0, 50)
    ax.set_ylim(0, 100)
    fig.tight_layout()
    rows = [(f"{loss:.0%}", f"{curve.at_loss(loss):.1%}") for loss in LOSSES]
    return (f"<h2>Blank filter (out of fold, {int(animal.sum())} animal and {int((~animal).sum())} blank clips)"
            "</h2><p>Skipping the clips whose P(animal) = 1 - P(blank) is below a threshold: blanks removed "
            "against animal clips lost over every threshold (<code>jungle predict --max-animal-loss 0.05</code> "
            "picks one).</p><table><tr><th>animal clips lost at most</th><th>blank clips removed</th></tr>"
            f'{_rows(rows)}</table><img alt="blank filter curve" src="data:image/png;base64,{png(fig)}">')


def zero_shot_html(manifest) -> str:
    """What made a zero-shot model ('' for other models)."""
    record = manifest.zero_shot
    if record is None:
        return ""
    cmap = record.class_map
    detector = (record.detector or {}).get("weights") or "none"
    calibrated = (f"re-calibrated on {record.labelled} labelled clips, out of fold" if record.calibration == "labels"
                  else "its stated rule alone (no labels)")
    rows = [("evidence", ", ".join(f.ref for f in record.evidence.features)),
            ("encoders (ImageNet heads)", ", ".join(record.encoders)), ("images", record.images),
            ("detector", detector), ("motion boxes", "yes" if record.motion else "no"),
            ("class map", f"{cmap.get('source')} (sha256 {str(cmap.get('sha256'))[:12]}, {cmap.get('mapped')} "
                          "ImageNet classes)"),
            ("uncovered classes (floor only)", ", ".join(cmap.get("uncovered") or []) or "none"),
            ("calibration", calibrated),
            ("rule", ", ".join(f"{k} {v}" for k, v in record.rule.items() if k != "animal"))]
    return f"<h2>Zero-shot model</h2><table>{_rows(rows)}</table>"


def unmeasured_html(manifest, time_sources: str) -> str:
    """The report page of a model with no labelled clip to measure it on (a zero-shot model made
    without labels)."""
    model_id = html.escape(manifest.model_id)
    style = "body{font-family:sans-serif;max-width:1100px;margin:2em auto}td{border:1px solid #ccc;padding:3px 8px}"
    return (f'<!doctype html><html><head><meta charset="utf-8"><title>jungle report {model_id}</title>'
            f"<style>{style}</style></head><body><h1>Model {model_id}</h1><p>Created "
            f"{html.escape(manifest.created_at)}, code {html.escape(manifest.code_version)}.</p>"
            "<p><b>Not measured yet</b>: no clip was labelled when this model was made, so there is no log loss, "
            "no calibration curve and no blank filter curve. Label clips (<code>jungle review</code>), then run "
            "<code>jungle predict --model zero-shot</code> again: the new model is re-calibrated on the labels "
            f"and its report measures it out of fold.</p><p>{html.escape(time_sources, quote=False)}</p>"
            f"{zero_shot_html(manifest)}</body></html>")
