"""torch's learning-rate schedulers replayed on logged values (public as ``runlens.torch``)."""
