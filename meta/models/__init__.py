"""Saved models beyond the stack's boosters: how they are named, listed and chosen (:mod:`.names`), the
review page's linear re-fit (:mod:`.linear`), and how members' probabilities are blended and clipped
(:mod:`.blend`)."""
