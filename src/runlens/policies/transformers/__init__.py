"""HF Trainer's training-control policies replayed on logged values (public as ``runlens.transformers``)."""
