"""Training the motion field generator N_M with N_D and N_I frozen (paper Sec. 3.3), in two stages, on the shared
loop.

A sample is a window of T = `seq_len` frames of one clip (`datasets.MotionWindows`): the audio features, the pose
boxes rendered from the clip's **true** poses with our renderer (`pose.render`, at the model's image size), a
reference image (a frame of the same clip) and the real frames. The frozen N_D gives the targets on the real frames:
heatmaps m, keypoints p and Jacobians j.

- **Stage 1** (eq. 5): L1 on heatmaps (lambda_m = 1, decaying linearly to 0 over `heatmap_decay_steps`), keypoints
  (lambda_p = 10) and Jacobians (lambda_j = 10). N_M starts from random weights.
- **Stage 2** (eqs. 6-7): N_M continues from `--init`'s (the stage-1 run); the frozen N_I renders `render_frames`
  frames of each window (chosen at random) from the reference image, N_D's keypoints of it, and N_M's keypoints;
  the loss is lambda_rec = 10 times the multi-scale VGG-16 reconstruction loss (eq. 6) + lambda'_p = 100 times the
  keypoint L1 against N_D + lambda = 10 times each equivariance loss. Equivariance for N_M (which sees no driving
  frame) transforms its image inputs: one random transform T per window warps the reference image and all T pose
  boxes, N_M runs on them (batched with the plain inputs in one pass), and its keypoints p' must satisfy
  p = T(p') and J = dT(p') J' (FOMM's losses, `keypoint_losses`).

Validation runs N_M on the first window of every held-out clip with frame 0 as the reference, as at inference:
KE (the L1 distance to N_D's keypoints of the real frames, `video_metrics.keypoint_error`) picks best.safetensors;
N_I renders the window to report PSNR/SSIM and draw real-vs-generated strips. The exported weights file is
`--init`'s four networks with the trained N_M.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from a2h_core.config import ModelConfig
from a2h_core.io.weights import save_models
from a2h_core.modules.keypoints import Keypoints
from a2h_core.modules.models import Audio2HeadModels
from a2h_core.modules.motion_field import MotionFieldGenerator
from a2h_core.pose.render import render_pose_boxes
from a2h_core.previews.frame_strip import frame_strip
from a2h_core.training.config import MotionLossConfig
from a2h_core.training.datasets import ClipSource, MotionWindows, motion_window_sample
from a2h_core.training.keypoint_losses import (
    ImagePyramid,
    equivariance_jacobian_loss,
    equivariance_value_loss,
    heatmap_weight,
    keypoint_l1,
    motion_stage1_loss,
    motion_stage2_loss,
    multiscale_perceptual_loss,
)
from a2h_core.training.keypoint_task import to_uint8
from a2h_core.training.pretrained import load_vgg
from a2h_core.training.tps import RandomTPS, noise_size
from a2h_core.training.trainer import TrainingTask, ValidationResult, safe_name, unwrap
from a2h_core.training.video_metrics import keypoint_error, psnr_per_frame, ssim_per_frame

VAL_RENDERED = 8  # frames of each validation window rendered through N_I


def window_inputs(batch: dict, image_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """audio [B, T, 4, 41], pose boxes [B, T, S, S] (0/255, rendered on the batch's device), reference [B, 3, S, S]
    and the real frames [B*T, 3, S, S] in 0..1, from a `MotionWindows` batch."""
    audio, poses = batch["audio"], batch["poses"]
    batch_size, length = poses.shape[:2]
    boxes = render_pose_boxes(poses.reshape(-1, 6), size=image_size, device=poses.device)
    boxes = boxes.view(batch_size, length, image_size, image_size)
    frames = batch["frames"].reshape(batch_size * length, *batch["frames"].shape[2:])
    real = frames.permute(0, 3, 1, 2).float() / 255.0
    return audio, boxes, batch["reference"], real


def per_window(kp: Keypoints, windows: int) -> Keypoints:
    """Keypoints of B*T frames regrouped per window [B, T*K, 2] (one equivariance transform per window)."""
    jacobian = None if kp.jacobian is None else kp.jacobian.reshape(windows, -1, 2, 2)
    return Keypoints(kp.value.reshape(windows, -1, 2), jacobian)


class MotionTask(TrainingTask):
    """N_M on the shared loop, with the frozen N_D (targets) and N_I (stage 2 rendering, validation pictures)."""

    name = "motion"

    def __init__(self, model_config: ModelConfig, loss: MotionLossConfig, train_clips: list[ClipSource],
                 val_clips: list[ClipSource], init: Audio2HeadModels, init_source: str | None = None,
                 vgg_weights: str | None = None, plot_clips: int = 3, log=print):
        loss.check()
        self.model_config, self.loss = model_config, loss
        self.train_clips, self.val_clips = train_clips, val_clips
        self.init, self.init_source, self.plot_clips = init, init_source, plot_clips
        self.kp_detector = init.kp_detector.float().eval().requires_grad_(False)  # frozen N_D
        self.generator = init.generator.float().eval().requires_grad_(False)  # frozen N_I
        self.vgg = load_vgg(loss.perceptual, vgg_weights, log=log) if loss.stage == 2 else None
        self.pyramid = ImagePyramid(loss.scales, model_config.num_channels)
        self.seq_len = model_config.motion_field.seq_len
        self.step = 0
        self._networks: dict[str, nn.Module] | None = None

    # -------------------------------------------------------------------------------------------- networks
    def networks(self) -> dict[str, nn.Module]:
        if self._networks is None:
            if self.loss.stage == 1:  # seeded by the trainer: the same on every process
                motion = MotionFieldGenerator(self.model_config)
            else:
                motion = copy.deepcopy(self.init.audio2kp).float()
            self._networks = {"motion": motion.requires_grad_(True)}
        return self._networks

    def optimizers(self) -> dict[str, list[str]]:
        return {"motion": ["motion"]}

    def batch_norm_default(self) -> str:
        return "batch" if self.loss.stage == 1 else "frozen"

    def set_step(self, step: int) -> None:
        self.step = step

    def train_dataset(self, seed: int, min_length: int) -> MotionWindows:
        return MotionWindows(self.train_clips, self.seq_len, seed=seed, min_length=min_length,
                             noise_size=noise_size(self.loss.points_tps))

    def _fixed_to(self, device: torch.device) -> None:
        if next(self.kp_detector.parameters()).device != device:
            for module in (self.kp_detector, self.generator, self.vgg, self.pyramid):
                if module is not None:
                    module.to(device)

    # -------------------------------------------------------------------------------------------- one step
    def training_step(self, networks, batch, update, autocast) -> dict[str, float]:
        device = batch["audio"].device
        self._fixed_to(device)
        cfg = self.loss
        audio, boxes, reference, real = window_inputs(batch, self.model_config.image_size)
        windows = len(audio)
        with torch.no_grad(), autocast():
            target, target_heatmaps = self.kp_detector(real, with_heatmaps=True)
        target = target.to(dtype=torch.float32)
        if cfg.stage == 1:
            with autocast():
                kp, heatmaps = networks["motion"](audio, boxes, reference, with_heatmaps=True)
            lambda_m = heatmap_weight(self.step, cfg.heatmap_weight, cfg.heatmap_decay_steps)
            terms = motion_stage1_loss(heatmaps, target_heatmaps, kp, target, lambda_m, cfg.keypoint_weight,
                                       cfg.jacobian_weight)
            update("motion", terms["loss"])
            values = {k: float(v.detach()) for k, v in terms.items()}
            values["lambda_m"] = lambda_m
            return values

        transform = RandomTPS(windows, cfg.sigma_affine, cfg.sigma_tps, cfg.points_tps, device=device,
                              noise=batch["noise"])
        with autocast():
            both = networks["motion"](torch.cat([audio, audio]), torch.cat([boxes, transform.warp_frames(boxes)]),
                                      torch.cat([reference, transform.warp_frames(reference)]))
        frames = windows * self.seq_len
        kp, kp_transformed = both[:frames], both[frames:]
        keypoints, _ = keypoint_l1(kp, target)
        eq_value = equivariance_value_loss(per_window(kp, windows), per_window(kp_transformed, windows), transform)
        eq_jacobian = None
        if kp.jacobian is not None:
            eq_jacobian = equivariance_jacobian_loss(per_window(kp, windows), per_window(kp_transformed, windows),
                                                     transform)
        # N_I renders `render_frames` random frames of each window from its reference image.
        chosen = batch["order"][:, : cfg.render_frames]  # [B, R], drawn with the samples
        rows = (torch.arange(windows, device=device)[:, None] * self.seq_len + chosen).flatten()
        owner = torch.arange(windows).repeat_interleave(chosen.shape[1]).to(device)
        with torch.no_grad(), autocast():
            kp_reference = self.kp_detector(reference).to(dtype=torch.float32)
        with autocast():
            generated = self.generator(reference[owner], None, kp_reference[owner],
                                       Keypoints(kp.value[rows], None if kp.jacobian is None else kp.jacobian[rows])
                                       )["prediction"].float()
        reconstruction = multiscale_perceptual_loss(self.vgg, self.pyramid, generated, real[rows], (1.0,))
        loss = motion_stage2_loss(keypoints, reconstruction, eq_value, eq_jacobian, cfg.stage2_keypoint_weight,
                                  cfg.reconstruction_weight, cfg.equivariance_value, cfg.equivariance_jacobian)
        update("motion", loss)
        values = {"loss": float(loss.detach()), "reconstruction": float(reconstruction.detach()),
                  "keypoints": float(keypoints.detach()), "equivariance_value": float(eq_value.detach())}
        if eq_jacobian is not None:
            values["equivariance_jacobian"] = float(eq_jacobian.detach())
        return values

    # -------------------------------------------------------------------------------------------- validation
    def evaluate_window(self, motion: nn.Module, clip: ClipSource, device: torch.device, autocast,
                        render: int = VAL_RENDERED) -> dict:
        """N_M on the clip's first window with frame 0 as the reference: KE against N_D, and `render` frames
        rendered by N_I (real and generated uint8)."""
        self._fixed_to(device)
        sample = motion_window_sample(clip, 0, self.seq_len, 0)
        batch = {k: v[None].to(device) for k, v in sample.items()}
        audio, boxes, reference, real = window_inputs(batch, self.model_config.image_size)
        with torch.no_grad(), autocast():
            kp = motion(audio, boxes, reference).to(dtype=torch.float32)
            target = self.kp_detector(real).to(dtype=torch.float32)
            picks = np.unique(np.linspace(0, self.seq_len - 1, min(render, self.seq_len)).round().astype(int))
            kp_reference = self.kp_detector(reference).to(dtype=torch.float32)
            generated = self.generator(reference, None, kp_reference, kp[picks.tolist()])["prediction"].float()
        real_u8 = to_uint8(real[picks.tolist()])
        generated_u8 = to_uint8(generated)
        perceptual = None
        if self.vgg is not None:  # stage 2: eq. 6's multi-scale reconstruction loss on the rendered frames
            perceptual = float(multiscale_perceptual_loss(self.vgg, self.pyramid, generated, real[picks.tolist()],
                                                          (1.0,)))
        return {"ke": keypoint_error(kp.value, target.value), "perceptual": perceptual,
                "ke_jacobian": keypoint_error(kp.jacobian, target.jacobian) if kp.jacobian is not None else None,
                "real": real_u8, "generated": generated_u8}

    def validate(self, networks, device, autocast) -> ValidationResult:
        motion = unwrap(networks["motion"])
        per_clip, images = [], {}
        usable = [clip for clip in self.val_clips if clip.frames >= self.seq_len]
        if not usable:
            raise ValueError(f"no validation clip has the {self.seq_len} frames of one window")
        for index, clip in enumerate(usable):
            result = self.evaluate_window(motion, clip, device, autocast)
            per_clip.append({"ke": result["ke"], "ke_jacobian": result["ke_jacobian"],
                             "perceptual": result["perceptual"],
                             "psnr": float(np.mean(np.minimum(psnr_per_frame(result["generated"], result["real"]),
                                                              100.0))),
                             "ssim": float(np.mean(ssim_per_frame(result["generated"], result["real"])))})
            if index < self.plot_clips:
                images[safe_name(clip.name)] = frame_strip({"real": result["real"], "generated": result["generated"]})
        metrics = {key: float(np.mean([c[key] for c in per_clip if c[key] is not None]))
                   for key in per_clip[0] if per_clip[0][key] is not None}
        metrics["clips"] = len(per_clip)
        return ValidationResult(metrics=metrics, score=metrics["ke"], images=images)

    # -------------------------------------------------------------------------------------------- export
    def trained_models(self, networks) -> Audio2HeadModels:
        trained = unwrap(networks["motion"]).state_dict()
        models = self.init
        models.audio2kp.load_state_dict({k: v.detach().to("cpu") for k, v in trained.items()})
        return models

    def export(self, networks, path, summary):
        metadata = {**summary, "trained": f"audio2kp (stage {self.loss.stage})",
                    "other_networks": f"copied from {self.init_source}"}
        return save_models(self.trained_models(networks), path, metadata)
