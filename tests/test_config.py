"""Config dataclasses, YAML presets and --set overrides (pclkit.config)."""

from __future__ import annotations

import dataclasses

import pytest
import yaml

from pclkit.config import (
    ConfigError,
    TrainConfig,
    config_from_dict,
    config_to_dict,
    load_config_file,
    parse_override,
    preset_names,
    resolve_config,
    save_config,
)
from pclkit.methods import ablation_rows, get_method


def test_shipped_presets_resolve_and_differ():
    assert {"smoke", "synth_cpu", "paper"} <= set(preset_names())
    smoke = resolve_config("smoke")
    synth = resolve_config("synth_cpu")
    assert smoke.preset == "smoke" and synth.preset == "synth_cpu"
    assert smoke.data.source == synth.data.source == "synth"
    assert synth.runtime.precision == "auto" and synth.runtime.channels_last
    assert synth.method == "pcl"
    # smoke is much smaller than the main job
    assert smoke.data.n * smoke.optim.epochs < synth.data.n * synth.optim.epochs


def test_paper_preset_holds_reference_hyperparameters():
    # the paper preset needs a frames folder; give one so it validates
    cfg = resolve_config("paper", ["data.root=/frames"])
    assert cfg.model.encoder == "facecycle" and cfg.model.image_size == 64
    assert cfg.optim.batch_size == 256 and cfg.optim.optimizer == "adam"
    assert cfg.optim.lr == pytest.approx(1e-4) and cfg.optim.weight_decay == pytest.approx(1e-3)
    assert cfg.optim.scheduler == "cosine"
    assert cfg.loss.temperature == pytest.approx(0.07)
    assert cfg.views.num_negatives == 100 and cfg.views.recon_noise == pytest.approx(0.4)
    assert cfg.views.pose_change == "flip" and cfg.views.patch_frac == pytest.approx(0.4)


def test_paper_preset_without_frames_folder_says_what_is_missing():
    with pytest.raises(ConfigError, match="data.root"):
        resolve_config("paper")


def test_overrides_parse_yaml_scalars_and_dotted_keys():
    cfg = resolve_config("smoke", ["optim.lr=3e-4", "loss.use_dwa=false", "optim.max_steps=7",
                                   "views.appearance.grayscale_p=0.5", "optim.grad_clip=null"])
    assert cfg.optim.lr == pytest.approx(3e-4)  # YAML 1.1 reads 3e-4 as a string: coerced
    assert cfg.loss.use_dwa is False
    assert cfg.optim.max_steps == 7
    assert cfg.views.appearance == {"grayscale_p": 0.5}
    assert cfg.optim.grad_clip is None
    assert parse_override("a.b= [1, 2]") == (["a", "b"], [1, 2])
    assert resolve_config("synth_cpu", ["data.pose_limits=[30, 20, 15]"]).data.pose_limits == (30.0, 20.0, 15.0)
    with pytest.raises(ConfigError, match="pose_limits"):
        resolve_config("synth_cpu", ["data.pose_limits=[30, 20]"])


@pytest.mark.parametrize(
    "override, message",
    [
        ("optim.lrr=1", r"unknown config key 'optim.lrr'; valid keys in optim: optimizer, lr"),
        ("nope=1", r"unknown config key 'nope'; valid keys in config: method, seed"),
        ("optim.lr=fast", r"optim.lr must be a number"),
        ("optim.batch_size=2.5", r"optim.batch_size must be an integer"),
        ("method=byol", r"unknown method 'byol'; known methods: .*pcl.*simclr"),
        ("views.pose_change=mirror", r"views.pose_change must be one of 'flip', 'roll', 'render3d'"),
        ("model.encoder=vit", r"unknown encoder 'vit'; choose one of small, facecycle"),
        ("optim.lr=-1", r"optim.lr must be > 0"),
        ("optim.lr.x=1", r"'optim.lr' is a value, not a section"),
        ("model.method=simclr", r"not 'model.method'"),
        ("loss.use_dis=maybe", r"loss.use_dis must be true or false"),
        ("optim.lr", r"must look like key=value"),
        ("views.appearance.grey_p=0.5", r"views.appearance: .*grey_p.*valid keys: jitter_p"),
        ("views.appearance.grayscale_p=2", r"views.appearance: grayscale_p must be a probability"),
        ("views.pose_change_options.spin=1", r"views.pose_change_options: .*spin"),
    ],
)
def test_bad_overrides_fail_with_a_message_listing_what_is_valid(override, message):
    with pytest.raises(ConfigError, match=message):
        resolve_config("smoke", [override])


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="render3d"):
        resolve_config("smoke", ["views.pose_change=render3d", "data.source=folder", "data.root=/x"])
    with pytest.raises(ConfigError, match="method 'simclr': loss.schedule 'alternating'"):
        resolve_config("smoke", ["method=simclr", "loss.schedule=alternating"])
    with pytest.raises(ConfigError, match="method 'pcl': views.share_recon_views needs loss.schedule 'joint'"):
        resolve_config("smoke", ["loss.schedule=alternating", "views.share_recon_views=true"])
    with pytest.raises(ConfigError, match="negative_mix needs"):
        resolve_config("smoke", ["views.num_negatives=1", "views.negative_mix=true"])


def test_unknown_preset_lists_the_shipped_ones():
    with pytest.raises(ConfigError, match="choose one of paper, .*smoke, synth_cpu"):
        resolve_config("tiny")


def test_method_is_copied_into_the_model_section():
    cfg = resolve_config("smoke", {"method": "simclr"})
    assert cfg.method == cfg.model.method == "simclr"
    with pytest.raises(ConfigError, match="differs from method"):
        config_from_dict({"method": "simclr", "model": {"method": "pcl"}})


def test_roundtrip_through_yaml_file(tmp_path):
    cfg = resolve_config("smoke", ["views.appearance.blur_sigma=[0.1, 1.0]", "seed=5"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config_file(tmp_path / "config.yaml")
    assert again == cfg
    assert config_to_dict(again) == yaml.safe_load((tmp_path / "config.yaml").read_text())


def test_preset_from_a_yaml_file(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("method: simclr\noptim:\n  epochs: 3\n")
    cfg = resolve_config(str(path))
    assert cfg.method == "simclr" and cfg.optim.epochs == 3 and cfg.preset == "mine"
    path.write_text("optim:\n  epocs: 3\n")
    with pytest.raises(ConfigError, match="unknown config key 'optim.epocs'"):
        resolve_config(str(path))


def test_ablation_rows_switch_the_loss_terms():
    def terms(overrides):
        config = resolve_config("smoke", overrides)
        return get_method(config.method)(config).terms()

    rows = {name: terms(overrides) for name, overrides in ablation_rows().items()}
    assert rows == {
        "simclr": ("face",),
        "dis": ("dis", "face"),
        "dis_orth": ("dis", "orth", "face"),
        "dis_orth_pose": ("dis", "orth", "pose", "face"),
        "pcl": ("dis", "orth", "pose", "face"),
    }
    assert resolve_config("smoke", ablation_rows()["pcl"]).loss.use_dwa
    assert not resolve_config("smoke", ablation_rows()["dis_orth_pose"]).loss.use_dwa


def test_defaults_are_valid():
    assert isinstance(TrainConfig(), TrainConfig)


def test_a_preset_can_inherit_another_and_change_a_few_keys():
    long, main = resolve_config("synth_long"), resolve_config("synth_cpu")
    assert long.preset == "synth_long" and long.optim.epochs > main.optim.epochs
    assert long.model == main.model
    # its one change of the loss: L_cyc with a detached decoder (lever 33, docs/results/recipe_search.md)
    assert (long.loss.cycle_weight, long.loss.cycle_decoder) == (1.0, "detached")
    assert dataclasses.replace(long.loss, cycle_weight=0.0, cycle_decoder="trained") == main.loss
    # its one change of the views: twice the pre-rendered poses, on twice the faces
    assert long.views.render3d_bank == 2 * main.views.render3d_bank and long.data.n == 2 * main.data.n
    assert dataclasses.replace(long.views, render3d_bank=main.views.render3d_bank) == main.views


def test_inherit_cycles_and_old_run_configs(tmp_path):
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(f"inherit: {b}\n")
    b.write_text(f"inherit: {a}\n")
    with pytest.raises(ConfigError, match="cycle"):
        resolve_config(str(a))
    # a run saved before data.pose_prior existed trained on uniform poses
    from pclkit.config import config_to_dict, load_config_file, save_config

    saved = tmp_path / "config.yaml"
    save_config(resolve_config("smoke"), saved)
    data = yaml.safe_load(saved.read_text())
    del data["data"]["pose_prior"]
    saved.write_text(yaml.safe_dump(data))
    assert load_config_file(saved).data.pose_prior == "uniform"
    assert config_to_dict(resolve_config("smoke"))["data"]["pose_prior"] == "normal"
    with pytest.raises(ConfigError, match="share_recon_views"):
        resolve_config("smoke", ["loss.schedule=alternating", "views.share_recon_views=true"])
