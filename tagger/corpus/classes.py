"""The 50 AudioSet classes of the embedded default model, and the labels each one implies."""

from __future__ import annotations

from tagger.labels import audioset_labels

CLASSES: tuple[str, ...] = (
    "Speech", "Speech synthesizer", "Laughter", "Screaming", "Walk, footsteps", "Crowd",
    "Dog", "Horse", "Cattle, bovinae", "Pig", "Sheep", "Chicken, rooster", "Bird", "Insect",
    "Car", "Train", "Aircraft", "Helicopter", "Vehicle horn, car horn, honking",
    "Explosion", "Gunshot, gunfire", "Rain", "Thunder", "Wind", "Water", "Fire", "Typing",
    "Door", "Shatter", "Music", "Piano", "Organ", "Acoustic guitar", "Electric guitar",
    "Violin, fiddle", "Cello", "Trumpet", "Trombone", "Flute", "Saxophone", "Clarinet", "Harp",
    "Accordion", "Choir", "Drum kit", "Sine wave", "White noise", "Pink noise", "Siren",
    "Telephone dialing, DTMF",
)

INSTRUMENTS: tuple[str, ...] = (
    "Piano", "Organ", "Acoustic guitar", "Electric guitar", "Violin, fiddle", "Cello", "Trumpet",
    "Trombone", "Flute", "Saxophone", "Clarinet", "Harp", "Accordion", "Choir", "Drum kit",
)

# AudioSet's ontology puts these classes under another of the 50; a clip of the child is also
# a clip of the parent (a helicopter is an aircraft, a piano phrase is music).
IMPLIED: dict[str, str] = {
    "Speech synthesizer": "Speech",
    "Helicopter": "Aircraft",
    **{instrument: "Music" for instrument in INSTRUMENTS},
}


def with_implied(labels: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    """The labels plus the parents they imply, in class order."""
    present = set(labels)
    present |= {IMPLIED[label] for label in labels if label in IMPLIED}
    unknown = present - set(CLASSES)
    if unknown:
        raise ValueError(f"not corpus classes: {sorted(unknown)}")
    return tuple(label for label in CLASSES if label in present)


def check_against_audioset() -> None:
    """Every corpus class must be an AudioSet display name (so the model speaks AudioSet)."""
    missing = [name for name in CLASSES if name not in audioset_labels()]
    if missing:
        raise ValueError(f"not AudioSet class names: {missing}")
