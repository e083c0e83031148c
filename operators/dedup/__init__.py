"""Deduplication: CCNet line dedup and global MinHash-LSH near-duplicate removal."""
