"""ImPartial losses as functions of plain tensors (section 5 of the method brief).

``impartial_loss(output, target, scribbles, mask, model_config, loss_config)`` returns the total and
its parts. Shapes: output (B, n_output, H, W) raw maps; target (B, C, H, W) the clean patch;
scribbles (B, S, H, W) in {0, 1}, per task [foreground classes..., background]; mask (B, C, H, W)
with 0 at the blind spots. Values equal the original's; the class log-probabilities go through
log-sum-exp of log-softmax instead of log(sum(softmax)), which is the same number but stable.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from impartial.config import LossConfig, ModelConfig
from impartial.model import task_slices

__all__ = ["impartial_loss", "scribble_ce", "gaussian_rec", "tv_reg"]

_LOG_EPS = math.log(1e-20)
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)

#: Sums a tensor over data-parallel ranks (identity on one process); used for loss denominators.
Reducer = Callable[[torch.Tensor], torch.Tensor]


def _identity(t: torch.Tensor) -> torch.Tensor:
    return t


def scribble_ce(
    log_prob: torch.Tensor, scribble: torch.Tensor, *, reduce: Reducer = _identity
) -> torch.Tensor:
    """Per-sample mean of -log max(P, 1e-20) over scribbled pixels, then mean over samples with any.

    log_prob, scribble: (B, H, W). Zero when the batch holds no such scribble pixel.
    """
    term = -torch.clamp(log_prob, min=_LOG_EPS) * scribble
    n = scribble.sum(dim=(1, 2))
    per_sample = term.sum(dim=(1, 2)) / torch.clamp(n, min=1)
    denom = reduce(torch.clamp(n, max=1).sum().detach())
    if float(denom) == 0:
        return log_prob.sum() * 0.0
    return per_sample.sum() / denom


def brier(prob: torch.Tensor, scribble: torch.Tensor, *, reduce: Reducer = _identity) -> torch.Tensor:
    """v1 scribble loss: sum s (s - P)^2 / max(sum s, 1) per sample, mean over samples."""
    per = (scribble * (scribble - prob) ** 2).sum(dim=(1, 2)) / torch.clamp(scribble.sum(dim=(1, 2)), min=1)
    denom = reduce(torch.tensor(float(per.shape[0]), device=per.device))
    return per.sum() / denom


def gaussian_rec(
    p: torch.Tensor,
    mu: torch.Tensor,
    x: torch.Tensor,
    blind: torch.Tensor,
    *,
    logstd: torch.Tensor | None = None,
    kind: str = "gaussian",
    reduce: Reducer = _identity,
) -> torch.Tensor:
    """v2 reconstruction: NLL of x under one Gaussian around sum_k p_k * mean_patch(p_k mu_k).

    p, mu, logstd: (B, K, H, W); x, blind: (B, H, W) with blind = 1 at the pixels scored.
    Per sample the mean over blind pixels, then the mean over the batch.
    """
    wsum = p.sum(dim=(2, 3))
    mu_bar = (p * mu).sum(dim=(2, 3)) / wsum
    m = (p * mu_bar[:, :, None, None]).sum(dim=1)
    if logstd is not None:
        s_bar = (p * logstd).sum(dim=(2, 3)) / wsum
        s = (p * s_bar[:, :, None, None]).sum(dim=1)
    else:
        s = torch.zeros_like(m)
    if kind == "laplacian":
        nll = torch.abs(x - m) / torch.exp(s) + math.log(2.0) + s
    else:
        nll = 0.5 * ((x - m) / torch.exp(s)) ** 2 + _LOG_SQRT_2PI + s
    per = (nll * blind).sum(dim=(1, 2)) / torch.clamp(blind.sum(dim=(1, 2)), min=1)
    return per.sum() / reduce(torch.tensor(float(per.shape[0]), device=per.device))


def expected_nll_rec(
    p: torch.Tensor, mu: torch.Tensor, x: torch.Tensor, blind: torch.Tensor, *, reduce: Reducer = _identity
) -> torch.Tensor:
    """v1 reconstruction: sum_k p_k NLL(x; mean_patch(mu_k), 1) at the blind pixels (expected NLL)."""
    mu_bar = mu.mean(dim=(2, 3))
    nll = 0.5 * (x[:, None] - mu_bar[:, :, None, None]) ** 2 + _LOG_SQRT_2PI
    e = (p * nll).sum(dim=1)
    per = (e * blind).sum(dim=(1, 2)) / torch.clamp(blind.sum(dim=(1, 2)), min=1)
    return per.sum() / reduce(torch.tensor(float(per.shape[0]), device=per.device))


def tv_reg(p: torch.Tensor, *, kind: str = "L1") -> torch.Tensor:
    """0.5 (mean |dy p| + mean |dx p|) over component maps (squared differences for L2)."""
    dy = p[:, :, 1:, :] - p[:, :, :-1, :]
    dx = p[:, :, :, 1:] - p[:, :, :, :-1]
    if kind == "L2":
        return 0.5 * ((dy**2).mean() + (dx**2).mean())
    return 0.5 * (dy.abs().mean() + dx.abs().mean())


def impartial_loss(
    output: torch.Tensor,
    target: torch.Tensor,
    scribbles: torch.Tensor,
    mask: torch.Tensor,
    model_config: ModelConfig,
    loss_config: LossConfig,
    *,
    mc_outputs: torch.Tensor | None = None,
    reduce: Reducer = _identity,
) -> dict[str, torch.Tensor]:
    """Total loss and its parts (``seg_fore``, ``seg_back``, ``rec``, ``reg``, ``loss``).

    ``mc_outputs`` (P, B, n_output, H, W) averages softmaxes and mean maps over MC passes first,
    as the original validation does; then ``output`` is ignored.
    """
    layout = task_slices(model_config)
    n_tasks = len(layout)
    w_tasks = loss_config.weight_tasks or [1.0 / n_tasks] * n_tasks
    if len(w_tasks) != n_tasks:
        raise ValueError(f"weight_tasks has {len(w_tasks)} entries for {n_tasks} tasks")
    zero = output.sum() * 0.0 if mc_outputs is None else mc_outputs.sum() * 0.0
    seg_fore, seg_back, rec, reg = zero, zero, zero, zero
    blind = 1.0 - mask
    for wt, ts in zip(w_tasks, layout, strict=True):
        if mc_outputs is None:
            logp = torch.log_softmax(output[:, ts.logits], dim=1)
            p = logp.exp()
            mean_maps = [output[:, s] for s in ts.means]
            std_maps = [output[:, s] for s in ts.logstds] if ts.logstds else None
        else:
            p = torch.softmax(mc_outputs[:, :, ts.logits], dim=2).mean(dim=0)
            logp = torch.log(torch.clamp(p, min=1e-38))
            mean_maps = [mc_outputs[:, :, s].mean(dim=0) for s in ts.means]
            std_maps = [mc_outputs[:, :, s].mean(dim=0) for s in ts.logstds] if ts.logstds else None
        scr = scribbles[:, ts.scribbles]
        fore = zero
        for c, wc in enumerate(ts.task.class_weights()):
            group = ts.groups[c]
            if loss_config.variant == "v1":
                fore = fore + wc * brier(p[:, group].sum(dim=1), scr[:, c], reduce=reduce)
            else:
                fore = fore + wc * scribble_ce(
                    torch.logsumexp(logp[:, group], dim=1), scr[:, c], reduce=reduce
                )
        bg = ts.groups[-1]
        if loss_config.variant == "v1":
            back = brier(p[:, bg].sum(dim=1), scr[:, -1], reduce=reduce)
        else:
            back = scribble_ce(torch.logsumexp(logp[:, bg], dim=1), scr[:, -1], reduce=reduce)
        rec_t = zero
        for i, (ch, wr) in enumerate(zip(ts.task.rec_channels, ts.task.rec_weights(), strict=True)):
            if loss_config.variant == "v1":
                term = expected_nll_rec(p, mean_maps[i], target[:, ch], blind[:, ch], reduce=reduce)
            else:
                term = gaussian_rec(
                    p,
                    mean_maps[i],
                    target[:, ch],
                    blind[:, ch],
                    logstd=std_maps[i] if std_maps else None,
                    kind=loss_config.rec,
                    reduce=reduce,
                )
            rec_t = rec_t + wr * term
        seg_fore = seg_fore + wt * fore
        seg_back = seg_back + wt * back
        rec = rec + wt * rec_t
        if loss_config.w_reg > 0:
            reg = reg + wt * tv_reg(p, kind=loss_config.reg)
    total = loss_config.w_fore * seg_fore + loss_config.w_back * seg_back + loss_config.w_rec * rec
    if loss_config.w_reg > 0:
        total = total + loss_config.w_reg * reg
    return {"loss": total, "seg_fore": seg_fore, "seg_back": seg_back, "rec": rec, "reg": reg}
