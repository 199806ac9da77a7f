"""`boss demo`: a built-in sample repository, and the whole pipeline run on it as a user would."""
