"""Storage: S3 access through boto3 (standard credential chain), artifact store, model registry."""
