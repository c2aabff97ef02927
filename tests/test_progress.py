"""Long steps report progress with a rate and an ETA in logs (Airflow task logs are not terminals)."""

from __future__ import annotations

import logging

import lightning as L
import torch

from saviorrec.progress import Progress, TrainingProgress


def test_progress_logs_rate_and_eta_when_not_a_terminal(caplog):
    caplog.set_level(logging.INFO, logger="saviorrec.progress")
    with Progress("encoding item texts", total=1000, unit="title", interval=0.0) as progress:
        progress.update(300)
    first = caplog.records[0].getMessage()
    assert first.startswith("encoding item texts: ") and "300/1000" in first
    assert "title/s" in first and "<" in first  # tqdm's [elapsed<remaining, rate]
    assert caplog.records[-1].getMessage().startswith("encoding item texts: done, ")


def test_training_epochs_log_batches_with_eta(caplog):
    caplog.set_level(logging.INFO, logger="saviorrec.progress")

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch[0]).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(40, 2)), batch_size=4)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[TrainingProgress(interval=0.0)])
    trainer.fit(Tiny(), data)
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("Tiny epoch 2/2: ") and "/10" in line and "batch/s" in line for line in lines), lines


def test_progress_of_unknown_length_logs_count_and_rate(caplog):
    """A streamed step whose length is unknown still says it is alive and how fast it goes."""
    caplog.set_level(logging.INFO, logger="saviorrec.progress")
    with Progress("RankerModule epoch 1/1", total=0, unit="batch", interval=0.0) as progress:
        progress.update(5)
        progress.update(5)
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 3, lines  # two updates and the closing line
    assert lines[0].startswith("RankerModule epoch 1/1: 5") and "batch/s" in lines[0]
    assert lines[1].startswith("RankerModule epoch 1/1: 10") and "batch/s" in lines[1]


def test_streamed_epochs_take_their_length_from_the_datamodule(caplog):
    """The ranker's epoch streams day partitions (no length): the DataModule's expected_batches()
    gives the ETA."""
    caplog.set_level(logging.INFO, logger="saviorrec.progress")

    class Stream(torch.utils.data.IterableDataset):
        def __iter__(self):
            for _ in range(12):
                yield torch.randn(4, 2)

    class Data(L.LightningDataModule):
        def train_dataloader(self):
            return torch.utils.data.DataLoader(Stream(), batch_size=None)

        def expected_batches(self):
            return 12

    class Tiny(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.layer = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.layer(batch).pow(2).mean()

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, callbacks=[TrainingProgress(interval=0.0)])
    trainer.fit(Tiny(), datamodule=Data())
    lines = [r.getMessage() for r in caplog.records]
    assert any(line.startswith("Tiny epoch 1/1: ") and "5/12" in line and "<" in line for line in lines), lines
