"""The reliability campaign: hostile inputs, faults, kills and tampering, counted (issue 10 §5)."""
