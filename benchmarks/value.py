"""Customer value on CDNOW: BG/NBD (+ Gamma-Gamma) against the naive rate in the same run.

Protocol of ../shared/datasets/README.md ("Customer value, CDNOW"): calibration 1997-01-01 to
1997-09-30, holdout 1997-10-01 to 1998-06-30 (39 weeks), same-day purchases merged, weeks.
Prints the fitted parameters, holdout repeat purchases per customer (MAE, RMSE, predicted
total against the actual 19,684) and holdout spend (MAE, total) for BG/NBD × Gamma-Gamma and
for the naive anchor (calibration repeat rate × 39 weeks, mean spend).

    python benchmarks/value.py
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from churnscale.value import BgNbd, GammaGamma, rfm_of

CDNOW = Path(__file__).resolve().parents[2] / "shared/datasets/cdnow_events/CDNOW_master.csv"
CALIBRATION_END = np.datetime64("1997-09-30")
HOLDOUT_END = np.datetime64("1998-06-30")
WEEKS = 39.0


def main() -> None:
    table = pacsv.read_csv(CDNOW)
    text = pc.cast(table["date"], pa.string())
    day = pc.strptime(text, format="%Y%m%d", unit="s").cast(pa.date32()).to_numpy()
    customer, amount = table["customer_id"].to_numpy(), table["dollar_value"].to_numpy()
    started = time.perf_counter()
    cal = rfm_of(customer, day, amount, end=CALIBRATION_END)
    full = rfm_of(customer, day, amount, end=HOLDOUT_END)
    actual = full.frequency - cal.frequency
    spend_full = full.mean_spend * full.frequency
    actual_spend = spend_full - cal.mean_spend * cal.frequency
    bgnbd = BgNbd.fit(cal.frequency, cal.recency, cal.age)
    gg = GammaGamma.fit(cal.frequency, cal.mean_spend)
    seconds = time.perf_counter() - started
    predictions = {
        "BG/NBD": bgnbd.expected_purchases(WEEKS, cal.frequency, cal.recency, cal.age),
        "naive rate x 39 weeks": np.divide(
            cal.frequency, cal.age, out=np.zeros_like(cal.age), where=cal.age > 0
        )
        * WEEKS,
    }
    mean_spend = float(cal.mean_spend[cal.frequency > 0].mean())
    spend = {
        "BG/NBD": gg.expected_spend(cal.frequency, cal.mean_spend),
        "naive rate x 39 weeks": np.where(cal.frequency > 0, cal.mean_spend, mean_spend),
    }
    rows = {}
    for name, predicted in predictions.items():
        money = predicted * spend[name]
        rows[name] = {
            "mae": float(np.abs(predicted - actual).mean()),
            "rmse": float(np.sqrt(np.square(predicted - actual).mean())),
            "predicted_total": float(predicted.sum()),
            "total_error": float(predicted.sum() / actual.sum() - 1),
            "spend_mae": float(np.abs(money - actual_spend).mean()),
            "spend_total_error": float(money.sum() / actual_spend.sum() - 1),
        }
    print(
        json.dumps(
            {
                "customers": len(cal.customer),
                "actual_total": float(actual.sum()),
                "actual_spend": float(actual_spend.sum()),
                "bgnbd": vars(bgnbd),
                "gamma_gamma": vars(gg),
                "fit_seconds": seconds,
                "load_1min": os.getloadavg()[0],
                "methods": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
