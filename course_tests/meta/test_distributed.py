"""05_training's trainer.py under torchrun: a step on two CPU processes (gloo, DistributedDataParallel) equals the
step on one process with the same global batch. Runs the instructor's notebook; grading never launches processes."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from trailblaze.coursedir import COURSE
from trailblaze.nbgrader_ext import kernel_environment

FOLDER = COURSE.source / "05_training"
RUN = ["--steps", "2", "--length", "16", "--emb-dim", "32", "--n-heads", "2", "--n-layers", "1",
       "--eval-every", "0", "--eval-batches", "1", "--warmup-steps", "1", "--max-lr", "1e-2", "--cpu", "--json"]


def train(tmp_path, name: str, processes: int, batch_size: int = 4) -> dict:
    out = tmp_path / f"{name}.safetensors"
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                str(processes)] if processes > 1 else [sys.executable]
    command = launcher + ["trainer.py", *RUN, "--batch-size", str(batch_size), "--save-parameters", str(out)]
    env = {**os.environ, **kernel_environment(), "OMP_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(command, cwd=FOLDER, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{' '.join(command)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert f'"processes": {processes}' in result.stdout, result.stdout
    return load_file(str(out))


@pytest.fixture(scope="module")
def one_process(tmp_path_factory):
    return train(tmp_path_factory.mktemp("ddp"), "one", 1)


# The key projection's bias gets no gradient in exact arithmetic (softmax ignores a shift shared by all keys), so
# its gradient is rounding noise, which AdamW divides by its own size: it moves by noise, differently in any two runs.
NOISE_ONLY = "attn.W_key.bias"


def test_two_processes_take_the_same_steps_as_one(tmp_path, one_process):
    two = train(tmp_path, "two", 2)
    assert two.keys() == one_process.keys()
    compared = {n: p for n, p in one_process.items() if not n.endswith(NOISE_ONLY)}
    assert len(compared) >= len(one_process) - 1
    for name, p in compared.items():
        torch.testing.assert_close(two[name], p, rtol=1e-5, atol=1e-6, msg=f"{name} after 2 steps on 2 processes")


def test_the_comparison_sees_a_different_batch(tmp_path, one_process):
    """What a process would do without DistributedDataParallel (step on its half of the batch alone) differs."""
    half = train(tmp_path, "half", 1, batch_size=2)
    assert any(not torch.allclose(half[n], p, rtol=1e-5, atol=1e-6) for n, p in one_process.items())


def test_the_corpus_vocabulary_renumbers_gpt2_ids_and_back():
    """trainer.CorpusVocabulary, which the default run trains over: the ids it keeps, in order, and back again; a
    token the corpus never uses is refused, not mapped to another."""
    sys.path.insert(0, str(FOLDER))
    try:
        import trainer
    finally:
        sys.path.remove(str(FOLDER))
    vocab = trainer.CorpusVocabulary.of(torch.tensor([50256, 7, 198, 7]), torch.tensor([13, 198]))
    assert len(vocab) == 4 and vocab.used.tolist() == [7, 13, 198, 50256]
    assert vocab.compact([198, 7, 50256]).tolist() == [2, 0, 3]
    assert vocab.gpt2(vocab.compact([13, 198])).tolist() == [13, 198]
    with pytest.raises(ValueError, match="never uses"):
        vocab.compact([8])
