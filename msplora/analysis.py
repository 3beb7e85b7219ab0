"""Per-level spectra of the adapters: singular values, effective rank, energy and redundancy.

The singular values of an update s * B @ A (B: out x r, A: r x in) come from an
r x r core instead of the dense out x in matrix. With the reduced QR factorisations
B = Q_B R_B and A^T = Q_A R_A,

    s * B @ A = Q_B (s * R_B @ R_A^T) Q_A^T,

and Q_B, Q_A have orthonormal columns, so the singular values of the r x r core
s * R_B @ R_A^T are those of the update. For d = 4096 and r = 8 that replaces an
O(d^3) SVD with two thin QRs and an 8 x 8 SVD.

Frobenius inner products also need only small matrices:
<s1 B1 A1, s2 B2 A2>_F = s1 s2 * sum((B1^T B2) * (A1 A2^T)), which gives the cosine
similarity between two blocks' updates without forming either.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:
    from .model import MSPLoRAModel

__all__ = [
    "AdapterSpectrum",
    "BlockSpectrum",
    "LevelSummary",
    "LevelSpectra",
    "level_spectra",
    "peft_lora_spectra",
    "spectrum_of_factors",
    "effective_rank",
    "update_cosine",
]


@dataclass(frozen=True)
class AdapterSpectrum:
    """Singular values of one adapter's update s * B @ A, largest first."""

    key: str
    level: str
    role: str
    stack: str
    group: int
    blocks: tuple[int, ...]
    rank: int
    singular_values: tuple[float, ...]

    @property
    def energy(self) -> float:
        """Squared Frobenius norm of the update: the sum of squared singular values."""
        return sum(v * v for v in self.singular_values)


@dataclass(frozen=True)
class BlockSpectrum:
    """Singular values of one block's combined update (all levels added)."""

    role: str
    stack: str
    block: int
    singular_values: tuple[float, ...]


@dataclass(frozen=True)
class LevelSummary:
    """Statistics of one level: mean effective rank of its adapters and its share of the energy."""

    adapters: int
    effective_rank: float
    energy: float
    energy_share: float
    redundancy: float | None  # mean |cosine| between the level's distinct adapters of one role; None if < 2


@dataclass
class LevelSpectra:
    """Spectra of a whole model: per adapter, per block, per level, and the overlap between blocks.

    `block_overlap` is the mean cosine similarity between the combined updates of two
    blocks of the same role (1: identical directions, 0: orthogonal). Shared levels
    raise it by construction, and it is NaN while every update is zero.
    """

    adapters: list[AdapterSpectrum]
    blocks: list[BlockSpectrum]
    levels: dict[str, LevelSummary] = field(default_factory=dict)
    block_overlap: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-ready data (lists and floats)."""
        return {
            "adapters": [
                # "name" repeats "key" under the name that the stored-snapshot readers (msplora.plots) use.
                {**asdict(a), "name": a.key, "blocks": list(a.blocks), "singular_values": list(a.singular_values)}
                for a in self.adapters
            ],
            "blocks": [{**asdict(b), "singular_values": list(b.singular_values)} for b in self.blocks],
            "levels": {name: asdict(summary) for name, summary in self.levels.items()},
            "redundancy": {name: summary.redundancy for name, summary in self.levels.items()},
            "block_overlap": _finite_or_none(self.block_overlap),
        }


@torch.no_grad()
def spectrum_of_factors(lora_A: torch.Tensor, lora_B: torch.Tensor, scaling: float = 1.0) -> torch.Tensor:
    """Return the singular values of scaling * lora_B @ lora_A (largest first) from the r x r core.

    lora_A: (r, in), lora_B: (out, r). Computed in float64.
    """
    _, r_b = torch.linalg.qr(lora_B.detach().double())  # (min(out, r), r)
    _, r_a = torch.linalg.qr(lora_A.detach().double().T)  # (min(in, r), r)
    core = r_b @ r_a.T  # (min(out, r), min(in, r))
    return torch.linalg.svdvals(core) * abs(scaling)


def effective_rank(singular_values: torch.Tensor | list[float]) -> float:
    """Return exp(entropy of sigma / sum(sigma)), the effective rank of Roy and Vetterli (EUSIPCO 2007); 0 for a zero update."""
    values = torch.as_tensor(singular_values, dtype=torch.float64)
    total = values.sum()
    if total <= 0:
        return 0.0
    p = values[values > 0] / total
    return float(torch.exp(-(p * p.log()).sum()))


@torch.no_grad()
def update_cosine(factors_1: tuple[torch.Tensor, torch.Tensor], factors_2: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Return the cosine similarity <U1, U2>_F / (|U1| |U2|) of U = B @ A, from the factors only.

    Each argument is (A, B) with any scaling already folded into B. NaN when either update is zero.
    """
    inner_12 = _frobenius_inner(factors_1, factors_2)
    norm_1 = math.sqrt(max(_frobenius_inner(factors_1, factors_1), 0.0))
    norm_2 = math.sqrt(max(_frobenius_inner(factors_2, factors_2), 0.0))
    if norm_1 == 0.0 or norm_2 == 0.0:
        return float("nan")
    return inner_12 / (norm_1 * norm_2)


def level_spectra(model: MSPLoRAModel) -> LevelSpectra:
    """Compute the spectra of every adapter, every block's combined update and each level's summary."""
    records = model.layout()
    adapters = []
    scaled: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for record in records:
        module = model.adapters[record.key]
        values = spectrum_of_factors(module.lora_A, module.lora_B, module.scaling)
        adapters.append(
            AdapterSpectrum(
                record.key,
                record.level,
                record.role,
                record.stack,
                record.group,
                record.blocks,
                record.rank,
                tuple(values.tolist()),
            )
        )
        scaled[record.key] = (module.lora_A.detach().double(), module.scaling * module.lora_B.detach().double())

    # Each block's combined update is [s_g B_g, s_m B_m, s_l B_l] @ [A_g; A_m; A_l].
    layout = model.layout_map
    per_block: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    blocks = []
    for target in layout.targets:
        keys = layout.assignments[target.path]
        lora_A = torch.cat([scaled[k][0] for k in keys], dim=0)
        lora_B = torch.cat([scaled[k][1] for k in keys], dim=1)
        per_block[target.path] = (lora_A, lora_B)
        values = spectrum_of_factors(lora_A, lora_B)
        blocks.append(BlockSpectrum(target.role, target.stack, target.block, tuple(values.tolist())))

    roles: dict[tuple[str, str], list[str]] = {}
    for target in layout.targets:
        roles.setdefault((target.stack, target.role), []).append(target.path)
    overlap = _mean_pairwise_cosine([[per_block[path] for path in paths] for paths in roles.values()])
    return LevelSpectra(adapters, blocks, _summarise_levels(adapters, scaled), overlap)


def peft_lora_spectra(peft_model: torch.nn.Module, adapter_name: str = "default") -> LevelSpectra:
    """Compute the same spectra for a PEFT LoRA model, as one level named "lora" with one adapter per target.

    The role of a target is its path with the first number after a block stack's name
    replaced by ``*``, found with the same stack detection as MSPLoRA.
    """
    from .layout import find_block_stacks

    stacks = list(find_block_stacks(peft_model))
    adapters = []
    blocks = []
    scaled: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    roles: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor]]] = {}
    for path, module in peft_model.named_modules():
        if not hasattr(module, "lora_A") or adapter_name not in getattr(module, "lora_A", {}):
            continue
        lora_A = module.lora_A[adapter_name].weight.detach().double()
        lora_B = module.lora_B[adapter_name].weight.detach().double()
        scaling = float(module.scaling[adapter_name])
        stack, block, role = _role_of(path, stacks)
        values = tuple(spectrum_of_factors(lora_A, lora_B, scaling).tolist())
        adapters.append(AdapterSpectrum(path, "lora", role, stack, block, (block,), lora_A.shape[0], values))
        blocks.append(BlockSpectrum(role, stack, block, values))
        scaled[path] = (lora_A, scaling * lora_B)
        roles.setdefault((stack, role), []).append(scaled[path])
    overlap = _mean_pairwise_cosine(list(roles.values()))
    return LevelSpectra(adapters, blocks, _summarise_levels(adapters, scaled), overlap)


# Private helpers


def _frobenius_inner(factors_1: tuple[torch.Tensor, torch.Tensor], factors_2: tuple[torch.Tensor, torch.Tensor]) -> float:
    (a_1, b_1), (a_2, b_2) = factors_1, factors_2
    return float(((b_1.T @ b_2) * (a_1 @ a_2.T)).sum())


def _mean_pairwise_cosine(groups: list[list[tuple[torch.Tensor, torch.Tensor]]]) -> float:
    values = []
    for members in groups:
        for first, second in combinations(members, 2):
            cosine = update_cosine(first, second)
            if not math.isnan(cosine):
                values.append(cosine)
    return sum(values) / len(values) if values else float("nan")


def _summarise_levels(
    adapters: list[AdapterSpectrum], scaled: dict[str, tuple[torch.Tensor, torch.Tensor]]
) -> dict[str, LevelSummary]:
    total_energy = sum(a.energy for a in adapters)
    summaries = {}
    for level in dict.fromkeys(a.level for a in adapters):
        members = [a for a in adapters if a.level == level]
        energy = sum(a.energy for a in members)
        by_role: dict[tuple[str, str], list[tuple[torch.Tensor, torch.Tensor]]] = {}
        for a in members:
            by_role.setdefault((a.stack, a.role), []).append(scaled[a.key])
        redundancy = None
        if any(len(group) > 1 for group in by_role.values()):
            pairs = [
                abs(update_cosine(x, y)) for group in by_role.values() for x, y in combinations(group, 2)
            ]
            pairs = [p for p in pairs if not math.isnan(p)]
            redundancy = sum(pairs) / len(pairs) if pairs else None
        summaries[level] = LevelSummary(
            adapters=len(members),
            effective_rank=sum(effective_rank(a.singular_values) for a in members) / len(members),
            energy=energy,
            energy_share=energy / total_energy if total_energy > 0 else 0.0,
            redundancy=redundancy,
        )
    return summaries


def _role_of(path: str, stacks: list[str]) -> tuple[str, int, str]:
    for stack in stacks:
        if path.startswith(stack + "."):
            index, _, rest = path[len(stack) + 1 :].partition(".")
            return stack, int(index), f"{stack}.*.{rest}"
    return "", -1, path


def _finite_or_none(value: float) -> float | None:
    return None if value is None or math.isnan(value) else value
