"""Tokenize examples for sequence classification, regression and causal language modelling.

Sequences are truncated to `max_length` and left unpadded; the data collator
pads each batch. For causal-lm pairs, the labels equal the input ids with
every prompt token set to -100, so the loss covers only the response.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import datasets
from transformers import DataCollatorForSeq2Seq, DataCollatorWithPadding, PreTrainedTokenizerBase

from .errors import DataError

__all__ = ["IGNORE_INDEX", "data_collator", "tokenize_causal_lm", "tokenize_sequence_classification"]

logger = logging.getLogger(__name__)

IGNORE_INDEX = -100  # label value that transformers' cross-entropy losses skip


def tokenize_sequence_classification(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    text_column: str,
    text_pair_column: str | None,
    max_length: int,
) -> datasets.Dataset:
    """Tokenize text (and text pair) into input_ids, attention_mask and, for BERT, token_type_ids; keep `label`."""

    def encode(batch: dict) -> dict:
        pair = batch[text_pair_column] if text_pair_column else None
        return tokenizer(batch[text_column], pair, truncation=True, max_length=max_length)

    removed = [column for column in dataset.column_names if column != "label"]
    encoded = dataset.map(encode, batched=True, remove_columns=removed, keep_in_memory=True)
    return encoded.rename_column("label", "labels")


def tokenize_causal_lm(
    dataset: datasets.Dataset,
    tokenizer: PreTrainedTokenizerBase,
    *,
    text_column: str,
    response_column: str | None,
    max_length: int,
) -> datasets.Dataset:
    """Tokenize plain text, or (prompt, response) pairs with the prompt masked out of the labels.

    Pairs use the tokenizer's chat template when it has one (the prompt as the
    user turn, the response as the assistant turn), else `prompt + "\\n" +
    response + eos`. Pairs whose response is truncated away entirely are
    dropped, because they would add no loss.

    Raises:
        DataError: every example was dropped; raise `max_length`.
    """
    if response_column is None:
        encode = _plain_text_encoder(tokenizer, text_column, max_length)
    else:
        encode = _pair_encoder(tokenizer, text_column, response_column, max_length)
    encoded = dataset.map(encode, batched=True, remove_columns=dataset.column_names, keep_in_memory=True)

    trainable = encoded.filter(
        lambda labels: any(label != IGNORE_INDEX for label in labels), input_columns="labels", keep_in_memory=True
    )
    dropped = len(encoded) - len(trainable)
    if dropped:
        logger.warning("Dropped %d of %d examples whose response did not fit in max_length=%d.", dropped, len(encoded), max_length)
    if len(trainable) == 0 and len(encoded) > 0:
        raise DataError(
            f"No example keeps a response token within max_length={max_length}: the prompts are too long. "
            f"Raise max_length."
        )
    return trainable


def data_collator(tokenizer: PreTrainedTokenizerBase, problem_type: str):
    """Build the collator that pads a batch: labels padded with -100 for causal LM."""
    if problem_type == "causal_lm":
        if tokenizer.pad_token is None:
            # Padding positions are masked out of attention and labels, so the eos token is a safe filler.
            tokenizer.pad_token = tokenizer.eos_token
        return DataCollatorForSeq2Seq(tokenizer, label_pad_token_id=IGNORE_INDEX, padding=True)
    return DataCollatorWithPadding(tokenizer)


# -- private helpers -------------------------------------------------------


def _plain_text_encoder(tokenizer: PreTrainedTokenizerBase, column: str, max_length: int):
    eos = tokenizer.eos_token_id

    def encode(batch: dict) -> dict:
        input_ids = []
        for ids in tokenizer(batch[column])["input_ids"]:
            if eos is not None and (not ids or ids[-1] != eos):
                ids = [*ids, eos]
            input_ids.append(ids[:max_length])
        return {
            "input_ids": input_ids,
            "attention_mask": [[1] * len(ids) for ids in input_ids],
            "labels": [list(ids) for ids in input_ids],
        }

    return encode


def _pair_encoder(tokenizer: PreTrainedTokenizerBase, prompt_column: str, response_column: str, max_length: int):
    use_template = bool(getattr(tokenizer, "chat_template", None))
    if not use_template:
        logger.info("Tokenizer has no chat template; formatting pairs as prompt, newline, response, eos.")

    def encode(batch: dict) -> dict:
        input_ids, labels = [], []
        for prompt, response in zip(batch[prompt_column], batch[response_column]):
            if use_template:
                prompt_ids, full_ids = _chat_template_ids(tokenizer, prompt, response)
            else:
                prompt_ids = tokenizer(f"{prompt}\n")["input_ids"]
                response_ids = tokenizer(response, add_special_tokens=False)["input_ids"]
                full_ids = [*prompt_ids, *response_ids]
                if tokenizer.eos_token_id is not None:
                    full_ids.append(tokenizer.eos_token_id)
            prefix = _common_prefix_length(prompt_ids, full_ids)
            ids = full_ids[:max_length]
            input_ids.append(ids)
            labels.append([IGNORE_INDEX] * min(prefix, len(ids)) + ids[prefix:])
        return {"input_ids": input_ids, "attention_mask": [[1] * len(ids) for ids in input_ids], "labels": labels}

    return encode


def _chat_template_ids(tokenizer: PreTrainedTokenizerBase, prompt: str, response: str) -> tuple[list[int], list[int]]:
    user = [{"role": "user", "content": prompt}]
    conversation = [*user, {"role": "assistant", "content": response}]
    prompt_ids = _as_ids(tokenizer.apply_chat_template(user, add_generation_prompt=True, tokenize=True))
    full_ids = _as_ids(tokenizer.apply_chat_template(conversation, tokenize=True))
    return prompt_ids, full_ids


def _as_ids(encoded: object) -> list[int]:
    # transformers 5 returns a BatchEncoding from apply_chat_template(tokenize=True); older versions a list.
    if isinstance(encoded, Mapping):
        encoded = encoded["input_ids"]
    return list(encoded)


def _common_prefix_length(prompt_ids: list[int], full_ids: list[int]) -> int:
    """Length of the shared start: the prompt tokens to mask, even if a template re-tokenizes the boundary."""
    length = 0
    for prompt_id, full_id in zip(prompt_ids, full_ids):
        if prompt_id != full_id:
            break
        length += 1
    return length
