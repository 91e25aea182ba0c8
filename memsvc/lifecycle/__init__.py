"""A memory's life after it is written: merging, invalidation, episodes, decay."""
