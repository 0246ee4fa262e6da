"""Synthetic speech with espeak-ng in many languages and voice variants."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np

from tagger.audio import load_audio

# A few everyday sentences per language (espeak-ng voice name -> sentences).
SENTENCES: dict[str, tuple[str, ...]] = {
    "en-us": ("The train to the city leaves at seven fifteen.", "Please remember to close the window before you go.", "I think the weather will be better tomorrow afternoon.", "Could you tell me where the nearest pharmacy is?"),
    "en-gb": ("We had a lovely walk along the river on Sunday.", "The meeting has been moved to half past three.", "Would you like a cup of tea with your breakfast?"),
    "de": ("Der Zug nach Berlin hat heute zehn Minuten Verspätung.", "Kannst du mir bitte das Salz geben?", "Morgen früh gehen wir zusammen auf den Markt."),
    "fr-fr": ("Le train pour Paris part à sept heures.", "Il fait très beau aujourd'hui, allons nous promener.", "Pouvez-vous répéter la question, s'il vous plaît?"),
    "es": ("El autobús llega a la estación a las ocho.", "Mañana vamos a visitar a mis abuelos.", "¿Dónde está la biblioteca de la universidad?"),
    "it": ("Domani mattina andiamo al mercato insieme.", "Il treno per Roma parte dal binario tre.", "Vorrei un caffè e una brioche, per favore."),
    "pt-br": ("O ônibus para o centro sai às nove horas.", "Hoje à noite vamos jantar na casa da minha irmã.", "Você sabe onde fica a farmácia mais próxima?"),
    "nl": ("De trein naar Amsterdam vertrekt om acht uur.", "Zullen we morgen samen gaan fietsen?", "Het regent al de hele dag in de stad."),
    "sv": ("Tåget till Stockholm går klockan sju.", "Vi ska äta middag hos min bror i kväll.", "Kan du hjälpa mig med den här väskan?"),
    "pl": ("Pociąg do Krakowa odjeżdża o ósmej.", "Jutro pójdziemy razem do kina.", "Czy możesz mi podać sól?"),
    "ru": ("Поезд в Москву отправляется в семь часов.", "Завтра мы пойдём в парк с детьми.", "Скажите, пожалуйста, где находится аптека?"),
    "cs": ("Vlak do Prahy odjíždí v osm hodin.", "Zítra půjdeme společně na procházku.", "Můžete mi prosím pomoci s tímto kufrem?"),
    "fi": ("Juna Helsinkiin lähtee kello seitsemän.", "Huomenna menemme yhdessä torille.", "Voisitko auttaa minua tämän laukun kanssa?"),
    "tr": ("İstanbul treni saat yedide kalkıyor.", "Yarın birlikte pazara gideceğiz.", "En yakın eczane nerede, biliyor musunuz?"),
    "hu": ("A vonat nyolc órakor indul Budapestre.", "Holnap együtt megyünk a piacra.", "Meg tudná mondani, hol van a posta?"),
    "el": ("Το τρένο για την Αθήνα φεύγει στις επτά.", "Αύριο θα πάμε μαζί στη θάλασσα.", "Μπορείτε να με βοηθήσετε, παρακαλώ;"),
}
VARIANTS = ("m1", "m2", "m3", "m4", "m7", "f1", "f2", "f3", "f4", "croak", "klatt", "whisper", "Alex", "Andrea", "Storm", "robert")


def voices(rng: np.random.Generator, count: int) -> list[tuple[str, str]]:
    """``count`` distinct (language, variant) pairs, spread over all languages."""
    pairs = [(language, variant) for language in SENTENCES for variant in VARIANTS]
    chosen = rng.choice(len(pairs), size=min(count, len(pairs)), replace=False)
    return sorted(pairs[i] for i in chosen)


def speak(text: str, voice: str, speed: int, pitch: int, wav: Path) -> np.ndarray:
    """Synthesize ``text`` with espeak-ng and return it as 32 kHz mono float32."""
    command = ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "-w", str(wav), text]
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    audio = load_audio(wav)
    wav.unlink()
    return audio


def utterance(rng: np.random.Generator, language: str, sentences: int) -> str:
    """``sentences`` random sentences of a language, joined."""
    pool = SENTENCES[language]
    order = rng.permutation(len(pool))
    return " ".join(pool[order[i % len(pool)]] for i in range(sentences))
