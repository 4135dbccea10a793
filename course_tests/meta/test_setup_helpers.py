"""The provided code of 01_setup: the hub loader (tested on a tiny model saved here, and offline) and the report."""
from __future__ import annotations

import pytest
import torch

from course_tests import models
from gradebox.student import load_notebook
from course_tests import adapters_for
from trailblaze.coursedir import COURSE


@pytest.fixture(scope="module")
def setup_code():
    impl = load_notebook(COURSE.source_notebook("01_setup"), "01_setup", adapters_for("01_setup"))
    assert not impl.load_errors, impl.load_errors
    return impl.student.namespace


def test_loads_a_saved_model_from_a_folder(setup_code, tmp_path):
    saved = models.tiny_gpt2(seed=5)
    saved.save_pretrained(tmp_path)
    model, pretrained = setup_code["load_pretrained_lm"](str(tmp_path), "cpu")
    ids = torch.tensor([[1, 2, 3, 4]])
    assert pretrained and not model.training
    with torch.no_grad():
        assert torch.equal(model(ids).logits, saved(ids).logits)


def test_offline_hub_name_falls_back_with_a_clear_message(setup_code, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model, pretrained = setup_code["load_pretrained_lm"]("distilgpt2", "cpu")
    out = capsys.readouterr().out
    assert not pretrained
    assert "Could not load 'distilgpt2'" in out and "Without network access" in out
    assert model.config.n_layer == 6 and model.config.n_embd == 768  # DistilGPT2's shape


def test_environment_report_is_plain_and_picks_a_device(setup_code):
    report = setup_code["environment_report"]()
    assert report["torch"] == torch.__version__
    assert report["selected device"] == ("cuda" if torch.cuda.is_available() else report["selected device"])
    assert all(isinstance(v, (str, bool)) for v in report.values())
