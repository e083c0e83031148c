"""Deduplication: CCNet line dedup, exact content hashes, global MinHash-LSH near-duplicates, and the
index (OUT/index/) through which a later job dedups against earlier outputs."""
