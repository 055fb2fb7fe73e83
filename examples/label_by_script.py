"""Label N items of a project the way a person at the page would (the queue's items, one
at a time, answered from the project's ground truth: the class subfolder each file sits
in, or a table's label column), then measure the export against the same truth.

It is the README's worked examples without a person, so the printed accuracy is what N
careful labels buy.

Run: python examples/label_by_script.py PROJECT N EXPORT.csv
"""

import csv
import sys

from activeprop.labeling import LabelingSession


def main(project: str, n: int, export: str) -> None:
    session = LabelingSession(project)
    truth = session.pool.y
    for _ in range(n):
        item = session.queue(1, client="script")[0]
        session.add_label(item.id, int(truth[item.id]), annotator="script")
    with open(export, "wb") as file:
        file.write(session.export("csv"))
    names = session.pool.class_names
    with open(export, newline="", encoding="utf-8") as file:
        propagated = [r for r in csv.DictReader(file) if r["source"] == "propagated"]
    right = sum(r["label"] == names[truth[int(r["id"])]] for r in propagated)
    print(f"{n} labels; the export's {len(propagated)} propagated labels are "
          f"{right / len(propagated):.1%} right (judged by the ground truth)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
