"""Inference pipelines: a model folder in, video frames out."""
