"""``churnscale learn``: learn online from a stream of labelled records, with checkpoints."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from churnscale.exceptions import ConfigError, ModelNotFoundError

if TYPE_CHECKING:
    from rich.console import Console

    from churnscale.config import Settings
    from churnscale.features.preprocessor import Preprocessor
    from churnscale.online.learner import Progress as Step

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def register(app: typer.Typer) -> None:
    """Attach ``learn`` to the CLI."""

    @app.command()
    def learn(
        stream: Annotated[
            str,
            typer.Option(
                "--stream",
                help="'-' (stdin), a .jsonl file, a directory of Parquet files, "
                "redis://HOST:PORT/DB?stream=NAME or nats://HOST:PORT?subject=NAME.",
            ),
        ],
        model: Annotated[str, typer.Option("--model", help="Name of the online model.")],
        checkpoint: Annotated[
            Path | None,
            typer.Option("--checkpoint", help="Checkpoint directory [default: HOME/online]."),
        ] = None,
        target: Annotated[str | None, typer.Option("--target", help="Label column.")] = None,
        batch: Annotated[
            int, typer.Option("--batch", help="1: River learn_one; N: mini-batches of N.")
        ] = 1,
        preprocessor: Annotated[
            Path | None,
            typer.Option(
                "--preprocessor",
                help="Model bundle or stored dataset to take the Preprocessor from "
                "[default: fit on the first --warmup events].",
            ),
        ] = None,
        warmup: Annotated[int, typer.Option("--warmup", help="Events to fit on.")] = 5_000,
        every: Annotated[
            int, typer.Option("--checkpoint-every", help="Checkpoint after this many events.")
        ] = 10_000,
        seconds: Annotated[
            float, typer.Option("--checkpoint-seconds", help="…or after this many seconds.")
        ] = 30.0,
        follow: Annotated[
            bool, typer.Option("--follow", help="Keep reading as the stream grows.")
        ] = False,
        mini_batch: Annotated[
            str, typer.Option("--mini-batch", help="Mini-batch learner: sklearn or river.")
        ] = "sklearn",
    ) -> None:
        """Learn a churn model online from SRC; resumes from its checkpoint exactly once."""
        from churnscale.extras import require

        require("online", feature="churnscale learn")
        from churnscale.config import load_settings
        from churnscale.online import CheckpointStore, LearnOptions, OnlineLearner, open_source
        from churnscale.online.records import StreamQuarantine
        from churnscale.terminal import stderr_console

        if not _NAME.match(model):
            raise ConfigError(
                "--model", expected="a name of letters, digits, _ . -", received=model
            )
        settings = load_settings()
        console = stderr_console()
        options = LearnOptions(
            batch=batch,
            checkpoint_every=every,
            checkpoint_seconds=seconds,
            warmup=warmup,
            target=target,
            mini_batch=mini_batch,
            model=model,
        )
        options.validate()
        directory = checkpoint or settings.home / "online"
        store = CheckpointStore(directory / f"{model}.ckpt", _signing_key(settings, console))
        pre = _preprocessor(preprocessor) if preprocessor is not None else None
        source = open_source(stream, follow=follow)
        quarantine = StreamQuarantine(directory / f"{model}.quarantine.jsonl")
        learner = OnlineLearner(
            source, options=options, store=store, quarantine=quarantine, preprocessor=pre
        )
        try:
            with _progress(console) as report:
                state = learner.run(report)
        finally:
            quarantine.close()
            source.close()
        console.print(
            f"learned {state.learned:,} of {state.events:,} events "
            f"({state.quarantined:,} quarantined); prequential ROC-AUC "
            f"{state.metrics.roc_auc():.4f}, log loss {state.metrics.log_loss():.4f}; "
            f"offset {state.offset}; checkpoint {store.path}",
        )
        if state.quarantined:
            console.print(f"quarantine: {quarantine.path}")


def _signing_key(settings: Settings, console: Console) -> bytes | str:
    """The checkpoint key: the setting, else the home's key file (created and announced once)."""
    from churnscale.online.checkpoint import KEY_FILE, stored_key

    if settings.online_checkpoint_key is not None:
        return settings.online_checkpoint_key.get_secret_value()
    key, created = stored_key(settings.home)
    if created:
        console.print(
            f"created a random checkpoint signing key in {settings.home / KEY_FILE} (mode 0600); "
            "in production set CHURNSCALE_ONLINE_CHECKPOINT_KEY instead"
        )
    return key


def _preprocessor(path: Path) -> Preprocessor:
    """The Preprocessor of a model bundle, or one fitted on a stored dataset."""
    from churnscale.data.store import is_dataset, iter_dataset, load_info
    from churnscale.features.preprocessor import Preprocessor
    from churnscale.model.loading import load_bundle

    if is_dataset(path):
        schema, _ = load_info(path)
        names = [c.name for c in schema.features]
        return Preprocessor(schema).fit(iter_dataset(path, columns=names))
    if (path / "preprocessor.json").exists():
        return load_bundle(path).preprocessor
    raise ModelNotFoundError(str(path), "neither a model bundle nor a stored dataset")


@contextmanager
def _progress(console: Console) -> Iterator[Callable[[Step], None]]:
    """A rich status line on stderr (when it is a terminal); one plain line when learning starts."""
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    bar = Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=not console.is_terminal,
    )
    start = time.monotonic()
    first: list[int] = []
    with bar:
        task = bar.add_task("learn")

        def report(progress: Step) -> None:
            if not first:
                first.append(progress.events)
                how = "resumed" if progress.resumed else "started"
                console.print(f"learning: {how}")
            rate = (progress.events - first[0]) / max(time.monotonic() - start, 1e-9)
            bar.update(
                task,
                description=f"{progress.events:,} events, {progress.learned:,} learned, "
                f"{progress.quarantined:,} quarantined, {rate:,.0f}/s | prequential "
                f"ROC-AUC {progress.roc_auc:.4f} log loss {progress.log_loss:.4f}",
            )

        yield report
