"""Data: the contract (schemas), one reader/writer for local and s3:// paths, sources."""
