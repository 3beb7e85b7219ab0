"""Staged training: the schedule, and the callback inside a real Trainer run."""

import torch
from datasets import Dataset
from transformers import TrainingArguments

from msplora import MSPLoRAConfig, MSPLoRAModel, get_msplora_model, stage_for_step
from msplora.trainer import MSPLoRATrainer

from .tiny_models import build


def test_stage_schedule_equal_shares():
    levels = ("global", "mid", "layer")
    stages = [stage_for_step(step, 9, levels) for step in range(9)]
    assert stages == ["global"] * 3 + ["mid"] * 3 + ["layer"] * 3
    assert stage_for_step(10, 10, levels) == "layer"


def _dataset(size=32):
    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 128, (size, 8), generator=generator)
    labels = (ids[:, 0] > 64).long()
    return Dataset.from_dict({"input_ids": ids.tolist(), "attention_mask": [[1] * 8] * size, "labels": labels.tolist()})


def _snapshot(model):
    return {key: adapter.lora_B.detach().clone() for key, adapter in model.adapters.items()}


def test_staged_trainer_updates_one_level_per_stage(tmp_path):
    config = MSPLoRAConfig(target_modules=["query"], modules_to_save=["classifier"], staged=True)
    model = get_msplora_model(build("bert"), config)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=6, per_device_train_batch_size=8,
                             learning_rate=1e-2, report_to="none", save_strategy="no", logging_steps=1,
                             use_cpu=True)
    trainer = MSPLoRATrainer(model=model, args=args, train_dataset=_dataset())
    changed_per_stage = []

    class Recorder(__import__("transformers").TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            self.before = _snapshot(model)

        def on_step_end(self, args, state, control, **kwargs):
            after = _snapshot(model)
            levels = {model.layout_map.by_key()[k].level for k in after if not torch.equal(after[k], self.before[k])}
            changed_per_stage.append(levels)

    trainer.add_callback(Recorder())
    trainer.train()
    assert changed_per_stage == [{"global"}] * 2 + [{"mid"}] * 2 + [{"layer"}] * 2
    # After training every level is trainable again.
    assert all(p.requires_grad for p in model.adapters.parameters())


def test_trainer_checkpoint_holds_adapter_and_resumes(tmp_path):
    config = MSPLoRAConfig(target_modules=["query", "value"], modules_to_save=["classifier"])
    model = get_msplora_model(build("bert"), config)
    args = TrainingArguments(output_dir=str(tmp_path), max_steps=4, per_device_train_batch_size=8,
                             learning_rate=1e-2, report_to="none", save_steps=2, logging_steps=1, use_cpu=True)
    trainer = MSPLoRATrainer(model=model, args=args, train_dataset=_dataset())
    trainer.train()
    uninterrupted = _snapshot(model)
    checkpoint = tmp_path / "checkpoint-2"
    assert (checkpoint / "adapter_model.safetensors").is_file()
    assert not (checkpoint / "model.safetensors").exists()  # frozen base weights are not copied

    fresh = get_msplora_model(build("bert"), config)
    trainer = MSPLoRATrainer(model=fresh, args=args, train_dataset=_dataset())
    trainer.train(resume_from_checkpoint=str(checkpoint))
    assert trainer.state.global_step == 4
    # Resuming restores adapters, optimizer and data order, so it ends where the uninterrupted run ended.
    resumed = _snapshot(fresh)
    for key, value in uninterrupted.items():
        torch.testing.assert_close(resumed[key], value, rtol=1e-5, atol=1e-6)
    final = MSPLoRAModel.from_pretrained(build("bert"), tmp_path / "checkpoint-4")
    for key, adapter in final.adapters.items():
        assert torch.equal(adapter.lora_B, fresh.adapters[key].lora_B)
