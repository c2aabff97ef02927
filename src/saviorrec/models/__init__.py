"""Models: the SaviorEnc item encoder, the RQ-VAE codebook, the ranker and its blocks."""
