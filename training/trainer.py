"""TRL's SFTTrainer with the LeaP-T fields in the model card it writes.

TRL writes ``README.md`` through ``create_model_card`` at every checkpoint, at
the end of training and inside ``push_to_hub``; overriding that one method
puts the LeaP-T sections into every one of those cards.  Kept apart from
``training.sft`` so that importing the CLI does not import TRL.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from trl import SFTTrainer

from training.model_card import LeapCardFields, extend_card


class LeapSFTTrainer(SFTTrainer):
    """``SFTTrainer`` whose card also carries :class:`LeapCardFields` (once they are set)."""

    #: set by `leapt train` before training; None writes TRL's card unchanged
    leap_card: LeapCardFields | None = None
    #: a LoRA adapter merged into its base, saved beside the adapter (gets its own card)
    merged_dir: Path | None = None

    def create_model_card(self, model_name=None, dataset_name=None, tags=None):
        super().create_model_card(model_name=model_name, dataset_name=dataset_name, tags=tags)
        if self.leap_card is None or not self.is_world_process_zero():
            return
        from huggingface_hub import ModelCard

        card_path = Path(self.args.output_dir) / "README.md"
        trl_card = card_path.read_text(encoding="utf-8")
        ref = self.args.hub_model_id or str(self.args.output_dir)
        extend_card(ModelCard(trl_card), self.leap_card, ref).save(card_path)
        if self.merged_dir is not None:
            merged = dataclasses.replace(self.leap_card, kind="merged")
            extend_card(ModelCard(trl_card), merged, str(self.merged_dir)).save(
                self.merged_dir / "README.md"
            )
