"""Command lines of the tests' small training runs: the CPU smoke recipe on given model, data and output.

Every training test (in-process, subprocess, ``accelerate launch``, sbatch) starts
from the same recipe and the same three required flags; only the launcher
and the extra flags differ, so they are written once here.
"""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
#: the recipe every training test runs (tiny batches, float32, CPU)
SMOKE = REPO / "configs" / "training" / "smoke_cpu.yaml"


def run_flags(model_dir: Path | str, data_dir: Path | str, out_dir: Path, *extra: str) -> list[str]:
    """The flags naming the student, the dataset and the output folder, then ``extra``."""
    return [
        "--model_name_or_path",
        str(model_dir),
        "--dataset_name",
        str(data_dir),
        "--output_dir",
        str(out_dir),
        *extra,
    ]


def smoke_argv(
    model_dir: Path | str, data_dir: Path | str, out_dir: Path, *extra: str
) -> list[str]:
    """``leapt train`` / ``training.sft`` arguments: the smoke recipe and :func:`run_flags`."""
    return ["--config", str(SMOKE), *run_flags(model_dir, data_dir, out_dir, *extra)]


def assert_trained_and_loadable(out_dir: Path, base_dir: Path) -> None:
    """The model saved in ``out_dir`` loads, generates and is not the untrained ``base_dir``."""
    import torch
    from transformers import AutoModelForCausalLM

    trained = AutoModelForCausalLM.from_pretrained(out_dir)
    base = AutoModelForCausalLM.from_pretrained(base_dir)
    trained_params = dict(trained.named_parameters())
    assert trained_params.keys() == dict(base.named_parameters()).keys()
    changed = [
        name
        for name, param in base.named_parameters()
        if not torch.equal(param, trained_params[name])
    ]
    assert changed, "the saved weights are the untrained base weights"
    ids = torch.tensor([[5, 17, 42]])
    assert trained.generate(ids, max_new_tokens=4, do_sample=False).shape[1] > 3
