"""Where batch scoring's CPU goes: each stage of ``churnscale score`` run alone, in order.

The same functions the pipeline runs, one stage at a time over every batch (no overlap), with
the process CPU time of each (threads included) per row. Needs a model bundle and a Parquet
file, e.g. those ``benchmarks/score.py`` makes:

    .venv/bin/python benchmarks/score_stages.py MODEL_DIR DATA.parquet
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from churnscale.data.conform import conform
from churnscale.data.readers import read_chunks
from churnscale.model.lightgbm import LightGBMModel
from churnscale.model.predictor import Predictor
from churnscale.scoring.batches import categorical_names, encode, scored_table, scoring_schema
from churnscale.scoring.deciles import ScoreHistogram
from churnscale.scoring.local import output_options, with_deciles

T = TypeVar("T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path)
    parser.add_argument("data", type=Path)
    parser.add_argument("--batch-rows", type=int, default=262_144)
    args = parser.parse_args()
    model = LightGBMModel.load(args.model)
    cpu: dict[str, float] = {}

    def stage(name: str, call: Callable[[], T]) -> T:
        started = time.process_time()
        result = call()
        cpu[name] = time.process_time() - started
        return result

    predictor = stage("compile trees (once per model)", lambda: Predictor(model, kind="compiled"))
    schema = scoring_schema(model)
    chunks = stage(
        "read Parquet",
        lambda: list(
            read_chunks(
                str(args.data),
                batch_rows=args.batch_rows,
                read_dictionary=categorical_names(schema),
            )
        ),
    )
    typed = stage(
        "conform",
        lambda: [
            conform(c.batch, schema, source="", lines=c.lines, keep_dictionary=True)[0]
            for c in chunks
        ],
    )
    matrices = stage("encode (transform)", lambda: [encode(model, b) for b in typed])
    scores = stage("trees", lambda: [predictor.predict_matrix(m) for m in matrices])
    histogram = ScoreHistogram()
    stage("histogram", lambda: [histogram.add(s) for s in scores])
    tables = [
        scored_table(model, b, m, s, reasons=False)
        for b, m, s in zip(typed, matrices, scores, strict=True)
    ]
    edges = histogram.edges()
    with tempfile.TemporaryDirectory() as tmp:
        staging = Path(tmp) / "s.arrow"

        def stage_ipc() -> None:
            with (
                pa.OSFile(str(staging), "wb") as sink,
                pa.ipc.new_file(sink, tables[0].schema) as w,
            ):
                for table in tables:
                    w.write_table(table)

        def write_parquet() -> None:
            with pa.memory_map(str(staging)) as source:
                reader = pa.ipc.open_file(source)
                out_schema = reader.schema.append(pa.field("decile", pa.int8()))
                options = output_options(out_schema)
                with pq.ParquetWriter(Path(tmp) / "o.parquet", out_schema, **options) as w:  # type: ignore[arg-type]
                    for i in range(reader.num_record_batches):
                        w.write_batch(with_deciles(reader.get_batch(i), edges))

        stage("stage Arrow IPC", stage_ipc)
        stage("deciles + Parquet write", write_parquet)
    rows = histogram.rows
    total = sum(v for k, v in cpu.items() if not k.startswith("compile"))
    print(f"{rows:,} rows; CPU seconds per stage (process time, all threads)")
    print(f"{'stage':<34}{'CPU s':>8}{'share':>8}{'µs/row':>9}")
    for name, seconds in cpu.items():
        share = "" if name.startswith("compile") else f"{seconds / total:.0%}"
        print(f"{name:<34}{seconds:>8.2f}{share:>8}{seconds / rows * 1e6:>9.2f}")
    print(f"{'total per row (compile excluded)':<34}{total:>8.2f}{'':>8}{total / rows * 1e6:>9.2f}")


if __name__ == "__main__":
    main()
