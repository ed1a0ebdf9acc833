"""How the ``--time-budget`` preset chooses what it serves (issue 18): one search per outer fold
(same folds as benchmarks/quality.py), then each selection rule refitted on every outer training
row and scored on the outer test fold.

    PYTHONPATH=src:benchmarks .venv/bin/python benchmarks/budget_rules.py c2k 0,1,2,3 150
"""

import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parent))
import defaults_data
from churnscale.data.schema import SchemaHints
from churnscale.data.store import ingest, load_info
from churnscale.training import blend
from churnscale.training import budget as B
from churnscale.training.ensemble import Member, seeded
from churnscale.training.local import TrainParams
from churnscale.training.plan import TRAIN, VALID, Exclusion, SplitSpec, plan_split
from quality import _cli
from quality_data import DATASETS, LABEL, load

name, fold_list, S = sys.argv[1], [int(f) for f in sys.argv[2].split(",")], float(sys.argv[3])
if name in DATASETS:
    frame, y = load(name)
    idcol = DATASETS[name].id
else:
    shape = next(s for s in defaults_data.SHAPES if s.name == name)
    x, y, cats = defaults_data.generate(shape, seed=0)
    frame = pd.DataFrame(
        {
            f"x{j}": (
                pd.Series(x[:, j]).map(lambda v: None if np.isnan(v) else f"L{int(v)}")
                if j in cats
                else x[:, j]
            )
            for j in range(x.shape[1])
        }
    )
    frame[LABEL] = y
    idcol = None
splits = list(StratifiedKFold(5, shuffle=True, random_state=42).split(np.zeros(len(y)), y))
base = TrainParams(threads=1)
for fold in fold_list:
    train, test = splits[fold]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        frame.iloc[train].to_csv(root / "train.csv", index=False)
        tf = frame.iloc[test].drop(columns=[LABEL])
        tf.to_csv(root / "test.csv", index=False)
        ingest(str(root / "train.csv"), root / "ds", hints=SchemaHints(target=LABEL, id=idcol))
        ds = root / "ds"
        schema = load_info(ds)[0]
        split = SplitSpec(seed=0)
        clock = B.Clock(S)
        plan = plan_split(ds, schema, split)
        all_rows = sum(plan.count(s) for s in (TRAIN, VALID))
        t0 = time.monotonic()
        cands, yo, half, fids = B.search(
            ds,
            schema,
            base,
            clock,
            seconds=S,
            folds=5,
            exclude=Exclusion.holdout_of(split),
            seed=0,
            all_rows=all_rows,
        )
        tsearch = time.monotonic() - t0
        ranked = sorted(range(len(cands)), key=lambda i: -cands[i].auc)
        greedy = blend.select(cands, yo)
        steps = sum(greedy.values())
        rules = {
            "defaults_s1": ([0], [1.0], 1),
            "defaults_s4": ([0], [1.0], 4),
            "best_s4": (ranked[:1], [1.0], 4),
            "top3_s1": (ranked[:3], [1 / 3] * 3, 1),
            "top3_s4": (ranked[:3], [1 / 3] * 3, 4),
            "greedy_s4": (list(greedy), [n / steps for n in greedy.values()], 4),
        }
        chosen = blend.choose(cands, yo, half, fids)
        rules["guard_s4"] = (chosen, [1 / len(chosen)] * len(chosen), 4)
        out = {
            "dataset": name,
            "fold": fold,
            "candidates": len(cands),
            "search_s": round(tsearch, 1),
            "defaults_cv": cands[0].auc,
            "best_cv": cands[ranked[0]].auc,
            "x": 0,
            "top3_oof": roc_auc_score(yo, np.mean([cands[i].oof for i in ranked[:3]], axis=0)),
            "greedy_oof": roc_auc_score(
                yo, np.sum([cands[i].oof * n for i, n in greedy.items()], axis=0)
            ),
            "chosen": chosen,
        }
        for rule, (idx, w, seeds) in rules.items():
            t1 = time.monotonic()
            members = [
                Member(cands[i].params, cands[i].rounds_for(all_rows), wi)
                for i, wi in zip(idx, w, strict=True)
            ]
            est = sum(cands[i].fit_seconds(all_rows) for i in idx) * seeds
            model, _ = B._fit(ds, schema, split, seeded(members, seeds), None)
            model.save(root / rule)
            fit_s = time.monotonic() - t1
            _cli(
                "score",
                str(root / "test.csv"),
                "--model",
                str(root / rule),
                "--out",
                str(root / f"{rule}.parquet"),
                home=root / "home",
            )
            sc = pd.read_parquet(root / f"{rule}.parquet")
            if idcol:
                sc = sc.set_index(idcol).loc[tf[idcol].astype(str)]
            out[rule] = round(float(roc_auc_score(y[test], sc["churn_probability"].to_numpy())), 4)
            out[rule + "_fit"] = [round(fit_s, 1), round(est, 1), model.booster.num_trees()]
        print(json.dumps(out), flush=True)
