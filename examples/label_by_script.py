"""Label N items of a project the way a person at the page would (the queue's items, one
at a time, answered from the class subfolder each file sits in), then measure the export.

It is the README's worked example without a person: the answers come from the folder names
(the ground truth), so the printed accuracy is what 30 careful labels buy.

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
    rows = list(csv.DictReader(open(export)))
    propagated = [r for r in rows if r["source"] == "propagated"]
    right = sum(r["label"] == r["path"].split("/")[0] for r in propagated)
    print(f"{n} labels; the export's {len(propagated)} propagated labels are "
          f"{right / len(propagated):.1%} right (judged by each file's folder)")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3])
