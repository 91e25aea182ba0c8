"""The memory tiers' own logic: sensory gate, working-memory segmentation and budget."""
