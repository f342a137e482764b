"""Independent reference for the linear protocol's probe (train/logistic_probe.ts).

Reads a JSON file {F, grid, train: {x, y}, val: {x, y}, test: {x, y}} (x row-major, already
standardised) and prints JSON: for each C of the grid, scikit-learn's
LogisticRegression(penalty="l2", C=C) fitted to convergence (lbfgs, tol 1e-10) with its
coefficients, intercept and validation AUC; the C with the highest validation AUC (the smallest
among ties), and the test AUC at that C.

    .venv/bin/python tools/sklearn_probe.py features.json
"""

import json
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score


def rows(d, F):
    return np.asarray(d["x"], dtype=np.float64).reshape(-1, F), np.asarray(d["y"], dtype=np.float64)


def main():
    spec = json.load(open(sys.argv[1]))
    F = spec["F"]
    xtr, ytr = rows(spec["train"], F)
    xva, yva = rows(spec["val"], F)
    xte, yte = rows(spec["test"], F)
    path = []
    best = None
    for C in sorted(spec["grid"]):
        m = LogisticRegression(C=C, tol=1e-10, max_iter=100000).fit(xtr, ytr)
        val_auc = roc_auc_score(yva, m.decision_function(xva))
        point = {
            "C": C,
            "val_auc": val_auc,
            "w": m.coef_[0].tolist(),
            "b": float(m.intercept_[0]),
            "n_iter": int(m.n_iter_[0]),
            "test_auc": roc_auc_score(yte, m.decision_function(xte)),
        }
        path.append(point)
        if best is None or val_auc > best["val_auc"]:
            best = point
    print(json.dumps({"path": path, "C": best["C"], "test_auc": best["test_auc"]}))


if __name__ == "__main__":
    main()
