"""Kinema: AI video generation, training and evaluation in one package."""

__version__ = "0.1.0"
