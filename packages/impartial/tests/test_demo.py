"""Learning test on synthetic cells (the demo).

Scribbles under 5 % of the pixels; held-out AP@0.5 far above Otsu + connected components.
"""

import json


def test_demo_learns_from_scribbles_and_beats_otsu(tmp_path, capsys):
    """Train on 2 images' scribbles, score 2 held-out images; outputs land on disk."""
    from impartial.cli import main

    assert main(["demo", "--out", str(tmp_path / "demo"), "--epochs", "12"]) == 0
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    ap = summary["test_AP50"]
    with capsys.disabled():  # the measured figures, in the suite's output for the closing notes
        cover = summary["scribble_coverage"]
        rounded = json.dumps({k: round(v, 3) for k, v in ap.items()})
        print(f"\nimpartial demo: scribble coverage {cover:.4f}, held-out AP@0.5 {rounded}")
    assert summary["scribble_coverage"] < 0.05
    assert ap["improved"] >= ap["otsu_cc"] + 0.3, ap
    assert ap["faithful"] > ap["otsu_cc"], ap
    pred = tmp_path / "demo" / "predictions" / "synthetic2"
    for name in (
        "cell_prob.ome.tif",
        "cell_entropy.ome.tif",
        "cell_mutual_information.ome.tif",
        "overlay.png",
    ):
        assert (pred / name).is_file()
    assert (tmp_path / "demo" / "metrics" / "metrics.md").is_file()
    assert (tmp_path / "demo" / "run" / "loss_curve.png").is_file()
