"""Evaluation: metrics and the Shapes checker. Reads videos; never imports training or pipelines."""
