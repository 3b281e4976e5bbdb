"""Train a small byte-level causal language model on the Python standard library's own source files
(those of the running interpreter, read where they lie; nothing is downloaded or committed) and
write models/lm.pt (not committed: 52 s of training makes it again, and the .ggml files from it
byte for byte), models/lm_f32.ggml and models/lm_int8.ggml, with the log and the loss curve.

    .venv/bin/python scripts/train_lm.py [--steps N] [--seed S] [--skip-training]

Bytes are tokens (vocabulary 256). Context 32, width 160, 4 pre-norm causal blocks (4 heads, GELU
MLP of 640), learned positions, untied output head: 1.3 M parameters. Every 20th source file (in
sorted order) is held out for validation. Adam with a cosine decay over a fixed number of steps
(deterministic for a seed: 2 threads, deterministic kernels, one generator for the batches).
"""

from __future__ import annotations

import argparse
import math
import sysconfig
import time
from pathlib import Path

import numpy as np
import torch
from matplotlib import pyplot
from torch.nn import functional
from training_common import REPO_ROOT, Log, seed_everything

from prover.model import engine
from prover.model.importers.torch_import import import_torch
from prover.model.importers.torch_transformer import CausalLM
from prover.model.modelfile import save_model
from prover.model.quantize import quantize

NAME = "lm"
CONTEXT, DIM, DEPTH, HEADS, MLP = 32, 160, 4, 4, 640
BATCH, LEARNING_RATE, VALIDATION_WINDOWS = 32, 2e-3, 512
CALIBRATION_WINDOWS, ENGINE_WINDOWS = 64, 128


def build_lm() -> CausalLM:
    return CausalLM(256, CONTEXT, DIM, DEPTH, HEADS, MLP)


def stdlib_text() -> tuple[np.ndarray, np.ndarray, int]:
    """(training bytes, validation bytes, file count): the interpreter's stdlib *.py files in sorted
    order, every 20th held out."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)
    train = [p.read_bytes() for i, p in enumerate(files) if i % 20]
    valid = [p.read_bytes() for i, p in enumerate(files) if i % 20 == 0]
    as_array = lambda parts: np.frombuffer(b"".join(parts), np.uint8)  # noqa: E731
    return as_array(train), as_array(valid), len(files)


def windows(text: np.ndarray, starts: torch.Tensor) -> torch.Tensor:
    index = starts[:, None] + torch.arange(CONTEXT + 1)
    return torch.from_numpy(text.astype(np.int64))[index]


def loss_on(model: CausalLM, batch: torch.Tensor) -> torch.Tensor:
    logits = model(batch[:, :-1])
    return functional.cross_entropy(logits.reshape(-1, 256), batch[:, 1:].reshape(-1))


def validation_loss(model: CausalLM, valid: np.ndarray) -> float:
    starts = torch.linspace(0, len(valid) - CONTEXT - 2, VALIDATION_WINDOWS).long()
    model.eval()
    with torch.no_grad():
        return float(np.mean([loss_on(model, windows(valid, part)).item() for part in starts.split(128)]))


def engine_loss(graph, valid: np.ndarray) -> tuple[float, float]:
    """(validation loss in nats/byte, next-byte accuracy) of a graph in the numpy engine, on
    ENGINE_WINDOWS evenly spaced validation windows (int8 logits through their scale)."""
    starts = torch.linspace(0, len(valid) - CONTEXT - 2, ENGINE_WINDOWS).long()
    batch = windows(valid, starts).numpy()
    logits = engine.dequantized(graph, engine.run(graph, batch[:, :-1].astype(np.int32)))
    logits = logits.reshape(len(batch), CONTEXT, 256)
    shifted = logits - logits.max(axis=-1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    targets = batch[:, 1:]
    loss = -np.take_along_axis(log_probs, targets[..., None], axis=-1).mean()
    return float(loss), float((logits.argmax(axis=-1) == targets).mean() * 100)


def write_model_files(model: CausalLM, train: np.ndarray, valid: np.ndarray, out_dir: Path, log: Log) -> None:
    """lm_f32.ggml through the torch importer, lm_int8.ggml calibrated on CALIBRATION_WINDOWS
    evenly spaced training windows; each measured on the validation text with the numpy engine."""
    f32 = import_torch(model, (CONTEXT,)).to_graph({"name": NAME, "arch": "causal-lm-bytes"})
    starts = torch.linspace(0, len(train) - CONTEXT - 2, CALIBRATION_WINDOWS).long()
    int8 = quantize(f32, windows(train, starts)[:, :-1].numpy().astype(np.int32))
    for mode, graph in (("f32", f32), ("int8", int8)):
        path = out_dir / f"{NAME}_{mode}.ggml"
        save_model(graph, path)
        loss, accuracy = engine_loss(graph, valid)
        log(
            f"{path.name}: numpy engine {mode} validation loss {loss:.4f} nats/byte, next-byte accuracy "
            f"{accuracy:.2f} % ({ENGINE_WINDOWS} windows of {CONTEXT})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out-dir", type=Path, default=REPO_ROOT / "models")
    parser.add_argument("--skip-training", action="store_true", help="reuse models/lm.pt")
    args = parser.parse_args()
    checkpoint = args.out_dir / f"{NAME}.pt"
    generator = seed_everything(args.seed)
    model = build_lm()
    train, valid, files = stdlib_text()
    log = Log(args.out_dir / f"{NAME}.log")
    if args.skip_training:
        saved = torch.load(checkpoint)
        model.load_state_dict(saved["state_dict"])
        history = saved["history"]
    else:
        history = {"step": [], "train_loss": [], "valid_loss": [], "seconds": []}
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, args.steps)
        started, recent = time.monotonic(), []
        for step in range(1, args.steps + 1):
            model.train()
            starts = torch.randint(0, len(train) - CONTEXT - 1, (BATCH,), generator=generator)
            optimizer.zero_grad()
            loss = loss_on(model, windows(train, starts))
            loss.backward()
            optimizer.step()
            schedule.step()
            recent.append(loss.item())
            if step % 25 == 0 or step == args.steps:
                history["step"].append(step)
                history["train_loss"].append(float(np.mean(recent)))
                history["valid_loss"].append(validation_loss(model, valid))
                history["seconds"].append(time.monotonic() - started)
                recent = []
                print(f"step {step}: validation loss {history['valid_loss'][-1]:.4f}", flush=True)
        torch.save({"state_dict": model.state_dict(), "history": history}, checkpoint)
    model.eval()
    parameters = sum(p.numel() for p in model.parameters())
    log(f"{NAME}: seed {args.seed}, {parameters} parameters, torch {torch.__version__}, 2 threads")
    log(
        f"text: {files} stdlib files of {sysconfig.get_paths()['stdlib']}: {len(train)} training "
        f"bytes, {len(valid)} validation bytes"
    )
    log(f"model: {model}")
    for i, step in enumerate(history["step"]):
        log(
            f"step {step}: train loss {history['train_loss'][i]:.4f}, validation loss "
            f"{history['valid_loss'][i]:.4f} nats/byte ({history['seconds'][i]:.0f} s)"
        )
    final = history["valid_loss"][-1]
    log(
        f"validation loss {final:.4f} nats/byte ({final / math.log(2):.3f} bits/byte); "
        f"training time {history['seconds'][-1]:.0f} s"
    )
    write_model_files(model, train, valid, args.out_dir, log)
    figure, axes = pyplot.subplots(figsize=(5, 3), dpi=80)
    axes.plot(history["step"], history["train_loss"], label="train")
    axes.plot(history["step"], history["valid_loss"], label="validation")
    axes.set_xlabel("step")
    axes.set_ylabel("loss (nats/byte)")
    axes.legend()
    figure.tight_layout()
    figure.savefig(args.out_dir / f"{NAME}_curves.png")


if __name__ == "__main__":
    main()
