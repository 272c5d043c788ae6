"""Running an ONNX export with ONNX Runtime: `OnnxClassifier` and `OnnxTranslator` (greedy and beam search).

`load_onnx_model(folder)` reads `onnx_config.json` and returns the driver for the folder's task. The searches are
written in NumPy after `RnnSeq2SeqForConditionalGeneration.greedy_generate` / `beam_generate` and return what
`model.generate` returns: `(batch, 1 + steps)` ids starting with `decoder_start_token_id`, a row padded after its
`</s>`, at most `max_new_tokens` generated tokens; rows (and sentences) that are done leave the computation.
"""

from pathlib import Path
from typing import Any

import numpy as np

from . import ONNX_CONFIG_FILE
from .onnx import ExportError, read_onnx_config

NEGATIVE = np.float32(-1e9)  # the searches' "impossible" score, as in `beam_generate`


def make_session(path: Path, threads: int | None = 1, providers: list[str] | None = None):
    """An onnxruntime `InferenceSession` for `path` with `threads` intra-op threads (None: onnxruntime's default)."""
    try:
        import onnxruntime
    except ImportError as error:
        raise ExportError("running an ONNX export needs onnxruntime: pip install 'hf-rnn[onnx]'.") from error
    options = onnxruntime.SessionOptions()
    if threads is not None:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    return onnxruntime.InferenceSession(str(path), options, providers=providers or ["CPUExecutionProvider"])


class OnnxGraph:
    """One graph's session, run with a dict of named arrays (names it does not take are left out)."""

    def __init__(self, path: Path, threads: int | None, providers: list[str] | None):
        self.session = make_session(path, threads, providers)
        self.input_names = [value.name for value in self.session.get_inputs()]
        self.output_names = [value.name for value in self.session.get_outputs()]

    def __call__(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        outputs = self.session.run(None, {name: feeds[name] for name in self.input_names})
        return dict(zip(self.output_names, outputs))


class OnnxModel:
    """What both drivers share: the folder, its `onnx_config.json`, the sessions and the tokenizer."""

    task = ""

    def __init__(self, folder: str | Path, threads: int | None = 1, providers: list[str] | None = None):
        self.folder = Path(folder).expanduser()
        self.onnx_config = read_onnx_config(self.folder)
        if self.onnx_config.get("task") != self.task:
            raise ExportError(
                f"{str(self.folder)!r} holds a {self.onnx_config.get('task')!r} export, not a {self.task!r} one."
            )
        self.graphs = {
            name: OnnxGraph(self.folder / graph["file"], threads, providers)
            for name, graph in self.onnx_config["graphs"].items()
        }
        self._tokenizer = None

    @property
    def tokenizer(self):
        """The tokenizer saved in the folder (loaded on first use)."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            if not (self.folder / "tokenizer.json").is_file():
                raise ExportError(f"{str(self.folder)!r} has no tokenizer.json.")
            self._tokenizer = AutoTokenizer.from_pretrained(str(self.folder), local_files_only=True)
        return self._tokenizer

    @property
    def quantization(self) -> dict[str, Any] | None:
        return self.onnx_config.get("quantization")

    def encode(self, texts: list[str]) -> dict[str, np.ndarray]:
        """`input_ids` / `attention_mask` (int64) of `texts`, truncated to `model_max_length` and padded."""
        encoded = self.tokenizer(texts, truncation=True, padding=True, return_tensors="np")
        return {name: encoded[name].astype(np.int64) for name in ("input_ids", "attention_mask")}


def trim_padding_columns(input_ids: np.ndarray, attention_mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """int64 ids and mask without the columns that are padding in every row (each row keeps its tokens in order).

    The graphs are exact with any padding; trimming saves the work on columns nobody reads, and makes the encoder's
    outputs as long as the longest row, as PyTorch's are.
    """
    input_ids = np.asarray(input_ids, dtype=np.int64)
    attention_mask = np.ones_like(input_ids) if attention_mask is None else np.asarray(attention_mask, np.int64)
    used = (attention_mask != 0).any(axis=0)
    if used.all() or not used.any():
        return np.ascontiguousarray(input_ids), np.ascontiguousarray(attention_mask)
    return np.ascontiguousarray(input_ids[:, used]), np.ascontiguousarray(attention_mask[:, used])


class OnnxClassifier(OnnxModel):
    """`model.onnx` of a classifier: logits of id batches, or labels of texts."""

    task = "text-classification"

    def __init__(self, folder: str | Path, threads: int | None = 1, providers: list[str] | None = None):
        super().__init__(folder, threads, providers)
        self.model = self.graphs["model"]
        config = self.model_config()
        self.id2label = {int(key): value for key, value in config.get("id2label", {}).items()}

    def model_config(self) -> dict[str, Any]:
        import json

        path = self.folder / "config.json"
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def logits(self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """`(batch, num_labels)` logits of `(batch, length)` ids, as `model(input_ids, attention_mask).logits`."""
        input_ids, attention_mask = trim_padding_columns(input_ids, attention_mask)
        return self.model({"input_ids": input_ids, "attention_mask": attention_mask})["logits"]

    def predict_logits(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        """Logits of `texts` `(len(texts), num_labels)`, in their order, run in length-sorted batches."""
        from ..tokenization import clean_text

        texts = [clean_text(text) for text in texts]
        order = np.argsort([len(text) for text in texts], kind="stable")
        results: list[np.ndarray | None] = [None] * len(texts)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            encoded = self.encode([texts[i] for i in index])
            for i, row in zip(index, self.logits(encoded["input_ids"], encoded["attention_mask"])):
                results[i] = row
        return np.stack(results) if results else np.zeros((0, len(self.id2label)), dtype=np.float32)

    def classify(self, texts: list[str], batch_size: int = 64) -> list[dict[str, Any]]:
        """`[{"label", "score"}]` per text (softmax over the labels), as the text-classification pipeline gives."""
        logits = self.predict_logits(texts, batch_size)
        shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
        probabilities = shifted / shifted.sum(axis=-1, keepdims=True)
        best = probabilities.argmax(axis=-1)
        return [
            {"label": self.id2label.get(int(i), str(int(i))), "score": float(p[i])} for i, p in zip(best, probabilities)
        ]


def top_k(values: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest values over the last axis of a 2-D array, descending, and their indices: `torch.topk` itself
    when torch is installed (it is with hf_rnn), so that exact ties break as they do in `generate` (beam search
    scores many "impossible" candidates exactly -1e9, and which of them fill the finished slots can change the
    result); a NumPy equivalent otherwise (ties: lower index first)."""
    try:
        import torch
    except ImportError:
        torch = None
    if torch is not None:
        top = torch.topk(torch.from_numpy(np.ascontiguousarray(values)), k)
        return top.values.numpy(), top.indices.numpy()
    if k < values.shape[-1]:
        candidates = np.argpartition(-values, k - 1, axis=-1)[:, :k]
    else:
        candidates = np.broadcast_to(np.arange(values.shape[-1]), values.shape)
    picked = np.take_along_axis(values, candidates, axis=-1)
    order = np.lexsort((candidates, -picked), axis=-1)
    indices = np.take_along_axis(candidates, order, axis=-1)
    return np.take_along_axis(values, indices, axis=-1), indices


def log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def beams(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """`values[s, index[s, j]]` for `(sentences, candidates, ...)` values and `(sentences, picks)` index."""
    return np.take_along_axis(values, index.reshape(*index.shape, *([1] * (values.ndim - 2))), axis=1)


class OnnxTranslator(OnnxModel):
    """`encoder.onnx` + `decoder_step.onnx` of an encoder-decoder, driven as `model.generate` drives the decoder."""

    task = "translation"

    def __init__(self, folder: str | Path, threads: int | None = 1, providers: list[str] | None = None):
        super().__init__(folder, threads, providers)
        self.encoder, self.step = self.graphs["encoder"], self.graphs["decoder_step"]
        decoder = self.onnx_config["decoder"]
        self.state_names = list(decoder["state_names"])
        self.attentional_size = int(decoder["attentional_size"])
        ids = self.onnx_config.get("output_token_ids")
        self.output_token_ids = None if ids is None else np.asarray(ids, dtype=np.int64)
        self.generation = dict(self.onnx_config["generation"])
        logits_shape = next(value["shape"] for value in self.onnx_config["graphs"]["decoder_step"]["outputs"])
        self.output_size = len(self.output_token_ids) if self.output_token_ids is not None else int(logits_shape[-1])
        self.memory_names = [
            name for name in ("proj_keys", "encoder_states", "src_mask") if name in self.step.input_names
        ]

    def token_ids(self, output_indices: np.ndarray) -> np.ndarray:
        """Token ids of indices into the logits (`RnnSeq2SeqDecoder.output_token_ids`)."""
        return output_indices if self.output_token_ids is None else self.output_token_ids[output_indices]

    def run_encoder(self, input_ids: np.ndarray, attention_mask: np.ndarray | None) -> dict[str, np.ndarray]:
        input_ids, attention_mask = trim_padding_columns(input_ids, attention_mask)
        return self.encoder({"input_ids": input_ids, "attention_mask": attention_mask})

    def run_step(
        self,
        tokens: np.ndarray,
        states: dict[str, np.ndarray],
        attentional_vector: np.ndarray,
        memory: dict[str, np.ndarray],
        top_k: int = 1,
    ) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray, dict[str, np.ndarray]]:
        """One decoder step: the logits `(rows, n_out)`, the new states, the new attentional vector, and (graphs with
        a `top_k` input) the `top_k` best log-probabilities per row with their indices (`top_log_probs`,
        `top_indices`; else an empty dict)."""
        feeds = {"input_ids": tokens, **states, "attentional_vector": attentional_vector, **memory}
        feeds["top_k"] = np.array([top_k], dtype=np.int64)
        outputs = self.step(feeds)
        new_states = {name: outputs[f"new_{name}"] for name in self.state_names}
        best = {name: outputs[name] for name in ("top_log_probs", "top_indices") if name in outputs}
        return outputs["logits"], new_states, outputs["new_attentional_vector"], best

    def first_step_logits(self, input_ids: np.ndarray, attention_mask: np.ndarray | None = None) -> np.ndarray:
        """The logits `(batch, n_out)` of the first decoder step (after `decoder_start_token_id`)."""
        encoded = self.run_encoder(input_ids, attention_mask)
        batch = encoded["encoder_states"].shape[0]
        tokens = np.full(batch, self.generation["decoder_start_token_id"], dtype=np.int64)
        states = {name: encoded[name] for name in self.state_names}
        memory = {name: encoded[name] for name in self.memory_names}
        return self.run_step(tokens, states, np.zeros((batch, self.attentional_size), np.float32), memory)[0]

    def generate(
        self,
        input_ids: np.ndarray,
        attention_mask: np.ndarray | None = None,
        max_new_tokens: int | None = None,
        num_beams: int | None = None,
        length_penalty: float | None = None,
    ) -> np.ndarray:
        """Generated ids `(batch, 1 + steps)` for `(batch, length)` source ids; settings left None come from the
        exported `generation_config` (`max_new_tokens`, `num_beams`, `length_penalty`)."""
        settings = self.generation
        max_new_tokens = settings["max_new_tokens"] if max_new_tokens is None else max_new_tokens
        num_beams = (settings.get("num_beams") or 1) if num_beams is None else num_beams
        length_penalty = settings.get("length_penalty", 1.0) if length_penalty is None else length_penalty
        if max_new_tokens is None or max_new_tokens < 1:
            raise ExportError(f"max_new_tokens must be a positive integer, got {max_new_tokens!r}.")
        encoded = self.run_encoder(input_ids, attention_mask)
        if num_beams > 1:
            return self.beam_search(encoded, max_new_tokens, num_beams, float(length_penalty))
        return self.greedy_search(encoded, max_new_tokens)

    def greedy_search(self, encoded: dict[str, np.ndarray], max_new_tokens: int) -> np.ndarray:
        """`greedy_generate`: argmax per step; a row that emits `</s>` is done and padded after it."""
        settings = self.generation
        eos = settings["eos_token_id"]
        batch = encoded["encoder_states"].shape[0]
        sequences = np.full((batch, 1 + max_new_tokens), settings["pad_token_id"], dtype=np.int64)
        sequences[:, 0] = settings["decoder_start_token_id"]
        states = {name: encoded[name] for name in self.state_names}
        memory = {name: encoded[name] for name in self.memory_names}
        attentional_vector = np.zeros((batch, self.attentional_size), dtype=np.float32)
        rows = np.arange(batch)  # the rows still decoding
        tokens, steps = sequences[:, 0].copy(), 0
        while steps < max_new_tokens:
            logits, states, attentional_vector, _ = self.run_step(tokens, states, attentional_vector, memory)
            tokens = self.token_ids(logits.argmax(axis=-1))  # the first maximal index, as torch's argmax
            steps += 1
            sequences[rows, steps] = tokens
            running = tokens != eos
            if not running.all():
                if not running.any():
                    break
                keep = np.flatnonzero(running)
                rows, tokens, attentional_vector = rows[keep], tokens[keep], attentional_vector[keep]
                states = {name: state[:, keep] for name, state in states.items()}
                memory = {name: value[keep] for name, value in memory.items()}
        return sequences[:, : 1 + steps]

    def beam_search(
        self, encoded: dict[str, np.ndarray], max_new_tokens: int, num_beams: int, length_penalty: float
    ) -> np.ndarray:
        """`beam_generate` (GenerationMixin's beam search with `early_stopping=False`): the best hypothesis per
        sentence, `(batch, 1 + steps)`."""
        settings = self.generation
        eos, start = settings["eos_token_id"], settings["decoder_start_token_id"]
        fill_value = settings["pad_token_id"] or eos
        batch = encoded["encoder_states"].shape[0]
        max_length = 1 + max_new_tokens
        # One row per beam, sentence-major; the beams of a sentence read its encoding once.
        states = {name: np.repeat(encoded[name], num_beams, axis=1) for name in self.state_names}
        memory = {name: encoded[name] for name in self.memory_names}
        attentional_vector = np.zeros((batch * num_beams, self.attentional_size), dtype=np.float32)

        sentences = np.arange(batch)  # the sentences still searched
        running = np.full((batch, num_beams, max_length), fill_value, dtype=np.int64)
        running[:, :, 0] = start
        running_scores = np.zeros((batch, num_beams), dtype=np.float32)
        running_scores[:, 1:] = NEGATIVE
        finished = running.copy()
        finished_scores = np.full((batch, num_beams), NEGATIVE, dtype=np.float32)
        finished_lengths = np.zeros((batch, num_beams), dtype=np.int64)
        is_finished = np.zeros((batch, num_beams), dtype=bool)
        improvable = np.ones((batch, 1), dtype=bool)
        best = np.full((batch, max_length), fill_value, dtype=np.int64)
        best_lengths = np.zeros(batch, dtype=np.int64)
        top_beams = np.arange(2 * num_beams) < num_beams
        per_row = min(2 * num_beams, self.output_size)
        cur_len = 1
        while True:
            logits, states, attentional_vector, best_per_row = self.run_step(
                running[:, :, cur_len - 1].reshape(-1), states, attentional_vector, memory, top_k=per_row
            )
            if best_per_row:
                # The best 2 * num_beams continuations of a sentence are among the best 2 * num_beams of each beam.
                picks = best_per_row["top_log_probs"].shape[-1]
                scores = best_per_row["top_log_probs"].reshape(-1, num_beams, picks) + running_scores[:, :, None]
                scores = scores.reshape(-1, num_beams * picks)
                indices = best_per_row["top_indices"].reshape(-1, num_beams * picks)
                # Ties (scores can become equal once the beam's score is added) go to the lower index in the whole
                # (beam, vocabulary) range, as `torch.topk` over it breaks them.
                flat_index = np.repeat(np.arange(num_beams) * self.output_size, picks) + indices
                order = np.lexsort((flat_index, -scores), axis=-1)[:, : 2 * num_beams]
                topk_scores = np.take_along_axis(scores, order, axis=1)
                source_beams = order // picks
                tokens = self.token_ids(np.take_along_axis(indices, order, axis=1))
            else:  # a graph without the top-k outputs: normalise and rank the whole vocabulary here
                log_probs = log_softmax(logits.astype(np.float32))
                vocab = log_probs.shape[-1]
                log_probs = (log_probs.reshape(-1, num_beams, vocab) + running_scores[:, :, None]).reshape(
                    -1, num_beams * vocab
                )
                topk_scores, topk_indices = top_k(log_probs, 2 * num_beams)
                source_beams = topk_indices // vocab
                tokens = self.token_ids(topk_indices % vocab)
            candidates = beams(running, source_beams).copy()
            candidates[:, :, cur_len] = tokens
            ended = (tokens == eos) | (cur_len + 1 >= max_length)

            # The best num_beams continuations that did not end run on.
            candidate_running_scores = topk_scores + ended.astype(np.float32) * NEGATIVE
            keep = top_k(candidate_running_scores, num_beams)[1]
            running, running_scores = beams(candidates, keep), beams(candidate_running_scores, keep)
            kept_sources = beams(source_beams, keep)
            # Those among the top num_beams that ended join the finished hypotheses if they rank.
            just_finished = ended & top_beams
            candidate_scores = topk_scores / np.float32(cur_len**length_penalty)
            candidate_scores = (
                candidate_scores + (~improvable).astype(np.float32) * NEGATIVE + (~just_finished) * NEGATIVE
            ).astype(np.float32)
            merged_scores = np.concatenate([finished_scores, candidate_scores], axis=1)
            best_of_merged = top_k(merged_scores, num_beams)[1]
            finished = beams(np.concatenate([finished, candidates], axis=1), best_of_merged)
            finished_scores = beams(merged_scores, best_of_merged)
            lengths = np.concatenate([finished_lengths, np.full_like(tokens, cur_len)], axis=1)
            finished_lengths = beams(lengths, best_of_merged)
            is_finished = beams(np.concatenate([is_finished, just_finished], axis=1), best_of_merged)

            kept_rows = (np.arange(len(sentences))[:, None] * num_beams + kept_sources).reshape(-1)
            states = {name: state[:, kept_rows] for name, state in states.items()}
            attentional_vector = attentional_vector[kept_rows]
            cur_len += 1
            worst_finished = np.where(is_finished, finished_scores.min(axis=1, keepdims=True), NEGATIVE)
            best_possible = running_scores[:, :1] / np.float32((cur_len - 1) ** length_penalty)
            improvable = improvable & (best_possible > worst_finished).any(axis=-1, keepdims=True)
            done = ~improvable[:, 0]
            if ended.all() or done.all():
                break
            if done.any():
                # Sentences that are done: their best hypothesis is final; the others continue alone.
                best[sentences[done]], best_lengths[sentences[done]] = finished[done, 0], finished_lengths[done, 0]
                active = np.flatnonzero(~done)
                rows = (active[:, None] * num_beams + np.arange(num_beams)).reshape(-1)
                sentences, running, running_scores = sentences[active], running[active], running_scores[active]
                finished, finished_scores = finished[active], finished_scores[active]
                finished_lengths, is_finished = finished_lengths[active], is_finished[active]
                improvable = improvable[active]
                states = {name: state[:, rows] for name, state in states.items()}
                attentional_vector = attentional_vector[rows]
                memory = {name: value[active] for name, value in memory.items()}
        best[sentences], best_lengths[sentences] = finished[:, 0], finished_lengths[:, 0]
        return best[:, : 1 + int(best_lengths.max())]

    def translate(
        self,
        texts: list[str],
        batch_size: int = 64,
        num_beams: int | None = None,
        max_new_tokens: int | None = None,
    ) -> list[str]:
        """Translations of `texts` in their order, as `hf_rnn.translation.generate_translations` makes them:
        length-sorted batches, sources truncated to `model_max_length`, empty sources translated to ""."""
        from ..tokenization import clean_text, decode_token_ids

        texts = [clean_text(text) for text in texts]
        order = [i for i in np.argsort([len(text) for text in texts], kind="stable") if texts[i].strip()]
        outputs = [""] * len(texts)
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            encoded = self.encode([texts[i] for i in index])
            generated = self.generate(
                encoded["input_ids"], encoded["attention_mask"], max_new_tokens=max_new_tokens, num_beams=num_beams
            )
            for i, text in zip(index, decode_token_ids(self.tokenizer, generated)):
                outputs[i] = text
        return outputs


def load_onnx_model(
    folder: str | Path, threads: int | None = 1, providers: list[str] | None = None
) -> OnnxClassifier | OnnxTranslator:
    """The driver for the export in `folder` (`OnnxClassifier` or `OnnxTranslator`, by its `onnx_config.json`)."""
    task = read_onnx_config(folder).get("task")
    if task == OnnxClassifier.task:
        return OnnxClassifier(folder, threads, providers)
    if task == OnnxTranslator.task:
        return OnnxTranslator(folder, threads, providers)
    raise ExportError(f"{ONNX_CONFIG_FILE} in {str(folder)!r} names an unknown task {task!r}.")
