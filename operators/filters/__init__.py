"""Filters that compute signals then decide: quality rules, PII masking, URL block lists."""
