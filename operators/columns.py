"""Names of the web-document columns the operators share (the engine's own are in engine.documents)."""

HTML = "html"
LANGUAGE = "language"
LANGUAGE_SCORE = "language_score"
PERPLEXITY = "perplexity"
BUCKET = "bucket"
