"""The zero-shot model: probabilities for every class before anyone has labelled a clip (rule,
re-calibration with labels, the saved model)."""
