"""Recipes: typed loading, clear errors, --set overrides, shipped recipes, PaddleGAN translation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from sr_train.recipe import load_recipe, recipe_from_dict
from srdata.errors import UserError
from helpers import ROOT


# The structure of PaddleGAN's configs/esrgan_psnr_x4_div2k.yaml (values as in that file).
PADDLEGAN_PSNR = """
total_iters: 1000000
output_dir: output_dir
min_max:
  (0., 1.)
model:
  name: BaseSRModel
  generator:
    name: RRDBNet
    in_nc: 3
    out_nc: 3
    nf: 64
    nb: 23
  pixel_criterion:
    name: L1Loss
  to_static: False
export_model:
  - {name: 'generator', inputs_num: 1}
dataset:
  train:
    name: SRDataset
    gt_folder: data/DIV2K/DIV2K_train_HR_sub
    lq_folder: data/DIV2K/DIV2K_train_LR_bicubic/X4_sub
    num_workers: 4
    batch_size: 16
    scale: 4
    preprocess:
      - name: LoadImageFromFile
        key: lq
      - name: LoadImageFromFile
        key: gt
      - name: Transforms
        input_keys: [lq, gt]
        pipeline:
          - name: SRPairedRandomCrop
            gt_patch_size: 128
            scale: 4
            keys: [image, image]
          - name: PairedRandomHorizontalFlip
            keys: [image, image]
          - name: PairedRandomVerticalFlip
            keys: [image, image]
          - name: PairedRandomTransposeHW
            keys: [image, image]
          - name: Transpose
            keys: [image, image]
          - name: Normalize
            mean: [0., 0., 0.]
            std: [255., 255., 255.]
            keys: [image, image]
  test:
    name: SRDataset
    gt_folder: data/Set14/GTmod12
    lq_folder: data/Set14/LRbicx4
    scale: 4
lr_scheduler:
  name: CosineAnnealingRestartLR
  learning_rate: 0.0002
  periods: [250000, 250000, 250000, 250000]
  restart_weights: [1, 1, 1, 1]
  eta_min: !!float 1e-7
optimizer:
  name: Adam
  net_names:
    - generator
  beta1: 0.9
  beta2: 0.99
validate:
  interval: 5000
  save_img: false
  metrics:
    psnr:
      name: PSNR
      crop_border: 4
      test_y_channel: True
    ssim:
      name: SSIM
      crop_border: 4
      test_y_channel: True
log_config:
  interval: 10
  visiual_interval: 500
snapshot_config:
  interval: 5000
"""


def write(tmp_path: Path, text: str, name: str = "r.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


MINIMAL = "data:\n  root: some/ds\n"


def test_shipped_recipes_load():
    shipped = sorted((ROOT / "recipes").glob("*.yaml"))
    assert {"quickstart.yaml", "anime-x4.yaml", "esrgan-psnr-x4.yaml", "quickstart-gan.yaml"} <= {p.name for p in shipped}
    for path in shipped:
        recipe = load_recipe(path)
        recipe.model_arch(4)  # every model setting belongs to its architecture


def test_quickstart_is_the_measured_compact():
    recipe = load_recipe(ROOT / "recipes" / "quickstart.yaml")
    assert recipe.model_arch(4) == {"arch": "compact", "in_nc": 3, "out_nc": 3, "nf": 32, "nc": 8, "scale": 4,
                                    "skip": "bicubic", "act": "prelu"}
    assert (recipe.train.iters, recipe.train.batch_size, recipe.train.patch_size) == (500, 16, 128)


def test_anime_recipe_is_six_blocks():
    arch = load_recipe(ROOT / "recipes" / "anime-x4.yaml").model_arch(4)
    assert (arch["arch"], arch["nb"], arch["nf"]) == ("rrdbnet", 6, 64)


def test_esrgan_psnr_recipe_has_paddlegan_values():
    r = load_recipe(ROOT / "recipes" / "esrgan-psnr-x4.yaml")
    assert r.model_arch(4) == {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23, "gc": 32, "scale": 4}
    assert (r.train.lr, r.train.beta1, r.train.beta2) == (2e-4, 0.9, 0.99)
    s = r.train.scheduler
    assert (s.name, s.periods, s.restart_weights, s.eta_min) == ("cosine_restart", [250000] * 4, [1.0] * 4, 1e-7)
    assert (r.train.batch_size, r.train.patch_size, r.train.iters) == (16, 128, 1000000)
    assert (r.val.interval, r.val.crop_border, r.val.y_channel) == (5000, 4, True)


def test_required_key_names_exist(tmp_path):
    text = """
seed: 3
run_dir: runs/x
data: {train: {gt: a, lq: b}, val: {gt: c, lq: d}}
model: {arch: rrdbnet}
train: {iters: 10, batch_size: 2, patch_size: 64, lr: 0.001}
val: {interval: 5}
checkpoint: {interval: 5}
log: {interval: 1}
"""
    r = load_recipe(write(tmp_path, text))
    assert (r.seed, r.run_dir, r.data.train.gt, r.data.val.lq, r.model.arch) == (3, "runs/x", "a", "d", "rrdbnet")
    assert (r.train.iters, r.train.batch_size, r.train.patch_size, r.train.lr) == (10, 2, 64, 0.001)
    assert (r.val.interval, r.checkpoint.interval, r.log.interval) == (5, 5, 1)


def test_unknown_key_suggests_the_right_one(tmp_path):
    path = write(tmp_path, MINIMAL + "train:\n  lrr: 0.1\n")
    with pytest.raises(UserError, match=r"r\.yaml: unknown key 'train\.lrr' \(did you mean 'train\.lr'\?\)"):
        load_recipe(path)


def test_unknown_top_level_key_lists_valid_ones(tmp_path):
    with pytest.raises(UserError, match="valid keys: seed, run_dir, data"):
        load_recipe(write(tmp_path, MINIMAL + "zzzz: 1\n"))


@pytest.mark.parametrize("text,match", [
    ("train:\n  iters: many\n", r"train\.iters must be an integer, got 'many'"),
    ("train:\n  lr: [1]\n", r"train\.lr must be a number"),
    ("val:\n  y_channel: 3\n", r"val\.y_channel must be true or false"),
    ("train:\n  scheduler:\n    periods: [1, x]\n", r"train\.scheduler\.periods\[1\] must be an integer"),
    ("train: 5\n", r"train must be a mapping"),
    ("train:\n  iters: 0\n", r"train\.iters must be > 0"),
    ("model:\n  arch: srcnn\n", r"unknown architecture 'srcnn'"),
    ("train:\n  scheduler:\n    name: step\n", r"unknown scheduler 'step'"),
    ("train:\n  loss: l3\n", r"unknown loss 'l3': use l1 or mse"),
])
def test_bad_values_name_file_and_key(tmp_path, text, match):
    with pytest.raises(UserError, match=match) as info:
        load_recipe(write(tmp_path, MINIMAL + text))
    assert "r.yaml" in str(info.value)


def test_yaml_11_exponent_strings_are_numbers(tmp_path):
    assert load_recipe(write(tmp_path, MINIMAL + "train:\n  lr: 1e-4\n")).train.lr == 1e-4


def test_missing_data_says_how_to_make_it(tmp_path):
    with pytest.raises(UserError, match="srdata build"):
        load_recipe(write(tmp_path, "seed: 1\n"))
    with pytest.raises(UserError, match=r"data\.val\.gt and data\.val\.lq"):
        load_recipe(write(tmp_path, "data:\n  train: {gt: a, lq: b}\n"))


def test_model_setting_of_the_other_arch_is_refused(tmp_path):
    r = load_recipe(write(tmp_path, MINIMAL + "model:\n  arch: rrdbnet\n  nc: 4\n"))
    with pytest.raises(UserError, match=r"model\.nc is not a setting of 'rrdbnet'"):
        r.model_arch(4)


def test_set_overrides_parse_yaml_values(tmp_path):
    r = load_recipe(write(tmp_path, MINIMAL), ["train.iters=7", "model.arch=rrdbnet", "train.lr=1e-3",
                                               "train.scheduler.milestones=[2, 4]", "val.y_channel=false",
                                               "run_dir=/tmp/x"])
    assert (r.train.iters, r.model.arch, r.train.lr, r.train.scheduler.milestones, r.val.y_channel, r.run_dir) == \
        (7, "rrdbnet", 1e-3, [2, 4], False, "/tmp/x")


def test_set_can_replace_the_data_source(tmp_path):
    r = load_recipe(write(tmp_path, MINIMAL), ["data.root=other"])
    assert r.data.root == "other"


@pytest.mark.parametrize("item,match", [("train.iterz=3", r"unknown key 'train\.iterz' \(did you mean 'train\.iters'"),
                                        ("train", "KEY.PATH=VALUE"),
                                        ("seed.x=1", "is a value, not a section"),
                                        ("train.iters=abc", r"train\.iters must be an integer")])
def test_bad_set_is_a_user_error(tmp_path, item, match):
    with pytest.raises(UserError, match=match):
        load_recipe(write(tmp_path, MINIMAL), [item])


def test_recipe_round_trips_through_to_dict(tmp_path):
    r = load_recipe(ROOT / "recipes" / "esrgan-psnr-x4.yaml")
    again = recipe_from_dict(r.to_dict(), "copy")
    assert again.to_dict() == r.to_dict()
    assert yaml.safe_load(yaml.safe_dump(r.to_dict())) == r.to_dict()
    assert not {"source", "notes"} & set(r.to_dict())  # internal fields stay out of checkpoints


def test_overrides_leave_the_callers_dict_alone():
    raw = {"data": {"train": {"gt": "a", "lq": "b"}, "val": {"gt": "c", "lq": "d"}}, "train": {"iters": 5}}
    r = recipe_from_dict(raw, "mem", ["train.iters=9", "train.scheduler.milestones=[1, 2]"])
    assert (r.train.iters, r.train.scheduler.milestones, r.source) == (9, [1, 2], "mem")
    assert raw["train"] == {"iters": 5}


def test_not_a_mapping_or_not_yaml(tmp_path):
    with pytest.raises(UserError, match="YAML mapping"):
        load_recipe(write(tmp_path, "- a\n- b\n"))
    with pytest.raises(UserError, match="not valid YAML"):
        load_recipe(write(tmp_path, "a: [1,\n"))
    with pytest.raises(UserError, match="no such recipe file"):
        load_recipe(tmp_path / "missing.yaml")


def test_paddlegan_psnr_config_translates(tmp_path):
    r = load_recipe(write(tmp_path, PADDLEGAN_PSNR, "esrgan_psnr_x4_div2k.yaml"))
    assert r.model_arch(4) == {"arch": "rrdbnet", "in_nc": 3, "out_nc": 3, "nf": 64, "nb": 23, "gc": 32, "scale": 4}
    assert (r.data.train.gt, r.data.train.lq) == ("data/DIV2K/DIV2K_train_HR_sub", "data/DIV2K/DIV2K_train_LR_bicubic/X4_sub")
    assert (r.data.val.gt, r.data.val.lq) == ("data/Set14/GTmod12", "data/Set14/LRbicx4")
    assert (r.data.scale, r.data.workers, r.train.batch_size, r.train.patch_size) == (4, 4, 16, 128)
    assert (r.train.iters, r.train.lr, r.train.beta1, r.train.beta2) == (1000000, 2e-4, 0.9, 0.99)
    s = r.train.scheduler
    assert (s.name, s.periods, s.restart_weights, s.eta_min) == ("cosine_restart", [250000] * 4, [1.0] * 4, 1e-7)
    assert (r.val.interval, r.val.crop_border, r.val.y_channel) == (5000, 4, True)
    assert (r.log.interval, r.checkpoint.interval) == (10, 5000)
    assert r.run_dir == "output_dir/esrgan_psnr_x4_div2k"
    assert any("min_max" in note for note in r.notes)
    # --set applies on top of the translation
    assert load_recipe(tmp_path / "esrgan_psnr_x4_div2k.yaml", ["train.iters=5"]).train.iters == 5


def test_paddlegan_enable_visualdl_becomes_log_visualdl(tmp_path):
    assert not load_recipe(write(tmp_path, PADDLEGAN_PSNR, "a.yaml")).log.visualdl
    for value in (True, False):
        text = PADDLEGAN_PSNR + f"enable_visualdl: {value}\n"
        assert load_recipe(write(tmp_path, text, "b.yaml")).log.visualdl is value


def test_paddlegan_to_static_becomes_train_to_static(tmp_path):
    assert not load_recipe(write(tmp_path, PADDLEGAN_PSNR, "a.yaml")).train.to_static
    text = PADDLEGAN_PSNR.replace("  to_static: False", "  to_static: True")
    assert load_recipe(write(tmp_path, text, "b.yaml")).train.to_static


def test_paddlegan_multistep_translates(tmp_path):
    text = PADDLEGAN_PSNR.replace("""  name: CosineAnnealingRestartLR
  learning_rate: 0.0002
  periods: [250000, 250000, 250000, 250000]
  restart_weights: [1, 1, 1, 1]
  eta_min: !!float 1e-7""", """  name: MultiStepDecay
  learning_rate: 0.0001
  milestones: [50000, 100000]
  gamma: 0.5""")
    s = load_recipe(write(tmp_path, text)).train
    assert (s.lr, s.scheduler.name, s.scheduler.milestones, s.scheduler.gamma) == (1e-4, "multistep", [50000, 100000], 0.5)


@pytest.mark.parametrize("old,new,match", [
    ("name: BaseSRModel", "name: ESRGAN", r"model\.name.*GAN stage"),
    ("    name: RRDBNet", "    name: RCAN", r"model\.generator\.name"),
    ("name: PairedRandomTransposeHW", "name: RandomCrop", "RandomCrop.*remove it"),
    ("name: CosineAnnealingRestartLR", "name: LinearDecay", r"lr_scheduler\.name"),
    ("      name: SSIM", "      name: LPIPSMetric", r"validate\.metrics\.ssim"),
    ("total_iters: 1000000", "total_iters: 1000000\nuse_amp: true", "'use_amp' has no srkit equivalent"),
    ("    name: L1Loss", "    name: MSELoss", r"model\.pixel_criterion"),
])
def test_untranslatable_paddlegan_parts_are_refused(tmp_path, old, new, match):
    assert old in PADDLEGAN_PSNR
    with pytest.raises(UserError, match=match):
        load_recipe(write(tmp_path, PADDLEGAN_PSNR.replace(old, new, 1)))
