from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from churnscale.data.synthetic import BLOCK_ROWS, GeneratorSpec, generate, generate_table


def test_generator_has_realistic_shape(small_table: pa.Table) -> None:
    assert small_table.num_rows == 5_000
    assert 20 <= len(small_table.column_names) - 4 <= 26
    rate = float(np.mean(small_table.column("churned").to_numpy()))
    assert 0.20 <= rate <= 0.30
    assert small_table.column("total_charges").null_count > 0
    assert len(small_table.column("region").combine_chunks().dictionary) == 1_000


def test_same_seed_same_data_different_seed_different_data() -> None:
    a, b, c = generate_table(3_000, 1), generate_table(3_000, 1), generate_table(3_000, 2)
    assert a.equals(b)
    assert not a.equals(c)


@settings(max_examples=10, deadline=None)
@given(rows=st.integers(1, 3 * BLOCK_ROWS + 5), threads=st.integers(1, 3))
def test_output_independent_of_threads_and_prefix(rows: int, threads: int) -> None:
    spec = GeneratorSpec(rows, seed=11)
    whole = pa.Table.from_batches(list(generate(spec, threads=threads)))
    assert whole.num_rows == rows
    reference = generate_table(rows, 11)
    assert whole.equals(reference)
    if rows > 10:
        prefix = generate_table(rows - 10, 11)
        assert whole.slice(0, rows - 10).equals(prefix)
