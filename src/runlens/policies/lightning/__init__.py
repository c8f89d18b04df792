"""Lightning's training-control policies replayed on logged values (public as ``runlens.lightning``)."""
