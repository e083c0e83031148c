"""decant runtime: documents, the operator contract, job graphs, executors, I/O and stats.

Nothing in engine/ knows about HTML, languages or perplexity; that lives in operators/.
"""
