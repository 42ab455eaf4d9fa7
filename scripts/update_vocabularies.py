"""Rewrite the "vocabulary" of the built-in Shapes text models' model_index.json from
kinema.data.shapes.shapes_vocabulary() (after its descriptions change; tests fail while they differ).

    python scripts/update_vocabularies.py
"""

from __future__ import annotations

from pathlib import Path

from kinema.data.shapes import shapes_vocabulary
from kinema.hub import ModelIndex

BUILTIN = Path(__file__).resolve().parents[1] / "src" / "kinema" / "builtin"
TEXT_MODELS = ("shapes-t2v", "shapes-gan", "shapes-ldm")


def main() -> None:
    vocabulary = shapes_vocabulary().to_json()
    for name in TEXT_MODELS:
        folder = BUILTIN / name
        index = ModelIndex.read(folder / "model_index.json")
        index.vocabulary = vocabulary
        index.write(folder)
        print(f"wrote {folder / 'model_index.json'}")


if __name__ == "__main__":
    main()
