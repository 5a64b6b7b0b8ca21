"""Saved models beyond the stack: how they are named, listed and chosen (:mod:`.names`), and the
review page's linear re-fit (:mod:`.linear`)."""
