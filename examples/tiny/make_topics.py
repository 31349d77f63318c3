"""Write topics.csv: 160 short texts in two topics (sport, tech), words drawn with a fixed seed."""

import csv
import random
from pathlib import Path

WORDS = {"sport": "goal match team player score league coach win".split(),
         "tech": "chip phone software network data cloud robot app".split()}
COMMON = "the a of and today new big".split()

rng = random.Random(0)
rows = []
for i in range(160):
    label = "sport" if i % 2 else "tech"
    words = [rng.choice(WORDS[label] if rng.random() < 0.7 else COMMON) for _ in range(rng.randint(4, 14))]
    rows.append((" ".join(words), label))
with open(Path(__file__).with_name("topics.csv"), "w", newline="") as f:
    writer = csv.writer(f)
    writer.writerow(["text", "label"])
    writer.writerows(rows)
