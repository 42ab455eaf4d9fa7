"""Prompts in any wording for models trained on a closed vocabulary: the vocabulary a model declares, the
planner that maps a prompt onto it, and splitting a description into shots."""

from kinema.text.planner import Choice, Planner, Scene, plan
from kinema.text.shots import split_shots
from kinema.text.vocabulary import Attribute, Value, Vocabulary, VocabularyError

__all__ = ["Attribute", "Choice", "Planner", "Scene", "Value", "Vocabulary", "VocabularyError", "plan", "split_shots"]
