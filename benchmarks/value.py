"""Customer value on CDNOW: BG/NBD (+ Gamma-Gamma), LightGBM and their combination, one run.

Protocol of ../shared/datasets/README.md ("Customer value, CDNOW"): calibration 1997-01-01 to
1997-09-30, holdout 1997-10-01 to 1998-06-30 (39 weeks), same-day purchases merged, weeks.
Prints the fitted parameters, holdout repeat purchases per customer (MAE, RMSE, predicted
total against the actual 19,684) and holdout spend (MAE, total; spend per purchase from
Gamma-Gamma for every model but the naive one) for BG/NBD × Gamma-Gamma, the naive anchor
(calibration repeat rate × 39 weeks, mean spend) and four LightGBM designs trained out of time
(:class:`churnscale.value.boosted.BoostedBgNbd`): plain LightGBM on RFM (a rate × 39 weeks),
RFM + the BG/NBD quantities as features, and either with BG/NBD's expected purchases as the
offset (a learned factor on BG/NBD).

Out of time: the calibration period cannot hold a 39-week label before 1997-09-30 (the cohort's
first purchases are 1997-01-01..03-31), so training uses the last full quarter: features at
1997-06-30, label = repeat purchases 1997-07-01..09-30 (13.1 weeks). The design is chosen
without the holdout by the same step one quarter earlier: train at 1997-03-31 on 04-01..06-30,
score MAE at 1997-06-30 on 07-01..09-30 (``validation`` in the output); the chosen design is
marked. Diagnostics (not methods): predicting 0 for everyone, and BG/NBD scaled to the actual
holdout total (an oracle that reads the holdout).

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

from churnscale.value import BgNbd, GammaGamma, Rfm, rfm_of
from churnscale.value.boosted import BoostedBgNbd, out_of_time

CDNOW = Path(__file__).resolve().parents[2] / "shared/datasets/cdnow_events/CDNOW_master.csv"
CALIBRATION_END = np.datetime64("1997-09-30")
HOLDOUT_END = np.datetime64("1998-06-30")
WEEKS = 39.0
VALIDATION_CUTOFF = np.datetime64("1997-03-31")
TRAIN_CUTOFF = np.datetime64("1997-06-30")
DESIGNS = {
    "LightGBM on RFM (rate x 39 weeks)": {"bgnbd_features": False, "bgnbd_offset": False},
    "LightGBM on RFM + BG/NBD features": {"bgnbd_features": True, "bgnbd_offset": False},
    "LightGBM on RFM, BG/NBD offset": {"bgnbd_features": False, "bgnbd_offset": True},
    "LightGBM on RFM + BG/NBD features and offset": {"bgnbd_features": True, "bgnbd_offset": True},
}
Events = tuple[np.ndarray, np.ndarray, np.ndarray]


def validation(events: Events) -> dict[str, float]:
    """Each design's MAE one quarter before the holdout: trained at 1997-03-31 on the next
    quarter, applied at 1997-06-30 to 07-01..09-30 (calibration data only)."""
    rfm, label, horizon = out_of_time(*events, cutoff=VALIDATION_CUTOFF, end=TRAIN_CUTOFF)
    then, actual, ahead = out_of_time(*events, cutoff=TRAIN_CUTOFF, end=CALIBRATION_END)
    scores = {"BG/NBD": _mae(_bgnbd(then).expected_purchases(ahead, *_history(then)), actual)}
    for name, design in DESIGNS.items():
        model = BoostedBgNbd(**design).fit(rfm, label, horizon)  # type: ignore[arg-type]
        scores[name] = _mae(model.expected_purchases(ahead, then), actual)
    return scores


def boosted(events: Events, cal: Rfm, bgnbd: BgNbd) -> dict[str, np.ndarray]:
    """Each design trained at 1997-06-30 on 07-01..09-30, predicting the 39-week holdout."""
    rfm, label, horizon = out_of_time(*events, cutoff=TRAIN_CUTOFF, end=CALIBRATION_END)
    out = {}
    for name, design in DESIGNS.items():
        model = BoostedBgNbd(**design).fit(rfm, label, horizon)  # type: ignore[arg-type]
        out[name] = model.expected_purchases(WEEKS, cal, bgnbd)
    return out


def _bgnbd(rfm: Rfm) -> BgNbd:
    return BgNbd.fit(*_history(rfm))


def _history(rfm: Rfm) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return rfm.frequency, rfm.recency, rfm.age


def _mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    return float(np.abs(predicted - actual).mean())


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
    events = (customer, day, amount)
    started = time.perf_counter()
    chosen_by = validation(events)
    chosen = min(DESIGNS, key=chosen_by.__getitem__)
    combined = boosted(events, cal, bgnbd)
    boost_seconds = time.perf_counter() - started
    predictions = {
        "BG/NBD": bgnbd.expected_purchases(WEEKS, cal.frequency, cal.recency, cal.age),
        "naive rate x 39 weeks": np.divide(
            cal.frequency, cal.age, out=np.zeros_like(cal.age), where=cal.age > 0
        )
        * WEEKS,
        **combined,
    }
    mean_spend = float(cal.mean_spend[cal.frequency > 0].mean())
    per_purchase = gg.expected_spend(cal.frequency, cal.mean_spend)
    spend = {
        "BG/NBD": per_purchase,
        "naive rate x 39 weeks": np.where(cal.frequency > 0, cal.mean_spend, mean_spend),
        **dict.fromkeys(combined, per_purchase),
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
    base = predictions["BG/NBD"]
    diagnostics = {
        "zero for everyone: MAE": _mae(np.zeros_like(actual), actual),
        "BG/NBD x (actual total / its total), oracle: MAE": _mae(
            base * actual.sum() / base.sum(), actual
        ),
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
                "lightgbm_seconds": boost_seconds,
                "validation_mae": chosen_by,
                "chosen": chosen,
                "diagnostics": diagnostics,
                "load_1min": os.getloadavg()[0],
                "methods": rows,
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
