"""The ImPartial losses on hand-computed 2x2 cases (values worked out on paper, not by the code)."""

import math

import pytest
import torch

from impartial.config import LossConfig, ModelConfig, TaskConfig
from impartial.train.losses import gaussian_rec, impartial_loss, scribble_ce

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)  # 0.918939


def _one_task(k=(1, 1)):
    return ModelConfig(
        in_channels=1, tasks=[TaskConfig(ncomponents=list(k), rec_channels=[0])], base=4, depth=1
    )


def test_uniform_case_by_hand():
    """P = 1/2 everywhere, mu_fg = 1, mu_bg = 0: CE = ln 2 each, rec = 0.5 * 0.5^2 + ln sqrt(2 pi)."""
    out = torch.zeros(1, 4, 2, 2)  # [logit fg, logit bg, mu fg, mu bg]
    out[0, 2] = 1.0
    target = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    scr = torch.zeros(1, 2, 2, 2)
    scr[0, 0, 0, 0] = 1  # foreground scribble at (0, 0)
    scr[0, 1, 1, 1] = 1  # background scribble at (1, 1)
    mask = torch.ones(1, 1, 2, 2)
    mask[0, 0, 0, :] = 0  # blind spots at (0, 0) and (0, 1)
    parts = impartial_loss(out, target, scr, mask, _one_task(), LossConfig())
    assert parts["seg_fore"].item() == pytest.approx(math.log(2), abs=1e-6)
    assert parts["seg_back"].item() == pytest.approx(math.log(2), abs=1e-6)
    rec = 0.5 * 0.25 + LOG_SQRT_2PI  # m = 0.5 and |x - m| = 0.5 at both blind spots
    assert parts["rec"].item() == pytest.approx(rec, abs=1e-6)
    assert parts["loss"].item() == pytest.approx(0.9 * math.log(2) + 0.1 * rec, abs=1e-6)


def test_p_weighted_patch_mean_by_hand():
    """p_fg = 3/4 at (0,0), 1/2 elsewhere; mu_fg = 2 at (0,0): mu_bar = 1.5 / 2.25 = 2/3."""
    out = torch.zeros(1, 4, 2, 2)
    out[0, 0, 0, 0] = math.log(3.0)
    out[0, 2, 0, 0] = 2.0
    p = torch.softmax(out[:, :2], dim=1)
    x = torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])
    blind = torch.tensor([[[1.0, 1.0], [0.0, 0.0]]])
    rec = gaussian_rec(p, out[:, 2:4], x, blind)
    m00, m01 = 0.75 * 2 / 3, 0.5 * 2 / 3  # sum_k p_k mu_bar_k with mu_bar_bg = 0
    expected = 0.5 * (((1 - m00) ** 2 + (0 - m01) ** 2) / 2) + LOG_SQRT_2PI
    assert rec.item() == pytest.approx(expected, abs=1e-6)


def test_scribble_ce_normalises_per_sample_then_over_samples_with_scribbles():
    """Sample 0: two pixels P = 1/2 and 1/4 -> (ln2 + ln4)/2; sample 1 has none: not counted."""
    logp = torch.log(torch.tensor([[[0.5, 0.25], [0.9, 0.9]], [[0.1, 0.1], [0.1, 0.1]]]))
    scr = torch.tensor([[[1.0, 1.0], [0.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    assert scribble_ce(logp, scr).item() == pytest.approx((math.log(2) + math.log(4)) / 2, abs=1e-6)
    # two samples with scribbles: the mean of their per-sample means
    scr2 = scr.clone()
    scr2[1, 0, 0] = 1
    expected = ((math.log(2) + math.log(4)) / 2 + math.log(10)) / 2
    assert scribble_ce(logp, scr2).item() == pytest.approx(expected, abs=1e-5)
    assert scribble_ce(logp, torch.zeros_like(scr)).item() == 0.0


def test_class_probability_sums_components_and_is_stable():
    """Two fg components with logits 0, 0 and one bg with 0: P_fg = 2/3; huge logits stay finite."""
    out = torch.zeros(1, 6, 2, 2)  # K = 3 logits, 3 mean maps
    scr = torch.zeros(1, 2, 2, 2)
    scr[0, 0, 0, 0] = 1
    parts = impartial_loss(
        out, torch.zeros(1, 1, 2, 2), scr, torch.ones(1, 1, 2, 2), _one_task((2, 1)), LossConfig()
    )
    assert parts["seg_fore"].item() == pytest.approx(-math.log(2 / 3), abs=1e-6)
    out[0, 2, 0, 0] = 200.0  # the background logit dominates: P_fg ~ e^-200, clamped at 1e-20
    parts = impartial_loss(
        out, torch.zeros(1, 1, 2, 2), scr, torch.ones(1, 1, 2, 2), _one_task((2, 1)), LossConfig()
    )
    assert parts["seg_fore"].item() == pytest.approx(-math.log(1e-20), rel=1e-6)
    assert torch.isfinite(parts["loss"])


def test_two_task_weights_and_tv_regulariser():
    """Task weights 1/T, class weights 1/C; TV of a step map = 0.5 * (mean |dy| + mean |dx|)."""
    config = ModelConfig(
        in_channels=1,
        tasks=[TaskConfig(name="a", ncomponents=[1, 1]), TaskConfig(name="b", ncomponents=[1, 1])],
        base=4,
        depth=1,
    )
    out = torch.zeros(1, 8, 2, 2)
    out[0, 4, :, 0] = math.log(3.0)  # task b: p_fg = 3/4 in column 0, 1/2 in column 1
    scr = torch.zeros(1, 4, 2, 2)
    scr[0, 0, 0, 0] = 1  # task a fg
    scr[0, 2, 0, 0] = 1  # task b fg
    parts = impartial_loss(
        out, torch.zeros(1, 1, 2, 2), scr, torch.ones(1, 1, 2, 2), config, LossConfig(w_reg=1.0)
    )
    assert parts["seg_fore"].item() == pytest.approx(0.5 * math.log(2) + 0.5 * -math.log(0.75), abs=1e-6)
    # task b: p_fg differs by 1/4 across columns (dx), not across rows; both component maps count
    assert parts["reg"].item() == pytest.approx(0.5 * (0.5 * (0.0 + 0.25)), abs=1e-6)


def test_gradients_flow_and_v1_variant_runs():
    """Gradients reach logits and mean maps; the v1 (Brier + expected NLL) loss is finite."""
    out = torch.randn(2, 4, 8, 8, requires_grad=True)
    scr = (torch.rand(2, 2, 8, 8) > 0.8).float()
    mask = (torch.rand(2, 1, 8, 8) > 0.1).float()
    for variant in ("v2", "v1"):
        loss = impartial_loss(
            out, torch.rand(2, 1, 8, 8), scr, mask, _one_task(), LossConfig(variant=variant)
        )["loss"]
        (grad,) = torch.autograd.grad(loss, out)
        assert torch.isfinite(loss)
        assert grad[:, :2].abs().sum() > 0
        assert grad[:, 2:].abs().sum() > 0
